"""Training options: the defaults, their checks, the augmentation setting, compiling a model.

Shared by :func:`imgcls.training.train`, :func:`imgcls.training.fit_epochs`
and the experiments that train models side by side (the bake-off), so every
model is compiled and checked the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import keras

from imgcls.core.checks import check_int
from imgcls.inputs import make_augmentation, parse_image_size

__all__ = [
    "DEFAULT_MAX_EPOCHS",
    "DEFAULT_PATIENCE",
    "DEFAULT_MIN_DELTA",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_TOP_K",
    "check_verbose",
    "check_image_size",
    "compile_model",
]

#: Upper bound on epochs; the write-up's from-scratch runs plateau after ~120.
DEFAULT_MAX_EPOCHS = 150
#: Epochs without improvement of the validation metric before stopping.
DEFAULT_PATIENCE = 10
#: Smallest change of the validation metric that counts as an improvement.
DEFAULT_MIN_DELTA = 0.0
DEFAULT_LEARNING_RATE = 1e-3
#: k of the top-k accuracy (capped at the number of classes).
DEFAULT_TOP_K = 5


def check_verbose(verbose: Any) -> int:
    """``verbose`` of a training function as 0, 1 or 2 (``True`` / ``False`` count as 1 / 0).

    Args:
        verbose: 0 quiet; 1 one progress bar over epochs (a widget in
            notebooks); 2 Keras' per-batch progress bar.

    Returns:
        The level as an int.

    Raises:
        ValueError: ``verbose`` is not one of these.
    """
    if isinstance(verbose, bool):
        return int(verbose)
    return check_int(verbose, "verbose", 0, high=2,
                     fix="pass 0 (quiet), 1 (one progress bar over epochs; a widget in notebooks) "
                         "or 2 (Keras' per-batch progress bar)")


def check_image_size(image_size: Any) -> tuple[int, int] | None:
    """The ``image_size`` option of a training function: ``None`` (the model's default) or ``(h, w)``.

    Args:
        image_size: ``None``, one int for a square, ``(height, width)`` or
            ``(height, width, 3)`` (parsed as :func:`imgcls.inputs.parse_image_size`).

    Returns:
        ``None`` or ``(height, width)``.

    Raises:
        ValueError: ``image_size`` is none of these.
    """
    if image_size is None:
        return None
    try:
        return parse_image_size(image_size)  # the pipeline's parsing: one int, (h, w) or (h, w, 3)
    except ValueError:
        raise ValueError(
            "`image_size` must be None (the model's default), one int for a square, or "
            f"(height, width). Received: image_size={image_size!r}"
        ) from None


def _augmentation_arg(augmentation: Any, seed: int) -> tuple[Any, dict | None]:
    """Return (augmentation layer or None, JSON-able settings or None)."""
    if augmentation is None or augmentation is False:
        return None, None
    params = inspect.signature(make_augmentation).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    if augmentation is True:
        settings = {**defaults, "seed": seed}
        return make_augmentation(**settings), settings
    if isinstance(augmentation, Mapping):
        unknown = sorted(set(augmentation) - set(params))
        if unknown:
            raise ValueError(
                f"Unknown augmentation setting(s) {unknown}. Accepted: {sorted(params)} "
                "(see imgcls.inputs.make_augmentation)."
            )
        settings = {**defaults, "seed": seed, **dict(augmentation)}
        return make_augmentation(**settings), settings
    if callable(augmentation):
        return augmentation, {"custom": getattr(augmentation, "name", type(augmentation).__name__)}
    raise ValueError(
        "`augmentation` must be True (flip, slight rotation, slight zoom), False (none), a dict of "
        "imgcls.inputs.make_augmentation settings (e.g. {'rotation': 5, 'zoom': 0.05}) or a "
        f"keras layer. Received: augmentation={augmentation!r}"
    )


def compile_model(model: keras.Model, *, learning_rate: float, num_classes: int,
                  top_k: int = DEFAULT_TOP_K) -> int:
    """Compile ``model`` the way every imgcls training does.

    Adam at ``learning_rate``, sparse categorical cross-entropy, and the
    metrics ``accuracy`` and ``top_k_accuracy`` (k capped at the number of
    classes). XLA is off: on CPU its compile time outweighs any gain.

    Args:
        model: The model (its existing optimizer, if any, is replaced).
        learning_rate: Adam learning rate.
        num_classes: Number of classes the model predicts.
        top_k: k of the top-k accuracy.

    Returns:
        The k used (``min(top_k, num_classes)``, at least 1).
    """
    k = max(1, min(int(top_k), num_classes))
    model.compile(
        # XLA off: on CPU its compile time (tens of seconds for Inception-style
        # graphs) outweighs any gain per step.
        jit_compile=False,
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=k, name="top_k_accuracy"),
        ],
    )
    return k


def _model_input_size(model: keras.Model) -> tuple[int, int] | None:
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[2]:
        return int(shape[1]), int(shape[2])
    return None
