"""Retention: imgcls.translog.purge (log rows, stored inputs, dry runs) and reports that say so."""

from __future__ import annotations

import pytest

from imgcls import reports
from imgcls.cli import main
from imgcls.core import open_workspace
from imgcls.translog import SERVED_DIR, TransactionLog, purge, stored_inputs


@pytest.fixture
def ws(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    with TransactionLog(ws) as log:
        ids = log.log_transactions([
            {"run_id": "run-a", "model_version": "v1", "top_k": {"zebra": 0.9}, "time": f"2025-01-0{d}T12:00Z"}
            for d in (5, 6, 7, 8, 9)
        ])
        log.log_evaluation(ids[0], "correct", reviewer="ana")
        log.log_evaluation(ids[3], "correct", reviewer="ana")
    for day, n in (("2025-01-05", 2), ("2025-01-06", 1), ("2025-01-08", 3)):
        folder = ws.root / SERVED_DIR / day
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"{day}-{i}.png").write_bytes(b"x" * 10)
    (ws.root / SERVED_DIR / "notes").mkdir()  # not a day folder: left alone
    return ws


def test_dry_run_counts_and_changes_nothing(ws):
    result = purge(ws, before="2025-01-07", inputs=True, dry_run=True)
    assert (result["transactions"], result["evaluations"], result["inputs"]) == (2, 1, 3)
    assert result["input_bytes"] == 30 and result["before"] == "2025-01-07T00:00:00Z"
    with TransactionLog(ws, create=False) as log:
        assert log.count() == 5 and log.count("evaluations") == 2 and log.purges().empty
    assert stored_inputs(ws)["files"].tolist() == [2, 1, 3]


def test_purge_log_then_inputs_and_reports_say_so(ws):
    result = purge(ws, before="2025-01-07")  # the log only, by default
    assert (result["transactions"], result["evaluations"], result["inputs"]) == (2, 1, 0)
    with TransactionLog(ws, create=False) as log:
        assert log.transactions()["time"].min().day == 7
        assert log.count("evaluations") == 1  # the evaluation of a purged transaction went with it
        purges = log.purges()
    assert purges[["what", "transactions", "evaluations"]].values.tolist() == [["log", 2, 1]]
    assert len(stored_inputs(ws)) == 3  # inputs untouched

    # a partial day is kept: 2025-01-08 12:00 leaves the folder of the 8th
    result = purge(ws, before="2025-01-08T12:00Z", log=False, inputs=True)
    assert result["inputs"] == 3 and result["transactions"] == 0
    assert stored_inputs(ws)["day"].dt.strftime("%Y-%m-%d").tolist() == ["2025-01-08"]
    assert (ws.root / SERVED_DIR / "notes").is_dir()

    summary = reports.summary_table(ws)
    purged = summary.loc[summary.metric == "Purged", "value"].item()
    assert "log rows served before 2025-01-07 00:00 UTC purged on" in purged
    assert "stored inputs served before 2025-01-08 12:00 UTC purged on" in purged
    usage = reports.usage_over_time(ws)
    fig = reports.plot_usage_over_time(usage)
    subtitle = fig.axes[0].get_title(loc="left").replace("\n", " ")
    assert "log rows served before 2025-01-07" in subtitle

    with pytest.raises(ValueError, match="Nothing to purge"):
        purge(ws, before="2025-01-07", log=False)


def test_cli_log_purge(ws, capsys):
    assert main(["log", "purge", "-w", str(ws.root), "--before", "2025-01-08", "--inputs", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete: 3 transactions, 1 evaluations, 3 stored inputs" in out
    assert main(["log", "purge", "-w", str(ws.root), "--before", "2025-01-08", "--inputs-only"]) == 0
    assert "deleted: 0 transactions, 0 evaluations, 3 stored inputs" in capsys.readouterr().out
    assert main(["log", "purge", "-w", str(ws.root), "--before", "yesterday"]) == 2
    assert "ISO 8601" in capsys.readouterr().err


@pytest.mark.postgres
def test_purge_a_postgresql_log(tmp_path, postgres_server, capsys):
    """purge(log_url=...) and `imgcls log purge --log-url` on a shared log; the workspace keeps the inputs."""
    ws = open_workspace(tmp_path / "ws")
    url = postgres_server.new_database()
    with TransactionLog(url) as log:
        ids = log.log_transactions([{"run_id": "run-a", "top_k": {"zebra": 0.9}, "time": f"2025-01-0{d}T12:00Z"}
                                    for d in (5, 6, 7)])
        log.log_evaluation(ids[0], "correct", reviewer="ana")
    assert main(["log", "purge", "-w", str(ws.root), "--log-url", url, "--before", "2025-01-07",
                 "--dry-run"]) == 0
    assert "would delete: 2 transactions, 1 evaluations" in capsys.readouterr().out
    result = purge(ws, before="2025-01-07", log_url=url)
    assert (result["transactions"], result["evaluations"]) == (2, 1)
    assert not ws.serving_db.exists()  # nothing went to the workspace's own log
    with TransactionLog(url, create=False) as log:
        assert log.count() == 1 and log.purges()["what"].tolist() == ["log"]
        purged = reports.summary_table(log)
    assert "log rows served before 2025-01-07 00:00 UTC purged on" in purged.loc[
        purged.metric == "Purged", "value"].item()
