"""Shared pieces of the imgcls.bulk tests: a tiny real run, folders of tiny real
images, a colour-predicting run and a hand-made results table (no TensorFlow at import)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imgcls.core import open_workspace

CLASSES = ["antelope", "cow", "zebra"]


def write_images(folder: Path, n: int, *, seed: int, nested: bool = True, size: int = 32) -> list[Path]:
    """``n`` small random PNG/JPEG files under ``folder`` (some in ``deeper/`` subfolders)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        sub = folder / f"batch_{i % 3}" / ("deeper" if nested and i % 5 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        pixels[: size // 2] = rng.integers(0, 256, 3, dtype=np.uint8)  # some structure per image
        p = sub / f"img_{i:04d}.{'jpg' if i % 4 == 0 else 'png'}"
        Image.fromarray(pixels).save(p)
        paths.append(p)
    return paths


def tiny_run(root: Path):
    """A workspace at ``root`` with a tiny simple_cnn (32x32, 3 classes) saved as run ``tiny-run``."""
    from imgcls.models import create_model
    from imgcls.runs import save_run

    ws = open_workspace(root)
    model = create_model("simple_cnn", len(CLASSES), input_shape=(32, 32, 3), seed=0)
    run = save_run(ws, model, classes=CLASSES, run_id="tiny-run", config={"model": "simple_cnn"})
    return ws, run


def bad_pool(folder: Path) -> Path:
    """23 good images at any depth, one HTML file named .jpg and one truncated PNG."""
    paths = write_images(folder, 23, seed=1)
    (folder / "batch_1" / "not_an_image.jpg").write_text("<html>404 Not Found</html>")
    good = paths[1].read_bytes()
    (folder / "batch_2" / "truncated.png").write_bytes(good[: len(good) // 3])
    return folder


def colour_run(ws):
    """A run that predicts by the dominant colour channel: red antelope, green cow, blue zebra."""
    import keras

    from imgcls.runs import save_run

    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(pooled)
    model = keras.Model(inputs, outputs, name="colour_net")
    model.get_layer("predictions").set_weights([np.eye(3, dtype="float32") * 8, np.zeros(3, "float32")])
    return save_run(ws, model, classes=CLASSES, run_id="colour-run", config={"model": "colour_net"})


def solid(path: Path, rgb) -> Path:
    """A 16x16 PNG of one colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), rgb, np.uint8)).save(path)
    return path


def results_table() -> pd.DataFrame:
    """A hand-made results table of 7 images (no model)."""
    rows = [
        # path, top1, s1, top2, s2, top3, s3
        ("/p/a.png", "antelope", 0.55, "zebra", 0.40, "cow", 0.05),
        ("/p/b.png", "antelope", 0.95, "cow", 0.04, "zebra", 0.01),
        ("/p/c.png", "cow", 0.34, "antelope", 0.33, "zebra", 0.33),
        ("/p/d.png", "zebra", 0.80, "cow", 0.15, "antelope", 0.05),
        ("/p/e.png", "antelope", 0.31, "cow", 0.29, "zebra", 0.28),
        ("/lib/unknown/f.png", "cow", 0.70, "zebra", 0.20, "antelope", 0.10),
        ("/p/g.png", "zebra", 0.99, "antelope", 0.005, "cow", 0.005),
    ]
    df = pd.DataFrame(rows, columns=["path", "top1_class", "top1_score", "top2_class", "top2_score",
                                     "top3_class", "top3_score"])
    probs = df[["top1_score", "top2_score", "top3_score"]].to_numpy()
    df.insert(1, "relpath", [p.split("/", 2)[2] for p in df["path"]])
    df.insert(2, "hash", [f"h{i}" for i in range(len(df))])
    df["entropy"] = -(probs * np.log(probs)).sum(axis=1)
    df["margin"] = df["top1_score"] - df["top2_score"]
    df["model"], df["run_id"] = "m", "r"
    df["time"] = pd.Timestamp("2026-01-01", tz="UTC")
    return df


def names(df: pd.DataFrame) -> list[str]:
    """File stems of a table's rows, in order."""
    return [Path(p).stem for p in df["path"]]
