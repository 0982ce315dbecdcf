"""The transaction log: every served prediction and every manual evaluation.

One embedded SQLite file per workspace (``<workspace>/serving.sqlite``) holds
two tables and their bookkeeping:

``transactions`` (one row per request served)
    ``id`` INTEGER, assigned by SQLite (``AUTOINCREMENT``: increasing, never
    reused, compact and fast to join on; a client gets it back as the
    transaction id). ``time_us`` INTEGER, UTC microseconds since 1970-01-01
    (the DataFrames show it as a ``time`` column of UTC timestamps).
    ``day`` INTEGER, the UTC day number ``time_us // 86_400_000_000``, kept by
    this module for fast reports. ``run_id`` the run that served the request;
    ``model_version`` a human label ("v3"; the run id when none is given);
    ``image_hash`` sha256 of the image bytes; ``top_k`` JSON
    ``[{"class": ..., "score": ...}, ...]`` best first, with ``top1_class`` and
    ``top1_score`` copied out of it for fast reports; ``latency_ms``;
    ``source`` (the client); ``image_path`` (only when inputs are kept);
    ``status`` ``"ok"`` or ``"failed"``; ``error`` (why it failed);
    ``simulated`` (1 for demo traffic).

``evaluations`` (one row per manual judgement of a served prediction)
    ``id``, ``transaction_id`` (foreign key), ``time_us``, ``reviewer``,
    ``verdict`` in ``correct`` / ``wrong`` / ``unsure``, ``true_class`` (when
    known), ``simulated``; plus a copy of what was judged (``tx_time_us``,
    ``run_id``, ``model_version``, ``top1_class``, ``top1_score``,
    ``tx_simulated``; transactions never change), so accuracy reports read
    this small table alone instead of one random lookup into the big
    transactions table per evaluation. A transaction may be judged more than
    once; queries that need one verdict per transaction use the latest (by
    time, then id).

``model_versions``
    Every version label seen, with its run id and first / last time seen:
    instant version lists and a stable order (first seen) for colours.

``meta``
    ``schema_version`` and one ``migration.NNN`` row per migration applied.

Schema changes are migrations (:data:`MIGRATIONS`), applied in order inside
one write transaction when a log is opened by newer code; a log written by a
newer imgcls is refused rather than guessed at.

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

import datetime as _dt
import json
import math
import numbers
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.workspace import Workspace

__all__ = [
    "VERDICTS",
    "STATUSES",
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "Migration",
    "TransactionLog",
    "UnknownTransactionError",
    "to_utc_micros",
]

#: Allowed values of an evaluation's verdict.
VERDICTS = ("correct", "wrong", "unsure")
#: Allowed values of a transaction's status.
STATUSES = ("ok", "failed")

_US_PER_DAY = 86_400_000_000
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
# Epoch seconds above this (year 5138) are almost surely milliseconds.
_MAX_EPOCH_SECONDS = 1e11
_ID_CHUNK = 500  # ids per "IN (...)" query (SQLite's variable limit is >= 999)
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class UnknownTransactionError(LookupError, ValueError):
    """An evaluation names a transaction id the log does not hold.

    A ``ValueError`` too, so code that catches bad input as ``ValueError``
    keeps working; the HTTP endpoint answers it with 404.
    """


@dataclass(frozen=True)
class Migration:
    """One schema step: the SQL statements that move version-1 to version.

    Statements run one by one inside the caller's write transaction (never
    ``executescript``, which would commit half-way).
    """

    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "create transactions and evaluations",
        (
            """CREATE TABLE transactions (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                time_us INTEGER NOT NULL,
                run_id TEXT NOT NULL,
                model_version TEXT NOT NULL,
                image_hash TEXT,
                top_k TEXT NOT NULL DEFAULT '[]',
                top1_class TEXT,
                top1_score REAL,
                latency_ms REAL,
                source TEXT,
                image_path TEXT,
                status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed')),
                error TEXT,
                simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1))
            )""",
            "CREATE INDEX ix_transactions_time ON transactions (time_us)",
            """CREATE TABLE evaluations (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                transaction_id INTEGER NOT NULL REFERENCES transactions (id),
                time_us INTEGER NOT NULL,
                reviewer TEXT NOT NULL,
                verdict TEXT NOT NULL CHECK (verdict IN ('correct', 'wrong', 'unsure')),
                true_class TEXT,
                simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1))
            )""",
            "CREATE INDEX ix_evaluations_transaction ON evaluations (transaction_id)",
        ),
    ),
    Migration(
        2,
        "reporting: day + usage index, evaluations carry their prediction, model_versions",
        (
            "ALTER TABLE transactions ADD COLUMN day INTEGER NOT NULL DEFAULT 0",
            f"UPDATE transactions SET day = time_us / {_US_PER_DAY}",
            # Covering index: usage per day and version is an index-only scan.
            "CREATE INDEX ix_transactions_usage "
            "ON transactions (day, model_version, status, simulated)",
            # Each evaluation keeps a copy of what it judged (transactions never
            # change), so accuracy reports read evaluations alone, without a
            # random lookup into the big transactions table per evaluation.
            "ALTER TABLE evaluations ADD COLUMN tx_time_us INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE evaluations ADD COLUMN run_id TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE evaluations ADD COLUMN model_version TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE evaluations ADD COLUMN top1_class TEXT",
            "ALTER TABLE evaluations ADD COLUMN top1_score REAL",
            "ALTER TABLE evaluations ADD COLUMN tx_simulated INTEGER NOT NULL DEFAULT 0",
            """UPDATE evaluations
                  SET (tx_time_us, run_id, model_version, top1_class, top1_score, tx_simulated) =
                      (SELECT t.time_us, t.run_id, t.model_version, t.top1_class, t.top1_score,
                              t.simulated
                         FROM transactions t WHERE t.id = evaluations.transaction_id)""",
            """CREATE TABLE model_versions (
                model_version TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                first_seen_us INTEGER NOT NULL,
                last_seen_us INTEGER NOT NULL
            )""",
            """INSERT INTO model_versions (model_version, run_id, first_seen_us, last_seen_us)
               SELECT v.model_version,
                      (SELECT t.run_id FROM transactions t
                        WHERE t.model_version = v.model_version
                        ORDER BY t.time_us, t.id LIMIT 1),
                      v.first_us, v.last_us
                 FROM (SELECT model_version, MIN(time_us) AS first_us, MAX(time_us) AS last_us
                         FROM transactions GROUP BY model_version) AS v""",
        ),
    ),
)

#: The schema version this code writes (the last migration).
SCHEMA_VERSION = MIGRATIONS[-1].version

_TX_COLUMNS = {  # DataFrame column -> (SQL expression, kind)
    "id": ("t.id", "int"),
    "time": ("t.time_us", "time"),
    "run_id": ("t.run_id", "str"),
    "model_version": ("t.model_version", "str"),
    "image_hash": ("t.image_hash", "str"),
    "top_k": ("t.top_k", "json"),
    "top1_class": ("t.top1_class", "str"),
    "top1_score": ("t.top1_score", "float"),
    "latency_ms": ("t.latency_ms", "float"),
    "source": ("t.source", "str"),
    "image_path": ("t.image_path", "str"),
    "status": ("t.status", "str"),
    "error": ("t.error", "str"),
    "simulated": ("t.simulated", "bool"),
}
_EV_COLUMNS = {
    "id": ("e.id", "int"),
    "transaction_id": ("e.transaction_id", "int"),
    "time": ("e.time_us", "time"),
    "reviewer": ("e.reviewer", "str"),
    "verdict": ("e.verdict", "str"),
    "true_class": ("e.true_class", "str"),
    "simulated": ("e.simulated", "bool"),
}
# evaluated_transactions(): evaluation columns first, then the transaction's.
_JOIN_COLUMNS = {
    "evaluation_id": ("e.id", "int"),
    "transaction_id": ("e.transaction_id", "int"),
    "evaluation_time": ("e.time_us", "time"),
    "reviewer": ("e.reviewer", "str"),
    "verdict": ("e.verdict", "str"),
    "true_class": ("e.true_class", "str"),
    "evaluation_simulated": ("e.simulated", "bool"),
    **{k: v for k, v in _TX_COLUMNS.items() if k != "id"},
}
_EV_OWN = {"evaluation_id", "transaction_id", "evaluation_time", "reviewer", "verdict",
           "true_class", "evaluation_simulated"}
# The transaction columns each evaluation carries a copy of (no join needed).
_EV_COPIES = {
    "time": "e.tx_time_us",
    "run_id": "e.run_id",
    "model_version": "e.model_version",
    "top1_class": "e.top1_class",
    "top1_score": "e.top1_score",
    "simulated": "e.tx_simulated",
}
_TX_FIELDS = (
    "run_id", "top_k", "model_version", "image_hash", "latency_ms", "source",
    "image_path", "status", "error", "simulated", "time",
)
_TX_FIELD_SET = frozenset(_TX_FIELDS)
_EV_FIELDS = ("transaction_id", "verdict", "reviewer", "true_class", "time", "simulated")
_INSERT_TX = (
    "INSERT INTO transactions (time_us, day, run_id, model_version, image_hash, top_k, "
    "top1_class, top1_score, latency_ms, source, image_path, status, error, simulated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EV = (
    "INSERT INTO evaluations (transaction_id, time_us, reviewer, verdict, true_class, simulated, "
    "tx_time_us, run_id, model_version, top1_class, top1_score, tx_simulated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_VERSION = (
    "INSERT INTO model_versions (model_version, run_id, first_seen_us, last_seen_us) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (model_version) DO UPDATE SET "
    "run_id = CASE WHEN excluded.first_seen_us < first_seen_us THEN excluded.run_id ELSE run_id END, "
    "first_seen_us = MIN(first_seen_us, excluded.first_seen_us), "
    "last_seen_us = MAX(last_seen_us, excluded.last_seen_us)"
)


# --------------------------------------------------------------------------
# value normalisation
# --------------------------------------------------------------------------
def to_utc_micros(value: Any, *, name: str = "time") -> int:
    """UTC microseconds since 1970 for a time given in any common form.

    Args:
        value: A ``datetime`` / ``pandas.Timestamp`` (naive means UTC), a
            ``date`` (midnight UTC), an ISO 8601 string, a ``numpy.datetime64``,
            or epoch seconds (int or float).
        name: Argument name used in error messages.

    Returns:
        Integer microseconds since 1970-01-01 UTC.
    """
    if type(value) is float and 0 <= value <= _MAX_EPOCH_SECONDS:  # fast path: epoch seconds
        return int(round(value * 1_000_000))
    if value is None or value is pd.NaT or isinstance(value, bool):
        raise ValueError(
            f"`{name}` must be a datetime, ISO 8601 string or epoch seconds. Received: {name}={value!r}"
        )
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"`{name}` is not an ISO 8601 time. Received: {name}={value!r}. "
                "Use e.g. '2025-01-31T14:05:00Z'."
            ) from None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        us = (value - _EPOCH) // _dt.timedelta(microseconds=1)
    elif isinstance(value, _dt.date):
        us = (value - _EPOCH.date()).days * _US_PER_DAY
    elif isinstance(value, numbers.Real):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"`{name}` must be finite. Received: {name}={value!r}")
        if abs(seconds) > _MAX_EPOCH_SECONDS:
            raise ValueError(
                f"`{name}` looks like epoch milliseconds or microseconds, expected epoch "
                f"seconds. Received: {name}={value!r}. Divide by 1000 (or pass a datetime)."
            )
        us = int(round(seconds * 1_000_000))
    else:
        raise ValueError(
            f"`{name}` must be a datetime, ISO 8601 string or epoch seconds. "
            f"Received: {name}={value!r} ({type(value).__name__})"
        )
    us = int(us)
    if us < 0:
        raise ValueError(f"`{name}` must not be before 1970-01-01 UTC. Received: {name}={value!r}")
    return us


def _now_us() -> int:
    return to_utc_micros(_dt.datetime.now(_dt.timezone.utc))


def _opt_str(value: Any, name: str) -> str | None:
    if value is None or type(value) is str:
        return value
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be a string or None. Received: {name}={value!r}")
    return value


def _req_str(value: Any, name: str) -> str:
    if type(value) is str and value and not value[0].isspace():
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{name}` must be a non-empty string. Received: {name}={value!r}")
    return value


def _flag(value: Any, name: str) -> int:
    if value is False or value is True:
        return int(value)
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return int(bool(value))
    raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")


def _score(value: Any, name: str) -> float:
    if type(value) is float and 0.0 <= value <= 1.0:
        return round(value, 6)
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number in [0, 1]. Received: {value!r}") from None
    if not (0.0 <= score <= 1.0 + 1e-6):
        raise ValueError(
            f"`{name}` must be a probability in [0, 1] (softmax output, not a logit). "
            f"Received: {value!r}"
        )
    return round(min(score, 1.0), 6)


def _normalise_top_k(top_k: Any) -> list[tuple[str, float]]:
    """[(class, score), ...] best first, from a mapping, pairs, or dicts."""
    if top_k is None:
        return []
    if isinstance(top_k, str):
        try:
            top_k = json.loads(top_k)
        except json.JSONDecodeError:
            raise ValueError(f"`top_k` is a string but not JSON. Received: top_k={top_k!r}") from None
    items = list(top_k.items()) if isinstance(top_k, Mapping) else list(top_k)
    out = []
    for item in items:
        if type(item) is tuple and len(item) == 2 and type(item[0]) is str and item[0]:
            out.append((item[0], _score(item[1], "top_k score")))
            continue
        if isinstance(item, Mapping):
            if "class" not in item or "score" not in item:
                raise ValueError(
                    "Each `top_k` entry must have 'class' and 'score'. "
                    f"Received: {dict(item)!r}"
                )
            cls, score = item["class"], item["score"]
        else:
            try:
                cls, score = item
            except (TypeError, ValueError):
                raise ValueError(
                    "`top_k` must be {class: score}, [(class, score), ...] or "
                    f"[{{'class': ..., 'score': ...}}, ...]. Received entry: {item!r}"
                ) from None
        out.append((_req_str(str(cls), "top_k class"), _score(score, "top_k score")))
    out.sort(key=lambda pair: -pair[1])
    return out


def _transaction_row(record: Mapping[str, Any], now_us: int) -> tuple:
    unknown = record.keys() - _TX_FIELD_SET
    if unknown:
        raise ValueError(
            f"Unknown transaction field(s) {sorted(unknown)}. Expected some of {list(_TX_FIELDS)}."
        )
    run_id = _req_str(record.get("run_id"), "run_id")
    version = _opt_str(record.get("model_version"), "model_version") or run_id
    status = record.get("status", "ok")
    if status not in STATUSES:
        raise ValueError(f"`status` must be one of {STATUSES}. Received: status={status!r}")
    top_k = _normalise_top_k(record.get("top_k"))
    if status == "ok" and not top_k:
        raise ValueError(
            "A transaction with status='ok' needs a non-empty `top_k` (the prediction). "
            "Log a request that produced no prediction with status='failed' and an error."
        )
    latency = record.get("latency_ms")
    if latency is not None:
        latency = float(latency)
        if not math.isfinite(latency) or latency < 0:
            raise ValueError(f"`latency_ms` must be a number >= 0. Received: latency_ms={latency!r}")
    time = record.get("time")
    time_us = now_us if time is None else to_utc_micros(time)
    return (
        time_us,
        time_us // _US_PER_DAY,
        run_id,
        version,
        _opt_str(record.get("image_hash"), "image_hash"),
        _JSON.encode([{"class": c, "score": s} for c, s in top_k]),
        top_k[0][0] if top_k else None,
        top_k[0][1] if top_k else None,
        latency,
        _opt_str(record.get("source"), "source"),
        _opt_str(record.get("image_path"), "image_path"),
        status,
        _opt_str(record.get("error"), "error"),
        _flag(record.get("simulated", False), "simulated"),
    )


def _verdict(value: Any) -> str:
    verdict = value.strip().lower() if isinstance(value, str) else value
    if verdict not in VERDICTS:
        raise ValueError(f"`verdict` must be one of {VERDICTS}. Received: verdict={value!r}")
    return verdict


def _transaction_id(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"`transaction_id` must be an int (the id log_transaction returned). "
            f"Received: transaction_id={value!r}"
        )
    return int(value)


def _records(records: Any, what: str) -> list[Mapping[str, Any]]:
    if isinstance(records, pd.DataFrame):
        return records.to_dict("records")
    if isinstance(records, Mapping):
        raise ValueError(f"`records` must be a list of {what} dicts, not one dict. Wrap it in a list.")
    out = list(records)
    for rec in out:
        if not isinstance(rec, Mapping):
            raise ValueError(f"Each {what} record must be a dict. Received: {rec!r}")
    return out


def _frame(rows: list[tuple], spec: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """A DataFrame with stable dtypes from SQL rows and (name, kind) pairs."""
    columns = list(zip(*rows)) if rows else [() for _ in spec]
    data = {}
    for (name, kind), col in zip(spec, columns):
        if kind == "int":
            data[name] = np.asarray(col, dtype=np.int64)
        elif kind == "time":
            data[name] = pd.to_datetime(np.asarray(col, dtype=np.int64), unit="us", utc=True)
        elif kind == "float":
            data[name] = np.asarray(col, dtype=np.float64)
        elif kind == "bool":
            data[name] = np.asarray(col, dtype=bool)
        elif kind == "json":
            data[name] = pd.Series([json.loads(v) for v in col], dtype=object)
        else:
            data[name] = pd.Series(col, dtype="str")
    return pd.DataFrame(data)


def _select(columns: Sequence[str] | None, available: Mapping[str, tuple[str, str]]):
    names = list(available) if columns is None else list(columns)
    unknown = [c for c in names if c not in available]
    if unknown or not names:
        raise ValueError(
            f"Unknown column(s) {unknown} requested. Available: {list(available)}."
        )
    return names, ", ".join(available[c][0] for c in names), [(c, available[c][1]) for c in names]


def _resolve_path(target: Any) -> Path:
    if isinstance(target, Workspace):
        return target.serving_db
    if isinstance(target, (str, os.PathLike)):
        path = Path(os.fspath(target)).expanduser()
        # A directory is a workspace root: its log is serving.sqlite inside.
        return Workspace(path).serving_db if path.is_dir() else path
    raise ValueError(
        "`target` must be a Workspace, a workspace folder or a .sqlite file path. "
        f"Received: {target!r}"
    )


# --------------------------------------------------------------------------
# the log
# --------------------------------------------------------------------------
class TransactionLog:
    """The transaction and manual-evaluation store of one workspace.

    Args:
        target: A :class:`~imgcls.core.Workspace` (its ``serving.sqlite``),
            a workspace folder, or the path of a SQLite file.
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
        if sync not in ("NORMAL", "FULL"):
            raise ValueError(
                f"`synchronous` must be 'NORMAL' or 'FULL'. Received: synchronous={synchronous!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout < 0:
            raise ValueError(f"`timeout` must be a number of seconds >= 0. Received: timeout={timeout!r}")
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
            str(self.path), timeout=float(timeout), isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OSError(
                    f"Could not switch {str(self.path)!r} to WAL mode (got {mode!r}); the "
                    "file system may not support it. Keep the workspace on a local disk."
                )
            conn.execute(f"PRAGMA synchronous = {sync}")
            conn.execute("PRAGMA foreign_keys = ON")
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
        return self._conn is None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError(f"This TransactionLog ({str(self.path)!r}) is closed. Open a new one.")
        return self._conn

    def _write(self, fn):
        """Run ``fn(conn)`` in one immediate write transaction; commit before returning."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db().execute(sql, params).fetchall()

    # --- schema ------------------------------------------------------------
    def _stored_version(self, conn: sqlite3.Connection) -> int:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            foreign = tables - {"sqlite_sequence"}
            if foreign:
                raise ValueError(
                    f"{str(self.path)!r} is a SQLite file but not an imgcls transaction log "
                    f"(tables {sorted(foreign)}, no 'meta'). Point TransactionLog at the "
                    "workspace (serving.sqlite) or a new file."
                )
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
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
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                for migration in MIGRATIONS[current:]:
                    for statement in migration.statements:
                        conn.execute(statement)
                    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
                    conn.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        (f"migration.{migration.version:03d}",
                         json.dumps({"name": migration.name, "applied": stamp})),
                    )
                    conn.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(migration.version),),
                    )

            self._write(apply)

    @property
    def schema_version(self) -> int:
        """The schema version stored in the file (always :data:`SCHEMA_VERSION` once open)."""
        rows = self._query("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0][0])

    def migrations(self) -> pd.DataFrame:
        """Migrations applied to this file: version, name, applied (UTC ISO time)."""
        rows = self._query("SELECT key, value FROM meta WHERE key LIKE 'migration.%' ORDER BY key")
        records = []
        for key, value in rows:
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
        recs = _records(records, "transaction")
        now = _now_us()
        rows = []
        for i, rec in enumerate(recs):
            try:
                rows.append(_transaction_row(rec, now))
            except ValueError as err:
                if len(recs) == 1:
                    raise
                raise ValueError(f"Transaction record {i}: {err}") from None
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
            conn.executemany(_INSERT_TX, rows)
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            conn.executemany(_UPSERT_VERSION, [(v, *seen) for v, seen in versions.items()])
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
        """
        recs = _records(records, "evaluation")
        now = _now_us()
        rows = []
        for i, rec in enumerate(recs):
            try:
                unknown = set(rec) - set(_EV_FIELDS)
                if unknown:
                    raise ValueError(
                        f"Unknown evaluation field(s) {sorted(unknown)}. Expected some of {list(_EV_FIELDS)}."
                    )
                time = rec.get("time")
                rows.append((
                    _transaction_id(rec.get("transaction_id")),
                    now if time is None else to_utc_micros(time),
                    _req_str(rec.get("reviewer"), "reviewer"),
                    _verdict(rec.get("verdict")),
                    _opt_str(rec.get("true_class"), "true_class"),
                    _flag(rec.get("simulated", False), "simulated"),
                ))
            except ValueError as err:
                if len(recs) == 1:
                    raise
                raise ValueError(f"Evaluation record {i}: {err}") from None
        if not rows:
            return []

        def insert(conn: sqlite3.Connection) -> list[int]:
            ids = sorted({row[0] for row in rows})
            found: dict[int, tuple] = {}
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start:start + _ID_CHUNK]
                marks = ",".join("?" * len(chunk))
                for tid, *rest in conn.execute(
                    "SELECT id, status, top1_class, time_us, run_id, model_version, top1_score, "
                    f"simulated FROM transactions WHERE id IN ({marks})", chunk
                ):
                    found[tid] = tuple(rest)
            for i, (tid, _, _, verdict, true_class, _) in enumerate(rows):
                at = f"Evaluation record {i}: " if len(rows) > 1 else ""
                if tid not in found:
                    raise UnknownTransactionError(
                        f"{at}No transaction with id {tid} in "
                        f"{str(self.path)!r}. Use an id returned by log_transaction "
                        "(see TransactionLog.transactions())."
                    )
                status, top1 = found[tid][:2]
                if status != "ok":
                    raise ValueError(
                        f"{at}Transaction {tid} has status {status!r} and "
                        "no prediction to judge. Only status='ok' transactions can be evaluated."
                    )
                if true_class is not None and verdict == "correct" and true_class != top1:
                    raise ValueError(
                        f"{at}Verdict 'correct' but true_class={true_class!r} "
                        f"differs from the prediction {top1!r}. Use verdict 'wrong', or omit true_class."
                    )
                if true_class is not None and verdict == "wrong" and true_class == top1:
                    raise ValueError(
                        f"{at}Verdict 'wrong' but true_class={true_class!r} is "
                        "the predicted class. Use verdict 'correct', or give the real class."
                    )
            conn.executemany(_INSERT_EV, [
                (*row, tx_time, run_id, version, found[row[0]][1], score, tx_sim)
                for row in rows
                for (_, _, tx_time, run_id, version, score, tx_sim) in (found[row[0]],)
            ])
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            return list(range(last - len(rows) + 1, last + 1))

        return self._write(insert)

    # --- reading -----------------------------------------------------------
    @staticmethod
    def _time_filter(column: str, since: Any, until: Any) -> tuple[list[str], list[Any]]:
        where, params = [], []
        if since is not None:
            where.append(f"{column} >= ?")
            params.append(to_utc_micros(since, name="since"))
        if until is not None:
            where.append(f"{column} < ?")
            params.append(to_utc_micros(until, name="until"))
        return where, params

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
        """
        names, select, spec = _select(columns, _TX_COLUMNS)
        where, params = self._time_filter("t.time_us", since, until)
        if run_id is not None:
            where.append("t.run_id = ?")
            params.append(run_id)
        if model_version is not None:
            where.append("t.model_version = ?")
            params.append(model_version)
        if not include_simulated:
            where.append("t.simulated = 0")
        sql = f"SELECT {select} FROM transactions t"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t.time_us, t.id"
        return _frame(self._query(sql, params), spec)

    def evaluations(
        self, *, since: Any = None, until: Any = None, include_simulated: bool = True
    ) -> pd.DataFrame:
        """Every evaluation judged in ``[since, until)``, oldest first.

        Columns: id, transaction_id, time (UTC), reviewer, verdict, true_class, simulated.
        """
        names, select, spec = _select(None, _EV_COLUMNS)
        where, params = self._time_filter("e.time_us", since, until)
        if not include_simulated:
            where.append("e.simulated = 0")
        sql = f"SELECT {select} FROM evaluations e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY e.time_us, e.id"
        return _frame(self._query(sql, params), spec)

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
        names, _, spec = _select(columns, _JOIN_COLUMNS)
        # Evaluations carry copies of the columns reports need: join only when
        # a column is asked for that they do not carry.
        join = any(c not in _EV_OWN and c not in _EV_COPIES for c in names)
        exprs = [_JOIN_COLUMNS[c][0] if join or c not in _EV_COPIES else _EV_COPIES[c] for c in names]
        # hidden trailing keys: transaction id, evaluation time and id (order, latest)
        sql = f"SELECT {', '.join(exprs)}, e.transaction_id, e.time_us, e.id FROM evaluations e"
        if join:
            sql += " JOIN transactions t ON t.id = e.transaction_id"
        where, params = self._time_filter("e.tx_time_us", since, until)
        if not include_simulated:
            where.append("e.simulated = 0 AND e.tx_simulated = 0")
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._query(sql, params)
        keys = np.array([r[-3:] for r in rows], dtype=np.int64).reshape(-1, 3)
        order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
        if latest_only and len(order):
            tids = keys[order, 0]
            last = np.append(tids[1:] != tids[:-1], True)  # last evaluation of each transaction
            order = order[last]
        return _frame([rows[i][:-3] for i in order.tolist()], spec)

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
        where, params = [], []
        if first_day is not None:
            where.append("day >= ?")
            params.append(to_utc_micros(first_day, name="first_day") // _US_PER_DAY)
        if last_day is not None:
            where.append("day <= ?")
            params.append(to_utc_micros(last_day, name="last_day") // _US_PER_DAY)
        if not include_simulated:
            where.append("simulated = 0")
        sql = (
            "SELECT day, model_version, COUNT(*), SUM(status = 'ok') "
            "FROM transactions INDEXED BY ix_transactions_usage"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " GROUP BY day, model_version ORDER BY day, model_version"
        rows = self._query(sql, params)
        df = _frame(rows, [("day", "int"), ("model_version", "str"), ("requests", "int"), ("ok", "int")])
        df["day"] = pd.to_datetime(df["day"].to_numpy() * _US_PER_DAY, unit="us", utc=True)
        df["failed"] = df["requests"] - df["ok"]
        return df

    def model_versions(self) -> pd.DataFrame:
        """Every version label logged: model_version, run_id, first_seen, last_seen (UTC).

        Ordered by first seen (then label): the stable order reports use for colours.
        """
        rows = self._query(
            "SELECT model_version, run_id, first_seen_us, last_seen_us FROM model_versions "
            "ORDER BY first_seen_us, model_version"
        )
        return _frame(rows, [("model_version", "str"), ("run_id", "str"),
                             ("first_seen", "time"), ("last_seen", "time")])

    def count(self, table: str = "transactions") -> int:
        """Number of rows in ``"transactions"`` or ``"evaluations"``."""
        if table not in ("transactions", "evaluations"):
            raise ValueError(
                f"`table` must be 'transactions' or 'evaluations'. Received: table={table!r}"
            )
        return int(self._query(f"SELECT COUNT(*) FROM {table}")[0][0])
