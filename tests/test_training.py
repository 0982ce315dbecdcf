"""Tests for imgcls.training: train until plateau, resume, skipped files, metrics, plots.

Everything runs on a tiny real workspace: 3 colour classes x 20 PNGs of
32x32 pixels, the ``simple_cnn`` model at 32x32, 1-3 epochs.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls.core import open_workspace
from imgcls.library import Library, assign_splits
from imgcls.runs import RunNotFoundError, lineage, list_runs, load_run, partial_dir
from imgcls.training import model_metrics, plot_history, train

pytestmark = pytest.mark.slow  # trains models

COLOURS = {"blue": (40, 40, 210), "green": (40, 200, 40), "red": (210, 40, 40)}
FAST = dict(model="simple_cnn", image_size=32, batch_size=16, verbose=0)


def make_workspace(root, *, per_class=20, seed=0):
    """A workspace whose library has one folder of noisy solid-colour PNGs per class."""
    ws = open_workspace(root, cutoff=10)
    rng = np.random.default_rng(seed)
    for label, colour in COLOURS.items():
        folder = ws.library / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.asarray(colour)[None, None] + rng.normal(0, 25, (32, 32, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{label}_{i:02d}.png")
    return ws


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run trained for 2 epochs; one training image turned to junk after the catalog was made."""
    ws = make_workspace(tmp_path_factory.mktemp("trained") / "ws")
    catalog = assign_splits(Library(ws).scan())
    victim = catalog[catalog["split"] == "train"]["path"].iloc[0]
    with open(victim, "wb") as f:
        f.write(b"this is not a PNG any more")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(ws, catalog=catalog, max_epochs=2, patience=5, **FAST)
    return ws, run, victim, [str(w.message) for w in caught]


def test_train_writes_a_complete_run(trained):
    ws, run, _, _ = trained
    assert run.path == ws.runs / run.run_id
    assert not partial_dir(ws, run.run_id).exists()
    assert "-simple_cnn-g1-" in run.run_id
    assert run.classes == ["blue", "green", "red"]
    cfg = run.config
    for key in ("model", "input_shape", "cutoff", "seed", "batch_size", "max_epochs", "patience",
                "augmentation", "parent", "throwaway", "created", "library", "versions"):
        assert key in cfg, key
    assert cfg["model"] == "simple_cnn" and cfg["input_shape"] == [32, 32, 3] and cfg["cutoff"] == 10
    assert cfg["augmentation"]["flip"] is True and cfg["parent"] is None and cfg["generation"] == 1
    assert cfg["cache"] is True  # cache="auto": 60 small images are decoded once, kept in memory
    hist = run.history
    assert hist["epoch"].tolist() == [1, 2]
    assert {"loss", "accuracy", "top_k_accuracy", "val_loss", "val_accuracy", "epoch_time_s"} <= set(hist.columns)
    m = run.metrics
    assert m["training"]["epochs_trained"] == 2
    assert 1 <= m["training"]["best_epoch"] == m["training"]["epochs_to_plateau"] <= 2
    assert m["training"]["wall_time_s"] > 0
    assert 0 < m["training"]["cpu_time_s"]  # process CPU seconds: the lineage cost table reads them
    assert m["test"]["n"] > 0 and 0 <= m["test"]["accuracy"] <= 1 and m["test"]["top_k"] == 3
    # The first training fixes the benchmark set: 6 of each class's 20 images (10%, floor 10, at most a third).
    assert m["benchmark"]["n"] == 18 and m["benchmark"]["top_k"] == 3
    assert set(run.splits["split"]) <= {"train", "val", "test", "benchmark"} and len(run.splits) == 60
    assert any((run.logs_dir / "train").iterdir()) and any((run.logs_dir / "validation").iterdir())
    ckpt = {p.name for p in run.checkpoints_dir.iterdir()}
    assert "state.json" in ckpt and "epoch-0002.keras" in ckpt
    row = list_runs(ws).set_index("run_id").loc[run.run_id]
    assert row["model"] == "simple_cnn" and row["n_classes"] == 3 and row["epochs"] == 2
    assert row["test_accuracy"] == m["test"]["accuracy"] and not row["production"]


def test_saved_run_round_trips_with_same_predictions(trained):
    ws, run, _, _ = trained
    again = load_run(run.run_id, workspace=ws)
    x = np.random.default_rng(1).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(again.model.predict(x, verbose=0), run.model.predict(x, verbose=0), atol=1e-5)
    with pytest.raises(RunNotFoundError, match="No run is in production"):
        load_run("production", workspace=ws)


def test_file_broken_after_catalog_is_reported_not_fatal(trained):
    _, run, victim, messages = trained
    skipped = run.skipped
    assert skipped["path"].tolist() == [victim]
    assert skipped["split"].tolist() == ["train"] and skipped["reason"].iloc[0]
    assert run.metrics["data"]["n_skipped"] == 1
    assert any("could not be read" in m and os.path.basename(victim) in m for m in messages)


def test_no_class_meets_cutoff_says_what_to_do(tmp_path):
    ws = make_workspace(tmp_path / "ws", per_class=3)
    with pytest.raises(ValueError) as err:
        train(ws, cutoff=40, **FAST)
    text = str(err.value)
    assert "cutoff=40" in text and "blue 3" in text and "cutoff=3" in text and "sample" in text
    with pytest.raises(ValueError, match="max_epochs"):
        train(ws, max_epochs=0, **FAST)
    with pytest.raises(ValueError, match="Unknown model name"):
        train(ws, model="resnet9000", cutoff=1)
    with pytest.raises(ValueError, match="`cache` must be True, False or 'auto'"):
        train(ws, cache="memory", cutoff=1)
    assert not ws.runs.exists() or list(ws.runs.iterdir()) == []  # refused before any run folder


def test_min_epochs_is_a_floor_under_early_stopping(tmp_path):
    # min_delta=1.0: no epoch after the first can improve val accuracy by a whole 100 points, so with
    # patience 0 the run would stop at epoch 2; min_epochs=4 keeps it going to 4, and epoch 1 stays the best.
    ws = make_workspace(tmp_path / "ws", per_class=12)
    plain = train(ws, max_epochs=6, patience=0, min_delta=1.0, **FAST)
    floored = train(ws, max_epochs=6, patience=0, min_delta=1.0, min_epochs=4, **FAST)
    assert plain.metrics["training"]["epochs_trained"] == 2
    t = floored.metrics["training"]
    assert (t["epochs_trained"], t["best_epoch"], t["stopped_early"]) == (4, 1, True)
    assert floored.config["min_epochs"] == 4 and plain.config["min_epochs"] == 0
    with pytest.raises(ValueError, match="min_epochs"):
        train(ws, min_epochs=-1, **FAST)


def test_model_options_reach_the_builder_and_the_runs_config(tmp_path):
    ws = make_workspace(tmp_path / "ws", per_class=12)
    run = train(ws, model="mobilenetv3_small", image_size=32, batch_size=16, verbose=0, max_epochs=1,
                model_options={"alpha": 0.75, "minimalistic": True})
    assert run.config["model_options"] == {"alpha": 0.75, "minimalistic": True}
    layer_names = [layer.name for layer in run.load_model().layers]
    # minimalistic MobileNetV3 has no squeeze-and-excite blocks and no hard-swish activations
    assert not any("squeeze_excite" in n or "hard_swish" in n for n in layer_names)
    with pytest.raises(ValueError, match=r"Unknown keyword argument\(s\) \['bn_momentum'\] for model 'simple_cnn'"):
        train(ws, model_options={"bn_momentum": 0.9}, **FAST)
    with pytest.raises(ValueError, match="`initial_model` is already built"):
        train(ws, initial_model=run.load_model(), model_options={"alpha": 0.5}, verbose=0)
    with pytest.raises(ValueError, match="must be a dict"):
        train(ws, model_options=["bn_momentum", 0.9], **FAST)
    assert list(list_runs(ws)["run_id"]) == [run.run_id]  # the refused ones left no run behind


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("simulated Ctrl-C")


class _EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_interrupted_fine_tuning_run_resumes_from_its_checkpoint(trained):
    ws, parent, _, _ = trained
    catalog = assign_splits(Library(ws).scan())
    run_id = "resume-test"
    # The fine-tuning loop's way in: a model with the right head plus the parent run id.
    with pytest.raises(KeyboardInterrupt) as err:
        train(ws, initial_model=parent.load_model(), parent=parent.run_id, catalog=catalog,
              run_id=run_id, max_epochs=3, patience=5, callbacks=[_InterruptAfterFirstEpoch()], **FAST)
    assert "resume" in " ".join(getattr(err.value, "__notes__", [])).lower()
    folder = partial_dir(ws, run_id)
    first = pd.read_csv(folder / "history.csv")
    assert first["epoch"].tolist() == [1]
    assert not (folder / "config.json").exists()  # an unfinished run never looks like a run
    assert run_id not in list_runs(ws)["run_id"].tolist()
    with pytest.raises(RunNotFoundError, match="never finished"):
        load_run(run_id, workspace=ws)

    recorder = _EpochRecorder()
    run = train(ws, run_id=run_id, callbacks=[recorder], verbose=0)
    assert recorder.epochs == [1, 2]  # 0-based: continued with epoch 2, then 3
    hist = run.history
    assert hist["epoch"].tolist() == [1, 2, 3]  # no duplicate epochs
    pd.testing.assert_series_equal(hist["loss"].iloc[:1], first["loss"], check_exact=False)
    assert run.metrics["training"]["sessions"] == 2
    assert run.metrics["training"]["resumed_at_epochs"] == [1]
    assert run.config["max_epochs"] == 3  # the saved settings, not train()'s defaults
    assert run.config["model"] == "simple_cnn" and run.config["generation"] == 2
    assert lineage(run) == [run_id, parent.run_id]
    assert not folder.exists()
    with pytest.raises(FileExistsError, match="finished already"):
        train(ws, run_id=run_id, **FAST)


def test_plot_history_states_the_finding(trained):
    ws, run, _, _ = trained
    fig = plot_history(run)
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy"]
    assert len(plot_history(run.history).axes) == 2
    assert fig.get_suptitle().startswith("Validation accuracy")
    texts = fig.get_supxlabel().replace("\n", " ")
    assert f"n = {run.metrics['data']['n_train']} train / {run.metrics['data']['n_val']} val images" in texts
    w, h = fig.get_size_inches()
    assert w / h == pytest.approx(16 / 9, rel=0.01)
    history = pd.DataFrame({"epoch": [1, 2, 3], "val_accuracy": [0.5, 0.68, 0.6], "loss": [1.0, 0.8, 0.7]})
    assert plot_history(history).get_suptitle() == "Validation accuracy plateaued at 68% by epoch 2"
    assert plot_history(history, title="Mine").get_suptitle() == "Mine"


def test_model_metrics_repeats_the_runs_test_metrics(trained):
    ws, run, _, _ = trained
    test_rows = run.splits[run.splits["split"] == "test"]
    metrics = model_metrics(run.model, test_rows, run.classes, top_k=5)
    assert metrics["n"] == run.metrics["test"]["n"] and metrics["top_k"] == 3
    assert metrics["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    assert metrics["loss"] == pytest.approx(run.metrics["test"]["loss"], rel=1e-4)
    empty = model_metrics(run.model, test_rows.iloc[:0], run.classes)
    assert empty["n"] == 0 and empty["accuracy"] is None
