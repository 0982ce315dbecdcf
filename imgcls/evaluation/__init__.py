"""Metrics (NumPy), predictions, run evaluation, the deploy gate and evaluation plots (layer 4).

* :mod:`~imgcls.evaluation.metrics`: metrics on plain arrays, no TensorFlow.
* :mod:`~imgcls.evaluation.predict`: which images a split holds, a run's scores and predictions.
* :mod:`~imgcls.evaluation.report`: :func:`evaluate` one run, :func:`compare_runs` several.
* :mod:`~imgcls.evaluation.gate`: :func:`promote`, the deploy gate; its statistics in
  :mod:`~imgcls.evaluation.gate_stats`, its result in :mod:`~imgcls.evaluation.gate_result`.
* :mod:`~imgcls.evaluation.benchmark`: which runs have seen the benchmark set.
* :mod:`~imgcls.evaluation.plots`: one slide per finding.
* :mod:`~imgcls.evaluation.text`: :func:`evaluation_text`, the report ``imgcls evaluate`` prints.

Scores are shown calibrated with the run's temperature (see
:mod:`imgcls.core.calibration`); the raw scores stay available.
"""

import imgcls.core.quiet  # noqa: F401  (before TensorFlow loads: silences its start-up logging)

from imgcls.evaluation.benchmark import benchmark_exposure, benchmark_rows, seen_hashes
from imgcls.evaluation.gate import DEFAULT_MIN_IMAGES, promote
from imgcls.evaluation.gate_result import PromotionRefused, PromotionResult, format_checks
from imgcls.evaluation.gate_stats import (
    CHECK_COLUMNS,
    DEFAULT_ALPHA,
    DEFAULT_CLASS_SHARE,
    DEFAULT_MAX_CLASS_DROP,
    DEFAULT_MIN_CLASS_N,
    gate_checks,
    holm_adjust,
    mcnemar_worse_p,
    paired_counts,
)
from imgcls.evaluation.metrics import (
    DEFAULT_CALIBRATION_BINS,
    accuracy,
    calibration_table,
    confusion_matrix,
    expected_calibration_error,
    metrics_from_scores,
    most_confused_pairs,
    per_class_metrics,
    top_k_accuracy,
    top_k_labels,
)
from imgcls.evaluation.plots import (
    plot_calibration,
    plot_comparison,
    plot_confused_pairs,
    plot_confusion,
    plot_per_class,
)
from imgcls.evaluation.predict import SPLIT_CHOICES, predict_scores, predict_table, split_rows
from imgcls.evaluation.report import compare_runs, evaluate
from imgcls.evaluation.text import evaluation_text

__all__ = [
    "SPLIT_CHOICES",
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
    "split_rows",
    "predict_scores",
    "predict_table",
    "evaluate",
    "compare_runs",
    "evaluation_text",
    "PromotionResult",
    "PromotionRefused",
    "promote",
    "format_checks",
    "gate_checks",
    "mcnemar_worse_p",
    "holm_adjust",
    "paired_counts",
    "CHECK_COLUMNS",
    "DEFAULT_ALPHA",
    "DEFAULT_CLASS_SHARE",
    "DEFAULT_MAX_CLASS_DROP",
    "DEFAULT_MIN_CLASS_N",
    "DEFAULT_MIN_IMAGES",
    "seen_hashes",
    "benchmark_rows",
    "benchmark_exposure",
    "plot_confusion",
    "plot_per_class",
    "plot_confused_pairs",
    "plot_calibration",
    "plot_comparison",
]
