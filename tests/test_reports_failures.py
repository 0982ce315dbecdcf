"""imgcls.reports.failed_requests and its slide: failed requests by kind, endpoint and status."""

from __future__ import annotations

import pandas as pd
import pytest
from reports_log import FINDINGS, report_workspace, title

from imgcls import reports
from imgcls.core.slides import SLIDE_SIZE
from imgcls.translog import TransactionLog


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return report_workspace(tmp_path_factory)


def test_the_shared_log(ws):
    table = reports.failed_requests(ws)
    assert table[["kind", "endpoint", "requests"]].values.tolist() == [["error", "predict", 2]]
    assert table.attrs == {"requests": 13, "failed": 2,
                           "simulated": "Simulated: 1 of 13 requests are demo traffic"}
    fig = reports.plot_failed_requests(table)
    assert title(fig) == FINDINGS["failed_requests"] and tuple(fig.get_size_inches()) == SLIDE_SIZE


def test_kinds_statuses_and_filters(tmp_path_factory):
    ws = report_workspace(tmp_path_factory)
    failed = [("validation", "predict", 422)] * 3 + [("unauthorized", "model", 401)] * 2 + \
             [("rate_limited", "predict", 429), ("validation", "evaluations", 422)]
    with TransactionLog(ws) as log:
        log.log_transactions([
            {"run_id": "run-b", "model_version": "v2", "status": "failed", "error": f"{kind}: x",
             "failure": kind, "endpoint": endpoint, "http_status": status, "time": "2025-01-22T11:00Z"}
            for kind, endpoint, status in failed
        ])
        log.log_transaction("run-b", status="failed", error="overloaded: busy", http_status=503,
                            simulated=True, time="2025-01-22T12:00Z")
    table = reports.failed_requests(ws)
    rows = [[k, e, None if pd.isna(c) else int(c), int(n)]
            for k, e, c, n in table[["kind", "endpoint", "http_status", "requests"]].itertuples(index=False)]
    assert rows[:3] == [["validation", "predict", 422, 3], ["error", "predict", None, 2],
                        ["unauthorized", "model", 401, 2]]
    assert table.attrs == {"requests": 21, "failed": 10,
                           "simulated": "Simulated: 2 of 21 requests are demo traffic"}
    assert table["share_of_failed"].sum() == pytest.approx(1.0)
    assert table.loc[0, "share_of_requests"] == pytest.approx(3 / 21)
    real = reports.failed_requests(ws, include_simulated=False)
    assert "overloaded" not in set(real["kind"]) and real.attrs["failed"] == 9
    assert title(reports.plot_failed_requests(table)) == \
        "47.6% of requests failed (10 of 21); most often validation (4)"
    tables = reports.build_tables(ws)
    summary = tables["summary"]
    assert summary.loc[summary.metric == "Failed requests", "value"].tolist()[-1] == \
        "47.6% of requests failed (10 of 21); most often validation (4)"


def test_no_failures(tmp_path):
    from imgcls.core import open_workspace

    ws = open_workspace(tmp_path / "ws")
    with TransactionLog(ws) as log:
        log.log_transaction("run-a", {"zebra": 0.9}, time="2025-01-06")
    table = reports.failed_requests(ws)
    assert table.empty and table.attrs == {"requests": 1, "failed": 0, "simulated": None}
    assert title(reports.plot_failed_requests(table)) == "No request failed (1 requests)"
