"""Runs with known behaviour, shared by the evaluation tests (not a test module).

The runs are real run folders holding real Keras models whose behaviour is
set by hand (their weights map an image's colour to a chosen class), so their
benchmark accuracy is known exactly without training. The workspace and the
runs are built once per test session (:func:`gate_workspace`,
:func:`gate_runs`); tests that change the production pointer reset it first
(:func:`reset_gate`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from imgcls.core import open_workspace
from imgcls.library import Library, assign_splits, choose_benchmark
from imgcls.runs import PROMOTIONS_FILE

COLORS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200), "yellow": (200, 200, 40)}
# Columns of a layer that scores each colour (input: mean R, G, B).
_COLOR_W = np.array([
    # red   green  blue  yellow
    [1.0, -1.0, -0.5, 0.5],   # R
    [-1.0, 1.0, -0.5, 0.5],   # G
    [0.0, 0.0, 1.0, -1.0],    # B
], dtype=np.float32)
_COLOR_ORDER = list(COLORS)

THREE = ["blue", "green", "red"]
GOOD3 = {"red": "red", "green": "green", "blue": "blue"}
BLUE_AS_RED = {"red": "red", "green": "green", "blue": "red"}        # 10/15 on the benchmark
GREEN_AS_BLUE = {"red": "red", "green": "blue", "blue": "blue"}     # 10/15, but green drops
ALL_RED = {"red": "red", "green": "red", "blue": "red"}             # 5/15

_BUILT: dict = {}


def _color_model(classes, behaviour):
    """A real Keras model: mean colour -> true colour -> ``behaviour[colour]`` (a class)."""
    import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(inp)
    x = keras.layers.Dense(4, name="colour")(x)
    x = keras.layers.Activation("softmax", name="colour_softmax")(x)
    out = keras.layers.Dense(len(classes), activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out, name="colour_net")
    model.get_layer("colour").set_weights([_COLOR_W * 0.2, np.zeros(4, np.float32)])
    m = np.zeros((4, len(classes)), np.float32)
    for i, colour in enumerate(_COLOR_ORDER):
        if colour in behaviour:
            m[i, classes.index(behaviour[colour])] = 10.0
    model.get_layer("predictions").set_weights([m, np.zeros(len(classes), np.float32)])
    return model


def gate_workspace(tmp_path_factory):
    """Library: 4 colour classes x 12 images (32x32), 5 benchmark images each (built once)."""
    if "ws" not in _BUILT:
        root = tmp_path_factory.mktemp("gate")
        ws = open_workspace(root / "ws", cutoff=5)
        rng = np.random.default_rng(0)
        for name, rgb in COLORS.items():
            folder = ws.library / name
            folder.mkdir(parents=True)
            for i in range(12):
                px = np.clip(np.array(rgb) + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(folder / f"{name}_{i:02d}.png")
        lib = Library(ws)
        lib.scan()
        choose_benchmark(lib, per_class=5)
        _BUILT["ws"] = ws
    return _BUILT["ws"]


def _save(ws, name, classes, behaviour, *, throwaway=False):
    from imgcls.runs import save_run

    cat = assign_splits(Library(ws).scan())
    snap = cat[cat["label"].isin(classes)]
    return save_run(ws, _color_model(classes, behaviour), classes=classes, splits=snap,
                    config={"model": "colour_net"}, run_id=name, throwaway=throwaway)


def gate_runs(ws):
    """The runs of :func:`gate_workspace`, by name (built once)."""
    if "runs" not in _BUILT:
        four = ["blue", "green", "red", "yellow"]
        _BUILT["runs"] = {
            "good": _save(ws, "good", THREE, GOOD3),
            "blue_as_red": _save(ws, "blue_as_red", THREE, BLUE_AS_RED),
            "green_as_blue": _save(ws, "green_as_blue", THREE, GREEN_AS_BLUE),
            "all_red": _save(ws, "all_red", THREE, ALL_RED),
            "good_throwaway": _save(ws, "good_throwaway", THREE, GOOD3, throwaway=True),
            "good4": _save(ws, "good4", four, {c: c for c in four}),
        }
    return _BUILT["runs"]


def reset_gate(ws):
    """Remove the production pointer and the promotions log."""
    ws.production_file.unlink(missing_ok=True)
    (ws.runs / PROMOTIONS_FILE).unlink(missing_ok=True)
