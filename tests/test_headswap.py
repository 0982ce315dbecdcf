"""Tests for imgcls.training.headswap: head swap, class changes, the next generation."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from imgcls import training as ft
from imgcls.core import open_workspace
from imgcls.library import Library, assign_splits
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
    ws = open_workspace(tmp_path_factory.mktemp("ft") / "ws", cutoff=10)
    for name in ("red", "green", "blue"):
        _write_class(ws, name)
    parent = ft.train(ws, model="simple_cnn", image_size=32, max_epochs=1, seed=0, verbose=0)
    return ws, parent.run_id


def _copy(parent_ws, tmp_path):
    ws, run_id = parent_ws
    dst = open_workspace(shutil.copytree(ws.root, tmp_path / "ws"), cutoff=10, create=False)
    return dst, load_run(run_id, workspace=dst)


@pytest.mark.slow  # trains a parent and a next generation
def test_next_generation_follows_the_library(parent_ws, tmp_path):
    ws, parent = _copy(parent_ws, tmp_path)
    _write_class(ws, "yellow")
    changes = ft.class_changes(ws, parent)
    assert changes.set_index("class")["status"].to_dict() == {
        "blue": "kept", "green": "kept", "red": "kept", "yellow": "added"}
    assert changes.attrs["classes"] == ["blue", "green", "red", "yellow"]
    catalog = assign_splits(Library(ws).scan())
    assert ft.split_changes(parent, catalog).empty  # hash-based splits: nothing moved
    assert ft.split_changes(parent.run_id, catalog, workspace=ws).empty

    child = ft.next_generation(ws, parent, max_epochs=1, verbose=0)
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


@pytest.mark.slow  # trains a parent and a next generation
def test_next_generation_refuses_to_lose_a_class(parent_ws, tmp_path):
    ws, parent = _copy(parent_ws, tmp_path)
    (ws.library / "green").rename(ws.library / "lime")  # a rename: green disappears
    changes = ft.class_changes(ws, parent).set_index("class")
    assert changes.loc["green", "status"] == "lost" and changes.loc["lime", "status"] == "added"
    assert "renamed to 'lime'?" in changes.loc["green", "note"]
    with pytest.raises(ValueError, match=r"lose 1 class\(es\).*green.*allow_lost_classes=True") as info:
        ft.next_generation(ws, parent, max_epochs=1, verbose=0)
    assert "lime" in str(info.value)
    assert not any(p.name.endswith(".partial") for p in ws.runs.iterdir())  # nothing was started

    with pytest.warns(UserWarning, match="drops class\\(es\\) green"):
        child = ft.next_generation(ws, parent, max_epochs=1, verbose=0, allow_lost_classes=True)
    assert child.classes == ["blue", "lime", "red"]
    assert child.metrics["lineage"]["classes_lost"] == ["green"]


@pytest.mark.slow  # trains a parent and a next generation
def test_class_under_cutoff_is_reported(parent_ws, tmp_path):
    ws, parent = _copy(parent_ws, tmp_path)
    lib = Library(ws)
    for path in sorted((ws.library / "blue").iterdir())[:12]:
        lib.to_unknown(path)
    changes = ft.class_changes(ws, parent).set_index("class")
    assert changes.loc["blue", "status"] == "lost" and changes.loc["blue", "n_now"] == 8
    assert "under the cutoff: 8 < 10" in changes.loc["blue", "note"]
    assert "unknown (12)" in changes.loc["blue", "note"]
    with pytest.raises(ValueError, match="reserved|sets"):
        ft.next_generation(ws, parent, classes=["red"], verbose=0)
