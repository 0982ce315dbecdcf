"""The transaction log: every served prediction and every manual evaluation.

One embedded SQLite file per workspace (``<workspace>/serving.sqlite``); its
tables and migrations are described in :mod:`imgcls.translog.schema`, which
holds every SQL statement this class runs, and the checks of what goes in
are in :mod:`imgcls.translog.values`.

Durability. The file runs in WAL mode with a busy timeout, and every write
method commits before it returns, so no transaction id is handed to a client
before its row is committed. The default ``synchronous="NORMAL"`` makes every
committed transaction survive the death of the process (even ``SIGKILL``):
in WAL mode a commit is a ``write()`` of the WAL frames into the operating
system, which keeps them when the process dies. Only a power cut or kernel
crash can lose the last few commits (the database itself stays intact).
Pass ``synchronous="FULL"`` to fsync the WAL on every commit and survive power
loss too, at the price of one disk flush per commit.

Threads. One :class:`TransactionLog` owns one SQLite connection
(``check_same_thread=False``) and serialises its use with a lock, so a server
may share one log across worker threads. Separate processes open their own
:class:`TransactionLog` on the same file; WAL lets readers run beside the
single writer, and the busy timeout makes writers wait for each other.

This module never imports TensorFlow: reading logs must be instant.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from imgcls.core.checks import check_choice, check_number
from imgcls.core.clock import isoformat
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.translog import schema as sql
from imgcls.translog.schema import MIGRATIONS, SCHEMA_VERSION, US_PER_DAY
from imgcls.translog.values import (
    check_judgement,
    checked_rows,
    evaluation_row,
    frame,
    now_us,
    optional_micros,
    records_list,
    transaction_row,
)

__all__ = ["TransactionLog"]

_T = TypeVar("_T")
_SYNCHRONOUS = ("NORMAL", "FULL")


def _resolve_path(target: Any) -> Path:
    """The SQLite file a :class:`TransactionLog` target names."""
    if isinstance(target, Workspace):
        return target.serving_db
    if isinstance(target, (str, os.PathLike)):
        path = Path(os.fspath(target)).expanduser()
        # A directory is a workspace root: its log is serving.sqlite inside.
        return as_workspace(path, must_exist=False).serving_db if path.is_dir() else path
    raise ValueError(
        "`target` must be a Workspace, a workspace folder or a .sqlite file path. "
        f"Received: {target!r}"
    )


class TransactionLog:
    """The transaction and manual-evaluation store of one workspace.

    Args:
        target: Where the log is: a :class:`~imgcls.core.Workspace` (its
            ``serving.sqlite``), a workspace folder, or the path of a SQLite
            file (a log need not live in a workspace, e.g. for benchmarks).
        timeout: Seconds to wait for another writer's lock (SQLite busy
            timeout) before failing with ``sqlite3.OperationalError``.
        synchronous: ``"NORMAL"`` (default: commits survive a killed process)
            or ``"FULL"`` (commits also survive power loss; one fsync each).
        create: Create the file when it does not exist. With ``False`` a
            missing file raises ``FileNotFoundError`` (readers such as
            reports use this so they never leave an empty log behind).

    Example:
        >>> with TransactionLog(ws) as log:
        ...     tid = log.log_transaction("run-1", {"zebra": 0.9, "horse": 0.1},
        ...                               model_version="v1", latency_ms=12.5)
        ...     log.log_evaluation(tid, "correct", reviewer="ana")
    """

    def __init__(
        self,
        target: Workspace | str | os.PathLike,
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
        create: bool = True,
    ) -> None:
        sync = str(synchronous).upper()
        if sync not in _SYNCHRONOUS:
            check_choice(synchronous, "synchronous", _SYNCHRONOUS)  # raises
        timeout = check_number(timeout, "timeout", 0, fix="give the seconds to wait for a lock")
        self.path = _resolve_path(target)
        if not self.path.is_file():
            if not create:
                raise FileNotFoundError(
                    f"No transaction log at {str(self.path)!r}. Serve some predictions "
                    "(imgcls serve) or simulate traffic first, or pass create=True."
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = sync
        self._lock = threading.RLock()
        conn = sqlite3.connect(
            str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            pragmas = sql.connection_pragmas(timeout_ms=int(timeout * 1000), synchronous=sync)
            conn.execute(pragmas[0])  # the busy timeout first: switching to WAL may wait
            mode = conn.execute(sql.JOURNAL_WAL).fetchone()[0]
            if str(mode).lower() != "wal":
                raise OSError(
                    f"Could not switch {str(self.path)!r} to WAL mode (got {mode!r}); the "
                    "file system may not support it. Keep the workspace on a local disk."
                )
            for pragma in pragmas[1:]:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # --- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent). The last closer checkpoints the WAL."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "TransactionLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"schema v{SCHEMA_VERSION}"
        return f"TransactionLog({str(self.path)!r}, {state})"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._conn is None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError(f"This TransactionLog ({str(self.path)!r}) is closed. Open a new one.")
        return self._conn

    def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(conn)`` in one immediate write transaction; commit before returning."""
        with self._lock:
            conn = self._db()
            conn.execute(sql.BEGIN_WRITE)
            try:
                result = fn(conn)
                conn.execute(sql.COMMIT)
            except BaseException:
                if conn.in_transaction:
                    conn.execute(sql.ROLLBACK)
                raise
            return result

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db().execute(statement, params).fetchall()

    # --- schema ------------------------------------------------------------
    def _stored_version(self, conn: sqlite3.Connection) -> int:
        tables = {r[0] for r in conn.execute(sql.TABLE_NAMES)}
        if "meta" not in tables:
            foreign = tables - sql.ENGINE_TABLES
            if foreign:
                raise ValueError(
                    f"{str(self.path)!r} is a SQLite file but not an imgcls transaction log "
                    f"(tables {sorted(foreign)}, no 'meta'). Point TransactionLog at the "
                    "workspace (serving.sqlite) or a new file."
                )
            return 0
        row = conn.execute(sql.SELECT_SCHEMA_VERSION).fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        conn = self._db()
        with self._lock:
            version = self._stored_version(conn)
            if version > SCHEMA_VERSION:
                raise ValueError(
                    f"{str(self.path)!r} has schema version {version}, newer than this imgcls "
                    f"understands ({SCHEMA_VERSION}). Upgrade imgcls to read it."
                )
            if version == SCHEMA_VERSION:
                return

            def apply(conn: sqlite3.Connection) -> None:
                current = self._stored_version(conn)  # re-read under the write lock
                conn.execute(sql.CREATE_META)
                for migration in MIGRATIONS[current:]:
                    for statement in migration.statements:
                        conn.execute(statement)
                    stamp = isoformat(timespec="seconds")
                    conn.execute(sql.SET_META, (
                        sql.migration_key(migration.version),
                        json.dumps({"name": migration.name, "applied": stamp})))
                    conn.execute(sql.SET_META, ("schema_version", str(migration.version)))

            self._write(apply)

    @property
    def schema_version(self) -> int:
        """The schema version stored in the file (always :data:`SCHEMA_VERSION` once open)."""
        return int(self._query(sql.SELECT_SCHEMA_VERSION)[0][0])

    def migrations(self) -> pd.DataFrame:
        """Migrations applied to this file: version, name, applied (UTC ISO time)."""
        records = []
        for key, value in self._query(sql.SELECT_MIGRATIONS):
            info = json.loads(value)
            records.append({"version": int(key.split(".")[1]), "name": info.get("name"),
                            "applied": info.get("applied")})
        return pd.DataFrame(records, columns=["version", "name", "applied"])

    # --- writing -----------------------------------------------------------
    def log_transaction(
        self,
        run_id: str,
        top_k: Any = None,
        *,
        model_version: str | None = None,
        image_hash: str | None = None,
        latency_ms: float | None = None,
        source: str | None = None,
        image_path: str | os.PathLike | None = None,
        status: str = "ok",
        error: str | None = None,
        simulated: bool = False,
        time: Any = None,
    ) -> int:
        """Record one served request; committed before the id is returned.

        Args:
            run_id: The run that served the request.
            top_k: The prediction, best first or in any order (sorted here):
                ``{class: score}``, ``[(class, score), ...]`` or
                ``[{"class": ..., "score": ...}, ...]``; scores in [0, 1],
                stored to 6 decimals. Required when ``status="ok"``.
            model_version: Human label ("v3"); defaults to ``run_id``.
            image_hash: sha256 of the image bytes (:func:`imgcls.core.file_hash`).
            latency_ms: Time to serve the request.
            source: Who asked (client name, address, ``"demo"``).
            image_path: Where the input was kept, when keeping inputs is on.
            status: ``"ok"`` or ``"failed"``.
            error: Why the request failed.
            simulated: True for demo traffic (reports can leave it out).
            time: When it was served (default now); any form
                :func:`to_utc_micros` accepts, e.g. for simulated weeks.

        Returns:
            The transaction id (int).
        """
        return self.log_transactions([{
            "run_id": run_id, "top_k": top_k, "model_version": model_version,
            "image_hash": image_hash, "latency_ms": latency_ms, "source": source,
            "image_path": image_path, "status": status, "error": error,
            "simulated": simulated, "time": time,
        }])[0]

    def log_transactions(self, records: Iterable[Mapping[str, Any]] | pd.DataFrame) -> list[int]:
        """Record many requests in one commit (all or none); returns their ids in order.

        Args:
            records: Dicts (or DataFrame rows) with the keyword arguments of
                :meth:`log_transaction` (``run_id`` required). Records without
                ``time`` get the time of this call.

        Returns:
            Transaction ids, in the order of ``records``.
        """
        rows = checked_rows(records_list(records, "transaction"), transaction_row, "transaction", now_us())
        if not rows:
            return []
        versions: dict[str, list] = {}
        for row in rows:  # per version: first run id, first and last time
            seen = versions.get(row[3])
            if seen is None:
                versions[row[3]] = [row[2], row[0], row[0]]
            else:
                if row[0] < seen[1]:
                    seen[0], seen[1] = row[2], row[0]
                seen[2] = max(seen[2], row[0])

        def insert(conn: sqlite3.Connection) -> list[int]:
            conn.executemany(sql.INSERT_TX, rows)
            last = conn.execute(sql.LAST_ID).fetchone()[0]
            conn.executemany(sql.UPSERT_VERSION, [(v, *seen) for v, seen in versions.items()])
            # AUTOINCREMENT inside one write transaction: consecutive ids.
            return list(range(last - len(rows) + 1, last + 1))

        return self._write(insert)

    def log_evaluation(
        self,
        transaction_id: int,
        verdict: str,
        *,
        reviewer: str,
        true_class: str | None = None,
        time: Any = None,
        simulated: bool = False,
    ) -> int:
        """Record one manual judgement of a served prediction.

        Args:
            transaction_id: The id :meth:`log_transaction` returned.
            verdict: ``"correct"``, ``"wrong"`` or ``"unsure"``.
            reviewer: Who judged it.
            true_class: The real class when known. With ``"correct"`` it must
                equal the predicted class; with ``"wrong"`` it must differ.
            time: When it was judged (default now).
            simulated: True for demo evaluations.

        Returns:
            The evaluation id (int).
        """
        return self.log_evaluations([{
            "transaction_id": transaction_id, "verdict": verdict, "reviewer": reviewer,
            "true_class": true_class, "time": time, "simulated": simulated,
        }])[0]

    def log_evaluations(self, records: Iterable[Mapping[str, Any]] | pd.DataFrame) -> list[int]:
        """Record many evaluations in one commit (all or none); returns their ids.

        Args:
            records: Dicts with the arguments of :meth:`log_evaluation`
                (``transaction_id``, ``verdict``, ``reviewer`` required).

        Returns:
            Evaluation ids, in the order of ``records``.
        """
        rows = checked_rows(records_list(records, "evaluation"), evaluation_row, "evaluation", now_us())
        if not rows:
            return []

        def insert(conn: sqlite3.Connection) -> list[int]:
            found = self._judged(conn, sorted({row[0] for row in rows}))
            for i, (tid, _, _, verdict, true_class, _) in enumerate(rows):
                check_judgement(found, tid, verdict, true_class, log_path=self.path,
                                at=f"Evaluation record {i}: " if len(rows) > 1 else "")
            conn.executemany(sql.INSERT_EV, [
                (*row, tx_time, run_id, version, found[row[0]][1], score, tx_sim)
                for row in rows
                for (_, _, tx_time, run_id, version, score, tx_sim) in (found[row[0]],)
            ])
            last = conn.execute(sql.LAST_ID).fetchone()[0]
            return list(range(last - len(rows) + 1, last + 1))

        return self._write(insert)

    @staticmethod
    def _judged(conn: sqlite3.Connection, ids: list[int]) -> dict[int, tuple]:
        """id -> (status, top1_class, time_us, run_id, model_version, top1_score, simulated)."""
        found: dict[int, tuple] = {}
        for start in range(0, len(ids), sql.ID_CHUNK):
            chunk = ids[start:start + sql.ID_CHUNK]
            for tid, *rest in conn.execute(sql.judged_transactions(len(chunk)), chunk):
                found[tid] = tuple(rest)
        return found

    # --- reading -----------------------------------------------------------
    def transactions(
        self,
        *,
        since: Any = None,
        until: Any = None,
        run_id: str | None = None,
        model_version: str | None = None,
        include_simulated: bool = True,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Transactions served in ``[since, until)``, oldest first.

        Args:
            since: Inclusive start time (any form :func:`to_utc_micros` takes).
            until: Exclusive end time.
            run_id: Only this run.
            model_version: Only this version label.
            include_simulated: False leaves out demo traffic.
            columns: Only these columns (faster on big logs). Default: id,
                time (UTC), run_id, model_version, image_hash, top_k (list of
                ``{"class", "score"}``), top1_class, top1_score, latency_ms,
                source, image_path, status, error, simulated.

        Returns:
            One row per transaction.
        """
        statement, params, spec = sql.transactions_query(
            columns, since_us=optional_micros(since, "since"), until_us=optional_micros(until, "until"),
            run_id=run_id, model_version=model_version, include_simulated=include_simulated)
        return frame(self._query(statement, params), spec)

    def evaluations(
        self, *, since: Any = None, until: Any = None, include_simulated: bool = True
    ) -> pd.DataFrame:
        """Every evaluation judged in ``[since, until)``, oldest first.

        Args:
            since: Inclusive start of the evaluation time.
            until: Exclusive end of the evaluation time.
            include_simulated: False leaves out demo evaluations.

        Returns:
            Columns: id, transaction_id, time (UTC), reviewer, verdict, true_class, simulated.
        """
        statement, params, spec = sql.evaluations_query(
            since_us=optional_micros(since, "since"), until_us=optional_micros(until, "until"),
            include_simulated=include_simulated)
        return frame(self._query(statement, params), spec)

    def evaluated_transactions(
        self,
        *,
        since: Any = None,
        until: Any = None,
        latest_only: bool = True,
        include_simulated: bool = True,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Evaluations joined with the transactions they judge.

        Args:
            since: Inclusive start of the *transaction* time (when the
                prediction was served, which is what accuracy over time needs).
            until: Exclusive end of the transaction time.
            latest_only: One row per evaluated transaction, its latest
                evaluation (by time, then id). False: one row per evaluation.
            include_simulated: False leaves out simulated transactions and
                simulated evaluations.
            columns: Only these columns. Default: evaluation_id,
                transaction_id, evaluation_time, reviewer, verdict,
                true_class, evaluation_simulated, then the transaction's
                columns (time, run_id, model_version, ..., simulated).

        Returns:
            A DataFrame ordered by transaction id (then evaluation time).
        """
        statement, params, spec = sql.evaluated_query(
            columns, since_us=optional_micros(since, "since"), until_us=optional_micros(until, "until"),
            include_simulated=include_simulated)
        rows = self._query(statement, params)
        # hidden trailing keys: transaction id, evaluation time and id (order, latest)
        keys = np.array([r[-3:] for r in rows], dtype=np.int64).reshape(-1, 3)
        order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
        if latest_only and len(order):
            tids = keys[order, 0]
            last = np.append(tids[1:] != tids[:-1], True)  # last evaluation of each transaction
            order = order[last]
        return frame([rows[i][:-3] for i in order.tolist()], spec)

    def usage_by_day(
        self, *, first_day: Any = None, last_day: Any = None, include_simulated: bool = True
    ) -> pd.DataFrame:
        """Requests per UTC day and model version, from an index-only scan.

        Args:
            first_day: First UTC day counted (inclusive; a date, datetime or
                ISO string: only its day matters).
            last_day: Last UTC day counted (inclusive).
            include_simulated: False leaves out demo traffic.

        Returns:
            DataFrame [day (UTC midnight), model_version, requests, ok,
            failed], ordered by day then version.
        """
        first = optional_micros(first_day, "first_day")
        last = optional_micros(last_day, "last_day")
        statement, params, spec = sql.usage_query(
            first_day=None if first is None else first // US_PER_DAY,
            last_day=None if last is None else last // US_PER_DAY,
            include_simulated=include_simulated)
        df = frame(self._query(statement, params), spec)
        df["day"] = pd.to_datetime(df["day"].to_numpy() * US_PER_DAY, unit="us", utc=True)
        df["failed"] = df["requests"] - df["ok"]
        return df

    def model_versions(self) -> pd.DataFrame:
        """Every version label logged: model_version, run_id, first_seen, last_seen (UTC).

        Ordered by first seen (then label): the stable order reports use for colours.
        """
        return frame(self._query(sql.SELECT_VERSIONS), sql.VERSION_COLUMNS)

    def count(self, table: str = "transactions") -> int:
        """Number of rows in ``"transactions"`` or ``"evaluations"``."""
        if table not in sql.COUNTED_TABLES:
            raise ValueError(
                f"`table` must be 'transactions' or 'evaluations'. Received: table={table!r}"
            )
        return int(self._query(sql.count_query(table))[0][0])
