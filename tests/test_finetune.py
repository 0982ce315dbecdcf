"""Tests for imgcls.training: head swap, the next generation, the experiment's bookkeeping."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls import training as ft
from imgcls.core import open_workspace
from imgcls.library import Library
from imgcls.runs import load_run

COLORS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200), "yellow": (200, 200, 40)}


def _write_class(ws, name, n=20, seed=0):
    rng = np.random.default_rng(sum(map(ord, name)) + 1000 * seed)
    folder = ws.library / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        px = np.clip(np.array(COLORS[name]) + rng.normal(0, 15, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(px).save(folder / f"{name}_{seed}_{i:02d}.png")


# =========================================================================== swap_head
@pytest.fixture(scope="module")
def cnn():
    from imgcls.models import create_model

    return create_model("simple_cnn", 3, input_shape=(32, 32, 3), seed=0)


def test_swap_head_keeps_every_other_weight_and_renews_the_head(cnn):
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in cnn.layers}
    child = ft.swap_head(cnn, 5, seed=1)

    head = child.get_layer("predictions")
    assert head is not cnn.get_layer("predictions")
    assert head.units == 5 and child.output_shape == (None, 5)
    assert head.get_weights()[0].shape == (cnn.get_layer("predictions").get_weights()[0].shape[0], 5)
    assert head.get_config()["activation"] == "softmax"
    for layer in child.layers:
        if layer.name == "predictions":
            continue
        assert layer is cnn.get_layer(layer.name)  # shared, not copied
        for w_new, w_old in zip(layer.get_weights(), before[layer.name]):
            np.testing.assert_array_equal(w_new, w_old)
    assert all(layer.trainable for layer in child.layers)
    assert len(child.trainable_weights) == len(cnn.trainable_weights)
    # The parent is untouched: still 3 outputs with its own head weights.
    assert cnn.output_shape == (None, 3)
    np.testing.assert_array_equal(cnn.get_layer("predictions").get_weights()[0], before["predictions"][0])
    probs = np.asarray(child(np.zeros((2, 32, 32, 3), np.float32), training=False))
    assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_swap_head_same_class_count_gets_fresh_weights(cnn):
    old = cnn.get_layer("predictions").get_weights()[0]
    a = ft.swap_head(cnn, 3, seed=7).get_layer("predictions").get_weights()
    b = ft.swap_head(cnn, 3, seed=7).get_layer("predictions").get_weights()
    c = ft.swap_head(cnn, 3, seed=8).get_layer("predictions").get_weights()
    assert a[0].shape == old.shape and not np.allclose(a[0], old)
    np.testing.assert_array_equal(a[0], b[0])  # seeded
    assert not np.allclose(a[0], c[0])
    np.testing.assert_array_equal(a[1], np.zeros(3))  # bias initialised like the original (zeros)


def test_swap_head_dropout_options(cnn):
    import keras

    def dropouts(model):
        return [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]

    kept = ft.swap_head(cnn, 4)
    assert [d.rate for d in dropouts(kept)] == [d.rate for d in dropouts(cnn)] == [0.3]
    assert dropouts(kept)[0] is dropouts(cnn)[0]
    assert dropouts(ft.swap_head(cnn, 4, dropout=0.0)) == []
    assert [d.rate for d in dropouts(ft.swap_head(cnn, 4, dropout=0.5))] == [0.5]


def test_swap_head_errors(cnn):
    import keras

    inp = keras.Input((4,))
    plain = keras.Model(inp, keras.layers.Dense(2, name="logits")(inp))
    with pytest.raises(ValueError, match="no layer named 'predictions'"):
        ft.swap_head(plain, 3)
    with pytest.raises(ValueError, match="num_classes"):
        ft.swap_head(cnn, 0)
    with pytest.raises(ValueError, match="dropout"):
        ft.swap_head(cnn, 3, dropout=1.5)


# =========================================================================== next generation
@pytest.fixture(scope="module")
def parent_ws(tmp_path_factory):
    """3 colour classes x 20 images and a 1-epoch simple_cnn run (the parent)."""
    from imgcls.training import train

    ws = open_workspace(tmp_path_factory.mktemp("ft") / "ws", cutoff=10)
    for name in ("red", "green", "blue"):
        _write_class(ws, name)
    parent = train(ws, model="simple_cnn", image_size=32, max_epochs=1, seed=0, verbose=0)
    return ws, parent.run_id


def _copy(parent_ws, tmp_path):
    ws, run_id = parent_ws
    dst = open_workspace(shutil.copytree(ws.root, tmp_path / "ws"), cutoff=10, create=False)
    return dst, load_run(run_id, dst)


def test_next_generation_follows_the_library(parent_ws, tmp_path):
    ws, parent = _copy(parent_ws, tmp_path)
    _write_class(ws, "yellow")
    changes = ft.class_changes(parent, ws)
    assert changes.set_index("class")["status"].to_dict() == {
        "blue": "kept", "green": "kept", "red": "kept", "yellow": "added"}
    assert changes.attrs["classes"] == ["blue", "green", "red", "yellow"]

    child = ft.next_generation(parent, ws, max_epochs=1, verbose=0)
    assert child.classes == ["blue", "green", "red", "yellow"]
    assert child.parent == parent.run_id and child.generation == parent.generation + 1
    assert child.model.get_layer("predictions").units == 4
    assert child.input_shape == parent.input_shape and child.model_name == "simple_cnn"
    lineage = child.metrics["lineage"]
    assert lineage["classes_added"] == ["yellow"] and lineage["classes_lost"] == []
    assert lineage["split_changes"] == 0 and lineage["split_leaks"] == 0
    # Images the parent saw keep their split.
    old = parent.splits.set_index("hash")["split"]
    new = child.splits.set_index("hash")["split"]
    assert (new.loc[old.index] == old).all()
    # The body started from the parent's weights: the first conv differs from a fresh model's.
    assert len(child.history) == 1


def test_next_generation_refuses_to_lose_a_class(parent_ws, tmp_path):
    ws, parent = _copy(parent_ws, tmp_path)
    (ws.library / "green").rename(ws.library / "lime")  # a rename: green disappears
    changes = ft.class_changes(parent, ws).set_index("class")
    assert changes.loc["green", "status"] == "lost" and changes.loc["lime", "status"] == "added"
    assert "renamed to 'lime'?" in changes.loc["green", "note"]
    with pytest.raises(ValueError, match=r"lose 1 class\(es\).*green.*allow_lost_classes=True") as info:
        ft.next_generation(parent, ws, max_epochs=1, verbose=0)
    assert "lime" in str(info.value)
    assert not any(p.name.endswith(".partial") for p in ws.runs.iterdir())  # nothing was started

    with pytest.warns(UserWarning, match="drops class\\(es\\) green"):
        child = ft.next_generation(parent, ws, max_epochs=1, verbose=0, allow_lost_classes=True)
    assert child.classes == ["blue", "lime", "red"]
    assert child.metrics["lineage"]["classes_lost"] == ["green"]


def test_class_under_cutoff_is_reported(parent_ws, tmp_path):
    ws, parent = _copy(parent_ws, tmp_path)
    lib = Library(ws)
    for path in sorted((ws.library / "blue").iterdir())[:12]:
        lib.to_unknown(path)
    changes = ft.class_changes(parent, ws).set_index("class")
    assert changes.loc["blue", "status"] == "lost" and changes.loc["blue", "n_now"] == 8
    assert "under the cutoff: 8 < 10" in changes.loc["blue", "note"]
    assert "unknown (12)" in changes.loc["blue", "note"]
    with pytest.raises(ValueError, match="reserved|sets"):
        ft.next_generation(parent, ws, classes=["red"], verbose=0)


# =========================================================================== experiment bookkeeping
def _fake_results():
    rows = []
    for seed, (hs_reach, sc_best, hs_test, sc_test) in enumerate([(4, 15, 0.90, 0.90), (5, 12, 0.88, 0.89)]):
        rows.append({"arm": "generation0", "seed": seed, "best_epoch": 20, "epochs_trained": 30,
                     "wall_time_s": 100.0, "best_val_accuracy": 0.9, "test_accuracy": 0.9,
                     "benchmark_accuracy": 0.9, "epochs_to_scratch_best": np.nan})
        rows.append({"arm": "head_swap", "seed": seed, "best_epoch": 8, "epochs_trained": 18,
                     "wall_time_s": 50.0, "best_val_accuracy": 0.93, "test_accuracy": hs_test,
                     "benchmark_accuracy": 0.9, "epochs_to_scratch_best": hs_reach})
        rows.append({"arm": "scratch", "seed": seed, "best_epoch": sc_best, "epochs_trained": sc_best + 10,
                     "wall_time_s": 120.0, "best_val_accuracy": 0.91, "test_accuracy": sc_test,
                     "benchmark_accuracy": 0.9, "epochs_to_scratch_best": sc_best})
    return pd.DataFrame(rows)


def test_headswap_verdict_by_hand():
    v = ft.headswap_verdict(_fake_results())
    assert v["mean_head_swap_epochs_to_target"] == pytest.approx(4.5)
    assert v["mean_scratch_epochs_to_best"] == pytest.approx(13.5)
    assert v["epoch_ratio"] == pytest.approx(1 / 3)
    assert v["mean_test_diff"] == pytest.approx(-0.005)
    assert v["speed_ok"] and v["quality_ok"] and v["claim_holds"]
    strict = ft.headswap_verdict(_fake_results(), max_test_drop=0.004)
    assert not strict["quality_ok"] and "test accuracy criterion missed" in strict["text"]
    never = _fake_results()
    never.loc[never["arm"] == "head_swap", "epochs_to_scratch_best"] = np.nan
    assert not ft.headswap_verdict(never)["speed_ok"]


def test_summarize_headswap():
    s = ft.summarize_headswap(_fake_results())
    assert s.loc["scratch", ("best_epoch", "mean")] == pytest.approx(13.5)
    assert s.loc["scratch", ("best_epoch", "std")] == pytest.approx(np.std([15, 12], ddof=1))
    assert s.loc["head_swap", ("test_accuracy", "min")] == pytest.approx(0.88)
    assert s.loc["head_swap", "n_seeds"].item() == 2


def test_plot_learning_curves(parent_ws):
    ws, run_id = parent_ws
    fig = ft.plot_learning_curves({"parent": run_id}, workspace=ws)
    w, h = fig.get_size_inches()
    assert w / h == pytest.approx(16 / 9, rel=0.01)
    assert fig.axes[0].get_legend_handles_labels()[1] == ["parent"]


def test_read_headswap_benchmark_feeds_the_summaries(tmp_path):
    import json

    res = _fake_results()
    val = {"head_swap": [0.85, 0.9, 0.88], "scratch": [0.5, 0.8, 0.9], "generation0": [0.4, 0.5, 0.6]}
    curves = {f"{r.arm}/seed{r.seed}": {"epoch": [1, 2, 3], "val_accuracy": val[r.arm], "accuracy": None}
              for r in res.itertuples()}
    path = tmp_path / "headswap_vs_scratch.json"
    path.write_text(json.dumps({"runs": res.to_dict("records"), "verdict": {"claim_holds": True},
                                "learning_curves": curves, "total_time_s": 12.0}, default=float))
    bench = ft.read_headswap_benchmark(path)
    assert ft.headswap_verdict(bench["runs"])["epoch_ratio"] == pytest.approx(1 / 3)
    assert sorted(bench["curves"]) == ["head_swap/seed0", "head_swap/seed1", "scratch/seed0", "scratch/seed1"]
    fig = ft.plot_learning_curves(bench)
    assert fig.get_suptitle().replace("\n", " ") == "Head swap reaches the from-scratch best in 4 epochs instead of 14"
    speed = ft.headswap_speed_table(bench, fractions=(0.9, 1.0), at_epochs=(1, 5)).set_index(["seed", "arm"])
    # Target: the scratch best, 0.9 (90% of it: 0.81).
    assert speed.loc[(0, "head_swap"), ["reach_90", "reach_100", "val_at_1"]].tolist() == [1, 2, 0.85]
    assert speed.loc[(1, "scratch"), ["reach_90", "reach_100", "val_at_1"]].tolist() == [3, 3, 0.5]
    assert speed["val_at_5"].isna().all()
    with pytest.raises(ValueError, match="No benchmark results"):
        ft.read_headswap_benchmark(tmp_path / "missing.json")
