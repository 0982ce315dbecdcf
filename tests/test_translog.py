"""imgcls.translog.TransactionLog: opening, writing transactions and evaluations, and queries.

Every test taking ``log`` or ``log_url`` runs on SQLite and on a real PostgreSQL server (conftest).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pandas as pd
import pytest
from postgres_server import execute

from imgcls.core import open_workspace
from imgcls.translog import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TransactionLog,
    UnknownTransactionError,
    to_utc_micros,
)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


@pytest.fixture
def log(log_url):
    with TransactionLog(log_url) as log:
        yield log


# --- opening -----------------------------------------------------------------
def test_opens_in_workspace_in_wal_mode(ws):
    with TransactionLog(ws) as log:
        assert log.path == ws.serving_db
        assert log.schema_version == SCHEMA_VERSION == MIGRATIONS[-1].version
        assert list(log.migrations()["version"]) == [m.version for m in MIGRATIONS]
    # journal_mode=WAL is stored in the file: any other connection sees it
    with sqlite3.connect(ws.serving_db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # a workspace folder works as well as the Workspace
    with TransactionLog(ws.root) as again:
        assert again.path == ws.serving_db


def test_urls_name_the_engine(ws, log_url):
    with TransactionLog(log_url) as log:
        assert log.engine == log_url.split(":")[0] and log.url == log_url
        assert list(log.migrations()["version"]) == [m.version for m in MIGRATIONS]  # every one, both engines
    with TransactionLog("sqlite:///" + str(ws.serving_db)) as log:
        assert log.path == ws.serving_db and log.engine == "sqlite"
    with pytest.raises(ValueError, match="sqlite:///PATH or postgresql://"):
        TransactionLog("mysql://db/x")


def test_missing_log_with_create_false(tmp_path, log_url):
    with pytest.raises(FileNotFoundError, match="No transaction log"):
        TransactionLog(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()
    if log_url.startswith("postgresql"):  # an empty database is no log, and stays empty
        with pytest.raises(FileNotFoundError, match="No transaction log in postgresql://"):
            TransactionLog(log_url, create=False)
        assert execute(log_url, "SELECT COUNT(*) FROM information_schema.tables "
                                "WHERE table_schema = current_schema()") == [(0,)]


def test_bad_options_and_foreign_databases(tmp_path, log_url):
    with pytest.raises(ValueError, match="synchronous"):
        TransactionLog(tmp_path / "a.sqlite", synchronous="OFF")
    if log_url.startswith("sqlite"):
        TransactionLog(log_url).close()  # creates the file, then hand-made into a foreign one
        execute(log_url, ["DROP TABLE meta", "CREATE TABLE stuff (x INTEGER)"])
    else:
        execute(log_url, "CREATE TABLE stuff (x INTEGER)")
    with pytest.raises(ValueError, match="not an imgcls transaction log"):
        TransactionLog(log_url)


def test_newer_schema_is_refused(log_url):
    TransactionLog(log_url).close()
    execute(log_url, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ValueError, match="schema version 99, newer"):
        TransactionLog(log_url)


def test_closed_log_says_so(log_url):
    log = TransactionLog(log_url, synchronous="FULL")
    log.close()
    log.close()  # idempotent
    assert log.closed
    with pytest.raises(ValueError, match="closed"):
        log.count()


# --- writing transactions ----------------------------------------------------
def test_log_transaction_round_trip(log, tmp_path):
    tid = log.log_transaction(
        "run-a",
        [("lion", 0.25), ("zebra", 0.7), ("horse", 0.05)],
        model_version="v1",
        image_hash="ab" * 32,
        latency_ms=12.5,
        source="web",
        image_path=tmp_path / "kept.jpg",
        time="2025-01-06T10:00:00Z",
    )
    assert tid == 1
    df = log.transactions()
    assert len(df) == 1
    row = df.iloc[0]
    assert row["id"] == 1
    assert row["time"] == ts("2025-01-06 10:00")
    assert (row["run_id"], row["model_version"], row["image_hash"]) == ("run-a", "v1", "ab" * 32)
    # sorted best first; top-1 copied out
    assert row["top_k"] == [{"class": "zebra", "score": 0.7}, {"class": "lion", "score": 0.25},
                            {"class": "horse", "score": 0.05}]
    assert (row["top1_class"], row["top1_score"]) == ("zebra", 0.7)
    assert (row["latency_ms"], row["source"], row["status"]) == (12.5, "web", "ok")
    assert row["image_path"] == str(tmp_path / "kept.jpg")
    assert pd.isna(row["error"]) and not row["simulated"]


def test_top_k_forms_times_and_defaults(log):
    before = pd.Timestamp.now(tz="UTC")
    ids = [
        log.log_transaction("run-a", {"a": 0.1, "b": 0.9}),  # now; version = run id
        log.log_transaction("run-a", [{"class": "c", "score": 0.6}],
                            time=dt.datetime(2025, 1, 6, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
        log.log_transaction("run-a", json.dumps([{"class": "d", "score": 1.0}]),
                            time=1736164800.25),  # epoch seconds = 2025-01-06 12:00:00.25
        log.log_transaction("run-a", status="failed", error="unreadable image",
                            time=dt.date(2025, 1, 7), simulated=True),
    ]
    assert ids == [1, 2, 3, 4]
    df = log.transactions().set_index("id")
    assert df.loc[1, "model_version"] == "run-a" and df.loc[1, "top1_class"] == "b"
    assert df.loc[1, "time"] >= before.floor("s")
    assert df.loc[2, "time"] == ts("2025-01-06 10:00")  # +02:00 converted to UTC
    assert df.loc[3, "time"] == ts("2025-01-06 12:00:00.25")
    assert (df.loc[3, "top1_class"], df.loc[3, "top1_score"]) == ("d", 1.0)
    assert df.loc[4, "status"] == "failed" and df.loc[4, "top_k"] == []
    assert pd.isna(df.loc[4, "top1_class"]) and df.loc[4, "simulated"]
    assert df.loc[4, "time"] == ts("2025-01-07")
    assert to_utc_micros("2025-01-06T10:00:00+00:00") == 1736157600 * 10**6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_k": None}, "non-empty `top_k`"),
        ({"top_k": {"a": 3.5}}, r"probability in \[0, 1\]"),
        ({"top_k": [("a",)]}, "`top_k` must be"),
        ({"top_k": {"a": 0.5}, "status": "done"}, "`status` must be one of"),
        ({"top_k": {"a": 0.5}, "time": 1736157600000}, "looks like epoch milliseconds"),
        ({"top_k": {"a": 0.5}, "time": "yesterday"}, "not an ISO 8601 time"),
        ({"top_k": {"a": 0.5}, "latency_ms": -1}, "latency_ms"),
        ({"top_k": {"a": 0.5}, "simulated": "yes"}, "simulated"),
    ],
)
def test_bad_transactions_are_refused(log, kwargs, message):
    with pytest.raises(ValueError, match=message):
        log.log_transaction("run-a", **kwargs)
    assert log.count() == 0


def test_run_id_is_required(log):
    with pytest.raises(ValueError, match="`run_id` must be a non-empty string"):
        log.log_transaction("", {"a": 0.5})


def test_batch_write_is_one_commit_all_or_none(log):
    records = [{"run_id": "run-a", "model_version": "v1", "top_k": {"zebra": 0.9},
                "time": f"2025-01-{6 + i % 3:02d}T10:00:00Z"} for i in range(1000)]
    ids = log.log_transactions(records)
    assert ids == list(range(1, 1001))
    assert log.count() == 1000
    assert log.log_transactions([]) == []
    # one bad record: nothing of the batch is written, and the error names it
    bad = records[:5] + [{"run_id": "run-a", "top_k": {"zebra": 0.9}, "colour": "red"}]
    with pytest.raises(ValueError, match=r"record 5: Unknown transaction field\(s\) \['colour'\]"):
        log.log_transactions(bad)
    assert log.count() == 1000
    # DataFrames are accepted; ids continue
    more = log.log_transactions(pd.DataFrame(records[:3]))
    assert more == [1001, 1002, 1003]


# --- evaluations -------------------------------------------------------------
def test_evaluation_errors_are_actionable(log):
    ok = log.log_transaction("run-a", {"zebra": 0.9, "lion": 0.1}, time="2025-01-06")
    failed = log.log_transaction("run-a", status="failed", error="boom", time="2025-01-06")
    with pytest.raises(ValueError, match=r"`verdict` must be one of \('correct', 'wrong', 'unsure'\). Received: verdict='maybe'"):
        log.log_evaluation(ok, "maybe", reviewer="ana")
    with pytest.raises(UnknownTransactionError, match="No transaction with id 99"):
        log.log_evaluation(99, "correct", reviewer="ana")
    with pytest.raises(ValueError, match="`transaction_id` must be an int"):
        log.log_evaluation("1", "correct", reviewer="ana")
    with pytest.raises(ValueError, match="has status 'failed'"):
        log.log_evaluation(failed, "wrong", reviewer="ana")
    with pytest.raises(ValueError, match="`reviewer` must be a non-empty string"):
        log.log_evaluation(ok, "correct", reviewer="")
    with pytest.raises(ValueError, match="Verdict 'correct' but true_class='lion'"):
        log.log_evaluation(ok, "correct", reviewer="ana", true_class="lion")
    with pytest.raises(ValueError, match="Verdict 'wrong' but true_class='zebra'"):
        log.log_evaluation(ok, "wrong", reviewer="ana", true_class="zebra")
    with pytest.raises(UnknownTransactionError, match="Evaluation record 1: No transaction with id 42"):
        log.log_evaluations([{"transaction_id": ok, "verdict": "correct", "reviewer": "a"},
                             {"transaction_id": 42, "verdict": "correct", "reviewer": "a"}])
    assert log.count("evaluations") == 0
    # verdicts are case-insensitive; ids are returned
    assert log.log_evaluation(ok, " Correct ", reviewer="ana") == 1
    assert log.evaluations()["verdict"].tolist() == ["correct"]


def _small_log(log):
    """Four transactions over two versions and one re-evaluated prediction."""
    t = log.log_transactions([
        {"run_id": "run-a", "model_version": "v1", "top_k": {"zebra": 0.9, "lion": 0.1},
         "time": "2025-01-06T09:00:00Z"},
        {"run_id": "run-a", "model_version": "v1", "top_k": {"lion": 0.6}, "time": "2025-01-06T23:59:59Z"},
        {"run_id": "run-b", "model_version": "v2", "top_k": {"lion": 0.8}, "time": "2025-01-07T00:00:00Z",
         "simulated": True},
        {"run_id": "run-b", "model_version": "v2", "status": "failed", "error": "x",
         "time": "2025-01-08T12:00:00Z"},
    ])
    log.log_evaluation(t[0], "correct", reviewer="ana", time="2025-01-07")
    log.log_evaluation(t[1], "wrong", reviewer="ana", true_class="tiger", time="2025-01-07")
    log.log_evaluation(t[1], "unsure", reviewer="bo", time="2025-01-08")  # later: wins
    log.log_evaluation(t[2], "correct", reviewer="sim", time="2025-01-08", simulated=True)
    return t


def test_queries_and_filters(log):
    t = _small_log(log)
    assert log.count() == 4 and log.count("evaluations") == 4
    with pytest.raises(ValueError, match="`table` must be"):
        log.count("runs")
    assert log.transactions(since="2025-01-06T12:00Z", until="2025-01-08")["id"].tolist() == [t[1], t[2]]
    assert log.transactions(run_id="run-b")["id"].tolist() == [t[2], t[3]]
    assert log.transactions(model_version="v1")["id"].tolist() == [t[0], t[1]]
    assert log.transactions(include_simulated=False)["id"].tolist() == [t[0], t[1], t[3]]
    cols = log.transactions(columns=["id", "top1_score"])
    assert list(cols.columns) == ["id", "top1_score"]
    with pytest.raises(ValueError, match=r"Unknown column\(s\) \['colour'\]"):
        log.transactions(columns=["colour"])

    ev = log.evaluations()
    assert list(ev.columns) == ["id", "transaction_id", "time", "reviewer", "verdict", "true_class", "simulated",
                                "received", "new_class", "note"]
    assert ev["verdict"].tolist() == ["correct", "wrong", "unsure", "correct"]

    latest = log.evaluated_transactions()
    assert latest["transaction_id"].tolist() == [t[0], t[1], t[2]]
    assert latest["verdict"].tolist() == ["correct", "unsure", "correct"]
    assert latest["reviewer"].tolist() == ["ana", "bo", "sim"]
    assert latest["model_version"].tolist() == ["v1", "v1", "v2"]
    assert latest["top1_class"].tolist() == ["zebra", "lion", "lion"]
    assert latest.loc[0, "top_k"] == [{"class": "zebra", "score": 0.9}, {"class": "lion", "score": 0.1}]
    every = log.evaluated_transactions(latest_only=False, include_simulated=False)
    assert every["verdict"].tolist() == ["correct", "wrong", "unsure"]
    assert every["true_class"].iloc[1] == "tiger"
    # since/until filter on when the prediction was served
    served_6th = log.evaluated_transactions(since="2025-01-06", until="2025-01-07")
    assert served_6th["transaction_id"].tolist() == [t[0], t[1]]
    # the columns evaluations carry give the same answer as the join
    light = log.evaluated_transactions(columns=["transaction_id", "time", "run_id", "model_version",
                                                "top1_class", "top1_score", "simulated", "verdict"])
    pd.testing.assert_frame_equal(light, latest[light.columns])

    usage = log.usage_by_day()
    assert usage.to_dict("list") == {
        "day": [ts("2025-01-06"), ts("2025-01-07"), ts("2025-01-08")],
        "model_version": ["v1", "v2", "v2"],
        "requests": [2, 1, 1], "ok": [2, 1, 0], "failed": [0, 0, 1],
    }
    assert log.usage_by_day(first_day="2025-01-07", last_day="2025-01-07T23:00")["requests"].tolist() == [1]
    assert log.usage_by_day(include_simulated=False)["requests"].tolist() == [2, 1]

    versions = log.model_versions()
    assert versions["model_version"].tolist() == ["v1", "v2"]
    assert versions["run_id"].tolist() == ["run-a", "run-b"]
    assert versions["first_seen"].tolist() == [ts("2025-01-06 09:00"), ts("2025-01-07")]
    assert versions["last_seen"].tolist() == [ts("2025-01-06 23:59:59"), ts("2025-01-08 12:00")]


def test_empty_log_frames_have_columns(log):
    assert log.transactions().empty and "top1_score" in log.transactions().columns
    assert log.evaluated_transactions().empty
    assert list(log.usage_by_day().columns) == ["day", "model_version", "requests", "ok", "failed"]
    assert log.model_versions().empty
