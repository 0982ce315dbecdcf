"""Metrics, confusion, comparisons and the deploy gate.

Three layers of functions, each usable on its own:

* **Pure metric functions** on plain arrays: ``(y_true, y_pred, classes)`` or
  ``(y_true, scores, classes)`` where ``scores`` is an ``(n, len(classes))``
  array of class probabilities. They need no model and no TensorFlow:
  :func:`confusion_matrix`, :func:`per_class_metrics`, :func:`accuracy`,
  :func:`top_k_accuracy`, :func:`most_confused_pairs`,
  :func:`calibration_table`, :func:`expected_calibration_error`,
  :func:`metrics_from_scores`.
* **Run evaluation** over a split of the run's library snapshot or the fixed
  benchmark set: :func:`predict_table`, :func:`evaluate`, :func:`compare_runs`.
* **The deploy gate**: :func:`promote` makes a run the production model only
  when it is at least as good as the current one on the benchmark set, and
  keeps every attempt, accepted or refused, in ``runs/promotions.jsonl``;
  :func:`production_run` and :func:`promotion_log` read them back.

Plots (:func:`plot_confusion`, :func:`plot_per_class`,
:func:`plot_confused_pairs`, :func:`plot_calibration`,
:func:`plot_comparison`) return a 16:9 ``matplotlib.figure.Figure`` with large
fonts and a title that states the finding, ready to paste into a slide.

Which images an evaluation uses:

* ``split="train" | "val" | "test"``: the rows of that split in the run's
  library snapshot (``splits.parquet``), i.e. exactly what the run was trained
  and tested on. A file moved since is found again by its content hash.
* ``split="benchmark"``: the benchmark set of the library *now* (images
  flagged ``benchmark``, plus their near duplicates, which
  :func:`imgcls.library.assign_splits` also holds out: the same rule training
  uses for its benchmark metric) whose label is one of the run's classes. The
  set is fixed (it only grows when a new class gets its first benchmark
  images), so every run is measured on the same images.

TensorFlow is imported only when a model has to predict.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.workspace import UNKNOWN_CLASS, Workspace, as_workspace
from imgcls.runs import (
    Run,
    RunNotFoundError,
    append_promotion,
    load_run,
    production_run_id,
    read_production,
    set_production,
)

__all__ = [
    "SPLIT_CHOICES",
    "DEFAULT_CALIBRATION_BINS",
    "SLIDE_SIZE",
    "accuracy",
    "confusion_matrix",
    "per_class_metrics",
    "top_k",
    "top_k_accuracy",
    "most_confused_pairs",
    "calibration_table",
    "expected_calibration_error",
    "metrics_from_scores",
    "evaluation_rows",
    "predict_scores",
    "predict_table",
    "evaluate",
    "compare_runs",
    "PromotionResult",
    "PromotionRefused",
    "promote",
    "plot_confusion",
    "plot_per_class",
    "plot_confused_pairs",
    "plot_calibration",
    "plot_comparison",
]

#: Where an evaluation can take its images from.
SPLIT_CHOICES = ("train", "val", "test", "benchmark")
#: Confidence buckets of :func:`calibration_table` (right-closed, first one includes 0).
DEFAULT_CALIBRATION_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Figure size of every plot, in inches: a 16:9 slide.
SLIDE_SIZE = (13.333, 7.5)
#: File name, inside ``runs/``, of the log of every promotion attempt.
_TOL = 1e-9


# =========================================================================== pure metrics
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


def top_k(scores: Any, classes: Sequence[str], *, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best classes of every row and their scores, best first.

    Args:
        scores: ``(n, len(classes))`` probabilities (array or DataFrame with
            one column per class).
        classes: Class names in the column order of ``scores``.
        k: How many; clipped to the number of classes.

    Returns:
        ``(labels, values)``: object array ``(n, k)`` of class names and float
        array ``(n, k)`` of their scores. Ties keep the class order.
    """
    classes = _check_classes(classes)
    k = check_int(k, "k")
    arr = _scores(scores, classes)
    k = min(k, len(classes))
    order = np.argsort(-arr, axis=1, kind="stable")[:, :k]
    names = np.asarray(classes, dtype=object)[order]
    return names, np.take_along_axis(arr, order, axis=1)


def top_k_accuracy(y_true: Sequence[Any], scores: Any, classes: Sequence[str], *, k: int = 3) -> float:
    """Share of rows whose true class is among the ``k`` highest scores.

    A true class counts as in the top ``k`` when fewer than ``k`` classes
    score strictly higher (ties are resolved in the model's favour, as in
    ``sklearn.metrics.top_k_accuracy_score``). NaN for no rows.
    """
    classes = _check_classes(classes)
    k = check_int(k, "k")
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


def _bins(bins: Any) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"`bins` must be an int >= 1 or a list of edges. Received: bins={bins!r}")
        return np.linspace(0.0, 1.0, int(bins) + 1)
    try:
        edges = np.asarray([float(b) for b in bins])
    except (TypeError, ValueError):
        edges = None
    if edges is None or len(edges) < 2 or np.any(np.diff(edges) <= 0) or edges[0] < 0 or edges[-1] > 1:
        raise ValueError(
            "`bins` must be an int >= 1 (equal-width buckets on [0, 1]) or increasing "
            f"edges within [0, 1], e.g. (0, 0.5, 0.7, 0.9, 1). Received: bins={bins!r}"
        )
    return edges


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
    edges = _bins(bins)
    if len(t):
        pred = np.asarray(classes, dtype=object)[arr.argmax(axis=1)]
        conf = arr.max(axis=1)
    else:
        pred, conf = np.array([], dtype=object), np.array([], dtype=float)
    correct = (pred == t).astype(float)
    # Bucket i holds lower < conf <= upper (the first also conf == lower).
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, len(edges) - 2)
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
    k: int = 3,
    bins: Any = DEFAULT_CALIBRATION_BINS,
    top_pairs: int | None = 10,
) -> dict[str, Any]:
    """Every metric of :func:`evaluate` from labels and scores (no model needed).

    Args:
        y_true: True labels.
        scores: ``(n, len(classes))`` probabilities; the prediction is the argmax.
        classes: Class names in the column order of ``scores``.
        k: For top-k accuracy.
        bins: Calibration buckets (see :func:`calibration_table`).
        top_pairs: Most-confused pairs to keep.

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
    calib = calibration_table(t, arr, classes, bins=bins)
    summary = {
        "n": int(len(t)),
        "accuracy": accuracy(t, pred),
        "top_k_accuracy": top_k_accuracy(t, arr, classes, k=k),
        "k": int(min(k, len(classes))),
        "macro_precision": float(present["precision"].mean()) if len(present) else float("nan"),
        "macro_recall": float(present["recall"].mean()) if len(present) else float("nan"),
        "macro_f1": float(present["f1"].mean()) if len(present) else float("nan"),
        "ece": expected_calibration_error(calib),
    }
    return {
        "summary": summary,
        "per_class": per_class,
        "confusion": confusion_matrix(t, pred, classes),
        "confused_pairs": most_confused_pairs(t, pred, classes, top=top_pairs),
        "calibration": calib,
    }


# =========================================================================== rows & predictions


def _catalog(ws: Workspace, *, splits: bool = False) -> pd.DataFrame:
    """A fresh library catalog; with ``splits`` its ``split`` column too, for
    callers that evaluate several runs on the benchmark set (assigned once)."""
    from imgcls.library import Library

    catalog = Library(ws).scan()
    if splits:
        from imgcls.library import assign_splits

        catalog = assign_splits(catalog)
    return catalog


def _check_split(split: Any) -> str:
    if split not in SPLIT_CHOICES:
        raise ValueError(
            f"`split` must be one of {list(SPLIT_CHOICES)}. Received: split={split!r}. "
            "To evaluate other images, pass them as `rows` (a DataFrame with path and label)."
        )
    return split


def evaluation_rows(
    run: Run | str | os.PathLike,
    workspace: Workspace | str | os.PathLike,
    *,
    split: str = "test",
    classes: Sequence[str] | None = None,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The images an evaluation of ``run`` on ``split`` uses.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`.
        workspace: The workspace.
        split: ``"train"``, ``"val"``, ``"test"`` (from the run's snapshot) or
            ``"benchmark"`` (the library's benchmark set now: flagged images
            and their near duplicates, as :func:`imgcls.library.assign_splits`).
        classes: Keep only these true classes (default: the run's classes).
        catalog: A fresh library catalog, to save a scan.

    Returns:
        DataFrame [path, relpath, hash, label, split, turns]; for a
        snapshot split a moved file's ``path`` is its current location (found
        by content hash).
    """
    ws = as_workspace(workspace)
    run = load_run(run, ws)
    split = _check_split(split)
    keep = list(run.classes) if classes is None else [str(c) for c in classes]
    cols = ["path", "relpath", "hash", "label", "split", "turns"]
    if split == "benchmark":
        from imgcls.library import assign_splits

        cat = _catalog(ws) if catalog is None else catalog
        if "split" not in cat:
            cat = assign_splits(cat)
        rows = cat[(cat["split"] == "benchmark") & cat["readable"].astype(bool)
                   & cat["label"].isin(keep) & (cat["label"] != UNKNOWN_CLASS)].copy()
    else:
        snap = run.splits
        rows = snap[(snap["split"] == split) & snap["label"].isin(keep)].copy()
        if len(rows) and "hash" in rows:
            exists = np.array([os.path.exists(p) for p in rows["path"]], dtype=bool)
            if not exists.all() or "turns" not in rows:
                cat = _catalog(ws) if catalog is None else catalog
                by_hash = cat.drop_duplicates("hash").set_index("hash")
                if not exists.all():
                    moved = rows.loc[~exists, "hash"].map(by_hash["path"])
                    rows.loc[~exists, "path"] = moved.fillna(rows.loc[~exists, "path"]).to_numpy()
                if "turns" not in rows:
                    rows["turns"] = rows["hash"].map(by_hash["turns"]).fillna(0).astype(int)
    for col in cols:
        if col not in rows:
            rows[col] = 0 if col == "turns" else ""
    rows["turns"] = pd.to_numeric(rows["turns"], errors="coerce").fillna(0).astype(int)
    return rows[cols].sort_values(["label", "relpath", "path"], kind="stable").reset_index(drop=True)


def _rows_arg(rows: Any) -> pd.DataFrame:
    if not isinstance(rows, pd.DataFrame) or not {"path", "label"} <= set(rows.columns):
        raise ValueError(
            "`rows` must be a DataFrame with columns path and label (the true class). "
            f"Received: {type(rows).__name__}"
            + (f" with columns {list(rows.columns)}" if isinstance(rows, pd.DataFrame) else "")
        )
    out = rows.copy()
    for col in ("relpath", "hash", "split"):
        if col not in out:
            out[col] = ""
    if "turns" not in out:
        out["turns"] = 0
    return out.reset_index(drop=True)


def predict_scores(
    run: Run | str | os.PathLike,
    rows: pd.DataFrame,
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    batch_size: int = 64,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Run the model over ``rows`` and return its class probabilities.

    Args:
        run: The run whose model predicts.
        rows: DataFrame with at least ``path`` (optional ``turns``).
        workspace: Needed when ``run`` is a run id.
        batch_size: Images per batch.

    Returns:
        ``(kept, scores, skipped)``: the rows that could be decoded (index
        reset), their ``(len(kept), num_classes)`` probabilities in the order
        of ``run.classes``, and the files that could not be read
        [path, reason].
    """
    from imgcls.inputs import make_inference_dataset

    run = load_run(run, workspace)
    classes = run.classes
    if len(rows) == 0:
        return rows.iloc[:0].reset_index(drop=True), np.zeros((0, len(classes))), \
            pd.DataFrame(columns=["path", "reason"])
    model = run.model
    size = run.image_size or tuple(int(s) for s in model.input_shape[1:3])
    skipped: list = []
    turns = rows["turns"].fillna(0).astype(int).tolist() if "turns" in rows else None
    ds = make_inference_dataset(list(rows["path"]), image_size=size, batch_size=batch_size,
                                skipped=skipped, turns=turns)
    out = np.full((len(rows), len(classes)), np.nan, dtype=np.float64)
    seen = np.zeros(len(rows), dtype=bool)
    for images, index in ds:
        probs = np.asarray(model(images, training=False), dtype=np.float64)
        idx = np.asarray(index)
        out[idx] = probs
        seen[idx] = True
    kept = rows[seen].reset_index(drop=True)
    return kept, out[seen], pd.DataFrame(skipped, columns=["path", "reason"])


def _table(kept: pd.DataFrame, scores: np.ndarray, classes: list[str], k: int) -> pd.DataFrame:
    k = min(check_int(k, "k"), len(classes))
    names, values = top_k(scores, classes, k=k) if len(kept) else (
        np.empty((0, k), dtype=object), np.empty((0, k)))
    table = pd.DataFrame({
        "path": kept["path"].astype(str).to_numpy(),
        "relpath": kept["relpath"].astype(str).to_numpy() if "relpath" in kept else "",
        "split": kept["split"].astype(str).to_numpy() if "split" in kept else "",
        "label": kept["label"].astype(str).to_numpy(),
    })
    table["predicted"] = names[:, 0] if len(kept) else pd.Series(dtype=object)
    table["confidence"] = values[:, 0] if len(kept) else pd.Series(dtype=float)
    table["correct"] = (table["predicted"] == table["label"]).astype(bool)
    idx = {c: i for i, c in enumerate(classes)}
    pos = table["label"].map(idx)
    true_score = np.full(len(table), np.nan)
    ok = pos.notna().to_numpy()
    if ok.any():
        true_score[ok] = scores[np.flatnonzero(ok), pos[ok].astype(int).to_numpy()]
    table["true_score"] = true_score
    for j in range(k):
        table[f"top{j + 1}_class"] = names[:, j] if len(kept) else pd.Series(dtype=object)
        table[f"top{j + 1}_score"] = values[:, j] if len(kept) else pd.Series(dtype=float)
    in_top = np.zeros(len(table), dtype=bool)
    for j in range(k):
        in_top |= (table[f"top{j + 1}_class"] == table["label"]).to_numpy(dtype=bool)
    table["in_top_k"] = in_top
    return table


def predict_table(
    run: Run | str | os.PathLike,
    workspace: Workspace | str | os.PathLike,
    *,
    split: str = "test",
    k: int = 3,
    rows: pd.DataFrame | None = None,
    batch_size: int = 64,
) -> pd.DataFrame:
    """One row per image: its true class and the run's top-``k`` predictions.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`
            (run id, folder, ``"production"``, ``"latest"``).
        workspace: The workspace.
        split: Which images (see :func:`evaluation_rows`).
        k: Predictions to list per image.
        rows: Evaluate these images instead of a split: a DataFrame with
            ``path`` and ``label`` (e.g. a labelled batch of new images).
        batch_size: Images per inference batch.

    Returns:
        DataFrame [path, relpath, split, label, predicted, confidence, correct,
        true_score, top1_class, top1_score, ..., topk_class, topk_score,
        in_top_k]; ``true_score`` is the probability given to the true class
        (NaN if the run does not know that class). Files that could not be
        decoded are left out and listed in ``table.attrs["skipped"]``.
    """
    ws = as_workspace(workspace)
    run = load_run(run, ws)
    data = _rows_arg(rows) if rows is not None else evaluation_rows(run, ws, split=split)
    kept, scores, skipped = predict_scores(run, data, batch_size=batch_size)
    table = _table(kept, scores, run.classes, k)
    table.attrs["skipped"] = skipped
    table.attrs["run_id"] = run.run_id
    return table


def evaluate(
    run: Run | str | os.PathLike,
    workspace: Workspace | str | os.PathLike,
    *,
    split: str = "test",
    k: int = 3,
    rows: pd.DataFrame | None = None,
    classes: Sequence[str] | None = None,
    bins: Any = DEFAULT_CALIBRATION_BINS,
    top_pairs: int | None = 10,
    save: bool = False,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Evaluate a run on a split of its snapshot or on the benchmark set.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`.
        workspace: The workspace.
        split: ``"test"`` (default), ``"val"``, ``"train"`` or ``"benchmark"``.
        k: For top-k accuracy and the prediction table.
        rows: Evaluate these images (DataFrame with path, label) instead.
        classes: Only images whose true class is in this list (e.g. the
            classes two runs share). Default: all of the run's classes.
        bins: Calibration buckets (see :func:`calibration_table`).
        top_pairs: Most-confused pairs to keep.
        save: Store the summary in the run's metrics.json under ``split``.
        batch_size: Images per inference batch.

    Returns:
        A dict: ``run_id``, ``split``, ``classes`` (the run's),
        ``summary`` (dict: n, accuracy, top_k_accuracy, k, macro_precision,
        macro_recall, macro_f1, ece, n_skipped, n_unknown_class) and the
        DataFrames ``per_class``, ``confusion``, ``confused_pairs``,
        ``calibration``, ``predictions`` (see :func:`predict_table`) and
        ``skipped``. Images whose true class the run does not know (only
        possible with ``rows``) count as wrong in accuracy and are left out of
        the per-class tables.

    Raises:
        ValueError: For a bad option, or when there is no image to evaluate.
    """
    ws = as_workspace(workspace)
    run = load_run(run, ws)
    split_name = "custom" if rows is not None else _check_split(split)
    data = _rows_arg(rows) if rows is not None else evaluation_rows(run, ws, split=split)
    if classes is not None:
        data = data[data["label"].isin([str(c) for c in classes])].reset_index(drop=True)
    if len(data) == 0:
        hint = (
            "Choose benchmark images first: imgcls.library.choose_benchmark(Library(workspace))."
            if split_name == "benchmark" else
            "Check that the run's snapshot has images in this split (run.splits)."
        )
        raise ValueError(
            f"No images to evaluate run {run.run_id!r} on (split={split_name!r}, "
            f"classes={list(classes) if classes is not None else run.classes}). {hint}"
        )
    kept, scores, skipped = predict_scores(run, data, batch_size=batch_size)
    return _evaluation(run, split_name, kept, scores, skipped, k=k, bins=bins,
                       top_pairs=top_pairs, save=save)


def _evaluation(run: Run, split: str, kept: pd.DataFrame, scores: np.ndarray, skipped: pd.DataFrame,
                *, k: int, bins: Any, top_pairs: int | None, save: bool) -> dict[str, Any]:
    classes = run.classes
    table = _table(kept, scores, classes, k)
    table.attrs["skipped"] = skipped
    known = table["label"].isin(classes).to_numpy()
    result = metrics_from_scores(table["label"][known], scores[known], classes, k=k, bins=bins,
                                 top_pairs=top_pairs)
    summary = result["summary"]
    if not known.all():  # unknown true classes: always wrong
        summary["accuracy"] = float(table["correct"].mean())
        summary["top_k_accuracy"] = float(table["in_top_k"].mean())
        summary["n"] = int(len(table))
    summary["n_skipped"] = int(len(skipped))
    summary["n_unknown_class"] = int((~known).sum())
    out = {"run_id": run.run_id, "split": split, "classes": list(classes), "summary": summary,
           **{key: result[key] for key in ("per_class", "confusion", "confused_pairs", "calibration")},
           "predictions": table, "skipped": skipped}
    if save and split in SPLIT_CHOICES:
        run.update_metrics({split: {key: _jsonable(v) for key, v in summary.items()}})
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


# =========================================================================== comparison
def _runs_arg(runs: Any, ws: Workspace) -> list[Run]:
    if isinstance(runs, (Run, str, os.PathLike)):
        runs = [runs]
    try:
        out = [load_run(r, ws) for r in runs]
    except TypeError:
        raise ValueError(f"`runs` must be a list of runs or run ids. Received: {runs!r}") from None
    if not out:
        raise ValueError("`runs` must name at least one run. Received: []")
    ids = [r.run_id for r in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"`runs` lists a run twice: {ids}")
    return out


def _benchmark_scores(run: Run, catalog: pd.DataFrame, ws: Workspace, batch_size: int):
    rows = evaluation_rows(run, ws, split="benchmark", catalog=catalog)
    kept, scores, skipped = predict_scores(run, rows, batch_size=batch_size)
    return kept, scores, skipped


def _sub_accuracy(kept: pd.DataFrame, scores: np.ndarray, classes: list[str], keep: Sequence[str]) -> tuple[float, int]:
    mask = kept["label"].isin(list(keep)).to_numpy()
    if not mask.any():
        return float("nan"), 0
    pred = np.asarray(classes, dtype=object)[scores[mask].argmax(axis=1)]
    return float(np.mean(pred == kept["label"].to_numpy()[mask])), int(mask.sum())


def compare_runs(
    runs: Sequence[Run | str | os.PathLike],
    workspace: Workspace | str | os.PathLike,
    *,
    k: int = 3,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Compare runs side by side and per class on the same fixed benchmark set.

    Each run is measured on the benchmark images of its own classes
    (``accuracy``) and, so the numbers are comparable, on the benchmark images
    of the classes *all* runs share (``accuracy_common``). When the class
    lists differ, ``note`` says so and names the classes left out.

    Args:
        runs: Runs or run references (ids, folders, ``"production"``).
        workspace: The workspace.
        k: For top-k accuracy.
        batch_size: Images per inference batch.

    Returns:
        A dict: ``summary`` (DataFrame, one row per run: run_id, generation,
        parent, throwaway, n_classes, n_images, accuracy, top_k_accuracy,
        macro_f1, n_common, accuracy_common, best_val_accuracy,
        test_accuracy), ``per_class`` (DataFrame indexed by class: the recall
        of each run on that class, one column per run id, NaN where a run does
        not know the class, plus ``support``), ``common_classes`` (list),
        ``note`` (str) and ``evaluations`` (run_id -> :func:`evaluate` dict).
    """
    ws = as_workspace(workspace)
    runs = _runs_arg(runs, ws)
    catalog = _catalog(ws, splits=True)
    common = sorted(set.intersection(*(set(r.classes) for r in runs)))
    union = sorted(set().union(*(set(r.classes) for r in runs)))
    summary, evals = [], {}
    per_class = pd.DataFrame(index=pd.Index(union, name="class"))
    for run in runs:
        kept, scores, skipped = _benchmark_scores(run, catalog, ws, batch_size)
        if len(kept) == 0:
            raise ValueError(
                f"Run {run.run_id!r} has no benchmark images for its classes. Choose them with "
                "imgcls.library.choose_benchmark(Library(workspace))."
            )
        ev = _evaluation(run, "benchmark", kept, scores, skipped, k=k,
                         bins=DEFAULT_CALIBRATION_BINS, top_pairs=10, save=False)
        evals[run.run_id] = ev
        acc_common, n_common = _sub_accuracy(kept, scores, run.classes, common)
        info = run.summary()
        summary.append({
            "run_id": run.run_id,
            "generation": run.generation,
            "parent": run.parent,
            "throwaway": run.throwaway,
            "n_classes": run.num_classes,
            "n_images": ev["summary"]["n"],
            "accuracy": ev["summary"]["accuracy"],
            "top_k_accuracy": ev["summary"]["top_k_accuracy"],
            "macro_f1": ev["summary"]["macro_f1"],
            "n_common": n_common,
            "accuracy_common": acc_common,
            "best_val_accuracy": info.get("best_val_accuracy"),
            "test_accuracy": info.get("test_accuracy"),
        })
        per_class[run.run_id] = ev["per_class"]["recall"].where(ev["per_class"]["support"] > 0)
        sup = ev["per_class"]["support"]
        per_class.loc[sup.index, "support"] = sup.where(sup > 0)
    if "support" in per_class:
        per_class["support"] = per_class["support"].fillna(0).astype("int64")
    differing = [c for c in union if c not in common]
    if differing:
        note = (
            f"The runs' class lists differ: accuracy_common compares them on the "
            f"{len(common)} shared classes only; left out: {', '.join(differing)}."
        )
    else:
        note = f"All runs have the same {len(common)} classes; accuracy and accuracy_common agree."
    return {"summary": pd.DataFrame(summary), "per_class": per_class, "common_classes": common,
            "note": note, "evaluations": evals}


# =========================================================================== deploy gate
class PromotionRefused(ValueError):
    """The deploy gate refused a run; ``.result`` holds the :class:`PromotionResult`."""

    def __init__(self, result: "PromotionResult"):
        self.result = result
        super().__init__(result.explain())


@dataclass
class PromotionResult:
    """The outcome of one :func:`promote` call (also written to promotions.jsonl).

    Attributes:
        accepted: True when the run is (now) the production model.
        run_id: The candidate.
        previous_run_id: The production run before the attempt (None if none).
        reasons: Why it was accepted or refused, one sentence each.
        notes: Facts worth knowing that did not decide (e.g. class lists differ).
        candidate_accuracy: Candidate's benchmark accuracy on ``compared_classes``.
        production_accuracy: Production's accuracy on the same images.
        benchmark_accuracy: Candidate's accuracy on the benchmark images of all
            its own classes (the number kept in production.json).
        compared_classes: Classes the comparison used (both runs know them).
        n_images: Benchmark images the comparison used.
        per_class: DataFrame [class, support, candidate, production, drop] of
            per-class accuracy (recall) on the compared classes.
        margin: Required lead over production.
        max_class_drop: Largest per-class drop allowed (None: not checked).
        reason: The reason the user gave.
        time: UTC ISO time of the attempt.
    """

    accepted: bool
    run_id: str
    previous_run_id: str | None
    reasons: list[str]
    notes: list[str] = field(default_factory=list)
    candidate_accuracy: float | None = None
    production_accuracy: float | None = None
    benchmark_accuracy: float | None = None
    compared_classes: list[str] = field(default_factory=list)
    n_images: int = 0
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    margin: float = 0.0
    max_class_drop: float | None = None
    reason: str | None = None
    time: str = ""

    def __bool__(self) -> bool:
        return bool(self.accepted)

    @property
    def delta(self) -> float | None:
        """Candidate minus production accuracy on the compared images."""
        if self.candidate_accuracy is None or self.production_accuracy is None:
            return None
        return self.candidate_accuracy - self.production_accuracy

    def explain(self) -> str:
        """A few sentences a person can act on."""
        head = (f"Promoted {self.run_id!r} to production." if self.accepted
                else f"Refused to promote {self.run_id!r}.")
        lines = [head] + [f"- {r}" for r in self.reasons]
        lines += [f"  (note) {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()

    def _repr_markdown_(self) -> str:  # a notebook shows the explanation, not the fields
        head = (f"**Promoted `{self.run_id}` to production.**" if self.accepted
                else f"**Refused to promote `{self.run_id}`.**")
        lines = [head, ""] + [f"- {r}" for r in self.reasons] + [f"- *note:* {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (the promotions.jsonl line)."""
        return {
            "time": self.time,
            "run_id": self.run_id,
            "accepted": bool(self.accepted),
            "previous_run_id": self.previous_run_id,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "candidate_accuracy": _jsonable(self.candidate_accuracy),
            "production_accuracy": _jsonable(self.production_accuracy),
            "delta": _jsonable(self.delta),
            "benchmark_accuracy": _jsonable(self.benchmark_accuracy),
            "compared_classes": list(self.compared_classes),
            "n_images": int(self.n_images),
            "margin": float(self.margin),
            "max_class_drop": None if self.max_class_drop is None else float(self.max_class_drop),
            "class_drops": {
                str(r["class"]): _jsonable(r["drop"])
                for r in (self.per_class.to_dict("records") if len(self.per_class) else [])
                if r.get("drop") is not None and not pd.isna(r.get("drop")) and r["drop"] > _TOL
            },
        }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _check_fraction(value: Any, name: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= float(value) <= 1:
        extra = " or None to skip the check" if allow_none else ""
        raise ValueError(
            f"`{name}` must be a number in [0, 1] (a share of accuracy, 0.01 = one point){extra}. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def _trained_on(run: Run, ws: Workspace) -> set[str]:
    """Content hashes any run of the lineage trained or validated on."""
    from imgcls.runs import lineage

    out: set[str] = set()
    for run_id in lineage(run, ws):
        folder = ws.runs / run_id
        if not (folder / "splits.parquet").is_file():
            continue
        try:
            snap = Run(folder).splits
        except (OSError, ValueError):
            continue
        if "hash" in snap:
            out |= set(snap.loc[snap["split"].isin(["train", "val"]), "hash"].astype(str))
    return out


def promote(
    run: Run | str | os.PathLike,
    workspace: Workspace | str | os.PathLike,
    *,
    margin: float = 0.0,
    max_class_drop: float | None = 0.2,
    reason: str | None = None,
    raise_on_refusal: bool = False,
    batch_size: int = 64,
) -> PromotionResult:
    """Make ``run`` the production model if it passes the deploy gate.

    The gate, on the fixed benchmark set (images flagged ``benchmark`` and
    their near duplicates, whose class both the candidate and the production
    run know):

    1. a throw-away run is never promoted;
    2. the candidate must have benchmark images for its classes;
    3. its accuracy must be at least the production run's plus ``margin``;
    4. no class may lose more than ``max_class_drop`` of accuracy (recall).

    With no production run yet, rules 1-2 decide. Every attempt, accepted or
    refused, is appended to ``runs/promotions.jsonl`` with its time, the
    user's ``reason`` and the gate's reasons; an accepted one rewrites
    ``runs/production.json`` ({"run_id", "promoted_at", "reason",
    "benchmark_accuracy", "previous_run_id"}).

    Args:
        run: The candidate (run, id, folder, ``"latest"``).
        workspace: The workspace.
        margin: Required lead in accuracy (0.01 = one point); 0 means "at
            least as good".
        max_class_drop: Largest allowed per-class accuracy drop (0.2 = one of
            the five benchmark images of a class); None skips the check.
        reason: Why you promote (kept in the log and the pointer).
        raise_on_refusal: Raise :class:`PromotionRefused` instead of
            returning a refused result (for scripts and the CLI).
        batch_size: Images per inference batch.

    Returns:
        A :class:`PromotionResult`; ``bool(result)`` is ``result.accepted``
        and ``print(result)`` explains it.

    Raises:
        PromotionRefused: Refused and ``raise_on_refusal`` is set.
    """
    ws = as_workspace(workspace)
    cand = load_run(run, ws)
    margin = _check_fraction(margin, "margin")
    max_class_drop = _check_fraction(max_class_drop, "max_class_drop", allow_none=True)
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"`reason` must be a string or None. Received: reason={reason!r}")
    try:
        prod_id = production_run_id(ws)
    except ValueError:
        prod_id = None
    notes: list[str] = []
    prod: Run | None = None
    if prod_id is not None:
        try:
            prod = load_run(prod_id, ws)
        except RunNotFoundError:
            notes.append(f"production.json names run {prod_id!r}, whose folder is missing; "
                         "there was nothing to compare against.")
    result = PromotionResult(accepted=False, run_id=cand.run_id, previous_run_id=prod_id, reasons=[],
                             notes=notes, margin=margin, max_class_drop=max_class_drop,
                             reason=reason, time=_now())

    def finish(accepted: bool) -> PromotionResult:
        result.accepted = accepted
        if accepted and prod_id != cand.run_id:
            set_production(ws, cand.run_id, **{
                "promoted_at": result.time,
                "reason": reason,
                "benchmark_accuracy": _jsonable(result.benchmark_accuracy),
                "previous_run_id": prod_id,
            })
        append_promotion(ws, result.to_dict())
        if not accepted and raise_on_refusal:
            raise PromotionRefused(result)
        return result

    if cand.throwaway:
        result.reasons.append(
            f"{cand.run_id!r} is a throw-away run (trained at a lowered cutoff to find images "
            "for classes just under it); throw-away runs are never promoted. Train a regular run "
            "once those classes reach the cutoff."
        )
        return finish(False)
    if prod is not None and prod.run_id == cand.run_id:
        result.reasons.append(f"{cand.run_id!r} is already the production model; nothing changed.")
        result.benchmark_accuracy = (read_production(ws) or {}).get("benchmark_accuracy")
        return finish(True)

    catalog = _catalog(ws, splits=True)
    c_kept, c_scores, _ = _benchmark_scores(cand, catalog, ws, batch_size)
    if len(c_kept) == 0:
        result.reasons.append(
            f"There are no benchmark images for the classes of {cand.run_id!r}, so it cannot "
            "be measured. Choose them with imgcls.library.choose_benchmark(Library(workspace))."
        )
        return finish(False)
    result.benchmark_accuracy, _ = _sub_accuracy(c_kept, c_scores, cand.classes, cand.classes)
    leaked = set(c_kept["hash"].astype(str)) & _trained_on(cand, ws)
    if leaked:
        notes.append(
            f"{len(leaked)} benchmark image(s) were in the train/val split of this run or one of "
            "its ancestors (flagged benchmark after training), so its benchmark accuracy is optimistic."
        )
    if prod is None:
        result.candidate_accuracy = result.benchmark_accuracy
        result.compared_classes = list(cand.classes)
        result.n_images = int(len(c_kept))
        result.reasons.append(
            f"No run is in production yet; {cand.run_id!r} becomes the first production model "
            f"(benchmark accuracy {result.benchmark_accuracy:.1%} on {len(c_kept)} images)."
        )
        return finish(True)

    common = sorted(set(cand.classes) & set(prod.classes))
    added = sorted(set(cand.classes) - set(prod.classes))
    lost = sorted(set(prod.classes) - set(cand.classes))
    if added or lost:
        notes.append(
            f"The class lists differ, so the runs are compared on the {len(common)} classes both know"
            + (f"; new in the candidate: {', '.join(added)}" if added else "")
            + (f"; missing from the candidate: {', '.join(lost)}" if lost else "") + "."
        )
    if lost:
        notes.append(f"Promoting drops class(es) {', '.join(lost)} from production.")
    if not common:
        result.reasons.append(
            f"{cand.run_id!r} and the production run {prod.run_id!r} share no class, so the gate "
            "cannot compare them on the benchmark set."
        )
        return finish(False)
    p_kept, p_scores, _ = _benchmark_scores(prod, catalog, ws, batch_size)
    c_acc, n_c = _sub_accuracy(c_kept, c_scores, cand.classes, common)
    p_acc, n_p = _sub_accuracy(p_kept, p_scores, prod.classes, common)
    if n_c == 0:
        result.reasons.append("No benchmark image of the shared classes could be read.")
        return finish(False)
    if n_c != n_p:
        notes.append(f"The runs read a different number of shared benchmark images ({n_c} vs {n_p}).")
    result.candidate_accuracy, result.production_accuracy = c_acc, p_acc
    result.compared_classes, result.n_images = common, n_c

    def recall(kept: pd.DataFrame, scores: np.ndarray, classes: list[str]) -> pd.DataFrame:
        mask = kept["label"].isin(common).to_numpy()
        pred = np.asarray(classes, dtype=object)[scores[mask].argmax(axis=1)]
        pc = per_class_metrics(kept["label"].to_numpy()[mask], pred, sorted(set(classes) | set(common)))
        return pc.loc[common, ["recall", "support"]]

    c_pc = recall(c_kept, c_scores, cand.classes)
    p_pc = recall(p_kept, p_scores, prod.classes)
    per_class = pd.DataFrame({
        "class": common,
        "support": c_pc["support"].to_numpy(),
        "candidate": c_pc["recall"].where(c_pc["support"] > 0).to_numpy(),
        "production": p_pc["recall"].where(p_pc["support"] > 0).to_numpy(),
    })
    per_class["drop"] = per_class["production"] - per_class["candidate"]
    result.per_class = per_class

    ok = True
    need = p_acc + margin
    if c_acc + _TOL >= need:
        result.reasons.append(
            f"Benchmark accuracy {c_acc:.1%} vs production {p_acc:.1%} "
            f"({(c_acc - p_acc) * 100:+.1f} points) on {n_c} images meets the required "
            f"{'lead of ' + format(margin * 100, '.1f') + ' points' if margin else 'no-worse rule'}."
        )
    else:
        ok = False
        result.reasons.append(
            f"Benchmark accuracy {c_acc:.1%} is below production's {p_acc:.1%}"
            + (f" plus the margin of {margin * 100:.1f} points" if margin else "")
            + f" ({(c_acc - p_acc) * 100:+.1f} points on {n_c} images of the {len(common)} shared classes)."
        )
    if max_class_drop is not None:
        worse = per_class[per_class["drop"] > max_class_drop + _TOL].sort_values("drop", ascending=False)
        if len(worse):
            ok = False
            shown = ", ".join(
                f"{r['class']} {r['production']:.0%} -> {r['candidate']:.0%}" for _, r in worse.iterrows()
            )
            result.reasons.append(
                f"{len(worse)} class(es) lose more than the allowed {max_class_drop:.0%} of accuracy: "
                f"{shown}. Look at these classes' images, or pass a larger max_class_drop."
            )
        else:
            result.reasons.append(f"No class loses more than {max_class_drop:.0%} of accuracy.")
    return finish(ok)


# =========================================================================== plots
def _figure():
    from matplotlib.figure import Figure

    return Figure(figsize=SLIDE_SIZE, layout="constrained")


def _style(ax, *, title: str, subtitle: str = "", xlabel: str = "", ylabel: str = "") -> None:
    """Slide style: the finding as a bold, left-aligned headline (wrapped to
    two lines at most), the context (run, split) in grey under it."""
    import textwrap

    fig = ax.figure
    fig.suptitle(textwrap.fill(title, 62), x=0.01, ha="left", fontsize=24, fontweight="bold")
    if subtitle:
        ax.set_title(textwrap.fill(subtitle, 110), loc="left", fontsize=15, color="#555555", pad=10)
    ax.set_xlabel(xlabel, fontsize=18)
    ax.set_ylabel(ylabel, fontsize=18)
    ax.tick_params(labelsize=15)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _pick(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        if key not in obj:
            raise ValueError(f"Expected an evaluate() result with key {key!r}. Received keys: {list(obj)}")
        return obj[key]
    return obj


def _who(obj: Any) -> str:
    if isinstance(obj, Mapping) and "run_id" in obj:
        n = obj.get("summary", {}).get("n")
        return f"run {obj['run_id']}, {obj.get('split')} images" + (f" (n={n})" if n is not None else "")
    return ""


def plot_confusion(evaluation: Mapping[str, Any] | pd.DataFrame, *, normalize: bool = True,
                   title: str | None = None):
    """Confusion matrix heat map; the title names the most confused pair.

    Args:
        evaluation: An :func:`evaluate` result or a confusion DataFrame.
        normalize: Show each row as shares of the true class (counts in the cells).
        title: Override the generated title.

    Returns:
        A 16:9 ``matplotlib.figure.Figure``.
    """
    cm = _pick(evaluation, "confusion")
    counts = cm.to_numpy()
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(support > 0, counts / np.where(support > 0, support, 1), 0.0)
    values = shares if normalize else counts
    off = shares.copy()
    np.fill_diagonal(off, 0)
    if title is None:
        if off.max() > 0:
            i, j = np.unravel_index(off.argmax(), off.shape)
            title = (f"Most confused: {cm.index[i]} taken for {cm.columns[j]} "
                     f"({off[i, j]:.0%} of {cm.index[i]})")
        else:
            title = "No confusion: every image predicted as its true class"
    fig = _figure()
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None, aspect="auto")
    n = len(cm)
    ax.set_xticks(range(n), cm.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), cm.index)
    fs = max(8, min(16, 160 // max(n, 1)))
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=fs,
                        color="white" if values[i, j] > (0.5 if normalize else counts.max() / 2) else "black")
    _style(ax, title=title, subtitle=_who(evaluation), xlabel="predicted class", ylabel="true class")
    cbar = fig.colorbar(im, ax=ax)
    cbar.ax.tick_params(labelsize=14)
    cbar.set_label("share of the true class" if normalize else "images", fontsize=16)
    return fig


def plot_per_class(evaluation: Mapping[str, Any] | pd.DataFrame, *, metric: str = "f1",
                   title: str | None = None):
    """Per-class precision/recall/F1 bars, weakest class first; the title names it.

    Args:
        evaluation: An :func:`evaluate` result or a per-class DataFrame.
        metric: Sort by and name this metric (``"f1"``, ``"recall"``, ``"precision"``).
        title: Override the generated title.
    """
    pc = _pick(evaluation, "per_class")
    if metric not in ("f1", "recall", "precision"):
        raise ValueError(f"`metric` must be 'f1', 'recall' or 'precision'. Received: metric={metric!r}")
    pc = pc[pc["support"] > 0].sort_values(metric, kind="stable")
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(pc))
    w = 0.27
    for off, col, color in ((-w, "precision", "#9ecae1"), (0, "recall", "#4292c6"), (w, "f1", "#08519c")):
        ax.bar(x + off, pc[col], width=w, label=col, color=color)
    ax.set_xticks(x, [f"{c}\n(n={s})" for c, s in zip(pc.index, pc["support"])], rotation=0 if len(pc) <= 10 else 45)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=15, loc="lower right", frameon=False)
    if title is None:
        if len(pc):
            title = f"Weakest class: {pc.index[0]} ({metric} {pc[metric].iloc[0]:.2f}); best: {pc.index[-1]} ({pc[metric].iloc[-1]:.2f})"
        else:
            title = "No class has images in this evaluation"
    _style(ax, title=title, subtitle=_who(evaluation), ylabel="score")
    return fig


def plot_confused_pairs(evaluation: Mapping[str, Any] | pd.DataFrame, *, title: str | None = None):
    """Horizontal bars of the most-confused class pairs (look-alike candidates)."""
    pairs = _pick(evaluation, "confused_pairs")
    fig = _figure()
    ax = fig.add_subplot()
    if len(pairs):
        p = pairs.iloc[::-1]
        labels = [f"{a} / {b}" for a, b in zip(p["class_a"], p["class_b"])]
        ax.barh(labels, p["a_as_b"], color="#4292c6", label="first taken for second")
        ax.barh(labels, p["b_as_a"], left=p["a_as_b"], color="#9ecae1", label="second taken for first")
        ax.legend(fontsize=15, frameon=False, loc="lower right")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        top = pairs.iloc[0]
        title = title or (f"Look-alike candidates: {top['class_a']} and {top['class_b']} "
                          f"mixed up {top['count']} times ({top['rate']:.0%} of their images)")
    else:
        ax.text(0.5, 0.5, "no class was confused with another", ha="center", va="center",
                fontsize=20, transform=ax.transAxes)
        title = title or "No look-alike classes: nothing was confused"
    _style(ax, title=title, subtitle=_who(evaluation), xlabel="images predicted as the other class")
    return fig


def plot_calibration(evaluation: Mapping[str, Any] | pd.DataFrame, *, title: str | None = None):
    """Accuracy by confidence bucket against the diagonal; the title says how
    far the model's confidence can be trusted."""
    cal = _pick(evaluation, "calibration")
    fig = _figure()
    ax = fig.add_subplot()
    have = cal[cal["n"] > 0]
    width = (cal["upper"] - cal["lower"]) * 0.9
    centers = (cal["upper"] + cal["lower"]) / 2
    ax.bar(centers, cal["accuracy"].fillna(0), width=width, color="#4292c6", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=2, label="perfectly calibrated")
    for c, a, n in zip(centers, cal["accuracy"], cal["n"]):
        if n:
            ax.text(c, min(a, 1.0) + 0.02, f"n={n}", ha="center", fontsize=13)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=15, frameon=False, loc="upper left")
    if title is None:
        if len(have):
            ece = expected_calibration_error(cal)
            top = have.iloc[-1]
            mood = ("over-confident" if (have["gap"] * have["n"]).sum() < 0 else "under-confident")
            title = (f"At confidence {top['lower']:.0%}-{top['upper']:.0%} the model is right "
                     f"{top['accuracy']:.0%} of the time; overall {mood} "
                     f"(calibration error {ece * 100:.1f} points)")
        else:
            title = "No predictions to calibrate"
    _style(ax, title=title, subtitle=_who(evaluation), xlabel="confidence (top score)", ylabel="accuracy")
    return fig


def plot_comparison(comparison: Mapping[str, Any], *, labels: Mapping[str, str] | None = None,
                    title: str | None = None):
    """Per-class benchmark accuracy of several runs side by side.

    Args:
        comparison: The dict from :func:`compare_runs`.
        labels: Short names for the legend and title, ``{run_id: "gen 1 (head swap)"}``.
        title: Override the generated title (it names the leader and its lead).
    """
    pc = comparison["per_class"]
    summary = comparison["summary"]
    run_ids = [r for r in summary["run_id"]]
    name = {r: (labels or {}).get(r, r) for r in run_ids}
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(pc))
    w = 0.8 / max(len(run_ids), 1)
    for i, rid in enumerate(run_ids):
        acc = summary.loc[summary["run_id"] == rid, "accuracy_common"].iloc[0]
        ax.bar(x - 0.4 + w * (i + 0.5), pc[rid].fillna(0), width=w,
               label=f"{name[rid]} (shared classes {acc:.1%})")
    ax.set_xticks(x, pc.index, rotation=0 if len(pc) <= 10 else 45)
    ax.set_ylim(0, 1.15)
    ax.legend(fontsize=13, frameon=False, loc="upper right", ncols=1)
    if title is None:
        s = summary.sort_values("accuracy_common", ascending=False, kind="stable")
        if len(s) >= 2:
            lead = (s["accuracy_common"].iloc[0] - s["accuracy_common"].iloc[1]) * 100
            if lead < 0.05:
                tied = [name[r] for r, a in zip(s["run_id"], s["accuracy_common"])
                        if a >= s["accuracy_common"].iloc[0] - 0.0005]
                title = (f"{', '.join(tied[:-1])} and {tied[-1]} tie on the shared benchmark "
                         f"({s['accuracy_common'].iloc[0]:.1%})")
            else:
                title = (f"{name[s['run_id'].iloc[0]]} leads by {lead:.1f} points on the shared "
                         f"benchmark ({s['accuracy_common'].iloc[0]:.1%})")
        else:
            title = f"{name[s['run_id'].iloc[0]]}: {s['accuracy_common'].iloc[0]:.1%} on the benchmark"
    _style(ax, title=title, subtitle=str(comparison.get("note", "")), ylabel="benchmark accuracy (recall)")
    return fig
