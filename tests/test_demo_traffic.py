"""Simulated traffic (imgcls.demo.simulate_traffic): in-process and through HTTP."""

from __future__ import annotations

import datetime as dt

import httpx
import pandas as pd
import pytest
from conftest import copy_workspace
from serving_support import png_bytes, ws  # noqa: F401 - fixtures

from imgcls.demo import simulate_traffic
from imgcls.evaluation import promote
from imgcls.runs import promoted_run_ids
from imgcls.sample import sample_truth
from imgcls.serving import SIMULATED_TIME_HEADER, Predictor, start_server
from imgcls.translog import TransactionLog


def test_simulate_traffic_two_versions_with_evaluations(ws, tmp_path):
    template, v1, v2 = ws
    workspace = copy_workspace(template, tmp_path / "zoo")        # v2 is promoted here only
    with pytest.raises(ValueError, match=rf"Never promoted: {v2.run_id}.*imgcls promote"):
        simulate_traffic(workspace, runs=[v1.run_id, v2.run_id], weeks=1, requests=10)
    with TransactionLog(workspace) as log:
        assert log.count() == 0                                       # refused before any request
    assert promote(workspace, v2.run_id, override="test: a second served version").accepted
    end = dt.datetime(2025, 3, 3, tzinfo=dt.timezone.utc)
    start = end - dt.timedelta(weeks=4)
    out = simulate_traffic(workspace, runs=[v1.run_id, v2.run_id], weeks=4, requests=400, evaluation_share=0.2,
                           seed=0, end=end)
    assert len(out) == 400 and out["transaction_id"].is_unique
    with TransactionLog(workspace, create=False) as log:
        tx = log.transactions(since=start, until=end)
        ev = log.evaluated_transactions(since=start, until=end)
    assert len(tx) == 400 and tx["simulated"].all() and (tx["source"] == "simulated").all()
    # v1 first, then v2 rolled out; usage grows.
    assert tx.groupby("model_version")["time"].max()["v1"] < tx.groupby("model_version")["time"].min()["v2"]
    assert set(tx.loc[tx.model_version == "v2", "run_id"]) == {v2.run_id}
    assert set(tx["run_id"]) <= set(promoted_run_ids(workspace))
    weekly = ((tx["time"] - pd.Timestamp(start)) // pd.Timedelta(weeks=1)).value_counts()
    assert weekly[3] > weekly[0]
    # Verdicts follow the hidden truth.
    assert 40 <= len(ev) <= 120 and ev["evaluation_simulated"].all()
    truth = dict(zip(sample_truth(workspace)["path"], sample_truth(workspace)["label"]))
    for _, row in ev.iterrows():
        if row["verdict"] == "unsure":
            continue
        assert (row["verdict"] == "correct") == (row["top1_class"] == truth[row["image_path"]])
        assert row["true_class"] == truth[row["image_path"]]
        assert row["evaluation_time"] >= row["time"]
    merged = out.set_index("transaction_id")
    assert merged.loc[list(ev["transaction_id"]), "evaluated"].all()


def test_simulate_traffic_through_http(ws):
    workspace, first, _ = ws
    start, end = dt.date(2025, 1, 1), dt.date(2025, 1, 8)
    with Predictor(workspace, run=first, source="http", model_version="v7") as p:
        with start_server(p) as refusing, httpx.Client(base_url=refusing.url) as c:
            r = c.post("/predict", files={"file": ("a.png", png_bytes())},
                       headers={SIMULATED_TIME_HEADER: "2025-01-01T10:00:00Z"})
            assert r.status_code == 400 and "allow_simulated" in r.json()["detail"]
        with start_server(p, allow_simulated=True) as srv:
            out = simulate_traffic(workspace, weeks=1, requests=30, evaluation_share=0.5,
                                   via=srv.url, end=end)
    assert len(out) == 30 and (out["model_version"] == "v7").all()
    with TransactionLog(workspace, create=False) as log:
        tx = log.transactions(since=start, until=end)
        ev = log.evaluations(since=start, until=end)
    assert len(tx) == 30 and tx["simulated"].all() and (tx["model_version"] == "v7").all()
    assert len(ev) == out["evaluated"].sum() > 0 and ev["simulated"].all()
