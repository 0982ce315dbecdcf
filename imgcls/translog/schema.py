"""The log's schema, its migrations and every SQL statement it runs (written in SQLite's spelling).

All SQL of :mod:`imgcls.translog` lives in this file: the tables, the
migrations between schema versions, the statements that write, and the
builders of the queries that read. :class:`~imgcls.translog.TransactionLog`
only executes them; on PostgreSQL :mod:`imgcls.translog.dialects` rewrites
them by a few fixed rules (placeholders, DDL types, index hints), so every
migration here runs on both engines: write new ones in the same spelling.

``transactions`` (one row per request served)
    ``id`` INTEGER, assigned by SQLite (``AUTOINCREMENT``: increasing, never
    reused, compact and fast to join on; a client gets it back as the
    transaction id). ``time_us`` INTEGER, UTC microseconds since 1970-01-01
    (the DataFrames show it as a ``time`` column of UTC timestamps).
    ``day`` INTEGER, the UTC day number ``time_us // 86_400_000_000``, kept by
    the log for fast reports. ``run_id`` the run that served the request;
    ``model_version`` a human label ("v3"; the run id when none is given);
    ``image_hash`` sha256 of the image bytes; ``top_k`` JSON
    ``[{"class": ..., "score": ...}, ...]`` best first, with ``top1_class`` and
    ``top1_score`` copied out of it for fast reports; ``latency_ms``;
    ``source`` (the client); ``image_path`` (only when inputs are kept);
    ``status`` ``"ok"`` or ``"failed"``; ``error`` (why it failed);
    ``simulated`` (1 for demo traffic). Since version 3 (every request is a
    row): ``endpoint`` (``predict``, ``evaluations``, ``model``, ... the
    request a failed row stands for; a served prediction is ``predict``),
    ``http_status`` (the status answered; NULL for calls from Python),
    ``failure`` (the kind of a failure: ``too_large``, ``validation``,
    ``unauthorized``, ``rate_limited``, ``overloaded``, ...; NULL when ok),
    ``raw_top1_score`` (the top-1 score before calibration) and
    ``temperature`` (the temperature applied, NULL for none): ``top_k`` and
    ``top1_score`` hold the calibrated scores the client got. Since version 4:
    ``runtime``, what ran the model, ``"<engine>-<precision>"`` such as
    ``"keras-f32"`` or ``"openvino-int8"`` (NULL for rows logged before).

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["VERDICTS", "STATUSES", "SCHEMA_VERSION", "MIGRATIONS", "Migration", "US_PER_DAY",
           "MAX_REVIEWER_CHARS", "MAX_NOTE_CHARS", "MAX_ERROR_CHARS", "ENDPOINTS"]

#: Allowed values of an evaluation's verdict.
VERDICTS = ("correct", "wrong", "unsure")
#: Allowed values of a transaction's status.
STATUSES = ("ok", "failed")
#: Microseconds per UTC day: ``day = time_us // US_PER_DAY``.
US_PER_DAY = 86_400_000_000
#: Ids per ``IN (...)`` query (SQLite's variable limit is >= 999).
ID_CHUNK = 500
#: Longest reviewer name an evaluation may carry (characters).
MAX_REVIEWER_CHARS = 100
#: Longest note an evaluation may carry (characters).
MAX_NOTE_CHARS = 2000
#: Longest error text stored with a failed request (longer text is cut).
MAX_ERROR_CHARS = 2000
#: What a row's ``endpoint`` may name (anything else is stored as ``other``).
ENDPOINTS = ("predict", "evaluations", "model", "health", "docs", "openapi", "other")
# The failure kinds written before version 3 (as the "kind: reason" prefix of error).
_OLD_FAILURES = ("too_large", "no_file", "not_an_image", "truncated", "corrupt", "empty",
                 "unsupported_format", "io_error", "permission", "missing", "not_a_file",
                 "directory", "dangling_symlink", "outside_root", "inference")


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
            f"UPDATE transactions SET day = time_us / {US_PER_DAY}",
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
    Migration(
        3,
        "every request a row, calibrated scores, verdicts by server time, purges",
        (
            # Portable SQL (SQLite and PostgreSQL): ADD COLUMN, CASE / LIKE, a partial index.
            "ALTER TABLE transactions ADD COLUMN endpoint TEXT NOT NULL DEFAULT 'predict'",
            "ALTER TABLE transactions ADD COLUMN http_status INTEGER",
            "ALTER TABLE transactions ADD COLUMN failure TEXT",
            "ALTER TABLE transactions ADD COLUMN raw_top1_score REAL",
            "ALTER TABLE transactions ADD COLUMN temperature REAL",
            "UPDATE transactions SET raw_top1_score = top1_score",
            "UPDATE transactions SET failure = CASE "
            + " ".join(f"WHEN error LIKE '{kind}:%' THEN '{kind}'" for kind in _OLD_FAILURES)
            + " ELSE 'error' END WHERE status = 'failed'",
            "CREATE INDEX ix_transactions_failures "
            "ON transactions (day, endpoint, failure, http_status, simulated) WHERE status = 'failed'",
            "ALTER TABLE evaluations ADD COLUMN received_us INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE evaluations ADD COLUMN new_class INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE evaluations ADD COLUMN note TEXT",
            "UPDATE evaluations SET received_us = time_us",  # before v3 the latest by time counted
            """CREATE TABLE purges (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                time_us INTEGER NOT NULL,
                before_us INTEGER NOT NULL,
                what TEXT NOT NULL,
                transactions INTEGER NOT NULL DEFAULT 0,
                evaluations INTEGER NOT NULL DEFAULT 0,
                inputs INTEGER NOT NULL DEFAULT 0
            )""",
        ),
    ),
    Migration(4, "runtime: what ran the model (keras-f32, openvino-int8, ...)",
              ("ALTER TABLE transactions ADD COLUMN runtime TEXT",)),
)

#: The schema version this code writes (the last migration).
SCHEMA_VERSION = MIGRATIONS[-1].version

# --------------------------------------------------------------------------
# DataFrame columns: name -> (SQL expression, kind); kinds are typed by
# imgcls.translog.values.frame
# --------------------------------------------------------------------------
TX_COLUMNS = {
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
    "endpoint": ("t.endpoint", "str"),
    "http_status": ("t.http_status", "optint"),
    "failure": ("t.failure", "str"),
    "raw_top1_score": ("t.raw_top1_score", "float"),
    "temperature": ("t.temperature", "float"),
    "runtime": ("t.runtime", "str"),
}
EV_COLUMNS = {
    "id": ("e.id", "int"),
    "transaction_id": ("e.transaction_id", "int"),
    "time": ("e.time_us", "time"),
    "reviewer": ("e.reviewer", "str"),
    "verdict": ("e.verdict", "str"),
    "true_class": ("e.true_class", "str"),
    "simulated": ("e.simulated", "bool"),
    "received": ("e.received_us", "time"),
    "new_class": ("e.new_class", "bool"),
    "note": ("e.note", "str"),
}
# evaluated_transactions(): evaluation columns first, then the transaction's.
JOIN_COLUMNS = {
    "evaluation_id": ("e.id", "int"),
    "transaction_id": ("e.transaction_id", "int"),
    "evaluation_time": ("e.time_us", "time"),
    "reviewer": ("e.reviewer", "str"),
    "verdict": ("e.verdict", "str"),
    "true_class": ("e.true_class", "str"),
    "evaluation_simulated": ("e.simulated", "bool"),
    "evaluation_received": ("e.received_us", "time"),
    "new_class": ("e.new_class", "bool"),
    "note": ("e.note", "str"),
    **{k: v for k, v in TX_COLUMNS.items() if k != "id"},
}
EV_OWN = frozenset({"evaluation_id", "transaction_id", "evaluation_time", "reviewer", "verdict",
                    "true_class", "evaluation_simulated", "evaluation_received", "new_class", "note"})
# The transaction columns each evaluation carries a copy of (no join needed).
EV_COPIES = {
    "time": "e.tx_time_us",
    "run_id": "e.run_id",
    "model_version": "e.model_version",
    "top1_class": "e.top1_class",
    "top1_score": "e.top1_score",
    "simulated": "e.tx_simulated",
}
USAGE_COLUMNS = (("day", "int"), ("model_version", "str"), ("requests", "int"), ("ok", "int"))
VERSION_COLUMNS = (("model_version", "str"), ("run_id", "str"),
                   ("first_seen", "time"), ("last_seen", "time"))

# --------------------------------------------------------------------------
# bookkeeping (connections and transactions: imgcls.translog.dialects)
# --------------------------------------------------------------------------
CREATE_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
SELECT_SCHEMA_VERSION = "SELECT value FROM meta WHERE key = 'schema_version'"
SET_META = ("INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
SELECT_MIGRATIONS = "SELECT key, value FROM meta WHERE key LIKE 'migration.%' ORDER BY key"
#: Every table a log holds, with the columns that order its rows (copies and checksums).
LOG_TABLES = (("transactions", "id"), ("evaluations", "id"), ("model_versions", "model_version"),
              ("purges", "id"))


def migration_key(version: int) -> str:
    """The ``meta`` key recording that migration ``version`` was applied."""
    return f"migration.{version:03d}"


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------
#: One transaction row, in the order of :func:`imgcls.translog.values.transaction_row`.
INSERT_TX = (
    "INSERT INTO transactions (time_us, day, run_id, model_version, image_hash, top_k, "
    "top1_class, top1_score, latency_ms, source, image_path, status, error, simulated, "
    "endpoint, http_status, failure, raw_top1_score, temperature, runtime) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: One evaluation row (:func:`imgcls.translog.values.evaluation_row`) plus the
#: copy of what it judged (:func:`judged_transactions`).
INSERT_EV = (
    "INSERT INTO evaluations (transaction_id, time_us, reviewer, verdict, true_class, simulated, "
    "received_us, new_class, note, "
    "tx_time_us, run_id, model_version, top1_class, top1_score, tx_simulated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: (model_version, run_id, first_us, last_us): widens the version's time span.
UPSERT_VERSION = (
    "INSERT INTO model_versions (model_version, run_id, first_seen_us, last_seen_us) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (model_version) DO UPDATE SET "
    "run_id = CASE WHEN excluded.first_seen_us < model_versions.first_seen_us "
    "THEN excluded.run_id ELSE model_versions.run_id END, "
    "first_seen_us = CASE WHEN excluded.first_seen_us < model_versions.first_seen_us "
    "THEN excluded.first_seen_us ELSE model_versions.first_seen_us END, "
    "last_seen_us = CASE WHEN excluded.last_seen_us > model_versions.last_seen_us "
    "THEN excluded.last_seen_us ELSE model_versions.last_seen_us END"
)


def judged_transactions(n_ids: int) -> str:
    """What an evaluation copies from each of ``n_ids`` transactions (by id).

    Rows: id, status, top1_class, time_us, run_id, model_version, top1_score, simulated.
    """
    marks = ",".join("?" * n_ids)
    return ("SELECT id, status, top1_class, time_us, run_id, model_version, top1_score, "
            f"simulated FROM transactions WHERE id IN ({marks})")


# --------------------------------------------------------------------------
# reading: query builders return (sql, params, [(column, kind), ...])
# --------------------------------------------------------------------------
Spec = list[tuple[str, str]]


def select_columns(columns: Sequence[str] | None,
                   available: Mapping[str, tuple[str, str]]) -> tuple[list[str], str, Spec]:
    """(names, SQL select list, spec) for the requested columns (default: all)."""
    names = list(available) if columns is None else list(columns)
    unknown = [c for c in names if c not in available]
    if unknown or not names:
        raise ValueError(
            f"Unknown column(s) {unknown} requested. Available: {list(available)}."
        )
    return names, ", ".join(available[c][0] for c in names), [(c, available[c][1]) for c in names]


def _time_range(column: str, since_us: int | None, until_us: int | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if since_us is not None:
        where.append(f"{column} >= ?")
        params.append(since_us)
    if until_us is not None:
        where.append(f"{column} < ?")
        params.append(until_us)
    return where, params


def _where(where: list[str]) -> str:
    return " WHERE " + " AND ".join(where) if where else ""


def _day_filters(where: list[str], first_day: int | None, last_day: int | None,
                 include_simulated: bool) -> list[Any]:
    """Append the day-range and demo-traffic conditions of the per-day queries; returns their params."""
    params: list[Any] = []
    if first_day is not None:
        where.append("day >= ?")
        params.append(first_day)
    if last_day is not None:
        where.append("day <= ?")
        params.append(last_day)
    if not include_simulated:
        where.append("simulated = 0")
    return params


def transactions_query(columns: Sequence[str] | None, *, since_us: int | None, until_us: int | None,
                       run_id: str | None, model_version: str | None,
                       include_simulated: bool) -> tuple[str, list[Any], Spec]:
    """Transactions in ``[since, until)``, oldest first (time, then id)."""
    _, select, spec = select_columns(columns, TX_COLUMNS)
    where, params = _time_range("t.time_us", since_us, until_us)
    if run_id is not None:
        where.append("t.run_id = ?")
        params.append(run_id)
    if model_version is not None:
        where.append("t.model_version = ?")
        params.append(model_version)
    if not include_simulated:
        where.append("t.simulated = 0")
    sql = f"SELECT {select} FROM transactions t{_where(where)} ORDER BY t.time_us, t.id"
    return sql, params, spec


def evaluations_query(*, since_us: int | None, until_us: int | None,
                      include_simulated: bool) -> tuple[str, list[Any], Spec]:
    """Evaluations judged in ``[since, until)``, oldest first (time, then id)."""
    _, select, spec = select_columns(None, EV_COLUMNS)
    where, params = _time_range("e.time_us", since_us, until_us)
    if not include_simulated:
        where.append("e.simulated = 0")
    sql = f"SELECT {select} FROM evaluations e{_where(where)} ORDER BY e.time_us, e.id"
    return sql, params, spec


def evaluated_query(columns: Sequence[str] | None, *, since_us: int | None, until_us: int | None,
                    include_simulated: bool) -> tuple[str, list[Any], Spec]:
    """Evaluations with the transactions they judge, filtered on the transaction time.

    Every row ends with three hidden keys (transaction id, time received,
    evaluation id) for ordering and picking the current verdict; the rows are
    not ordered. Evaluations carry copies of the columns reports need: the
    transactions table is joined only when a column is asked for that they
    do not carry.
    """
    names, _, spec = select_columns(columns, JOIN_COLUMNS)
    join = any(c not in EV_OWN and c not in EV_COPIES for c in names)
    exprs = [JOIN_COLUMNS[c][0] if join or c not in EV_COPIES else EV_COPIES[c] for c in names]
    sql = f"SELECT {', '.join(exprs)}, e.transaction_id, e.received_us, e.id FROM evaluations e"
    if join:
        sql += " JOIN transactions t ON t.id = e.transaction_id"
    where, params = _time_range("e.tx_time_us", since_us, until_us)
    if not include_simulated:
        where.append("e.simulated = 0 AND e.tx_simulated = 0")
    return sql + _where(where), params, spec


def usage_query(*, first_day: int | None, last_day: int | None,
                include_simulated: bool) -> tuple[str, list[Any], Spec]:
    """Requests and ok requests per day number and version (an index-only scan)."""
    where: list[str] = []
    params = _day_filters(where, first_day, last_day, include_simulated)
    sql = (
        "SELECT day, model_version, COUNT(*), SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) "
        "FROM transactions INDEXED BY ix_transactions_usage"
        f"{_where(where)} GROUP BY day, model_version ORDER BY day, model_version"
    )
    return sql, params, list(USAGE_COLUMNS)


#: Every version label, ordered by first seen (then label).
SELECT_VERSIONS = (
    "SELECT model_version, run_id, first_seen_us, last_seen_us FROM model_versions "
    "ORDER BY first_seen_us, model_version"
)
#: The tables :meth:`TransactionLog.count` counts.
COUNTED_TABLES = ("transactions", "evaluations")
FAILURE_COLUMNS = (("day", "int"), ("endpoint", "str"), ("failure", "str"), ("http_status", "optint"),
                   ("requests", "int"))


def failures_query(*, first_day: int | None, last_day: int | None,
                   include_simulated: bool) -> tuple[str, list[Any], Spec]:
    """Failed requests per day, endpoint, failure kind and HTTP status (the partial index)."""
    where = ["status = 'failed'"]
    params = _day_filters(where, first_day, last_day, include_simulated)
    sql = (
        "SELECT day, endpoint, COALESCE(failure, 'error'), http_status, COUNT(*) FROM transactions"
        f"{_where(where)} GROUP BY day, endpoint, COALESCE(failure, 'error'), http_status "
        "ORDER BY day, endpoint, COALESCE(failure, 'error'), http_status"
    )
    return sql, params, list(FAILURE_COLUMNS)


#: What an evaluation needs to know of one transaction: id, status, top1_class, run_id.
SELECT_TX_BRIEF = "SELECT id, status, top1_class, run_id, model_version FROM transactions WHERE id = ?"

# --------------------------------------------------------------------------
# retention (imgcls.translog.retention)
# --------------------------------------------------------------------------
COUNT_TX_BEFORE = "SELECT COUNT(*) FROM transactions WHERE time_us < ?"
COUNT_EV_BEFORE = ("SELECT COUNT(*) FROM evaluations WHERE transaction_id IN "
                   "(SELECT id FROM transactions WHERE time_us < ?)")
DELETE_EV_BEFORE = ("DELETE FROM evaluations WHERE transaction_id IN "
                    "(SELECT id FROM transactions WHERE time_us < ?)")
DELETE_TX_BEFORE = "DELETE FROM transactions WHERE time_us < ?"
INSERT_PURGE = ("INSERT INTO purges (time_us, before_us, what, transactions, evaluations, inputs) "
                "VALUES (?, ?, ?, ?, ?, ?)")
PURGE_COLUMNS = (("id", "int"), ("time", "time"), ("before", "time"), ("what", "str"),
                 ("transactions", "int"), ("evaluations", "int"), ("inputs", "int"))
SELECT_PURGES = ("SELECT id, time_us, before_us, what, transactions, evaluations, inputs "
                 "FROM purges ORDER BY id")


def count_query(table: str) -> str:
    """Number of rows of one of :data:`COUNTED_TABLES` (checked by the caller)."""
    return f"SELECT COUNT(*) FROM {table}"
