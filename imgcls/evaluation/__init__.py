"""Metrics (NumPy), predictions, run evaluation, the deploy gate and evaluation plots (layer 4).

* :mod:`~imgcls.evaluation.metrics`: metrics on plain arrays, no TensorFlow.
* :mod:`~imgcls.evaluation.predict`: which images a split holds, a run's scores and predictions.
* :mod:`~imgcls.evaluation.report`: :func:`evaluate` one run, :func:`compare_runs` several.
* :mod:`~imgcls.evaluation.gate`: :func:`promote`, the deploy gate.
* :mod:`~imgcls.evaluation.plots`: one slide per finding.
"""

from imgcls.evaluation.gate import PromotionRefused, PromotionResult, promote
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
    "PromotionResult",
    "PromotionRefused",
    "promote",
    "plot_confusion",
    "plot_per_class",
    "plot_confused_pairs",
    "plot_calibration",
    "plot_comparison",
]
