"""imgcls.translog schema v3: every request a row, calibrated scores, verdicts by the log's clock.

Failed requests carry endpoint / HTTP status / failure kind; the current verdict
is the last one the log received, whatever time a client gave; evaluations keep
new_class and a bounded note; a version-2 log migrates (failures get a kind).
Every test runs on SQLite and on a real PostgreSQL server (conftest ``log_url``).
"""

from __future__ import annotations

import pandas as pd
import pytest
from postgres_server import execute

from imgcls.translog import (
    MAX_ID,
    MAX_NOTE_CHARS,
    MAX_REVIEWER_CHARS,
    MIGRATIONS,
    TransactionLog,
)


@pytest.fixture
def log(log_url):
    with TransactionLog(log_url) as log:
        yield log


def test_failed_requests_carry_endpoint_status_and_kind(log):
    ok = log.log_transaction("run-a", {"zebra": 0.6, "lion": 0.4}, model_version="v1",
                             http_status=200, raw_score=0.9, temperature=2.0)
    refused = log.log_transactions([
        {"run_id": "run-a", "status": "failed", "error": "validation: query.top_k: too small",
         "endpoint": "predict", "http_status": 422, "failure": "validation"},
        {"run_id": "run-a", "status": "failed", "error": "too_large: the upload exceeds 10 bytes",
         "http_status": 413},  # the kind comes from the error's prefix
        {"run_id": "run-a", "status": "failed", "error": "no token", "endpoint": "model",
         "http_status": 401, "failure": "unauthorized"},
        {"run_id": "run-a", "status": "failed", "error": "something odd", "endpoint": "/weird/path"},
    ])
    t = log.transactions().set_index("id")
    assert t.loc[ok, "endpoint"] == "predict" and t.loc[ok, "http_status"] == 200
    assert pd.isna(t.loc[ok, "failure"]) or t.loc[ok, "failure"] in ("", "None")
    assert t.loc[ok, "top1_score"] == 0.6 and t.loc[ok, "raw_top1_score"] == 0.9
    assert t.loc[ok, "temperature"] == 2.0
    assert t.loc[refused, "failure"].tolist() == ["validation", "too_large", "unauthorized", "error"]
    assert t.loc[refused, "endpoint"].tolist() == ["predict", "predict", "model", "other"]
    assert t.loc[refused, "http_status"].tolist()[:3] == [422, 413, 401]
    assert pd.isna(t.loc[refused[3], "http_status"])  # a call from Python has no HTTP status
    # raw score defaults to the top-1 score, temperature to none
    plain = log.log_transaction("run-a", {"cat": 0.7})
    row = log.transactions().set_index("id").loc[plain]
    assert row["raw_top1_score"] == 0.7 and pd.isna(row["temperature"])

    fails = log.failures_by_day()
    assert fails["requests"].sum() == 4 and set(fails["failure"]) == {
        "validation", "too_large", "unauthorized", "error"}
    with pytest.raises(ValueError, match="http_status"):
        log.log_transaction("run-a", status="failed", error="x", http_status=999)


def test_error_text_is_bounded(log):
    tid = log.log_transaction("run-a", status="failed", error="not_an_image: " + "x" * 50_000)
    assert len(log.transactions().set_index("id").loc[tid, "error"]) <= 2000


def test_current_verdict_is_the_last_received_not_the_latest_claimed(log):
    tid = log.log_transaction("run-a", {"zebra": 0.9, "lion": 0.1})
    log.log_evaluation(tid, "wrong", reviewer="ana", true_class="lion", time="2025-06-01")
    # a client claims an earlier time: it is still the last one received, so it counts
    log.log_evaluation(tid, "correct", reviewer="bo", time="2020-01-01")
    current = log.evaluated_transactions()
    assert current["verdict"].tolist() == ["correct"] and current["reviewer"].tolist() == ["bo"]
    history = log.evaluated_transactions(latest_only=False)
    assert history["verdict"].tolist() == ["wrong", "correct"]  # in the order received; nothing lost
    ev = log.evaluations().sort_values("id")  # evaluations() is ordered by the time given
    assert (ev["received"] > pd.Timestamp("2025-06-02", tz="UTC")).all()  # the log's clock
    assert ev["time"].tolist() == [pd.Timestamp("2025-06-01", tz="UTC"), pd.Timestamp("2020-01-01", tz="UTC")]


def test_evaluation_fields_are_bounded(log):
    tid = log.log_transaction("run-a", {"zebra": 0.9})
    eid = log.log_evaluation(tid, "wrong", reviewer="ana", true_class="okapi", new_class=True,
                             note="striped legs")
    ev = log.evaluations().set_index("id").loc[eid]
    assert ev["new_class"] and ev["note"] == "striped legs" and ev["true_class"] == "okapi"
    with pytest.raises(ValueError, match=f"at most {MAX_REVIEWER_CHARS}"):
        log.log_evaluation(tid, "correct", reviewer="r" * (MAX_REVIEWER_CHARS + 1))
    with pytest.raises(ValueError, match=f"at most {MAX_NOTE_CHARS}"):
        log.log_evaluation(tid, "correct", reviewer="ana", note="n" * (MAX_NOTE_CHARS + 1))
    with pytest.raises(ValueError, match="transaction_id"):
        log.log_evaluation(MAX_ID + 1, "correct", reviewer="ana")  # out of range: ValueError, no crash
    with pytest.raises(ValueError, match="transaction_id"):
        log.log_evaluation("2001", "correct", reviewer="ana")
    with pytest.raises(ValueError, match="transaction_id"):
        log.log_evaluation(float(tid), "correct", reviewer="ana")
    assert log.transaction(tid)["run_id"] == "run-a" and log.transaction(MAX_ID) is None
    assert log.count("evaluations") == 1


def test_migrates_a_version_2_log(log_url):
    path = log_url
    with TransactionLog(path) as log:  # written by this code, then taken back to version 2
        log.log_transactions([
            {"run_id": "run-a", "top_k": {"zebra": 0.8}, "time": "2025-01-06T09:00Z"},
            {"run_id": "run-a", "status": "failed", "error": "not_an_image: it is a text file",
             "time": "2025-01-06T10:00Z"},
            {"run_id": "run-a", "status": "failed", "error": "weird", "time": "2025-01-06T11:00Z"},
        ])
        log.log_evaluation(1, "wrong", reviewer="ana", time="2025-01-08")
        log.log_evaluation(1, "correct", reviewer="ana", time="2025-01-07")
    statements = ["DROP INDEX ix_transactions_failures", "DROP TABLE purges"]
    for table, columns in (("transactions", ["endpoint", "http_status", "failure", "raw_top1_score",
                                             "temperature", "runtime"]),
                           ("evaluations", ["received_us", "new_class", "note"])):
        statements += [f"ALTER TABLE {table} DROP COLUMN {column}" for column in columns]
    execute(path, statements + ["DELETE FROM meta WHERE key IN ('migration.003', 'migration.004')",
                                "UPDATE meta SET value = '2' WHERE key = 'schema_version'"])
    with TransactionLog(path) as log:
        assert log.migrations()["version"].tolist() == [m.version for m in MIGRATIONS]
        t = log.transactions()
        assert t["failure"].tolist()[1:] == ["not_an_image", "error"]
        assert t["raw_top1_score"].tolist()[0] == 0.8 and t["endpoint"].eq("predict").all()
        # before version 3 the latest by time counted: the migration keeps that verdict
        assert log.evaluated_transactions()["verdict"].tolist() == ["wrong"]
        assert log.purges().empty
