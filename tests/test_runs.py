"""Tests for imgcls.runs: run folders on disk, loading, listing, lineage."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from imgcls.core import open_workspace
from imgcls.runs import (
    Run,
    RunNotFoundError,
    lineage,
    list_runs,
    load_run,
    new_run_id,
    partial_dir,
    save_run,
    update_metrics,
)

CLASSES = ["cat", "dog", "owl"]


def tiny_model(num_classes=3, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="preprocess")(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny")


def splits_frame():
    return pd.DataFrame({
        "path": [f"/lib/{c}/{i}.png" for c in CLASSES for i in range(4)],
        "relpath": [f"{c}/{i}.png" for c in CLASSES for i in range(4)],
        "hash": [f"{c}{i:063d}" for c in CLASSES for i in range(4)],
        "label": [c for c in CLASSES for _ in range(4)],
        "split": ["train", "train", "val", "test"] * 3,
    })


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


def save(ws, *, parent=None, throwaway=False, metrics=None, **config):
    cfg = {"model": "tiny", "seed": 0, "cutoff": 4, **config}
    history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5], "val_accuracy": [0.5, 0.75]})
    return save_run(ws, tiny_model(), classes=CLASSES, config=cfg, history=history,
                    splits=splits_frame(), metrics=metrics or {"test": {"accuracy": 0.9, "n": 3}},
                    parent=parent, throwaway=throwaway)


def test_save_and_load_round_trip_same_predictions(ws):
    run = save(ws)
    assert run.path.parent == ws.runs and run.path.is_dir()
    names = {p.name for p in run.path.iterdir()}
    assert {"model.keras", "classes.json", "config.json", "history.csv", "splits.parquet",
            "metrics.json", "checkpoints", "logs"} <= names

    again = load_run(run.run_id, workspace=ws)
    assert again.classes == CLASSES
    assert again.config["model"] == "tiny"
    assert again.config["input_shape"] == [8, 8, 3]
    assert again.config["generation"] == 1 and again.parent is None and again.throwaway is False
    assert set(again.config["versions"]) >= {"imgcls", "keras", "tensorflow", "python"}
    assert again.config["library"]["n_images"] == 12
    assert again.config["library"]["per_split"] == {"test": 3, "train": 6, "val": 3}
    assert list(again.history["epoch"]) == [1, 2]
    assert list(again.splits.columns[:5]) == ["path", "relpath", "hash", "label", "split"]
    assert len(again.splits) == 12
    assert again.metrics["test"]["accuracy"] == 0.9
    assert again.created is not None and again.created.tzinfo is not None

    x = np.random.default_rng(0).uniform(0, 255, (5, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(again.model.predict(x, verbose=0), run.model.predict(x, verbose=0), atol=1e-6)
    assert again.model is again.model  # loaded once, then kept
    assert load_run(run.path) == again  # a folder path works too
    assert load_run(str(run.path)) == again


def test_run_ids_sortable_readable_unique():
    import datetime as dt

    t = dt.datetime(2026, 11, 28, 22, 45, 12, tzinfo=dt.timezone.utc)
    rid = new_run_id("mini_inception", generation=1, now=t)
    assert re.fullmatch(r"20261128-224512-mini_inception-g1-[0-9a-f]{4}", rid)
    later = new_run_id("a/b c", generation=3, now=t + dt.timedelta(seconds=1))
    assert later > rid and "-a_b_c-g3-" in later
    assert len({new_run_id("x") for _ in range(50)}) > 40
    with pytest.raises(ValueError, match="generation"):
        new_run_id("x", generation=0)


def test_save_run_validates_and_never_leaves_half_a_run(ws):
    with pytest.raises(ValueError, match="3 outputs but 2 classes"):
        save_run(ws, tiny_model(), classes=["a", "b"])
    with pytest.raises(ValueError, match="run_id"):
        save_run(ws, tiny_model(), classes=CLASSES, run_id="production")
    with pytest.raises(ValueError, match="split"):
        save_run(ws, tiny_model(), classes=CLASSES, splits=pd.DataFrame({"path": ["x"]}), run_id="r1")
    # A failure half way (bad skipped table, after the model was written) leaves nothing behind.
    with pytest.raises(ValueError):
        save_run(ws, tiny_model(), classes=CLASSES, skipped="not a table", run_id="r1")
    assert list(ws.runs.iterdir()) == []
    save_run(ws, tiny_model(), classes=CLASSES, run_id="r1")
    with pytest.raises(FileExistsError, match="r1"):
        save_run(ws, tiny_model(), classes=CLASSES, run_id="r1")


def test_update_metrics_merges_sections(ws):
    run = save(ws, metrics={"test": {"accuracy": 0.9, "n": 3}, "training": {"epochs_trained": 2}})
    update_metrics(run.run_id, {"test": {"top_k_accuracy": 1.0}, "benchmark": {"accuracy": 0.8, "n": 5}},
                   workspace=ws)
    m = load_run(run.run_id, workspace=ws).metrics
    assert m["test"] == {"accuracy": 0.9, "n": 3, "top_k_accuracy": 1.0}
    assert m["benchmark"] == {"accuracy": 0.8, "n": 5}
    assert m["training"] == {"epochs_trained": 2}
    with pytest.raises(ValueError, match="dict"):
        run.update_metrics([1, 2])


def test_list_runs_lineage_and_production(ws):
    empty = list_runs(ws)
    assert len(empty) == 0
    assert {"run_id", "created", "model", "n_classes", "parent", "throwaway", "best_val_accuracy",
            "test_accuracy", "production"} <= set(empty.columns)

    root = save(ws)
    child = save(ws, parent=root)
    grandchild = save(ws, parent=child.run_id, throwaway=True)
    assert "-g2-" in child.run_id and "-g3-" in grandchild.run_id
    assert child.generation == 2 and grandchild.generation == 3
    assert lineage(grandchild) == [grandchild.run_id, child.run_id, root.run_id]
    assert lineage(root.run_id, workspace=ws) == [root.run_id]

    # Unfinished and temporary folders are never listed.
    partial_dir(ws, "interrupted-run").mkdir()
    (ws.runs / ".r.saving-x").mkdir()
    ws.production_file.write_text(json.dumps({"run_id": child.run_id}))

    table = list_runs(ws)
    assert table["run_id"].tolist() == sorted([root.run_id, child.run_id, grandchild.run_id])
    row = table.set_index("run_id").loc[grandchild.run_id]
    assert row["parent"] == child.run_id and bool(row["throwaway"]) and row["n_classes"] == 3
    assert row["best_val_accuracy"] == 0.75 and row["test_accuracy"] == 0.9
    assert table["production"].tolist() == [r == child.run_id for r in table["run_id"]]
    assert load_run("production", workspace=ws).run_id == child.run_id
    assert load_run("latest", workspace=ws).run_id in set(table["run_id"])


def test_load_run_errors_name_available_runs(ws):
    with pytest.raises(RunNotFoundError, match="no runs"):
        load_run("nope", workspace=ws)
    with pytest.raises(RunNotFoundError, match="No run is in production"):
        load_run("production", workspace=ws)
    run = save(ws)
    with pytest.raises(ValueError, match=re.escape(run.run_id)) as err:
        load_run("nope", workspace=ws)
    assert "Available run ids" in str(err.value)
    ws.production_file.write_text(json.dumps({"run_id": "deleted-run"}))
    with pytest.raises(RunNotFoundError, match="deleted-run.*missing"):
        load_run("production", workspace=ws)
    ws.production_file.write_text("[1, 2]")
    with pytest.raises(ValueError, match="run_id"):
        load_run("production", workspace=ws)
    with pytest.warns(UserWarning, match="production pointer"):
        assert list_runs(ws)["run_id"].tolist() == [run.run_id]  # a damaged pointer hides no run
    partial_dir(ws, "halfway").mkdir()
    with pytest.raises(RunNotFoundError, match=r"never finished.*train\(workspace, run_id='halfway'\)"):
        load_run("halfway", workspace=ws)
    with pytest.raises(ValueError, match="Pass the workspace"):
        load_run("some-id")
    with pytest.raises(RunNotFoundError, match="not a run folder"):
        Run(ws.root)


def test_reading_runs_does_not_import_tensorflow(ws):
    run = save(ws)
    code = (
        "import sys; from imgcls.runs import list_runs, load_run; "
        f"t = list_runs({str(ws.root)!r}); r = load_run({run.run_id!r}, workspace={str(ws.root)!r}); "
        "r.history, r.metrics, r.splits, r.classes; "
        "print(len(t), 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False", "False"]
