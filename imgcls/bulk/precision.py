"""Precision of bulk predictions against known true labels (e.g. the sample's hidden pool labels)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from imgcls.bulk.filters import check_results
from imgcls.core import Workspace, check_fraction
from imgcls.sample import TRUTH_COLUMN, attach_truth

__all__ = ["DEFAULT_THRESHOLDS", "precision_at_thresholds"]

#: Confidence thresholds used by :func:`precision_at_thresholds` by default.
DEFAULT_THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def precision_at_thresholds(
    results: pd.DataFrame,
    truth: pd.DataFrame | Workspace | str | os.PathLike | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> pd.DataFrame:
    """Precision of the accepted predictions at several confidence thresholds.

    A prediction is accepted at threshold ``t`` when ``top1_score >= t`` and
    correct when ``top1_class`` equals the true label. Only images with a
    known true label count (empty labels, e.g. the sample's bad files, are
    left out). The labels are joined by :func:`imgcls.sample.attach_truth`
    (resolved path, then content hash), the one join every caller uses.

    Args:
        results: A results table.
        truth: True labels: a table [path and/or relpath, label, optional
            hash], e.g. :func:`imgcls.sample.sample_truth`; or the sample
            workspace itself; or ``None`` when ``results`` already has a
            ``true_label`` column (from :func:`~imgcls.sample.attach_truth`).
        thresholds: Confidence thresholds in [0, 1].

    Returns:
        DataFrame [threshold, n_accepted, share, n_correct, precision]:
        ``share`` = accepted / images with a true label; ``precision`` =
        correct / accepted (NaN when nothing is accepted). ``attrs["n"]`` is
        the number of images with a true label.
    """
    check_results(results, ["top1_class", "top1_score"], "precision_at_thresholds")
    ts = [check_fraction(t, "thresholds") for t in thresholds]
    if truth is None:
        if TRUTH_COLUMN not in results.columns:
            raise ValueError(
                f"`truth` is None but `results` has no {TRUTH_COLUMN!r} column. Pass the labels "
                "(e.g. truth=workspace or truth=imgcls.sample.sample_truth(workspace)), or attach them first "
                "with imgcls.sample.attach_truth(results, workspace)."
            )
        joined = results
    elif isinstance(truth, pd.DataFrame):
        joined = attach_truth(results, truth=truth)
    else:
        joined = attach_truth(results, truth)
    true = joined[TRUTH_COLUMN].astype(str)
    scored = (true != "").to_numpy()
    score = results["top1_score"].to_numpy(dtype=np.float64)[scored]
    correct = results["top1_class"].astype(str).to_numpy()[scored] == true.to_numpy()[scored]
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
    out = pd.DataFrame(rows, columns=["threshold", "n_accepted", "share", "n_correct", "precision"])
    out.attrs["n"] = n_scored
    return out
