"""Copy a whole log to another engine or place: :func:`copy_log` (``imgcls log migrate``).

The usual move is from the embedded default to a shared server::

    imgcls log migrate --from sqlite:///ws/serving.sqlite --to postgresql://imgcls@db:5432/imgcls

Both logs are opened with :class:`~imgcls.translog.TransactionLog` (so both
are at the current schema version: an older source is migrated first), the
target must hold no rows, and every table (transactions, evaluations,
model_versions, purges) is copied with its ids, in pages of ``batch_size``
rows, inside ONE write transaction on the target: a failed copy leaves the
target empty. The copy is then checked: per table the row counts of source
and target and a checksum of their rows (:func:`log_checksums`) must agree.

This module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from imgcls.core.checks import check_int
from imgcls.core.clock import isoformat
from imgcls.core.workspace import Workspace
from imgcls.translog import schema as sql
from imgcls.translog.dialects import Dialect
from imgcls.translog.log import TransactionLog

__all__ = ["copy_log", "log_checksums"]

_MOD = 2**256


def _cell(value: Any) -> str:
    """One value in an engine-independent text form."""
    if value is None:
        return "\\N"
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return str(value)


def _pages(conn: Dialect, table: str, key: str, columns: list[str], batch_size: int):
    """The rows of ``table`` (``columns`` in that order), page by page in key order."""
    select = ", ".join(columns)
    at = columns.index(key)
    last = None
    while True:
        if last is None:
            rows = conn.execute(f"SELECT {select} FROM {table} ORDER BY {key} LIMIT {batch_size}").fetchall()
        else:
            rows = conn.execute(f"SELECT {select} FROM {table} WHERE {key} > ? ORDER BY {key} "
                                f"LIMIT {batch_size}", (last,)).fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][at]


def _table_columns(conn: Dialect, table: str) -> list[str]:
    return sorted(conn.columns(table))


def log_checksums(log: TransactionLog, *, batch_size: int = 10_000) -> dict[str, dict[str, Any]]:
    """Per table, the number of rows and a checksum of their contents.

    The checksum is the sum (mod 2**256) of the sha256 of each row's values
    in column-name order, so it does not depend on the engine, the row order
    or the column order; two logs holding the same rows give the same value.

    Args:
        log: An open log.
        batch_size: Rows read at a time.

    Returns:
        ``{table: {"rows": n, "checksum": hex}}`` for every table of the log.
    """
    batch_size = check_int(batch_size, "batch_size")
    out: dict[str, dict[str, Any]] = {}
    with log._lock:
        conn = log._db()
        for table, key in sql.LOG_TABLES:
            columns = _table_columns(conn, table)
            total, n = 0, 0
            for rows in _pages(conn, table, key, columns, batch_size):
                for row in rows:
                    text = "\x1f".join(_cell(v) for v in row).encode("utf-8", "surrogatepass")
                    total = (total + int.from_bytes(hashlib.sha256(text).digest(), "big")) % _MOD
                n += len(rows)
            out[table] = {"rows": n, "checksum": f"{total:064x}"}
    return out


def copy_log(
    source: Workspace | str | os.PathLike,
    target: Workspace | str | os.PathLike,
    *,
    batch_size: int = 5_000,
) -> dict[str, Any]:
    """Copy every row of the log ``source`` into the empty log ``target``, then check it.

    Args:
        source: The log to copy (any :class:`TransactionLog` target: a
            workspace, a ``.sqlite`` path, ``sqlite:///...`` or
            ``postgresql://...``). It must exist.
        target: Where to copy it (created when missing; a PostgreSQL
            database must exist and hold no imgcls rows).
        batch_size: Rows read and written at a time.

    Returns:
        ``{"source", "target", "tables": {table: {"rows_source",
        "rows_target", "checksum_source", "checksum_target", "ok"}}, "ok"}``.

    Raises:
        FileNotFoundError: The source log does not exist.
        ValueError: The target already holds rows, or is the source itself.
        RuntimeError: The copy does not match the source (counts or checksums).
    """
    batch_size = check_int(batch_size, "batch_size")
    with TransactionLog(source, create=False) as src, TransactionLog(target) as dst:
        if src.url == dst.url:
            raise ValueError(f"`source` and `target` are the same log ({src.where!r}). Give another target.")
        held = {table: dst._db().execute(sql.count_query(table)).fetchone()[0] for table, _ in sql.LOG_TABLES}
        if any(held.values()):
            raise ValueError(
                f"The target log {dst.where} is not empty ({held}). Migrate into a new file or an "
                "empty database (createdb NAME), or purge it first.")

        def copy(conn: Dialect) -> None:
            with src._lock:
                reader = src._db()
                for table, key in sql.LOG_TABLES:
                    columns = _table_columns(reader, table)
                    missing = set(columns) ^ set(_table_columns(conn, table))
                    if missing:  # both are at the current schema: cannot happen unless edited by hand
                        raise ValueError(f"Table {table!r} differs between the logs: columns {sorted(missing)}.")
                    insert = (f"INSERT INTO {table} ({', '.join(columns)}) "
                              f"VALUES ({', '.join('?' * len(columns))})")
                    for rows in _pages(reader, table, key, columns, batch_size):
                        conn.executemany(insert, rows)
                    if key == "id":
                        conn.after_copy(table)
            conn.execute(sql.SET_META, ("copied_from", json.dumps(
                {"source": src.url, "copied": isoformat(timespec="seconds")})))

        dst._write(copy)
        before, after = log_checksums(src, batch_size=batch_size), log_checksums(dst, batch_size=batch_size)
        tables = {
            table: {"rows_source": before[table]["rows"], "rows_target": after[table]["rows"],
                    "checksum_source": before[table]["checksum"], "checksum_target": after[table]["checksum"],
                    "ok": before[table] == after[table]}
            for table in before
        }
        result = {"source": src.url, "target": dst.url, "tables": tables,
                  "ok": all(t["ok"] for t in tables.values())}
    if not result["ok"]:
        bad = [t for t, v in tables.items() if not v["ok"]]
        raise RuntimeError(f"The copy of {result['source']} in {result['target']} does not match in "
                           f"{bad}: {tables}. The target was written; drop it and run the copy again.")
    return result
