"""Tests for imgcls.evaluation.predict: the images of a split and a run's predictions on them."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from imgcls import evaluation as ev
from evaluation_runs import gate_runs, gate_workspace


@pytest.fixture(scope="module")
def gate_ws(tmp_path_factory):
    return gate_workspace(tmp_path_factory)


@pytest.fixture(scope="module")
def runs(gate_ws):
    return gate_runs(gate_ws)


def test_predict_table_on_benchmark(gate_ws, runs):
    table = ev.predict_table(runs["blue_as_red"], "benchmark", workspace=gate_ws, top_k=2)
    assert len(table) == 15 and set(table["split"]) == {"benchmark"}
    assert {"path", "label", "predicted", "confidence", "correct", "true_score",
            "top1_class", "top1_score", "top2_class", "top2_score", "in_top_k"} <= set(table.columns)
    blue = table[table["label"] == "blue"]
    assert (blue["predicted"] == "red").all() and (~blue["correct"]).all()
    assert table.loc[table["label"] != "blue", "correct"].all()
    assert (table["top1_score"] >= table["top2_score"]).all()
    assert table["confidence"].between(0, 1).all()
    # Yellow is not a class of this run, so its benchmark images are not used.
    assert "yellow" not in set(table["label"])


def test_split_rows_of_a_run(gate_ws, runs):
    bench = ev.split_rows(runs["good4"], "benchmark", workspace=gate_ws)
    assert list(bench.columns) == ["path", "relpath", "hash", "label", "split", "turns"]
    assert len(bench) == 20 and set(bench["split"]) == {"benchmark"}
    only = ev.split_rows(runs["good4"], "benchmark", workspace=gate_ws, classes=["yellow"])
    assert set(only["label"]) == {"yellow"} and len(only) == 5
    # The run's folder names its workspace; the run id needs one.
    test = ev.split_rows(runs["good"], "test")
    assert len(test) and set(test["split"]) == {"test"} and set(test["label"]) <= {"blue", "green", "red"}
    assert ev.split_rows("good", "test", workspace=gate_ws).equals(test)
    with pytest.raises(ValueError, match="workspace="):
        ev.split_rows("good", "test")
    with pytest.raises(ValueError, match="split"):
        ev.split_rows(runs["good"], "holdout")


def test_predict_scores_in_class_order(gate_ws, runs):
    rows = ev.split_rows(runs["good"], "benchmark", workspace=gate_ws)
    kept, scores, skipped = ev.predict_scores(runs["good"], rows)
    assert len(kept) == 15 and scores.shape == (15, 3) and skipped.empty
    classes = runs["good"].classes
    assert (kept["label"].to_numpy() == [classes[i] for i in scores.argmax(axis=1)]).all()
    empty, none, _ = ev.predict_scores(runs["good"], rows.iloc[:0])
    assert empty.empty and none.shape == (0, 3)
