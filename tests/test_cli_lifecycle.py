"""`imgcls evaluate`, `imgcls filter` and `imgcls apply`, run as a user runs them (a subprocess).

The run is a hand-set colour model saved with a temperature (no training), so
the commands are checked against the public API on the same workspace.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls import bulk
from imgcls.core import open_workspace
from imgcls.library import Library, assign_splits
from test_cli import run

CLASSES = ["antelope", "cow", "zebra"]
RGB = {"antelope": (200, 60, 60), "cow": (60, 200, 60), "zebra": (60, 60, 200)}


def noisy(path, rgb, rng, spread=70):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.array(rgb) + rng.normal(0, spread, (16, 16, 3)), 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    import keras

    from imgcls.runs import save_run

    ws = open_workspace(tmp_path_factory.mktemp("cli_life") / "ws", cutoff=5)
    rng = np.random.default_rng(0)
    for label, rgb in RGB.items():
        for i in range(30):
            noisy(ws.library / label / f"{label}_{i:02d}.png", rgb, rng)
        for i in range(10):
            noisy(ws.unlabelled / "batch" / f"{label}_{i:02d}.png", rgb, rng, spread=110)
    noisy(ws.unknown / "odd.png", (120, 120, 120), rng)
    Library(ws).set_flags([str(p) for p in sorted((ws.library / "zebra").glob("*.png"))[:20]], staged=True)
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(pooled)
    model = keras.Model(inputs, out, name="colour_net")
    model.get_layer("predictions").set_weights([np.eye(3, dtype="float32") * 12, np.zeros(3, "float32")])
    cal = {"temperature": 1.5, "fitted_on": "val", "n": 9, "nll_before": 0.5, "nll_after": 0.4,
           "ece_before": 0.1, "ece_after": 0.05}
    snapshot = assign_splits(Library(ws).scan())
    snapshot = snapshot[snapshot["label"].isin(CLASSES)]
    save_run(ws, model, classes=CLASSES, splits=snapshot, run_id="colour", config={"model": "colour_net",
                                                                                   "calibration": cal})
    bulk.identify(ws, run="colour", progress=False)  # bulk/colour-unlabelled.parquet
    return ws


def test_evaluate_prints_classes_n_pairs_matrix_calibration_and_writes_figures(ws, tmp_path):
    out = run("evaluate", "colour", "-w", ws.root, "--split", "test", "--out", tmp_path / "figs").stdout
    from imgcls.evaluation import evaluate

    result = evaluate("colour", "test", workspace=ws)
    assert f"{result['summary']['n']} images" in out
    assert "calibrated with temperature 1.50" in out
    assert f"{result['summary']['ece_raw']:.1%} before, {result['summary']['ece']:.1%} after" in out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "class n precision recall f1 predicted correct" in lines
    for cls, row in result["per_class"][result["per_class"]["support"] > 0].iterrows():
        assert any(line.startswith(f"{cls} {int(row['support'])} ") for line in lines), cls
    assert "Most confused pairs" in out and "Confusion matrix" in out and "predicted antelope cow zebra" in lines
    figs = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert figs == ["evaluate-colour-test-calibration.png", "evaluate-colour-test-confusion.png"]
    missing = run("evaluate", "-w", ws.root, "--no-figures", check=False)  # no production run yet
    assert missing.returncode == 2 and "production" in missing.stderr


@pytest.mark.parametrize("name,options", [
    ("low-count", ["--below", 31]),
    ("staged", ["--min-share", 0.5]),
    ("look-alike", ["--class", "cow", "--class", "zebra", "--min-score", 0.0, "--max-score", 0.9]),
    ("unknown", []),
    ("lowest", ["--n", 5]),
    ("entropy", ["--n", 7]),
    ("margin", []),
])
def test_filter_writes_what_the_api_returns(ws, tmp_path, name, options):
    csv = tmp_path / f"{name}.csv"
    out = run("filter", name, "-w", ws.root, "--out", csv, *options).stdout
    results = bulk.load_results(ws.bulk / "colour-unlabelled.parquet")
    kw = {"below": 31} if name == "low-count" else {}
    kw.update({"look-alike": {"predicted": ["cow", "zebra"], "min_score": 0.0, "max_score": 0.9},
               "lowest": {"n": 5}, "entropy": {"n": 7}}.get(name, {}))
    expected = bulk.filter_results(results, name, library=Library(ws), **kw)
    written = pd.read_csv(csv)
    assert written["path"].tolist() == expected["path"].tolist()
    assert f"{name}: {len(expected)} of {len(results)} images" in out
    if name in ("low-count", "staged", "look-alike", "lowest", "entropy"):
        assert len(written) > 0, name


def test_filter_needs_results_and_options(ws, tmp_path):
    bad = run("filter", "look-alike", "-w", ws.root, "--out", tmp_path / "x.csv", check=False)
    assert bad.returncode == 2 and "--class" in bad.stderr
    empty = open_workspace(tmp_path / "empty", create=True)
    none = run("filter", "lowest", "-w", empty.root, check=False)
    assert none.returncode == 2 and "imgcls identify" in none.stderr


def test_apply_moves_in_one_step_and_undo_reverts_it(ws, tmp_path):
    pool = sorted(ws.unlabelled.rglob("*.png"))
    csv = tmp_path / "decisions.csv"
    pd.DataFrame({
        "path": [str(pool[0]), pool[1].relative_to(ws.root).as_posix(), str(pool[2]), str(pool[3])],
        "action": ["label", "unknown", "discard", "skip"],
        "label": ["gazelle", "", "", ""],
        "reason": ["looks like one", "", "blurred", ""],
    }).to_csv(csv, index=False)
    dry = run("apply", csv, "-w", ws.root, "--dry-run").stdout
    assert "4 decisions checked; nothing moved" in dry and all(p.exists() for p in pool[:4])
    out = run("apply", csv, "-w", ws.root).stdout
    assert "4 of 4 decisions applied in one step (undo it with `imgcls undo`)." in out
    assert (ws.library / "gazelle" / pool[0].name).exists() and (ws.unknown / pool[1].name).exists()
    assert (ws.trash / pool[2].name).exists() and pool[3].exists()
    journal = json.loads(run("journal", "-w", ws.root, "--json").stdout)
    assert len({e["batch"] for e in journal[-3:]}) == 1
    run("undo", "-w", ws.root)
    assert all(p.exists() for p in pool[:4])


def test_apply_refuses_a_malformed_file_and_moves_nothing(ws, tmp_path):
    pool = sorted(ws.unlabelled.rglob("*.png"))
    csv = tmp_path / "bad.csv"
    pd.DataFrame({"path": [str(pool[0]), str(pool[1])], "action": ["label", "delete"],
                  "label": ["cow", ""]}).to_csv(csv, index=False)
    bad = run("apply", csv, "-w", ws.root, check=False)
    assert bad.returncode == 2 and "nothing was moved" in bad.stderr and "line 3" in bad.stderr
    assert pool[0].exists() and pool[1].exists()


def test_help_lists_the_life_cycle_commands():
    out = run("--help").stdout
    for cmd in ("train", "evaluate", "promote", "identify", "filter", "apply", "undo"):
        assert cmd in out
