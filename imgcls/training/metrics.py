"""Accuracy, top-k accuracy and loss of a model on catalog rows.

What a finished run reports for its test split and the fixed benchmark set
(``metrics.json``), computed with the same decode as training and ranked
with the one top-k of the package (:func:`imgcls.core.scores.top_k`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd

from imgcls.core.scores import top_k as rank_top_k
from imgcls.inputs import make_dataset
from imgcls.training.options import DEFAULT_TOP_K, _model_input_size

__all__ = ["model_metrics", "labelled_scores"]


def labelled_scores(
    model: keras.Model,
    rows: pd.DataFrame,
    classes: Sequence[str],
    *,
    image_size: tuple[int, int] | None = None,
    batch_size: int = 32,
    skipped: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's class probabilities on catalog ``rows`` and the true class of each.

    Decoded as in training (no augmentation); rows whose label is not in
    ``classes`` are left out, files that cannot be decoded are skipped
    (appended to ``skipped``).

    Args:
        model: A model whose outputs follow ``classes``.
        rows: Catalog rows with ``path`` and ``label`` (optional ``turns``).
        classes: The model's class names, in output order.
        image_size: Input ``(height, width)``; default the model's input size.
        batch_size: Images per prediction batch.
        skipped: A list; ``(path, reason)`` is appended for each file dropped.

    Returns:
        ``(labels, probs)``: int class indices ``(n,)`` and float64
        probabilities ``(n, len(classes))`` (empty arrays for no rows).
    """
    classes = [str(c) for c in classes]
    rows = rows[rows["label"].astype(str).isin(classes)].reset_index(drop=True)
    if len(rows) == 0:
        return np.zeros(0, dtype=int), np.zeros((0, len(classes)))
    size = image_size or _model_input_size(model)
    ds = make_dataset(rows, classes, image_size=size, batch_size=batch_size, training=False,
                      skipped=skipped if skipped is not None else [])
    ys, ps = [], []
    for x, y in ds:
        ps.append(np.asarray(model.predict_on_batch(x)))
        ys.append(np.asarray(y))
    if not ys:
        return np.zeros(0, dtype=int), np.zeros((0, len(classes)))
    return np.concatenate(ys).astype(int), np.concatenate(ps).astype(np.float64)


def model_metrics(
    model: keras.Model,
    rows: pd.DataFrame,
    classes: Sequence[str],
    *,
    image_size: tuple[int, int] | None = None,
    batch_size: int = 32,
    top_k: int = DEFAULT_TOP_K,
    skipped: list | None = None,
) -> dict:
    """Accuracy, top-k accuracy and loss of ``model`` on catalog ``rows``.

    Rows whose label is not in ``classes`` are left out; files that cannot be
    decoded are skipped (appended to ``skipped``) and not counted in ``n``.

    Args:
        model: A model whose outputs follow ``classes``.
        rows: Catalog rows with ``path`` and ``label`` (optional ``turns``).
        classes: The model's class names, in output order.
        image_size: Input ``(height, width)``; default the model's input size.
        batch_size: Images per prediction batch.
        top_k: k of the top-k accuracy (capped at the number of classes).
        skipped: A list; ``(path, reason)`` is appended for each file dropped.

    Returns:
        ``{"n", "accuracy", "top_k_accuracy", "top_k", "loss"}`` (metrics
        ``None`` when ``n == 0``).
    """
    classes = [str(c) for c in classes]
    k = max(1, min(int(top_k), len(classes)))
    rows = rows[rows["label"].astype(str).isin(classes)].reset_index(drop=True)
    empty = {"n": 0, "accuracy": None, "top_k_accuracy": None, "top_k": k, "loss": None}
    if len(rows) == 0:
        return empty
    y, p = labelled_scores(model, rows, classes, image_size=image_size, batch_size=batch_size, skipped=skipped)
    if not len(y):
        return empty
    top, _ = rank_top_k(p, k)
    return {
        "n": int(len(y)),
        "accuracy": float(np.mean(top[:, 0] == y)),
        "top_k_accuracy": float(np.mean((top == y[:, None]).any(axis=1))),
        "top_k": k,
        "loss": float(np.mean(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)))),
    }
