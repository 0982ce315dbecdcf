"""The transaction log: every served prediction and every manual evaluation.

By default one embedded SQLite file per workspace (``<workspace>/serving.sqlite``);
or a PostgreSQL database (``postgresql://...``) that several serving processes
and hosts write at once (:mod:`imgcls.translog.dialects`: targets, and what
differs between the engines). Its tables and migrations are described in
:mod:`imgcls.translog.schema`, which holds every SQL statement this class
runs, the checks of what goes in are in :mod:`imgcls.translog.values`, and
the query methods in :mod:`imgcls.translog.reads`.

Durability. The file runs in WAL mode with a busy timeout, and every write
method commits before it returns, so no transaction id is handed to a client
before its row is committed. The default ``synchronous="NORMAL"`` makes every
committed transaction survive the death of the process (even ``SIGKILL``):
in WAL mode a commit is a ``write()`` of the WAL frames into the operating
system, which keeps them when the process dies. Only a power cut or kernel
crash can lose the last few commits (the database itself stays intact).
Pass ``synchronous="FULL"`` to fsync the WAL on every commit and survive power
loss too, at the price of one disk flush per commit. On PostgreSQL a commit
returns once the server has it (on disk too under the database's default
``synchronous_commit = on``; see :mod:`imgcls.translog.dialects`): the death
of a serving process, or of its host, loses no acknowledged id.

Threads. One :class:`TransactionLog` owns one SQLite connection
(``check_same_thread=False``) and serialises its use with a lock, so a server
may share one log across worker threads. Separate processes open their own
:class:`TransactionLog` on the same file; WAL lets readers run beside the
single writer, and the busy timeout makes writers wait for each other. On
PostgreSQL writers run side by side (ids come from the table's identity
sequence, so one process's ids need not be consecutive with another's).

This module never imports TensorFlow: reading logs must be instant.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from imgcls.core.checks import check_choice, check_number
from imgcls.core.clock import isoformat
from imgcls.core.workspace import Workspace
from imgcls.translog import schema as sql
from imgcls.translog.dialects import Dialect, dialect_of, resolve_target
from imgcls.translog.reads import LogReads
from imgcls.translog.schema import MIGRATIONS, SCHEMA_VERSION
from imgcls.translog.values import (
    check_judgement,
    checked_rows,
    evaluation_row,
    now_us,
    records_list,
    to_utc_micros,
    transaction_row,
)

__all__ = ["TransactionLog"]

_T = TypeVar("_T")
_SYNCHRONOUS = ("NORMAL", "FULL")


class TransactionLog(LogReads):
    """The transaction and manual-evaluation store of one workspace.

    Args:
        target: Where the log is: a :class:`~imgcls.core.Workspace` (its
            ``serving.sqlite``), a workspace folder, the path of a SQLite
            file (a log need not live in a workspace, e.g. for benchmarks),
            or a URL: ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``
            (an existing database; the tables are created in it).
        timeout: Seconds to wait for another writer's lock (SQLite busy
            timeout; PostgreSQL ``lock_timeout`` and connect timeout) before failing.
        synchronous: ``"NORMAL"`` (default: commits survive a killed
            process; on PostgreSQL the database's ``synchronous_commit``
            decides the rest) or ``"FULL"`` (commits also survive power loss;
            one fsync each; on PostgreSQL ``synchronous_commit = on``).
        create: Create the log when it does not exist. With ``False`` a
            missing file (or a database without the log's tables) raises
            ``FileNotFoundError`` (readers such as reports use this so they
            never leave an empty log behind).

    Attributes:
        path: The SQLite file (None on PostgreSQL).
        url: The log's URL, password masked (``sqlite:///...`` or ``postgresql://...``).
        engine: ``"sqlite"`` or ``"postgresql"``.

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
        where = resolve_target(target)
        self.path: Path | None = where.path
        self.url: str = where.shown
        self.engine: str = where.engine
        if self.path is not None and not self.path.is_file():
            if not create:
                raise FileNotFoundError(
                    f"No transaction log at {str(self.path)!r}. Serve some predictions "
                    "(imgcls serve) or simulate traffic first, or pass create=True."
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = sync
        self._lock = threading.RLock()
        self._reopen = lambda: dialect_of(where, timeout=timeout, synchronous=sync)
        self._conn: Dialect | None = self._reopen()
        try:
            if not create and self._stored_version(self._conn) == 0:
                raise FileNotFoundError(
                    f"No transaction log in {self.url} (no imgcls tables). Serve some predictions "
                    "with --log-url, copy one there (imgcls log migrate), or pass create=True.")
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
        return f"TransactionLog({self.where!r}, {state})"

    @property
    def where(self) -> str:
        """Where the log is, for messages: the SQLite file, or the URL (password masked)."""
        return self.url if self.path is None else str(self.path)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._conn is None

    def _db(self) -> Dialect:
        if self._conn is None:
            raise ValueError(f"This TransactionLog ({self.where!r}) is closed. Open a new one.")
        if self._conn.broken:  # a PostgreSQL server restarted or a network cut: the failed call
            self._conn.close()  # raised; later ones reconnect (never a replay of a write)
            self._conn = self._reopen()
        return self._conn

    def _write(self, fn: Callable[[Dialect], _T], *, migrating: bool = False) -> _T:
        """Run ``fn(conn)`` in one write transaction; commit before returning."""
        with self._lock:
            conn = self._db()
            conn.begin_write(migrating=migrating)
            try:
                result = fn(conn)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            return result

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db().execute(statement, params).fetchall()

    # --- schema ------------------------------------------------------------
    def _stored_version(self, conn: Dialect) -> int:
        tables = conn.table_names()
        if "meta" not in tables:
            foreign = tables - conn.engine_tables
            if foreign:
                what = "a SQLite file" if self.path is not None else "a PostgreSQL database"
                raise ValueError(
                    f"{self.where!r} is {what} but not an imgcls transaction log "
                    f"(tables {sorted(foreign)}, no 'meta'). Point TransactionLog at the "
                    "workspace (serving.sqlite), a new file or an empty database."
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
                    f"{self.where!r} has schema version {version}, newer than this imgcls "
                    f"understands ({SCHEMA_VERSION}). Upgrade imgcls to read it."
                )
            if version == SCHEMA_VERSION:
                return

            def apply(conn: Dialect) -> None:
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

            self._write(apply, migrating=True)

    @property
    def schema_version(self) -> int:
        """The schema version stored in the log (always :data:`SCHEMA_VERSION` once open)."""
        return int(self._query(sql.SELECT_SCHEMA_VERSION)[0][0])

    def migrations(self) -> pd.DataFrame:
        """Migrations applied to this log: version, name, applied (UTC ISO time)."""
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
        endpoint: str = "predict",
        http_status: int | None = None,
        failure: str | None = None,
        raw_score: float | None = None,
        temperature: float | None = None,
        runtime: str | None = None,
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
            endpoint: The request a row stands for: ``"predict"`` (default),
                ``"evaluations"``, ``"model"``, ... (see :data:`ENDPOINTS`).
            http_status: The HTTP status answered (None for calls from Python).
            failure: The kind of a failure (default: the ``kind:`` prefix of
                ``error``, else ``"error"``); ignored when ``status="ok"``.
            raw_score: The top-1 score before calibration (default the
                top-1 score of ``top_k``).
            temperature: The temperature applied to ``top_k`` (None for none).
            runtime: What ran the model, ``"<engine>-<precision>"``
                (``"keras-f32"``, ``"openvino-int8"``; None when unknown).

        Returns:
            The transaction id (int).
        """
        return self.log_transactions([{
            "run_id": run_id, "top_k": top_k, "model_version": model_version,
            "image_hash": image_hash, "latency_ms": latency_ms, "source": source,
            "image_path": image_path, "status": status, "error": error,
            "simulated": simulated, "time": time, "endpoint": endpoint,
            "http_status": http_status, "failure": failure, "raw_score": raw_score,
            "temperature": temperature, "runtime": runtime,
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

        def insert(conn: Dialect) -> list[int]:
            ids = conn.insert_ids(sql.INSERT_TX, rows)
            # sorted: concurrent PostgreSQL writers lock version rows in one order (no deadlock)
            conn.executemany(sql.UPSERT_VERSION, [(v, *versions[v]) for v in sorted(versions)])
            return ids

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
        new_class: bool = False,
        note: str | None = None,
    ) -> int:
        """Record one manual judgement of a served prediction.

        Args:
            transaction_id: The id :meth:`log_transaction` returned.
            verdict: ``"correct"``, ``"wrong"`` or ``"unsure"``.
            reviewer: Who judged it.
            true_class: The real class when known. With ``"correct"`` it must
                equal the predicted class; with ``"wrong"`` it must differ.
            time: When it was judged (default now). The log also stores when
                it *received* the verdict (its own clock): the current verdict
                of a transaction is the last one received, whatever ``time`` says.
            simulated: True for demo evaluations.
            new_class: ``true_class`` names a class the model does not know yet.
            note: A free-text note (at most :data:`MAX_NOTE_CHARS` characters).

        Returns:
            The evaluation id (int).
        """
        return self.log_evaluations([{
            "transaction_id": transaction_id, "verdict": verdict, "reviewer": reviewer,
            "true_class": true_class, "time": time, "simulated": simulated,
            "new_class": new_class, "note": note,
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

        def insert(conn: Dialect) -> list[int]:
            found = self._judged(conn, sorted({row[0] for row in rows}))
            for i, (tid, _, _, verdict, true_class, *_) in enumerate(rows):
                check_judgement(found, tid, verdict, true_class, log_path=self.where,
                                at=f"Evaluation record {i}: " if len(rows) > 1 else "")
            return conn.insert_ids(sql.INSERT_EV, [
                (*row, tx_time, run_id, version, found[row[0]][1], score, tx_sim)
                for row in rows
                for (_, _, tx_time, run_id, version, score, tx_sim) in (found[row[0]],)
            ])

        return self._write(insert)

    @staticmethod
    def _judged(conn: Dialect, ids: list[int]) -> dict[int, tuple]:
        """id -> (status, top1_class, time_us, run_id, model_version, top1_score, simulated)."""
        found: dict[int, tuple] = {}
        for start in range(0, len(ids), sql.ID_CHUNK):
            chunk = ids[start:start + sql.ID_CHUNK]
            for tid, *rest in conn.execute(sql.judged_transactions(len(chunk)), chunk):
                found[tid] = tuple(rest)
        return found

    # --- retention ---------------------------------------------------------
    def purge(self, before: Any, *, dry_run: bool = False) -> dict[str, int]:
        """Delete the transactions served before ``before`` and their evaluations (one commit).

        The purge is recorded in the ``purges`` table (reports say their data
        was purged); see :func:`imgcls.translog.purge` for stored inputs too.

        Args:
            before: Rows served strictly before this time go (any form
                :func:`to_utc_micros` takes; a date means its UTC midnight).
            dry_run: Only count what would go; change nothing.

        Returns:
            ``{"transactions": n, "evaluations": n}``: rows deleted (or that
            would be).
        """
        before_us = to_utc_micros(before, name="before")

        def run(conn: Dialect) -> dict[str, int]:
            counts = {"transactions": int(conn.execute(sql.COUNT_TX_BEFORE, (before_us,)).fetchone()[0]),
                      "evaluations": int(conn.execute(sql.COUNT_EV_BEFORE, (before_us,)).fetchone()[0])}
            if not dry_run:
                conn.execute(sql.DELETE_EV_BEFORE, (before_us,))
                conn.execute(sql.DELETE_TX_BEFORE, (before_us,))
                conn.execute(sql.INSERT_PURGE, (now_us(), before_us, "log", counts["transactions"],
                                                counts["evaluations"], 0))
            return counts

        return self._write(run)

    def record_purge(self, before: Any, *, what: str, inputs: int = 0) -> None:
        """Record a purge done outside the tables (``what="inputs"``: stored input files).

        Args:
            before: What was older than this went.
            what: ``"inputs"`` (or ``"log"``).
            inputs: Files removed.
        """
        check_choice(what, "what", ("log", "inputs"))
        before_us = to_utc_micros(before, name="before")
        self._write(lambda conn: conn.execute(sql.INSERT_PURGE, (now_us(), before_us, what, 0, 0,
                                                                 int(inputs))))
