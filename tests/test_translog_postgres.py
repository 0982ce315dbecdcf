"""The transaction log on PostgreSQL: `imgcls log migrate` and several `imgcls serve --log-url` processes.

Against a real PostgreSQL server (tests/postgres_server.py, one per session); the rest of the
log's suite runs on both engines through the ``log_url`` fixture (conftest).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest
from serving_support import png_bytes, ws

from imgcls.cli import main
from imgcls.reports import load_report_data
from imgcls.translog import TransactionLog, copy_log, log_checksums

pytestmark = pytest.mark.postgres


def _fill(url):
    with TransactionLog(url) as log:
        ids = log.log_transactions([
            {"run_id": "run-a", "model_version": "v1", "top_k": {"zebra": 0.7, "lion": 0.3},
             "time": f"2025-01-0{1 + i % 9}T10:00:00.{i:06d}Z", "latency_ms": 1.0 / (i + 3),
             "raw_score": 0.9, "temperature": 1.5, "source": "web", "http_status": 200}
            for i in range(120)
        ] + [{"run_id": "run-b", "model_version": "v2", "status": "failed", "error": "not_an_image: text",
              "endpoint": "predict", "http_status": 415, "time": "2025-01-09"}])
        log.log_evaluation(ids[3], "wrong", reviewer="ana", true_class="okapi", new_class=True, note="é ✓")
        log.log_evaluation(ids[3], "correct", reviewer="bo")
        log.log_evaluation(ids[10], "unsure", reviewer="ana", simulated=True)
        log.purge("2025-01-02")
        return log.count(), log.count("evaluations")


def _frames(url):
    with TransactionLog(url, create=False) as log:
        return {"transactions": log.transactions(), "evaluations": log.evaluations(),
                "judged": log.evaluated_transactions(latest_only=False), "usage": log.usage_by_day(),
                "failures": log.failures_by_day(), "versions": log.model_versions(), "purges": log.purges()}


def test_log_migrate_copies_every_row_checked(tmp_path, postgres_server, capsys):
    source = "sqlite:///" + str(tmp_path / "old.sqlite")
    n_tx, n_ev = _fill(source)
    target = postgres_server.new_database()
    assert main(["log", "migrate", "--from", source, "--to", target, "--batch-size", "7"]) == 0
    out = capsys.readouterr().out
    assert "OK: row counts and checksums match" in out and f"{n_tx:>12,} rows" in out
    before, after = _frames(source), _frames(target)
    for name in before:  # the same answers from both engines
        pd.testing.assert_frame_equal(before[name], after[name], check_exact=True, obj=name)
    # the reports read the PostgreSQL log as they read the SQLite one
    with TransactionLog(target) as log:
        on_pg = load_report_data(log)
    on_sqlite = load_report_data(source)
    for f in dataclasses.fields(on_sqlite):
        value = getattr(on_sqlite, f.name)
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, getattr(on_pg, f.name), obj=f.name)
    assert on_pg.log_path == target
    with TransactionLog(target) as log:  # ids continue past the copied ones
        assert log.log_transaction("run-a", {"zebra": 0.5}) == before["transactions"]["id"].max() + 1
        assert log.count("evaluations") == n_ev
    # a non-empty target is refused (exit code 2, nothing written)
    assert main(["log", "migrate", "--from", source, "--to", target]) == 2
    assert "is not empty" in capsys.readouterr().err
    # and back: PostgreSQL -> a new SQLite file, the same checksums
    back = "sqlite:///" + str(tmp_path / "back.sqlite")
    result = copy_log(target, back)
    assert result["ok"] and result["tables"]["transactions"]["rows_target"] == n_tx + 1
    with TransactionLog(target) as a, TransactionLog(back) as b:
        assert log_checksums(a) == log_checksums(b)


def test_migrate_errors_are_actionable(tmp_path, postgres_server, capsys):
    assert main(["log", "migrate", "--from", str(tmp_path / "none.sqlite"), "--to",
                 postgres_server.new_database()]) == 2
    assert "No transaction log" in capsys.readouterr().err
    url = postgres_server.url("no_such_db")
    TransactionLog(tmp_path / "x.sqlite").close()
    assert main(["log", "migrate", "--from", "sqlite:///" + str(tmp_path / "x.sqlite"), "--to", url]) == 2
    assert "Could not connect to the PostgreSQL log" in capsys.readouterr().err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_several_serve_processes_write_one_log(ws, postgres_server):
    """Two `imgcls serve --log-url` processes answer clients; every id answered is a committed row."""
    workspace, first, _ = ws
    url = postgres_server.new_database()
    ports = [_free_port(), _free_port()]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = [subprocess.Popen([sys.executable, "-m", "imgcls.cli", "serve", "--workspace", str(workspace.root),
                               "--run", first.run_id, "--no-follow", "--port", str(p), "--log-url", url],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for p in ports]
    try:
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=60) for p in ports]
        deadline = time.monotonic() + 240
        for c, proc in zip(clients, procs):
            while True:
                try:
                    if c.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        acked = []
        for i in range(30):
            c = clients[i % 2]
            r = c.post("/predict", files={"file": ("a.png", png_bytes(seed=i), "application/octet-stream")})
            assert r.status_code == 200, r.text
            acked.append(r.json()["transaction_id"])
        for c in clients:
            c.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    assert len(set(acked)) == 30
    with TransactionLog(url, create=False) as log:
        t = log.transactions()
    assert set(acked) <= set(t["id"]) and (t["run_id"] == first.run_id).all()
    assert not workspace.serving_db.exists() or first.run_id not in set(
        TransactionLog(workspace).transactions()["run_id"])  # nothing went to serving.sqlite


def test_a_lost_connection_fails_one_call_then_reconnects(postgres_server):
    import psycopg

    url = postgres_server.new_database()
    with TransactionLog(url) as log:
        first = log.log_transaction("run-a", {"zebra": 0.9})
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:  # as a server restart would
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (url.rsplit("/", 1)[1],))
        with pytest.raises(psycopg.OperationalError):
            log.log_transaction("run-a", {"zebra": 0.9})  # that request fails: never acknowledged
        assert log.log_transaction("run-a", {"lion": 0.8}) > first  # the next one reconnects
        assert log.transactions()["top1_class"].tolist() == ["zebra", "lion"]
