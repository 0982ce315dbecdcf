"""Tests for imgcls.evaluation.gate: the deploy gate on runs whose benchmark accuracy is known."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from imgcls import evaluation as ev
from imgcls.runs import production_run, promotion_log
from evaluation_runs import THREE, gate_runs, gate_workspace, reset_gate


@pytest.fixture(scope="module")
def gate_ws(tmp_path_factory):
    return gate_workspace(tmp_path_factory)


@pytest.fixture(scope="module")
def runs(gate_ws):
    return gate_runs(gate_ws)


def test_gate_first_promotion_and_pointer(gate_ws, runs):
    reset_gate(gate_ws)
    assert production_run(gate_ws) is None
    result = ev.promote(gate_ws, runs["blue_as_red"], reason="first model")
    assert result.accepted and bool(result)
    assert "No run is in production" in result.explain()
    pointer = json.loads(gate_ws.production_file.read_text())
    assert {"run_id", "promoted_at", "reason", "benchmark_accuracy"} <= set(pointer)
    assert pointer["run_id"] == "blue_as_red" and pointer["reason"] == "first model"
    assert pointer["benchmark_accuracy"] == pytest.approx(10 / 15)
    assert production_run(gate_ws).run_id == "blue_as_red"


def test_gate_refuses_worse_and_accepts_better(gate_ws, runs):
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["blue_as_red"], reason="baseline")
    worse = ev.promote(gate_ws, runs["all_red"], reason="try all-red")
    assert not worse.accepted
    assert worse.candidate_accuracy == pytest.approx(5 / 15)
    assert worse.production_accuracy == pytest.approx(10 / 15)
    assert any("below production" in r for r in worse.reasons)
    assert production_run(gate_ws).run_id == "blue_as_red"
    with pytest.raises(ev.PromotionRefused, match="Refused to promote 'all_red'") as info:
        ev.promote(gate_ws, runs["all_red"], raise_on_refusal=True)
    assert info.value.result.accepted is False and isinstance(info.value, ValueError)

    better = ev.promote(gate_ws, runs["good"], reason="fixes blue")
    assert better.accepted and better.delta == pytest.approx(5 / 15)
    assert production_run(gate_ws).run_id == "good"
    pointer = json.loads(gate_ws.production_file.read_text())
    assert pointer["previous_run_id"] == "blue_as_red" and pointer["reason"] == "fixes blue"

    # A margin the candidate does not clear is refused even when it is not worse.
    again = ev.promote(gate_ws, runs["good4"], margin=0.01)
    assert not again.accepted and "margin" in again.explain()
    log = promotion_log(gate_ws)
    assert log["run_id"].tolist() == ["blue_as_red", "all_red", "all_red", "good", "good4"]
    assert log["accepted"].tolist() == [True, False, False, True, False]
    assert log["time"].notna().all() and log.loc[3, "reason"] == "fixes blue"


def test_gate_per_class_drop(gate_ws, runs):
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["blue_as_red"])
    # Same overall accuracy (10/15) but green falls from 100% to 0%.
    res = ev.promote(gate_ws, runs["green_as_blue"])
    assert not res.accepted
    assert res.candidate_accuracy == pytest.approx(res.production_accuracy)
    assert any("green 100% -> 0%" in r for r in res.reasons)
    drops = res.per_class.set_index("class")["drop"]
    assert drops["green"] == pytest.approx(1.0) and drops["blue"] == pytest.approx(-1.0)
    assert ev.promote(gate_ws, runs["green_as_blue"], max_class_drop=None).accepted


def test_gate_never_promotes_throwaway(gate_ws, runs):
    reset_gate(gate_ws)
    res = ev.promote(gate_ws, runs["good_throwaway"], reason="it is great")
    assert not res.accepted and "throw-away" in res.explain()
    assert res._repr_markdown_().startswith("**Refused to promote `good_throwaway`.**")
    assert not gate_ws.production_file.exists()
    ev.promote(gate_ws, runs["all_red"])
    assert not ev.promote(gate_ws, runs["good_throwaway"]).accepted
    assert production_run(gate_ws).run_id == "all_red"
    log = promotion_log(gate_ws)
    assert log["accepted"].tolist() == [False, True, False]
    assert log.loc[0, "reason"] == "it is great"


def test_gate_different_class_lists_say_so(gate_ws, runs):
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["good"])
    res = ev.promote(gate_ws, runs["good4"])
    assert res.accepted
    assert res.compared_classes == THREE and res.n_images == 15
    assert res.benchmark_accuracy == 1.0
    assert any("yellow" in n and "3 classes" in n for n in res.notes)
    with pytest.raises(ValueError, match="margin"):
        ev.promote(gate_ws, runs["good"], margin=5)


def test_gate_time_is_utc_seconds(gate_ws, runs):
    reset_gate(gate_ws)
    res = ev.promote(gate_ws, runs["good"])
    assert res.time.endswith("+00:00") and len(res.time) == len("2026-01-01T00:00:00+00:00")
    with pytest.raises(ValueError, match="max_class_drop"):
        ev.promote(gate_ws, runs["good"], max_class_drop=-0.1)
