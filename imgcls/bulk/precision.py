"""Precision of bulk predictions against known true labels (e.g. the sample's hidden pool labels)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from imgcls.bulk.filters import check_results
from imgcls.core import check_fraction

__all__ = ["DEFAULT_THRESHOLDS", "precision_at_thresholds"]

#: Confidence thresholds used by :func:`precision_at_thresholds` by default.
DEFAULT_THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def precision_at_thresholds(
    results: pd.DataFrame,
    truth: pd.DataFrame,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> pd.DataFrame:
    """Precision of the accepted predictions at several confidence thresholds.

    A prediction is accepted at threshold ``t`` when ``top1_score >= t`` and
    correct when ``top1_class`` equals the true label. Only images with a
    known true label count (empty labels, e.g. the sample's bad files, are
    left out).

    Args:
        results: A results table.
        truth: True labels: [path, label] (matched on the absolute path) or
            [relpath, label] (matched on ``relpath``), e.g.
            :func:`imgcls.sample.sample_truth`.
        thresholds: Confidence thresholds in [0, 1].

    Returns:
        DataFrame [threshold, n_accepted, share, n_correct, precision]:
        ``share`` = accepted / images with a true label; ``precision`` =
        correct / accepted (NaN when nothing is accepted).
    """
    check_results(results, ["top1_class", "top1_score"], "precision_at_thresholds")
    if not isinstance(truth, pd.DataFrame) or "label" not in truth.columns or not (
        {"path", "relpath"} & set(truth.columns)
    ):
        raise ValueError(
            "`truth` must be a DataFrame with columns label and path (or relpath), e.g. "
            "imgcls.sample.sample_truth(workspace)."
        )
    ts = [check_fraction(t, "thresholds") for t in thresholds]
    labelled = truth[truth["label"].astype(str) != ""]
    key = None
    if "path" in labelled.columns and "path" in results.columns:
        labels = dict(zip(labelled["path"].astype(str).map(os.path.abspath), labelled["label"].astype(str)))
        key = results["path"].astype(str).map(os.path.abspath)
        true = key.map(labels)
        if true.isna().all() and "relpath" in labelled.columns and "relpath" in results.columns:
            key = None
    if key is None:
        if "relpath" not in labelled.columns or "relpath" not in results.columns:
            raise ValueError("`truth` and `results` share no key column (path or relpath).")
        labels = dict(zip(labelled["relpath"].astype(str), labelled["label"].astype(str)))
        true = results["relpath"].astype(str).map(labels)
    scored = true.notna().to_numpy()
    score = results["top1_score"].to_numpy(dtype=np.float64)[scored]
    correct = (results["top1_class"].astype(str).to_numpy()[scored] == true.to_numpy()[scored])
    n_scored = int(scored.sum())
    rows = []
    for t in ts:
        acc = score >= t
        n_acc = int(acc.sum())
        n_ok = int(correct[acc].sum())
        rows.append({
            "threshold": t,
            "n_accepted": n_acc,
            "share": n_acc / n_scored if n_scored else float("nan"),
            "n_correct": n_ok,
            "precision": n_ok / n_acc if n_acc else float("nan"),
        })
    return pd.DataFrame(rows, columns=["threshold", "n_accepted", "share", "n_correct", "precision"])
