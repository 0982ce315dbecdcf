"""A tiny workspace with real runs for the runtimes and export tests (not a test module).

Library: three colour classes x 20 noisy 32x32 images, 4 benchmark images each,
split by :func:`imgcls.library.assign_splits`. Runs (each with that snapshot):

* ``trained``: a simple_cnn fitted for a few epochs (confident, so int8 agrees with Keras);
* ``fragile``: the same architecture untrained, two of its last feature maps
  equal but for a kernel jitter of about 1e-5 (far below int8's and bf16's
  rounding), the first two classes reading one map each: which one wins is
  the jitter's sign for each image in float32, lost by quantisation, so int8
  (even with its float head) and bf16 cannot reach 100% agreement (f32 does);
* ``no-train``: ``trained``'s model with a snapshot holding no training images.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imgcls.core import open_workspace

COLOURS = {"red": (190, 50, 50), "green": (50, 190, 50), "blue": (50, 50, 190)}
CLASSES = sorted(COLOURS)
SIZE = 32


def build_workspace(root):
    """The workspace at ``root`` with runs ``trained``, ``fragile`` and ``no-train``."""
    import keras

    from imgcls.inputs import load_images
    from imgcls.library import Library, assign_splits, choose_benchmark
    from imgcls.models import create_model
    from imgcls.runs import save_run

    ws = open_workspace(root, cutoff=5)
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        folder = ws.library / name
        folder.mkdir(parents=True)
        for i in range(20):
            px = np.clip(np.array(rgb) + rng.normal(0, 30, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(folder / f"{name}_{i:02d}.png")
    lib = Library(ws)
    lib.scan()
    choose_benchmark(lib, per_class=4)
    snap = assign_splits(lib.scan())
    snap = snap[snap["label"].isin(CLASSES)]

    keras.utils.set_random_seed(0)
    model = create_model("simple_cnn", len(CLASSES), input_shape=(SIZE, SIZE, 3), seed=0)
    train = snap[snap["split"] == "train"]
    x, ok, _ = load_images(list(train["path"]), SIZE)
    y = train["label"].map(CLASSES.index).to_numpy()[ok]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(x[ok].astype("float32"), y, epochs=8, batch_size=16, verbose=0)
    config = {"model": "simple_cnn", "input_shape": [SIZE, SIZE, 3]}
    save_run(ws, model, classes=CLASSES, splits=snap, config=config, run_id="trained")
    save_run(ws, model, classes=CLASSES, splits=snap[snap["split"] != "train"], config=config,
             run_id="no-train")

    fragile = create_model("simple_cnn", len(CLASSES), input_shape=(SIZE, SIZE, 3), seed=1)
    conv, bn = fragile.get_layer("block4_conv"), fragile.get_layer("block4_bn")
    (kernel,) = conv.get_weights()
    # The jitter is the difference of two other feature maps whose sign varies most across the images.
    pre = keras.Model(fragile.inputs, conv.output).predict(x[ok].astype("float32"), verbose=0).mean(axis=(1, 2))

    def score(pair):  # signs mixed (>= 20% of images on each side), then as far from 0 as possible
        d = pre[:, pair[0]] - pre[:, pair[1]]
        return min((d > 0).mean(), (d < 0).mean()) >= 0.2, np.abs(d).min()

    c, d = max(((c, d) for c in range(2, 40) for d in range(c + 1, 40)), key=score)
    # far above float32's rounding (f32 agrees exactly), far below bf16's and int8's (they cannot)
    kernel[..., 1] = kernel[..., 0] + 1e-2 * (kernel[..., c] - kernel[..., d])  # equal maps but for the jitter
    conv.set_weights([kernel])
    beta, mean, var = bn.get_weights()                 # (no scale: ReLU follows)
    beta[:2] = 2.0                                      # both above 0: ReLU passes them
    bn.set_weights([beta, mean, var])
    head = fragile.get_layer("predictions")
    kernel, bias = head.get_weights()
    kernel[:] = 0.0
    kernel[0, 0] = kernel[1, 1] = 1.0                   # class 0 reads map 0, class 1 map 1
    bias[:] = [0.0, 0.0, -10.0]
    head.set_weights([kernel, bias])                    # first vs second class: the jitter's sign per image
    save_run(ws, fragile, classes=CLASSES, splits=snap, config=config, run_id="fragile")
    return ws
