"""Tests for imgcls.evaluation.gate: the deploy gate on runs whose benchmark answers are known.

The colour runs of ``evaluation_runs`` answer whole classes right or wrong, so
every check's numbers are known exactly. A second workspace (``leak_ws``) has
a run trained before the benchmark set was chosen, to check that a run is
never measured on images it trained on.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from imgcls import evaluation as ev
from imgcls.core import open_workspace
from imgcls.library import Library, assign_splits, choose_benchmark
from imgcls.runs import PROMOTIONS_FILE, production_run, promotion_log, save_run
from evaluation_runs import COLORS, GOOD3, THREE, _color_model, gate_runs, gate_workspace, reset_gate


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
    assert result.reasons == [] and set(result.checks["result"]) == {"pass"}


def test_gate_refuses_worse_and_accepts_better(gate_ws, runs):
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["blue_as_red"], reason="baseline")
    worse = ev.promote(gate_ws, runs["all_red"], reason="try all-red")
    assert not worse.accepted
    assert worse.candidate_accuracy == pytest.approx(5 / 15)
    assert worse.production_accuracy == pytest.approx(10 / 15)
    assert any("below production" in r for r in worse.reasons)
    # 5 green images only production got right, none only the candidate: p = 2**-5 <= 0.04.
    overall = worse.checks.set_index("check").loc["overall: not worse beyond chance"]
    assert (overall["b"], overall["c"]) == (0, 5) and overall["p_value"] == pytest.approx(1 / 32)
    assert worse.failed_checks == ["overall: not worse beyond chance"]
    assert production_run(gate_ws).run_id == "blue_as_red"
    with pytest.raises(ev.PromotionRefused, match="Refused to promote 'all_red'") as info:
        ev.promote(gate_ws, runs["all_red"], raise_on_refusal=True)
    assert info.value.result.accepted is False and isinstance(info.value, ValueError)

    better = ev.promote(gate_ws, runs["good"], reason="fixes blue")
    assert better.accepted and better.delta == pytest.approx(5 / 15)
    assert production_run(gate_ws).run_id == "good"
    pointer = json.loads(gate_ws.production_file.read_text())
    assert pointer["previous_run_id"] == "blue_as_red" and pointer["reason"] == "fixes blue"

    # The margin is the drop allowed (not a lead required): an equal candidate passes margin 0.
    again = ev.promote(gate_ws, runs["good4"], margin=0.0)
    assert again.accepted and again.checks.set_index("check").loc["overall: drop at most 0.0 points", "passed"]
    log = promotion_log(gate_ws)
    assert log["run_id"].tolist() == ["blue_as_red", "all_red", "all_red", "good", "good4"]
    assert log["accepted"].tolist() == [True, False, False, True, True]
    assert log["time"].notna().all() and log.loc[3, "reason"] == "fixes blue"


def test_gate_refusal_lists_only_failed_checks_and_logs_every_check(gate_ws, runs):
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["good"])
    res = ev.promote(gate_ws, runs["blue_as_red"], margin=0.1)
    assert not res.accepted
    failed = res.checks[res.checks["result"] == "fail"]
    assert set(failed["check"]) == {"overall: not worse beyond chance", "overall: drop at most 10.0 points"}
    assert len(res.reasons) == 2 and any("margin of 10.0 points" in r for r in res.reasons)
    text = res.explain()
    failed_part = text.split("Checks:")[0]
    assert "class" not in failed_part.split("Failed checks:")[1]  # passed class checks are not reasons
    for name in res.checks["check"]:  # ... but every check is in the table
        assert name in text
    assert "Warnings:" in text and "too small to judge" in text
    entry = json.loads((gate_ws.runs / PROMOTIONS_FILE).read_text().splitlines()[-1])
    assert [c["check"] for c in entry["checks"]] == res.checks["check"].tolist()
    assert entry["failed_checks"] == failed["check"].tolist() and entry["warnings"] == res.warnings
    assert entry["user"] and entry["override"] is None and entry["action"] == "promote"


def test_gate_per_class_drop(gate_ws, runs):
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["blue_as_red"])
    # Same overall accuracy (10/15) but green falls from 100% to 0%: 5 images, not significant on its own
    # (p = 2**-5, Holm over 3 classes: 0.094 > 0.01), and max_class_drop applies from 150 images a class.
    res = ev.promote(gate_ws, runs["green_as_blue"], min_class_n=5)
    assert not res.accepted
    assert res.candidate_accuracy == pytest.approx(res.production_accuracy)
    assert any("green 100% -> 0%" in r for r in res.reasons)
    drops = res.per_class.set_index("class")["drop"]
    assert drops["green"] == pytest.approx(1.0) and drops["blue"] == pytest.approx(-1.0)
    assert ev.promote(gate_ws, runs["green_as_blue"], max_class_drop=None, min_class_n=5).accepted
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["blue_as_red"])
    default = ev.promote(gate_ws, runs["green_as_blue"])
    assert default.accepted
    green = default.checks.set_index("check").loc["class green: not worse beyond chance"]
    assert green["p_value"] == pytest.approx(3 / 32) and green["passed"]


def test_gate_never_promotes_throwaway(gate_ws, runs):
    reset_gate(gate_ws)
    res = ev.promote(gate_ws, runs["good_throwaway"], reason="it is great")
    assert not res.accepted and "throw-away" in res.explain()
    assert res._repr_markdown_().startswith("**Refused to promote `good_throwaway`.**")
    assert not gate_ws.production_file.exists()
    ev.promote(gate_ws, runs["all_red"])
    assert not ev.promote(gate_ws, runs["good_throwaway"]).accepted
    overridden = ev.promote(gate_ws, runs["good_throwaway"], override="it really is great")
    assert not overridden.accepted and overridden.override is None  # not even with an override
    assert production_run(gate_ws).run_id == "all_red"
    log = promotion_log(gate_ws)
    assert log["accepted"].tolist() == [False, True, False, False]
    assert log.loc[0, "reason"] == "it is great"


def test_override_promotes_a_refused_run_and_records_why(gate_ws, runs):
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["blue_as_red"])
    res = ev.promote(gate_ws, runs["all_red"], override="all-red is what the client asked for", reason="client")
    assert res.accepted and res.override == "all-red is what the client asked for"
    assert res.failed_checks == ["overall: not worse beyond chance"] and res.reasons
    assert res.explain().startswith("Promoted 'all_red' to production by override")
    assert production_run(gate_ws).run_id == "all_red"
    pointer = json.loads(gate_ws.production_file.read_text())
    assert pointer["override"] == res.override and pointer["failed_checks"] == res.failed_checks
    log = promotion_log(gate_ws)
    last = log.iloc[-1]
    assert last["accepted"] and last["override"] == res.override and last["user"] == res.user
    assert list(last["failed_checks"]) == ["overall: not worse beyond chance"]
    # The deck's model-version table reads the override through the run metadata.
    from imgcls.reports import run_metadata

    meta = run_metadata(gate_ws).set_index("run_id")["override"]
    assert meta["all_red"] == res.override and meta["blue_as_red"] is None
    # An override on a candidate that passes changes nothing: it is accepted on its merits.
    clean = ev.promote(gate_ws, runs["good"], override="not needed")
    assert clean.accepted and clean.override is None
    with pytest.raises(ValueError, match="override"):
        ev.promote(gate_ws, runs["good"], override="  ")


def test_gate_different_class_lists_say_so(gate_ws, runs):
    reset_gate(gate_ws)
    ev.promote(gate_ws, runs["good"])
    res = ev.promote(gate_ws, runs["good4"])
    assert res.accepted
    assert res.compared_classes == THREE and res.n_images == 15
    assert res.benchmark_accuracy == 1.0
    assert any("yellow" in n and "3 classes" in n for n in res.warnings)
    assert res.new_classes == ["yellow"] and any("New class yellow: 5/5" in w for w in res.warnings)
    assert not res.checks["scope"].eq("yellow").any()  # reported, not compared
    with pytest.raises(ValueError, match="margin"):
        ev.promote(gate_ws, runs["good"], margin=5)


def test_gate_time_is_utc_seconds(gate_ws, runs):
    reset_gate(gate_ws)
    res = ev.promote(gate_ws, runs["good"])
    assert res.time.endswith("+00:00") and len(res.time) == len("2026-01-01T00:00:00+00:00")
    with pytest.raises(ValueError, match="max_class_drop"):
        ev.promote(gate_ws, runs["good"], max_class_drop=-0.1)
    with pytest.raises(ValueError, match="alpha"):
        ev.promote(gate_ws, runs["good"], alpha=0)


# ------------------------------------------------------------ benchmark images a run trained on
@pytest.fixture(scope="module")
def leak_ws(tmp_path_factory):
    """3 colour classes x 12 images; run "early" trained before the benchmark (4 a class) was chosen."""
    ws = open_workspace(tmp_path_factory.mktemp("leak") / "ws", cutoff=5)
    rng = np.random.default_rng(1)
    for name in THREE:
        (ws.library / name).mkdir(parents=True)
        for i in range(12):
            px = np.clip(np.array(COLORS[name]) + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(ws.library / name / f"{name}_{i:02d}.png")
    lib = Library(ws)

    def save(run_id):
        snap = assign_splits(lib.scan())
        return save_run(ws, _color_model(THREE, GOOD3), classes=THREE, splits=snap,
                        config={"model": "colour_net"}, run_id=run_id)

    early = save("early")
    choose_benchmark(lib, per_class=4)
    later = save("later")
    return ws, early, later


def test_a_run_is_never_measured_on_images_it_trained_on(leak_ws):
    ws, early, later = leak_ws
    bench = ev.benchmark_rows(ws)
    assert len(bench) == 12
    seen = ev.seen_hashes(early) & set(bench["hash"])
    assert 0 < len(seen) < 12 and not ev.seen_hashes(later) & set(bench["hash"])
    exposure = ev.benchmark_exposure(ws).set_index("run_id")
    assert exposure.loc["early", "seen_own"] == len(seen) and exposure.loc["later", "seen_with_ancestors"] == 0

    first = ev.promote(ws, early, min_images=1)
    assert first.accepted and first.n_dropped == len(seen) and first.n_images == 12 - len(seen)
    assert any(f"{len(seen)} benchmark image(s) were in the train/val split" in w for w in first.warnings)
    (ws.runs / PROMOTIONS_FILE).unlink()
    ws.production_file.unlink()

    too_few = ev.promote(ws, early)  # fewer than 10 unseen images left
    assert not too_few.accepted
    assert too_few.failed_checks == ["at least 10 unseen benchmark images"]
    assert "Only" in too_few.summary
    assert ev.promote(ws, later).accepted  # its own training held the benchmark out: 12 images
    # Against production "later", the comparison drops what "early" saw, and refuses when too few remain.
    res = ev.promote(ws, early)
    assert not res.accepted and res.n_dropped == len(seen)
    forced = ev.promote(ws, early, override="known leak, accepted for the pilot")
    assert forced.accepted and forced.failed_checks == ["at least 10 unseen benchmark images"]
