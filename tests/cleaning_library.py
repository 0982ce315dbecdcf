"""Shared pieces of the imgcls.cleaning tests (not a test module): a colour library and runs.

The library holds four colour classes of distinct small pictures (a plain
ground of the class colour with a few ellipses, so no two are perceptual
duplicates). The runs hold a real Keras model whose ``"avg_pool"`` layer is a
global average of the pixels: an image's embedding is its mean colour, so a
picture filed in the wrong colour's folder is a label issue a linear head on
the embeddings can see, exactly as with a trained model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from imgcls.core import open_workspace

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200), "yellow": (200, 200, 40)}
SIZE = 32


def picture(path, colour, seed: int):
    """A distinct picture whose mean colour is close to ``colour``."""
    rng = np.random.default_rng(seed)
    base = np.clip(np.array(colour) + rng.integers(-25, 26, 3), 0, 255)
    img = Image.new("RGB", (SIZE, SIZE), tuple(int(v) for v in base))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = rng.integers(0, SIZE - 6, 2)
        w, h = rng.integers(3, 10, 2)
        shade = np.clip(base + rng.integers(-70, 71, 3), 0, 255)
        draw.ellipse([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=tuple(int(v) for v in shade))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def colour_library(root, *, per_class: int = 20, flips: dict[str, str] | None = None, seed: int = 0):
    """A workspace of :data:`COLOURS` classes, ``per_class`` pictures each.

    Args:
        flips: ``{"red_03": "green"}``: that picture is filed under the other
            class (its label is wrong).

    Returns:
        ``(workspace, truth)``: truth maps each file name to its true colour.
    """
    ws = open_workspace(root, cutoff=5)
    flips = flips or {}
    truth = {}
    k = seed * 10_000
    for name, rgb in COLOURS.items():
        for i in range(per_class):
            k += 1
            stem = f"{name}_{i:02d}"
            folder = flips.get(stem, name)
            picture(ws.library / folder / f"{stem}.png", rgb, k)
            truth[f"{stem}.png"] = name
    return ws, truth


def mean_colour_model(classes, *, name="colour_net"):
    """A real Keras model: ``avg_pool`` = mean colour, then a dense softmax over ``classes``."""
    import keras

    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255, name="preprocess")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    out = keras.layers.Dense(len(classes), activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out, name=name)
    w = np.zeros((3, len(classes)), np.float32)
    for j, c in enumerate(classes):
        rgb = np.array(COLOURS.get(c, (128, 128, 128)), np.float32) / 255
        w[:, j] = (rgb - 0.5) * 20
    model.get_layer("predictions").set_weights([w, np.zeros(len(classes), np.float32)])
    return model


def save_colour_run(ws, run_id, *, parent=None, classes=None):
    """A run folder holding :func:`mean_colour_model` (classes: the four colours)."""
    from imgcls.runs import save_run

    classes = sorted(classes or COLOURS)
    return save_run(ws, mean_colour_model(classes), classes=classes, run_id=run_id, parent=parent,
                    config={"model": "colour_net", "input_shape": [SIZE, SIZE, 3]})
