"""The model bake-off: candidate models trained briefly on the same data, side by side.

Each registered model (or the ones named) trains from scratch with the same
seed, data and splits for a few epochs (:func:`imgcls.training.fit_epochs`),
then its CPU inference speed is timed at batch sizes 1 and 32. The table
shows the trade-off between accuracy, size and speed;
:func:`imgcls.experiments.plot_bakeoff` draws it. Nothing is saved as a run.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from imgcls.core.checks import check_int, check_number
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.models import create_model, get_model_spec, list_models
from imgcls.training import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_TOP_K,
    check_image_size,
    check_verbose,
    compile_model,
    fit_epochs,
    prepare_training_data,
    print_progress,
)

__all__ = ["BAKEOFF_COLUMNS", "bakeoff"]

#: The columns of the bake-off table, in order.
BAKEOFF_COLUMNS = [
    "model", "input_size", "params", "epochs", "val_accuracy", "val_top_k_accuracy", "val_loss",
    "train_accuracy", "mean_epoch_time_s", "images_per_s_batch1", "images_per_s_batch32",
]


def _inference_speed(net: keras.Model, size: tuple[int, int], batch: int, *, min_time: float,
                     seed: int) -> float:
    """Images per second of ``net.predict_on_batch`` on the CPU at one batch size."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, size=(batch, size[0], size[1], 3)).astype(np.float32)
    with tf.device("/CPU:0"):
        for _ in range(2):  # trace + warm up
            net.predict_on_batch(x)
        n, start = 0, time.perf_counter()
        while True:
            net.predict_on_batch(x)
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time and n >= 3:
                break
    return batch * n / elapsed


def bakeoff(
    workspace: Workspace | str | os.PathLike,
    models: Sequence[str] | None = None,
    *,
    epochs: int = 3,
    cutoff: int | None = None,
    batch_size: int = 32,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    seed: int = 0,
    image_size: int | tuple[int, int] | None = None,
    augmentation: bool | Mapping[str, Any] = True,
    classes: Sequence[str] | None = None,
    catalog: pd.DataFrame | None = None,
    cache: bool | str = "auto",
    timing_seconds: float = 1.0,
    verbose: int = 1,
) -> pd.DataFrame:
    """Train each candidate model briefly on the same data and splits; tabulate the trade-offs.

    Nothing is saved as a run. Each model is trained from scratch with the
    same seed for ``epochs`` epochs at its own default input size (or
    ``image_size`` for all), then timed for inference on the CPU.

    Args:
        workspace: The workspace.
        models: Registry names; default every registered model (inception_v4
            at 299x299 is slow on CPU: pass a list to leave it out).
        epochs: Epochs per model.
        cutoff, classes, catalog, batch_size, learning_rate, seed, image_size,
            augmentation: As in :func:`imgcls.training.train`.
        cache: Keep decoded images in memory across epochs: ``"auto"``
            (default, when they fit), ``True`` or ``False`` (see
            :func:`imgcls.training.train`).
        timing_seconds: Minimum time each inference measurement runs.
        verbose: 0 quiet, 1 progress bar per model, 2 Keras' progress bar.

    Returns:
        One row per model: model, input_size ("HxW"), params, epochs,
        val_accuracy (best epoch), val_top_k_accuracy, val_loss (at the best
        epoch), train_accuracy (last epoch), mean_epoch_time_s (excluding the
        first epoch, which includes graph tracing, when there are two or
        more), images_per_s_batch1, images_per_s_batch32 (CPU inference).
        ``attrs`` holds ``n_train``, ``n_val`` (images per split) and
        ``classes``.
    """
    ws = as_workspace(workspace)
    verbose = check_verbose(verbose)
    epochs = check_int(epochs, "epochs", 1)
    seed = check_int(seed, "seed", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    learning_rate = check_number(learning_rate, "learning_rate", 0.0, low_open=True)
    timing_seconds = check_number(timing_seconds, "timing_seconds", 0.0)
    size_arg = check_image_size(image_size)
    if models is None:
        models = list_models()
    if isinstance(models, str):
        models = [models]
    models = list(models)
    if not models:
        raise ValueError(f"`models` must name at least one model. Known models: {', '.join(list_models())}")
    specs = [get_model_spec(m) for m in models]  # unknown names fail before any training

    snapshot, classes, _ = prepare_training_data(ws, catalog=catalog, classes=classes, cutoff=cutoff)
    rows = []
    for spec in specs:
        size = size_arg or tuple(spec.default_input_shape[:2])
        keras.utils.set_random_seed(seed)
        net = create_model(spec.name, len(classes), input_shape=(size[0], size[1], 3), seed=seed)
        compile_model(net, learning_rate=learning_rate, num_classes=len(classes), top_k=DEFAULT_TOP_K)
        fit = fit_epochs(net, snapshot, classes, epochs=epochs, image_size=size, batch_size=batch_size,
                         augmentation=augmentation, seed=seed, cache=cache, verbose=verbose,
                         desc=f"bake-off {spec.name}")
        rows.append({
            "model": spec.name,
            "input_size": f"{size[0]}x{size[1]}",
            "params": int(net.count_params()),
            "epochs": epochs,
            "val_accuracy": fit["val_accuracy"],
            "val_top_k_accuracy": fit["val_top_k_accuracy"],
            "val_loss": fit["val_loss"],
            "train_accuracy": fit["train_accuracy"],
            "mean_epoch_time_s": fit["mean_epoch_time_s"],
            "images_per_s_batch1": _inference_speed(net, size, 1, min_time=timing_seconds, seed=seed),
            "images_per_s_batch32": _inference_speed(net, size, 32, min_time=timing_seconds, seed=seed),
        })
        print_progress(f"{spec.name}: val acc {rows[-1]['val_accuracy']}, "
                       f"{rows[-1]['mean_epoch_time_s']:.1f} s/epoch, "
                       f"{rows[-1]['images_per_s_batch1']:.0f} img/s @1, "
                       f"{rows[-1]['images_per_s_batch32']:.0f} img/s @32", verbose=verbose)
        skipped = fit["skipped"]
        if skipped:
            warnings.warn(f"bake-off {spec.name}: {len(skipped)} unreadable file(s) skipped: "
                          f"{[Path(p).name for p, _ in skipped[:5]]}", stacklevel=2)
        del net
    table = pd.DataFrame(rows, columns=BAKEOFF_COLUMNS)
    sizes = snapshot.groupby("split").size()
    table.attrs.update({"n_train": int(sizes.get("train", 0)), "n_val": int(sizes.get("val", 0)),
                        "classes": list(classes)})
    return table
