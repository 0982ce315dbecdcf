"""Evaluation metrics on plain arrays: no model, no TensorFlow.

Every function takes labels and class lists, ``(y_true, y_pred, classes)``,
or labels and scores, ``(y_true, scores, classes)``, where ``scores`` is an
``(n, len(classes))`` array (or a DataFrame with one column per class) of
class probabilities, and returns numbers or pandas DataFrames:
:func:`accuracy`, :func:`confusion_matrix`, :func:`per_class_metrics`,
:func:`top_k_labels`, :func:`top_k_accuracy`, :func:`most_confused_pairs`,
:func:`calibration_table`, :func:`expected_calibration_error` and the bundle
:func:`metrics_from_scores`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.calibration import DEFAULT_CALIBRATION_BINS, calibration_edges, confidence_buckets
from imgcls.core.checks import check_int
from imgcls.core.scores import calibrate
from imgcls.core.scores import top_k as _rank

__all__ = [
    "DEFAULT_CALIBRATION_BINS",
    "accuracy",
    "confusion_matrix",
    "per_class_metrics",
    "top_k_labels",
    "top_k_accuracy",
    "most_confused_pairs",
    "calibration_table",
    "expected_calibration_error",
    "metrics_from_scores",
]

def _check_classes(classes: Any) -> list[str]:
    if isinstance(classes, str) or classes is None:
        raise ValueError(
            f"`classes` must be a list of class names. Received: classes={classes!r}"
        )
    out = [str(c) for c in classes]
    if not out:
        raise ValueError("`classes` must name at least one class. Received: classes=[]")
    dupes = sorted({c for c in out if out.count(c) > 1})
    if dupes:
        raise ValueError(f"`classes` must not repeat names. Received duplicates: {dupes}")
    return out


def _labels(values: Any, classes: list[str], name: str) -> np.ndarray:
    if isinstance(values, str):
        raise ValueError(f"`{name}` must be a sequence of labels, not one string. Received: {values!r}")
    arr = np.asarray(pd.Series(values, dtype=object).astype(str), dtype=object)
    bad = sorted(set(arr) - set(classes))
    if bad:
        raise ValueError(
            f"`{name}` has labels that are not in `classes`: {bad[:10]!r}"
            f"{' ...' if len(bad) > 10 else ''}. Expected only {classes}. "
            "Filter the rows first or add the labels to `classes`."
        )
    return arr


def _pair(y_true: Any, y_pred: Any, classes: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = _check_classes(classes)
    t = _labels(y_true, classes, "y_true")
    p = _labels(y_pred, classes, "y_pred")
    if len(t) != len(p):
        raise ValueError(
            f"`y_true` and `y_pred` must have the same length. Received: {len(t)} and {len(p)}"
        )
    return t, p, classes


def _scores(scores: Any, classes: list[str], n: int | None = None) -> np.ndarray:
    if isinstance(scores, pd.DataFrame):
        missing = [c for c in classes if c not in scores.columns]
        if missing:
            raise ValueError(
                f"`scores` DataFrame needs one column per class; missing {missing}. "
                f"Received columns: {list(scores.columns)}"
            )
        arr = scores[classes].to_numpy(dtype=float)
    else:
        arr = np.asarray(scores, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != len(classes):
        raise ValueError(
            f"`scores` must be an (n, {len(classes)}) array: one probability per class, "
            f"columns in the order of `classes`. Received shape {arr.shape}"
        )
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"`scores` must have one row per label ({n}). Received: {arr.shape[0]} rows"
        )
    return arr


def accuracy(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Share of predictions equal to the true label (NaN for no rows).

    Example:
        >>> accuracy(["cat", "dog", "dog"], ["cat", "cat", "dog"])
        0.6666666666666666
    """
    t = np.asarray(pd.Series(y_true, dtype=object).astype(str))
    p = np.asarray(pd.Series(y_pred, dtype=object).astype(str))
    if len(t) != len(p):
        raise ValueError(
            f"`y_true` and `y_pred` must have the same length. Received: {len(t)} and {len(p)}"
        )
    return float(np.mean(t == p)) if len(t) else float("nan")


def confusion_matrix(y_true: Sequence[Any], y_pred: Sequence[Any], classes: Sequence[str]) -> pd.DataFrame:
    """Counts of true class (rows) against predicted class (columns).

    Args:
        y_true: True labels.
        y_pred: Predicted labels.
        classes: All classes, in display order; every label must be one of them.

    Returns:
        An int DataFrame ``classes x classes``; the index is named ``"true"``
        and the columns ``"predicted"``. Rows sum to each class's support.

    Example:
        >>> confusion_matrix(["a", "a", "b"], ["a", "b", "b"], ["a", "b"]).values.tolist()
        [[1, 1], [0, 1]]
    """
    t, p, classes = _pair(y_true, y_pred, classes)
    idx = {c: i for i, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(m, ([idx[x] for x in t], [idx[x] for x in p]), 1)
    return pd.DataFrame(
        m, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted")
    )


def per_class_metrics(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    classes: Sequence[str],
    *,
    zero_division: float = 0.0,
) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class.

    Args:
        y_true: True labels.
        y_pred: Predicted labels.
        classes: All classes (row order of the result).
        zero_division: Value of precision (recall, F1) when its denominator is
            0 (a class never predicted, never present). Use ``float("nan")``
            to leave such cells empty.

    Returns:
        DataFrame indexed by ``class`` with columns ``precision``, ``recall``
        (the class's accuracy), ``f1``, ``support`` (true images of the
        class), ``predicted`` (images predicted as the class) and ``correct``.
    """
    cm = confusion_matrix(y_true, y_pred, classes).to_numpy()
    correct = np.diag(cm).astype(float)
    support = cm.sum(axis=1).astype(float)
    predicted = cm.sum(axis=0).astype(float)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1), zero_division)

    precision = ratio(correct, predicted)
    recall = ratio(correct, support)
    f1 = ratio(2 * precision * recall, precision + recall)
    f1 = np.where((support + predicted) > 0, f1, zero_division)
    return pd.DataFrame(
        {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(np.int64),
            "predicted": predicted.astype(np.int64),
            "correct": correct.astype(np.int64),
        },
        index=pd.Index(_check_classes(classes), name="class"),
    )


def top_k_labels(scores: Any, classes: Sequence[str], *, top_k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The ``top_k`` best classes of every row, by name, and their scores, best first.

    Args:
        scores: ``(n, len(classes))`` probabilities (array or DataFrame with
            one column per class).
        classes: Class names in the column order of ``scores``.
        top_k: How many; clipped to the number of classes.

    Returns:
        ``(labels, values)``: object array ``(n, k)`` of class names and float
        array ``(n, k)`` of their scores. Ties keep the class order (the
        ranking of :func:`imgcls.core.scores.top_k`).

    Example:
        >>> names, values = top_k_labels([[0.2, 0.5, 0.3]], ["a", "b", "c"], top_k=2)
        >>> names.tolist(), values.tolist()
        ([['b', 'c']], [[0.5, 0.3]])
    """
    classes = _check_classes(classes)
    top_k = check_int(top_k, "top_k")
    order, values = _rank(_scores(scores, classes), top_k)
    return np.asarray(classes, dtype=object)[order], values


def top_k_accuracy(y_true: Sequence[Any], scores: Any, classes: Sequence[str], *, top_k: int = 3) -> float:
    """Share of rows whose true class is among the ``top_k`` highest scores.

    A true class counts as in the top ``top_k`` when fewer than ``top_k``
    classes score strictly higher (ties are resolved in the model's favour,
    as in ``sklearn.metrics.top_k_accuracy_score``).

    Args:
        y_true: True labels.
        scores: ``(n, len(classes))`` probabilities.
        classes: Class names in the column order of ``scores``.
        top_k: How many of the best classes count as a hit.

    Returns:
        The share, NaN for no rows.
    """
    classes = _check_classes(classes)
    k = check_int(top_k, "top_k")
    t = _labels(y_true, classes, "y_true")
    arr = _scores(scores, classes, len(t))
    if not len(t):
        return float("nan")
    idx = np.array([classes.index(x) for x in t])
    true_score = arr[np.arange(len(t)), idx]
    higher = (arr > true_score[:, None]).sum(axis=1)
    return float(np.mean(higher < k))


def most_confused_pairs(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    classes: Sequence[str],
    *,
    top: int | None = 10,
) -> pd.DataFrame:
    """Pairs of classes the model mixes up, most mixed first: look-alike candidates.

    A pair counts the images of either class predicted as the other, in
    both directions (a pair is unordered; the direction counts are kept).

    Args:
        y_true: True labels.
        y_pred: Predicted labels.
        classes: All classes.
        top: Keep this many pairs (None for all pairs with any confusion).

    Returns:
        DataFrame [class_a, class_b, a_as_b, b_as_a, count, rate] with
        ``class_a < class_b`` alphabetically, ``count = a_as_b + b_as_a`` and
        ``rate = count / (support_a + support_b)``, sorted by count then rate
        (descending), then names. Pairs never confused are left out.
    """
    cm = confusion_matrix(y_true, y_pred, classes)
    names = sorted(cm.index)
    support = cm.sum(axis=1)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ab, ba = int(cm.loc[a, b]), int(cm.loc[b, a])
            if ab + ba == 0:
                continue
            n = int(support[a] + support[b])
            rows.append({"class_a": a, "class_b": b, "a_as_b": ab, "b_as_a": ba,
                         "count": ab + ba, "rate": (ab + ba) / n if n else float("nan")})
    df = pd.DataFrame(rows, columns=["class_a", "class_b", "a_as_b", "b_as_a", "count", "rate"])
    df = df.sort_values(["count", "rate", "class_a", "class_b"],
                        ascending=[False, False, True, True], kind="stable").reset_index(drop=True)
    if top is not None:
        df = df.head(check_int(top, "top", 1, " or None"))
    return df.astype({"a_as_b": "int64", "b_as_a": "int64", "count": "int64", "rate": float})


def calibration_table(
    y_true: Sequence[Any],
    scores: Any,
    classes: Sequence[str],
    *,
    bins: Any = DEFAULT_CALIBRATION_BINS,
) -> pd.DataFrame:
    """Accuracy by confidence bucket: is a 0.9 score right 9 times in 10?

    The prediction is the highest-scoring class and the confidence its score.

    Args:
        y_true: True labels.
        scores: ``(n, len(classes))`` probabilities.
        classes: Class names in the column order of ``scores``.
        bins: Bucket edges within [0, 1] (right-closed; the first bucket
            includes its lower edge) or a number of equal-width buckets.

    Returns:
        One row per bucket (empty buckets included, with NaN accuracy):
        [bucket, lower, upper, n, share, mean_confidence, accuracy, gap]
        where ``gap = accuracy - mean_confidence`` (negative: over-confident).
        :func:`expected_calibration_error` summarises it in one number.
    """
    classes = _check_classes(classes)
    t = _labels(y_true, classes, "y_true")
    arr = _scores(scores, classes, len(t))
    edges = calibration_edges(bins)
    if len(t):
        pred = np.asarray(classes, dtype=object)[arr.argmax(axis=1)]
        conf = arr.max(axis=1)
    else:
        pred, conf = np.array([], dtype=object), np.array([], dtype=float)
    correct = (pred == t).astype(float)
    which = confidence_buckets(conf, edges)  # lower < conf <= upper (the first also conf == lower)
    rows = []
    for i in range(len(edges) - 1):
        mask = which == i
        n = int(mask.sum())
        rows.append({
            "bucket": f"{edges[i]:.2f}-{edges[i + 1]:.2f}",
            "lower": float(edges[i]),
            "upper": float(edges[i + 1]),
            "n": n,
            "share": n / len(t) if len(t) else float("nan"),
            "mean_confidence": float(conf[mask].mean()) if n else float("nan"),
            "accuracy": float(correct[mask].mean()) if n else float("nan"),
        })
    df = pd.DataFrame(rows)
    df["gap"] = df["accuracy"] - df["mean_confidence"]
    return df


def expected_calibration_error(calibration: pd.DataFrame) -> float:
    """Mean absolute gap between accuracy and confidence, weighted by bucket size.

    Args:
        calibration: A table from :func:`calibration_table`.
    """
    c = calibration[calibration["n"] > 0]
    if c.empty:
        return float("nan")
    return float((c["n"] * (c["accuracy"] - c["mean_confidence"]).abs()).sum() / c["n"].sum())


def metrics_from_scores(
    y_true: Sequence[Any],
    scores: Any,
    classes: Sequence[str],
    *,
    top_k: int = 3,
    bins: Any = DEFAULT_CALIBRATION_BINS,
    top_pairs: int | None = 10,
    temperature: float | None = None,
) -> dict[str, Any]:
    """Every metric of :func:`imgcls.evaluation.evaluate` from labels and scores (no model needed).

    Args:
        y_true: True labels.
        scores: ``(n, len(classes))`` probabilities; the prediction is the argmax.
        classes: Class names in the column order of ``scores``.
        top_k: For top-k accuracy.
        bins: Calibration buckets (see :func:`calibration_table`).
        top_pairs: Most-confused pairs to keep.
        temperature: The run's fitted temperature (:attr:`imgcls.runs.Run.temperature`):
            ``scores`` are then the model's raw probabilities, ``calibration``
            and ``ece`` describe the calibrated scores
            (:func:`imgcls.core.scores.calibrate`), and the result also holds
            ``calibration_raw`` and ``summary["ece_raw"]`` (before scaling)
            and ``summary["temperature"]``. Predictions, accuracy and top-k
            do not change (scaling keeps the order of the classes).

    Returns:
        ``{"summary": {n, accuracy, top_k_accuracy, k, macro_precision,
        macro_recall, macro_f1, ece}, "per_class", "confusion",
        "confused_pairs", "calibration"}`` (the last four DataFrames). Macro
        averages are over classes with at least one true image.
    """
    classes = _check_classes(classes)
    t = _labels(y_true, classes, "y_true")
    arr = _scores(scores, classes, len(t))
    pred = np.asarray(classes, dtype=object)[arr.argmax(axis=1)] if len(t) else np.array([], dtype=object)
    per_class = per_class_metrics(t, pred, classes)
    present = per_class[per_class["support"] > 0]
    calib = calibration_table(t, calibrate(arr, temperature), classes, bins=bins)
    summary = {
        "n": int(len(t)),
        "accuracy": accuracy(t, pred),
        "top_k_accuracy": top_k_accuracy(t, arr, classes, top_k=top_k),
        "k": int(min(top_k, len(classes))),
        "macro_precision": float(present["precision"].mean()) if len(present) else float("nan"),
        "macro_recall": float(present["recall"].mean()) if len(present) else float("nan"),
        "macro_f1": float(present["f1"].mean()) if len(present) else float("nan"),
        "ece": expected_calibration_error(calib),
    }
    out = {
        "summary": summary,
        "per_class": per_class,
        "confusion": confusion_matrix(t, pred, classes),
        "confused_pairs": most_confused_pairs(t, pred, classes, top=top_pairs),
        "calibration": calib,
    }
    if temperature is not None:
        raw = calibration_table(t, arr, classes, bins=bins)
        summary["ece_raw"] = expected_calibration_error(raw)
        summary["temperature"] = float(temperature)
        out["calibration_raw"] = raw
    return out


def _sub_accuracy(kept: pd.DataFrame, scores: np.ndarray, classes: list[str],
                  keep: Sequence[str]) -> tuple[float, int]:
    """Accuracy (argmax of ``scores`` against ``kept["label"]``) on the rows whose label is in ``keep``,
    and how many rows that is (NaN, 0 for none)."""
    mask = kept["label"].isin(list(keep)).to_numpy()
    if not mask.any():
        return float("nan"), 0
    pred = np.asarray(classes, dtype=object)[scores[mask].argmax(axis=1)]
    return float(np.mean(pred == kept["label"].to_numpy()[mask])), int(mask.sum())


def _jsonable(v: Any) -> Any:
    """A metric as plain JSON: NumPy numbers as Python numbers, NaN as None."""
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v
