"""Tests for the lineage report of a workspace: the family tree, the generations, the training-cost
table, the deck's "model generations" slides and ``imgcls lineage``.

The fast tests use a hand-made run family written through the public runs API
(:func:`imgcls.runs.save_run`, real Keras models whose behaviour is set by
hand, hand-made training metrics) and promoted through the real deploy gate
(:func:`imgcls.evaluation.promote`): a run from scratch (promoted), its head
swap adding a class (promoted: production), a throw-away child, a second head
swap the gate refuses, and a from-scratch run on the same classes as the
production run (what the saved hours are measured against). The slow test
trains a real two-generation family.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls import reports
from imgcls.core import open_workspace
from imgcls.library import Library, assign_splits, choose_benchmark
from imgcls.runs import production_line, run_family

COLORS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200), "yellow": (200, 200, 40)}
_W = np.array([[1.0, -1.0, -0.5, 0.5], [-1.0, 1.0, -0.5, 0.5], [0.0, 0.0, 1.0, -1.0]], np.float32)
THREE = ["blue", "green", "red"]
FOUR = ["blue", "green", "red", "yellow"]

#: (run id, parent, classes, behaviour, throwaway, created, wall s, epochs, benchmark acc, benchmark n)
FAMILY = [
    ("g1-scratch", None, THREE, "good", False, "2026-01-01T10:00:00+00:00", 3600, 40, 0.80, 300),
    ("g2-headswap", "g1-scratch", FOUR, "good", False, "2026-02-01T10:00:00+00:00", 1800, 12, 0.95, 320),
    ("g3-throwaway", "g2-headswap", FOUR, "good", True, "2026-02-10T10:00:00+00:00", 600, 5, 0.70, 320),
    ("g3-headswap", "g2-headswap", FOUR, "all_red", False, "2026-03-01T10:00:00+00:00", 900, 8, 0.25, 320),
    ("scratch4", None, FOUR, "good", False, "2026-03-02T10:00:00+00:00", 5400, 60, 0.90, 320),
]
PROMOTIONS = {"g1-scratch": True, "g2-headswap": True, "g3-headswap": False}


def _colour_model(classes, behaviour):
    """A real Keras model: mean colour -> colour -> class (``behaviour`` "good" or "all_red")."""
    import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(inp)
    x = keras.layers.Dense(4, name="colour")(x)
    x = keras.layers.Activation("softmax")(x)
    out = keras.layers.Dense(len(classes), activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out, name="colour_net")
    model.get_layer("colour").set_weights([_W * 0.2, np.zeros(4, np.float32)])
    m = np.zeros((4, len(classes)), np.float32)
    for i, colour in enumerate(COLORS):
        target = colour if behaviour == "good" else "red"
        if target in classes:
            m[i, classes.index(target)] = 10.0
    model.get_layer("predictions").set_weights([m, np.zeros(len(classes), np.float32)])
    return model


def _library(root, colours, per_class=12):
    ws = open_workspace(root, cutoff=5)
    rng = np.random.default_rng(0)
    for name in colours:
        folder = ws.library / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            px = np.clip(np.array(COLORS[name]) + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(folder / f"{name}_{i:02d}.png")
    return ws


@pytest.fixture(scope="module")
def family_ws(tmp_path_factory):
    """The hand-made family, promoted through the real deploy gate."""
    from imgcls.evaluation import promote
    from imgcls.runs import save_run

    ws = _library(tmp_path_factory.mktemp("lineage") / "ws", COLORS)
    lib = Library(ws)
    lib.scan()
    choose_benchmark(lib, per_class=5)
    cat = assign_splits(Library(ws).scan())
    for run_id, parent, classes, behaviour, throwaway, created, wall, epochs, bench, n in FAMILY:
        metrics = {"training": {"epochs_trained": epochs, "best_epoch": epochs - 3, "wall_time_s": wall,
                                "best_val_accuracy": bench},
                   "test": {"accuracy": bench - 0.02, "n": 150}, "benchmark": {"accuracy": bench, "n": n}}
        save_run(ws, _colour_model(classes, behaviour), classes=classes, splits=cat[cat["label"].isin(classes)],
                 config={"model": "colour_net", "created": created}, metrics=metrics, run_id=run_id,
                 parent=parent, throwaway=throwaway)
        if run_id in PROMOTIONS:
            result = promote(ws, run_id, reason="test")
            assert bool(result) is PROMOTIONS[run_id], result
    return ws


# ----------------------------------------------------------------------------- the family
def test_family_tree_from_the_runs(family_ws):
    fam = run_family(family_ws)
    assert fam["run_id"].tolist() == [f[0] for f in FAMILY]  # oldest first
    by = fam.set_index("run_id")
    assert by.loc["g1-scratch", "method"] == "scratch" and by.loc["g1-scratch", "parent"] is None
    assert by.loc["g2-headswap", "method"] == "head_swap" and by.loc["g2-headswap", "generation"] == 2
    assert by.loc["g2-headswap", "classes_added"] == "yellow"
    assert by.loc["g2-headswap", "images_added"] == 12  # 48 images of four classes minus 36 of three
    assert by.loc["g1-scratch", "images_added"] == 36
    assert by.loc["g3-throwaway", "throwaway"] and by.loc["g3-throwaway", "classes_added"] == ""
    assert set(by["root"]) == {"g1-scratch", "scratch4"}
    assert by.loc["g3-headswap", "root"] == "g1-scratch"
    # promotions: from the promotions log, a refused one shows as refused with its reasons
    assert by.loc["g1-scratch", "promotion"] == "promoted"
    assert by.loc["g2-headswap", "promotion"] == "production" and by.loc["g2-headswap", "production"]
    assert by.loc["g3-headswap", "promotion"] == "refused" and by.loc["g3-headswap", "refusals"] == 1
    assert by.loc["g3-headswap", "refusal_reason"] and pd.notna(by.loc["g3-headswap", "refused_at"])
    assert pd.notna(by.loc["g1-scratch", "promoted_at"]) and pd.isna(by.loc["g3-headswap", "promoted_at"])
    assert by.loc["g3-throwaway", "promotion"] == "not promoted"
    assert production_line(fam) == ["g1-scratch", "g2-headswap"]


def test_report_tables(family_ws):
    rep = reports.lineage_report(family_ws)
    assert set(rep) == {"tree", "generations", "cost"}
    assert all(isinstance(df, pd.DataFrame) for df in rep.values())
    tree = rep["tree"]
    assert tree.set_index("run_id")["on_line"].to_dict() == {
        "g1-scratch": True, "g2-headswap": True, "g3-throwaway": False, "g3-headswap": False, "scratch4": False}
    text = tree.attrs["text"]
    assert "THROW-AWAY" in text and "PRODUCTION" in text and "refused" in text and "+1 class (yellow)" in text
    gens = rep["generations"]
    assert gens["run_id"].tolist()[:2] == ["g1-scratch", "g2-headswap"]  # the production line first
    row = gens.set_index("run_id").loc["g2-headswap"]
    assert row["epochs_trained"] == 12 and row["wall_hours"] == pytest.approx(0.5)
    assert row["benchmark_accuracy"] == pytest.approx(0.95) and row["benchmark_n"] == 320
    assert pd.isna(row["cpu_hours"])  # not recorded by the training


def test_cost_table_arithmetic(family_ws):
    cost = reports.lineage_report(family_ws, price_per_hour=2.0)["cost"]
    gens = cost[cost["kind"] == "generation"].set_index("run_id")
    assert gens["hours"].tolist() == pytest.approx([1.0, 0.5])
    assert gens["cum_hours"].tolist() == pytest.approx([1.0, 1.5])
    assert gens["cost"].tolist() == pytest.approx([2.0, 1.0])
    assert gens["cum_cost"].tolist() == pytest.approx([2.0, 3.0])
    # saved hours: only against the workspace's own from-scratch run on the same four classes
    assert pd.isna(gens.loc["g1-scratch", "hours_saved"])
    assert gens.loc["g2-headswap", "scratch_run_id"] == "scratch4"
    assert gens.loc["g2-headswap", "scratch_hours"] == pytest.approx(1.5)
    assert gens.loc["g2-headswap", "hours_saved"] == pytest.approx(1.0)
    assert gens.loc["g2-headswap", "cost_saved"] == pytest.approx(2.0)
    other = cost[cost["kind"] == "other runs"].iloc[0]
    assert other["runs"] == 3 and other["hours"] == pytest.approx((600 + 900 + 5400) / 3600)
    total = cost[cost["kind"] == "total"].iloc[0]
    assert total["runs"] == 5 and total["hours"] == pytest.approx(12300 / 3600)
    assert total["cost"] == pytest.approx(2 * 12300 / 3600)
    assert not any(c.endswith("_estimate") for c in cost.columns)  # no estimate unless asked
    assert cost.attrs["saved_measured"] == [2] and cost.attrs["saved_missing"] == []
    # price 0 (the default): hours only
    free = reports.lineage_report(family_ws)["cost"]
    assert free["cost"].isna().all() and free["cum_cost"].isna().all()


def test_no_saved_hours_without_an_own_scratch_run(family_ws):
    fam = run_family(family_ws)
    cost = reports.cost_table(fam[fam["run_id"] != "scratch4"])
    gens = cost[cost["kind"] == "generation"].set_index("run_id")
    assert gens["hours_saved"].isna().all() and gens["cum_hours_saved"].isna().all()
    assert cost.attrs["saved_missing"] == [2]
    assert "Head swaps saved" not in reports.generation_findings(
        {"generations": reports.generation_table(fam), "cost": cost})["cost"]


def test_estimate_is_labelled_and_separate(family_ws, tmp_path):
    results = tmp_path / "lineage.json"
    runs = [{"arm": "head_swap", "seed": 0, "generation": 1, "wall_time_s": 100.0},
            {"arm": "scratch", "seed": 0, "generation": 1, "wall_time_s": 100.0},
            {"arm": "head_swap", "seed": 0, "generation": 2, "wall_time_s": 10.0},
            {"arm": "scratch", "seed": 0, "generation": 2, "wall_time_s": 40.0},
            {"arm": "head_swap", "seed": 0, "generation": 3, "wall_time_s": 10.0},
            {"arm": "scratch", "seed": 0, "generation": 3, "wall_time_s": 20.0}]
    results.write_text(json.dumps({"runs": runs}))
    assert reports.experiment_ratio(results) == pytest.approx(3.0)
    cost = reports.lineage_report(family_ws, estimate_from=results)["cost"]
    g2 = cost.set_index("run_id").loc["g2-headswap"]
    assert g2["scratch_hours_estimate"] == pytest.approx(1.5) and g2["hours_saved_estimate"] == pytest.approx(1.0)
    assert g2["hours_saved"] == pytest.approx(1.0)  # the measured column is untouched
    assert "ESTIMATE" in cost.attrs["estimate"]["label"]
    with pytest.raises(ValueError, match="No lineage results"):
        reports.lineage_report(family_ws, estimate_from=tmp_path / "missing.json")


# ----------------------------------------------------------------------------- slides and the deck
def test_generation_slides_state_findings(family_ws):
    rep = reports.lineage_report(family_ws)
    findings = reports.generation_findings(rep)
    assert findings["accuracy"] == ("Benchmark accuracy rose from 80.0% in generation 1 to 95.0% in generation 2 "
                                    "(n=300 and 320 benchmark images)")
    assert findings["cost"] == "Head swaps saved 1.0 h of training against from-scratch runs on the same classes"
    figs = reports.build_generation_figures(rep)
    assert set(figs) == {"generation_accuracy", "generation_cost"}
    for fig in figs.values():
        w, h = fig.get_size_inches()
        assert abs(w / h - 16 / 9) < 0.01
    assert figs["generation_accuracy"]._suptitle.get_text().replace("\n", " ") == findings["accuracy"]
    subtitle = figs["generation_accuracy"].axes[0].get_title(loc="left").replace("\n", " ")
    assert "n = 300, 320" in subtitle
    # a handful of benchmark images claims nothing
    small = dict(rep, generations=rep["generations"].assign(benchmark_n=12))
    assert reports.generation_findings(small)["accuracy"].startswith("Too early to compare generations")


def test_deck_gains_the_generation_slides(family_ws, tmp_path):
    from imgcls.translog import TransactionLog

    TransactionLog(family_ws).close()  # the deck reads the serving log; an empty one still reports
    files = reports.export_deck(family_ws, out_dir=tmp_path / "deck", formats="png")
    assert {"generation_accuracy", "generation_cost"} <= set(files.loc[files["kind"] == "figure", "name"])
    assert {"generation_tree", "generations", "generation_cost"} <= set(files.loc[files["kind"] == "table", "name"])
    for name in ("generation_accuracy", "generation_cost"):
        with Image.open(tmp_path / "deck" / f"{name}.png") as im:
            assert abs(im.size[0] / im.size[1] - 16 / 9) < 0.01
    md = (tmp_path / "deck" / "summary.md").read_text()
    assert "## Model generations" in md and "rose from 80.0%" in md
    cost = pd.read_csv(tmp_path / "deck" / "generation_cost.csv")
    assert not any("estimate" in c for c in cost.columns)


def test_one_generation_gets_no_slides(tmp_path):
    from imgcls.runs import save_run
    from imgcls.translog import TransactionLog

    ws = _library(tmp_path / "ws", THREE, per_class=6)
    cat = assign_splits(Library(ws).scan())
    save_run(ws, _colour_model(THREE, "good"), classes=THREE, splits=cat, run_id="only",
             metrics={"training": {"epochs_trained": 3, "wall_time_s": 60}, "benchmark": {"accuracy": 1.0, "n": 3}})
    rep = reports.lineage_report(ws)
    assert reports.build_generation_figures(rep) == {}
    assert reports.generation_findings(rep)["accuracy"].startswith("Too early")
    TransactionLog(ws).close()
    files = reports.export_deck(ws, out_dir=tmp_path / "deck", formats="png")
    slides = set(files.loc[files["kind"] == "figure", "name"])
    assert not {"generation_accuracy", "generation_cost"} & slides
    assert {"generations", "generation_cost"} <= set(files.loc[files["kind"] == "table", "name"])
    assert "Too early" in (tmp_path / "deck" / "summary.md").read_text()
    empty = reports.lineage_report(tmp_path / "nothing")
    assert all(len(df) == 0 for df in empty.values())


# ----------------------------------------------------------------------------- the command
def _run_cli(argv):
    from imgcls.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def test_imgcls_lineage_command(family_ws):
    code, text = _run_cli(["lineage", "-w", str(family_ws.root), "--price-per-hour", "2"])
    assert code == 0
    assert "Family tree" in text and "THROW-AWAY" in text and "refused" in text
    assert "Training cost at 2.00 per hour" in text and "scratch4" in text
    assert "rose from 80.0%" in text
    code, text = _run_cli(["lineage", "-w", str(family_ws.root), "--json", "--estimate-from", "3"])
    data = json.loads(text)
    assert code == 0 and data["line"] == ["g1-scratch", "g2-headswap"]
    g2 = next(r for r in data["cost"] if r["run_id"] == "g2-headswap")
    assert g2["hours_saved"] == pytest.approx(1.0) and g2["scratch_hours_estimate"] == pytest.approx(1.5)
    assert "ESTIMATE" in data["estimate"]["label"]
    refused = next(r for r in data["generations"] if r["run_id"] == "g3-headswap")
    assert refused["promotion"] == "refused"
    code, _ = _run_cli(["lineage", "-w", str(family_ws.root), "--estimate-from", "nope.json"])
    assert code == 2


def test_report_needs_no_tensorflow(family_ws):
    code = ("import sys, imgcls.reports as r; rep = r.lineage_report(sys.argv[1]); "
            "r.build_generation_figures(rep); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print(len(rep['tree']))")
    proc = subprocess.run([sys.executable, "-c", code, str(family_ws.root)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "5"


# ----------------------------------------------------------------------------- a trained family
@pytest.mark.slow  # trains two one-epoch runs
def test_report_of_a_trained_family(tmp_path):
    from imgcls.training import next_generation, train

    ws = _library(tmp_path / "ws", THREE, per_class=12)
    first = train(ws, model="simple_cnn", image_size=32, max_epochs=1, patience=1, verbose=0)
    _library(ws.root, ["yellow"], per_class=12)
    second = next_generation(ws, first, max_epochs=1, patience=1, verbose=0)
    rep = reports.lineage_report(ws)
    tree = rep["tree"].set_index("run_id")
    assert tree.loc[second.run_id, "parent"] == first.run_id
    assert tree.loc[second.run_id, "method"] == "head_swap"
    assert tree.loc[second.run_id, "classes_added"] == "yellow"
    assert tree.loc[second.run_id, "images_added"] == 12
    gens = rep["generations"].set_index("run_id")
    assert gens.loc[second.run_id, "epochs_trained"] == 1 and gens.loc[second.run_id, "wall_hours"] > 0
    cost = rep["cost"]
    assert cost.attrs["line"] == [first.run_id, second.run_id]
    assert cost.loc[cost["kind"] == "generation", "cum_hours"].iloc[-1] == pytest.approx(
        gens["wall_hours"].sum())
