"""Tests for imgcls.evaluation.report: evaluate a run on a split, compare runs on the benchmark."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pandas as pd
import pytest

from imgcls import evaluation as ev
from imgcls.library import Library
from evaluation_runs import THREE, gate_runs, gate_workspace


@pytest.fixture(scope="module")
def gate_ws(tmp_path_factory):
    return gate_workspace(tmp_path_factory)


@pytest.fixture(scope="module")
def runs(gate_ws):
    return gate_runs(gate_ws)


def test_evaluate_known_model(gate_ws, runs):
    out = ev.evaluate(runs["blue_as_red"], "benchmark", workspace=gate_ws)
    s = out["summary"]
    assert s["n"] == 15 and s["accuracy"] == pytest.approx(10 / 15)
    assert s["top_k_accuracy"] == pytest.approx(1.0)  # k=3 of 3 classes
    pc = out["per_class"]
    assert pc.loc["blue", "recall"] == 0 and pc.loc["red", "precision"] == pytest.approx(0.5)
    assert out["confusion"].loc["blue", "red"] == 5
    top = out["confused_pairs"].iloc[0]
    assert (top["class_a"], top["class_b"], top["count"]) == ("blue", "red", 5)
    assert out["calibration"]["n"].sum() == 15
    # Test split of the run's snapshot (hash-based, so some images of each class).
    test = ev.evaluate(runs["good"], "test", workspace=gate_ws, save=True)
    assert test["summary"]["accuracy"] == 1.0
    assert runs["good"].metrics["test"]["accuracy"] == 1.0
    with pytest.raises(ValueError, match="split"):
        ev.evaluate(runs["good"], "holdout", workspace=gate_ws)


def test_evaluate_finds_the_workspace_of_a_run_folder(gate_ws, runs):
    # A Run (or its folder) lives in <workspace>/runs/: no workspace needed.
    out = ev.evaluate(runs["blue_as_red"], "benchmark", top_k=1)
    assert out["summary"]["n"] == 15 and out["summary"]["k"] == 1
    assert out["summary"]["top_k_accuracy"] == pytest.approx(10 / 15)
    # A run id is looked up in a workspace, so it needs one.
    with pytest.raises(ValueError, match="workspace="):
        ev.evaluate("blue_as_red", "benchmark")


def test_compare_runs_on_the_intersection(gate_ws, runs):
    cmp = ev.compare_runs([runs["good"], runs["blue_as_red"], runs["good4"]], workspace=gate_ws)
    s = cmp["summary"].set_index("run_id")
    assert cmp["common_classes"] == THREE
    assert "yellow" in cmp["note"]
    assert s.loc["good", "accuracy"] == 1.0 and s.loc["blue_as_red", "accuracy"] == pytest.approx(10 / 15)
    assert s.loc["good4", "n_images"] == 20 and s.loc["good4", "n_common"] == 15
    assert s.loc["good4", "accuracy_common"] == 1.0
    pc = cmp["per_class"]
    assert pc.loc["blue", "blue_as_red"] == 0 and pd.isna(pc.loc["yellow", "good"])
    assert pc.loc["yellow", "good4"] == 1.0 and pc.loc["blue", "support"] == 5
    # Run ids resolve in the workspace; the same run twice is refused.
    by_id = ev.compare_runs(["good", "good4"], workspace=gate_ws)
    assert by_id["summary"]["run_id"].tolist() == ["good", "good4"]
    with pytest.raises(ValueError, match="twice"):
        ev.compare_runs([runs["good"], "good"], workspace=gate_ws)


def test_evaluate_custom_rows_with_unknown_class_and_bad_file(gate_ws, runs, tmp_path):
    cat = Library(gate_ws).scan()
    pick = pd.concat([cat[cat["label"] == "red"].head(2), cat[cat["label"] == "yellow"].head(1)])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    rows = pd.concat([pick[["path", "label"]], pd.DataFrame({"path": [str(bad)], "label": ["red"]})])
    out = ev.evaluate(runs["good"], workspace=gate_ws, rows=rows)
    s = out["summary"]
    assert out["split"] == "custom"
    assert s["n"] == 3 and s["n_skipped"] == 1 and s["n_unknown_class"] == 1
    assert s["accuracy"] == pytest.approx(2 / 3)  # the yellow image cannot be right
    assert out["skipped"]["path"].tolist() == [str(bad)]
    table = out["predictions"]
    assert table.loc[table["label"] == "yellow", "true_score"].isna().all()
    assert out["per_class"]["support"].sum() == 2
