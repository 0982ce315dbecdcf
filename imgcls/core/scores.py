"""Class scores as NumPy arrays: the one top-k, entropy and margin (no TensorFlow).

Bulk identification, evaluation, serving and training all rank a model's
class probabilities with :func:`top_k`, so ties break the same way
everywhere (the earlier class in the model's class list wins).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imgcls.core.checks import check_int

__all__ = ["top_k", "entropy", "margin", "calibrate"]


def top_k(probs: Any, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``top_k`` best classes of every row and their scores, best first.

    Args:
        probs: ``(n, n_classes)`` scores, or one row ``(n_classes,)``.
        top_k: How many; clipped to the number of classes.

    Returns:
        ``(indices, scores)``, each ``(n, k)`` (or ``(k,)`` for one row).
        Ties keep the class order.
    """
    k = check_int(top_k, "top_k", 1)
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"`probs` must be 1-D or 2-D scores. Received: shape {arr.shape}")
    k = min(k, arr.shape[-1])
    order = np.argsort(-arr, axis=-1, kind="stable")[..., :k]
    return order, np.take_along_axis(arr, order, axis=-1)


def entropy(probs: Any) -> np.ndarray:
    """Shannon entropy (nats) of each row of probabilities; 0 for a certain answer."""
    arr = np.asarray(probs, dtype=np.float64)
    ent = -(arr * np.log(np.clip(arr, 1e-12, 1.0))).sum(axis=-1)
    return np.maximum(ent, 0.0)


def margin(top_scores: Any) -> np.ndarray:
    """First minus second best score of each row of ``top_k`` scores (the first alone when k = 1)."""
    arr = np.asarray(top_scores, dtype=np.float64)
    return arr[..., 0] - (arr[..., 1] if arr.shape[-1] > 1 else 0.0)


def calibrate(probs: Any, temperature: float | None) -> np.ndarray:
    """Temperature-scaled probabilities: ``softmax(log(probs) / temperature)``.

    A run stores the temperature fitted on its validation split (temperature
    scaling, Guo et al. 2017); every place that shows or filters scores applies
    it through this function so that a score of 0.9 means right about 90% of
    the time. ``None`` or 1.0 returns the probabilities unchanged (as float64).

    Args:
        probs: ``(n, n_classes)`` or ``(n_classes,)`` softmax probabilities.
        temperature: The run's temperature (> 0), or None.

    Returns:
        Probabilities of the same shape; each row sums to 1; the order of the
        classes in a row (and so the top-k) is unchanged.
    """
    arr = np.asarray(probs, dtype=np.float64)
    if temperature is None or temperature == 1.0:
        return arr
    from imgcls.core.checks import check_number

    t = check_number(temperature, "temperature", 0.0, low_open=True,
                     fix="use the run's fitted temperature (run.temperature) or None")
    logits = np.log(np.clip(arr, 1e-12, 1.0)) / t
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=-1, keepdims=True)
