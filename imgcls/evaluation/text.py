"""An evaluation as plain text: what ``imgcls evaluate`` prints.

:func:`evaluation_text` turns the dict of :func:`imgcls.evaluation.evaluate`
into a terminal report: the headline numbers, the calibration before and
after temperature scaling, per-class precision / recall / F1 with class names
and n, the most-confused pairs and the confusion matrix. Nothing is computed
here that the evaluation does not already hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["evaluation_text"]

_SPLIT_WORDS = {"train": "training split", "val": "validation split", "test": "test split",
                "benchmark": "benchmark set", "custom": "given images"}


def _pct(value: Any) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def _num(value: Any) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _table(df: pd.DataFrame, *, index: bool) -> str:
    with pd.option_context("display.max_rows", 500, "display.max_columns", 200, "display.width", 200):
        return df.to_string(index=index) if len(df) else "(none)"


def _calibration_line(summary: Mapping[str, Any]) -> str:
    """One sentence on the confidence shown: the temperature and the calibration error before and after."""
    temperature = summary.get("temperature")
    if temperature is None:
        return (f"Confidence: the model's raw scores (this run has no temperature); expected calibration "
                f"error {_pct(summary.get('ece'))}.")
    return (f"Confidence: calibrated with temperature {float(temperature):.2f} (fitted on the run's "
            f"validation split); expected calibration error {_pct(summary.get('ece_raw'))} before, "
            f"{_pct(summary.get('ece'))} after.")


def evaluation_text(evaluation: Mapping[str, Any], *, top_pairs: int = 10) -> str:
    """The report ``imgcls evaluate`` prints for an :func:`imgcls.evaluation.evaluate` result.

    Args:
        evaluation: The dict of :func:`imgcls.evaluation.evaluate`.
        top_pairs: Most-confused pairs to list.

    Returns:
        Lines of text: a headline (images, accuracy, top-k accuracy, macro
        F1), the calibration, per-class precision / recall / F1 with class
        names and n (true images), the most-confused pairs and the confusion
        matrix (rows: true class, columns: predicted class).
    """
    s = evaluation["summary"]
    where = _SPLIT_WORDS.get(str(evaluation.get("split")), f"{evaluation.get('split')} images")
    lines = [
        f"Run {evaluation.get('run_id')} on its {where}: {s['n']} images, accuracy {_pct(s['accuracy'])}, "
        f"top-{s['k']} accuracy {_pct(s['top_k_accuracy'])}, macro F1 {_num(s['macro_f1'])}.",
        _calibration_line(s),
    ]
    if s.get("n_skipped"):
        lines.append(f"{s['n_skipped']} image(s) could not be read and were left out.")
    if s.get("n_unknown_class"):
        lines.append(f"{s['n_unknown_class']} image(s) of classes the run does not know count as wrong.")
    pc = evaluation["per_class"]
    pc = pc[pc["support"] > 0].rename(columns={"support": "n"})
    pc = pc[["n", "precision", "recall", "f1", "predicted", "correct"]].round(3)
    lines += ["", "Per class (n = true images of the class):", _table(pc.reset_index(), index=False)]
    pairs = evaluation["confused_pairs"].head(top_pairs)
    lines += ["", "Most confused pairs (a_as_b: images of class_a predicted as class_b):"]
    if len(pairs):
        lines.append(_table(pairs.assign(rate=pairs["rate"].round(3)), index=False))
    else:
        lines.append("(none: no image was taken for another class)")
    cm = evaluation["confusion"]
    lines += ["", "Confusion matrix (rows: true class, columns: predicted class):", _table(cm, index=True)]
    return "\n".join(lines)
