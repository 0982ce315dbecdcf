"""Out-of-sample class probabilities for every labelled image, without retraining the big model K times.

Confident learning needs, for each image, probabilities from a model that did
not see that image's label. Two ways:

* :func:`linear_head_probs` (the default, ``method="linear-head"``): a
  K-fold cross-validated linear head (scikit-learn ``LogisticRegression`` on
  standardised embeddings) - each image is scored by the head fitted on the
  other folds. Seconds for thousands of images.
* :func:`kfold_train_probs` (``method="kfold-train"``, small libraries only):
  the run's model architecture trained K times from scratch with
  :func:`imgcls.training.train`, each time without one fold, which it then
  predicts. K whole trainings: minutes to hours.

Both keep a duplicate group (the catalog's ``group``: exact and near
duplicates) in one fold (:func:`group_folds`), so an image's copy never
teaches the head the label being questioned.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core import check_int, check_number
from imgcls.runs import Run, load_run

__all__ = ["DEFAULT_FOLDS", "DEFAULT_C", "group_folds", "linear_head_probs", "kfold_train_probs"]

#: Folds of the cross-validation (the K of K-fold).
DEFAULT_FOLDS = 5
#: Inverse regularisation strength of the linear head (see :func:`linear_head_probs`).
DEFAULT_C = 0.01


def _labels_arg(labels: Any) -> np.ndarray:
    arr = np.asarray(labels).astype(str)
    if arr.ndim != 1 or len(arr) == 0:
        raise ValueError(f"`labels` must be a non-empty 1-D sequence of class names. Received: shape {arr.shape}")
    return arr


def group_folds(
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> np.ndarray:
    """The fold of every image: classes spread evenly, a duplicate group never split.

    Uses scikit-learn's ``StratifiedGroupKFold`` (shuffled with ``seed``).

    Args:
        labels: The class of each image.
        groups: The duplicate group of each image (the catalog's ``group``);
            None when every image is its own group.
        folds: How many folds (>= 2).
        seed: Seed of the shuffle.

    Returns:
        ``int`` array of fold numbers ``0..folds-1``, one per image.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    y = _labels_arg(labels)
    folds = check_int(folds, "folds", 2, fix="use 5 (the default) or more for a large library")
    seed = check_int(seed, "seed", 0)
    g = np.arange(len(y)).astype(str) if groups is None else np.asarray(groups).astype(str)
    if len(g) != len(y):
        raise ValueError(f"`groups` must have one entry per label ({len(y)}). Received: {len(g)} groups")
    n_groups = len(set(g))
    if n_groups < folds:
        raise ValueError(
            f"`folds` must be at most the number of duplicate groups ({n_groups}). Received: folds={folds}; "
            "fix: use fewer folds or a larger library"
        )
    out = np.full(len(y), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():  # "The least populated class has only n members": expected for small classes
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, g)):
            out[test] = k
    return out


def linear_head_probs(
    features: Any,
    labels: Sequence[str],
    *,
    groups: Sequence[str] | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    C: float = DEFAULT_C,
    max_iter: int = 2000,
) -> tuple[np.ndarray, list[str]]:
    """Out-of-sample probabilities from a K-fold cross-validated linear head on embeddings.

    For each fold, ``StandardScaler`` + ``LogisticRegression`` (multinomial,
    L2 penalty ``1 / C``) is fitted on the other folds and predicts this one.
    The default ``C`` (:data:`DEFAULT_C`, strong regularisation) ranked
    flipped labels best in ``benchmarks/bench_label_issues.py`` and makes the
    solver converge in a few dozen iterations. The fits run on one BLAS
    thread: on a busy machine multi-threaded BLAS spins on these small
    matrices and is many times slower.

    Args:
        features: ``(n, d)`` embeddings (e.g. :attr:`Embeddings.features`).
        labels: The given class of each image.
        groups: Duplicate group of each image, kept in one fold.
        folds: K (>= 2); ``folds=1`` is refused (that would be in-sample).
        seed: Seed of the fold assignment.
        C: Inverse regularisation strength of the head (> 0).
        max_iter: Iterations of the solver.

    Returns:
        ``(probs, classes)``: ``(n, len(classes))`` probabilities, classes sorted.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float32)
    y = _labels_arg(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"`features` must be 2-D with one row per label ({len(y)}). Received: shape {x.shape}")
    C = check_number(C, "C", 0.0, low_open=True, fix="e.g. C=1.0; smaller regularises more")
    max_iter = check_int(max_iter, "max_iter")
    classes = sorted(set(y.tolist()))
    if len(classes) < 2:
        raise ValueError(f"`labels` must hold at least 2 classes to rank label issues. Received: {classes}")
    fold = group_folds(y, groups, folds=folds, seed=seed)
    column = {c: i for i, c in enumerate(classes)}
    probs = np.zeros((len(y), len(classes)), dtype=np.float64)
    with threadpool_limits(limits=1):
        for k in range(int(fold.max()) + 1):
            test = fold == k
            if not test.any():
                continue
            head = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
            head.fit(x[~test], y[~test])
            cols = [column[c] for c in head.classes_]
            probs[np.ix_(np.flatnonzero(test), cols)] = head.predict_proba(x[test])
    return probs, classes


def _fold_splits(rows: pd.DataFrame, fold: np.ndarray, k: int, seed: int, val_share: float) -> np.ndarray:
    """Split of each row when fold ``k`` is held out: test for fold k; val for a stable
    ``val_share`` (at least one) of the other folds' duplicate groups; train for the rest."""
    groups = rows["group"].astype(str).to_numpy()
    out = np.where(fold == k, "test", "train").astype(object)
    train_groups = sorted(set(groups[fold != k]),
                          key=lambda g: hashlib.sha256(f"kfold-val:{seed}:{k}:{g}".encode()).digest())
    n_val = min(max(1, int(round(val_share * len(train_groups)))), max(len(train_groups) - 1, 0))
    out[np.isin(groups, train_groups[:n_val]) & (fold != k)] = "val"
    return out


def kfold_train_probs(
    rows: pd.DataFrame,
    run: Run | str | os.PathLike,
    *,
    workspace: Any = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    max_epochs: int | None = None,
    patience: int | None = None,
    batch_size: int = 32,
    val_share: float = 0.1,
    verbose: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Out-of-sample probabilities from K full trainings, each without one fold (small libraries).

    Each fold's model is trained from scratch with :func:`imgcls.training.train`
    (the architecture, input size and augmentation of ``run``), its
    validation split a stable ``val_share`` of the other folds' duplicate
    groups, and predicts the held-out fold. The K runs are written to a
    temporary workspace and deleted: they never appear among the workspace's runs.

    Args:
        rows: Catalog rows (``path``, ``label``, ``hash``, ``group``; ``turns``
            and ``relpath`` when present) of the labelled images.
        run: The run whose architecture and settings are reused.
        workspace: Needed when ``run`` is a run id, "production" or "latest".
        folds: K (>= 2).
        seed: Seed of the folds and the trainings.
        max_epochs, patience: As in :func:`imgcls.training.train` (default: the run's).
        batch_size: Images per training step.
        val_share: Share of the training folds' groups used for early stopping.
        verbose: Passed to :func:`imgcls.training.train`.

    Returns:
        ``(probs, classes)``: ``(len(rows), len(classes))`` probabilities
        (NaN rows for images a fold's model could not decode), classes sorted.
    """
    from imgcls.core import open_workspace
    from imgcls.evaluation import predict_scores
    from imgcls.training import train

    the_run = load_run(run, workspace=workspace)
    val_share = check_number(val_share, "val_share", 0.0, 1.0, low_open=True, high_open=True)
    rows = rows.reset_index(drop=True).copy()
    if "group" not in rows.columns:
        rows["group"] = rows["hash"].astype(str) if "hash" in rows.columns else rows["path"].astype(str)
    if "turns" not in rows.columns:
        rows["turns"] = 0
    labels = _labels_arg(rows["label"])
    classes = sorted(set(labels.tolist()))
    fold = group_folds(labels, rows["group"], folds=folds, seed=seed)
    settings = the_run.config
    augmentation = settings.get("augmentation")
    if isinstance(augmentation, dict):
        augmentation = True if "custom" in augmentation else {k: v for k, v in augmentation.items() if k != "seed"}
    extra = {}
    learning_rate = (settings.get("optimizer") or {}).get("learning_rate")
    if learning_rate is not None:
        extra["learning_rate"] = float(learning_rate)
    probs = np.full((len(rows), len(classes)), np.nan, dtype=np.float64)
    catalog = rows.drop(columns=[c for c in ("split", "benchmark") if c in rows.columns])
    with tempfile.TemporaryDirectory(prefix="imgcls-kfold-") as tmp:
        ws = open_workspace(tmp, create=True)
        for k in range(int(fold.max()) + 1):
            cat = catalog.assign(split=_fold_splits(rows, fold, k, seed, val_share))
            fold_run = train(
                ws, model=the_run.model_name, classes=classes, catalog=cat, seed=seed + k,
                image_size=the_run.image_size, augmentation=augmentation or False,
                max_epochs=max_epochs if max_epochs is not None else settings.get("max_epochs"),
                patience=patience if patience is not None else settings.get("patience"),
                batch_size=batch_size, run_id=f"fold-{k}", verbose=verbose, **extra,
            )
            held = rows[fold == k]
            kept, scores, _ = predict_scores(fold_run, held.assign(_row=held.index))
            probs[kept["_row"].to_numpy()] = scores
    return probs, classes
