"""imgcls.translog schema migrations: a version-1 log, written as an old imgcls left it, is migrated.

On both engines (conftest ``log_url``: SQLite and a real PostgreSQL server), and from every
schema version to the current one (so each migration, including later ones, runs on both).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from postgres_server import execute

from imgcls.translog import MIGRATIONS, SCHEMA_VERSION, TransactionLog


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


V1_SCHEMA = [  # schema version 1, written out by hand as an old imgcls would have left it
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT INTO meta VALUES ('schema_version', '1')",
    """INSERT INTO meta VALUES ('migration.001',
       '{"name": "create transactions and evaluations", "applied": "2024-12-01T00:00:00+00:00"}')""",
    """CREATE TABLE transactions (id INTEGER PRIMARY KEY AUTOINCREMENT, time_us INTEGER NOT NULL,
       run_id TEXT NOT NULL, model_version TEXT NOT NULL, image_hash TEXT,
       top_k TEXT NOT NULL DEFAULT '[]', top1_class TEXT, top1_score REAL, latency_ms REAL,
       source TEXT, image_path TEXT, status TEXT NOT NULL DEFAULT 'ok', error TEXT,
       simulated INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX ix_transactions_time ON transactions (time_us)",
    """CREATE TABLE evaluations (id INTEGER PRIMARY KEY AUTOINCREMENT,
       transaction_id INTEGER NOT NULL REFERENCES transactions (id), time_us INTEGER NOT NULL,
       reviewer TEXT NOT NULL, verdict TEXT NOT NULL, true_class TEXT,
       simulated INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX ix_evaluations_transaction ON evaluations (transaction_id)",
]


def test_migrates_a_version_1_log(log_url):
    path = log_url
    day = 86_400 * 10**6
    execute(path, V1_SCHEMA)
    for row in [(20094 * day + 5, "run-a", "v1", '[{"class":"zebra","score":0.9}]', "zebra", 0.9),
                (20095 * day + 7, "run-b", "v2", '[{"class":"lion","score":0.7}]', "lion", 0.7),
                (20094 * day + 9, "run-a", "v1", '[{"class":"lion","score":0.6}]', "lion", 0.6)]:
        execute(path, "INSERT INTO transactions (time_us, run_id, model_version, top_k, top1_class, top1_score) "
                      "VALUES (?, ?, ?, ?, ?, ?)", row)
    execute(path, "INSERT INTO evaluations (transaction_id, time_us, reviewer, verdict) "
                  "VALUES (2, ?, 'ana', 'wrong')", (20096 * day,))
    with TransactionLog(path) as log:
        assert log.schema_version == SCHEMA_VERSION
        applied = log.migrations()
        assert applied["version"].tolist() == [m.version for m in MIGRATIONS]
        assert applied["name"].iloc[1] == MIGRATIONS[1].name
        assert applied["applied"].iloc[0] == "2024-12-01T00:00:00+00:00"  # kept
        # the old rows are readable through the new schema
        assert log.usage_by_day()["requests"].tolist() == [2, 1]
        assert log.usage_by_day()["day"].tolist() == [ts("2025-01-06"), ts("2025-01-07")]
        versions = log.model_versions()
        assert versions[["model_version", "run_id"]].values.tolist() == [["v1", "run-a"], ["v2", "run-b"]]
        assert versions["last_seen"].iloc[0] == ts("2025-01-06") + pd.Timedelta(microseconds=9)
        light = log.evaluated_transactions(columns=["transaction_id", "model_version", "top1_class",
                                                    "top1_score", "run_id", "time", "verdict"])
        assert light.iloc[0].to_dict() == {
            "transaction_id": 2, "model_version": "v2", "top1_class": "lion", "top1_score": 0.7,
            "run_id": "run-b", "time": ts("2025-01-07") + pd.Timedelta(microseconds=7), "verdict": "wrong"}
        # and the new code keeps writing to it
        assert log.log_transaction("run-b", {"lion": 0.5}, model_version="v2", time="2025-01-07") == 4
    with TransactionLog(path) as again:  # already current: nothing to do
        assert again.migrations()["applied"].tolist() == applied["applied"].tolist()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_every_migration_runs_from_every_version(log_url, version):
    """A log left at ``version`` by an older imgcls (its schema built from MIGRATIONS[:version]) migrates."""
    statements = ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"]
    for m in MIGRATIONS[:version]:
        statements += list(m.statements)
        info = json.dumps({"name": m.name, "applied": "2025-01-01T00:00:00+00:00"})
        statements.append(f"INSERT INTO meta VALUES ('migration.{m.version:03d}', '{info}')")
    statements.append(f"INSERT INTO meta VALUES ('schema_version', '{version}')")
    execute(log_url, statements)
    execute(log_url, "INSERT INTO transactions (time_us, run_id, model_version, top_k, top1_class, "
                     "top1_score) VALUES (?, 'run-a', 'v1', '[{\"class\":\"zebra\",\"score\":0.5}]', "
                     "'zebra', 0.5)", (1_736_157_600 * 10**6,))
    with TransactionLog(log_url) as log:
        assert log.migrations()["version"].tolist() == [m.version for m in MIGRATIONS]
        tid = log.log_transaction("run-a", {"lion": 0.75}, model_version="v1", time="2025-01-07")
        assert tid == 2 and log.count() == 2
        assert log.transactions()["top1_class"].tolist() == ["zebra", "lion"]
        assert log.usage_by_day()["requests"].tolist() == [1, 1]
