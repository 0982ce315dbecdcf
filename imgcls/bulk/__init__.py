"""Bulk identification, its resumable job store and the write-up's filters (layer 5).

* :mod:`~imgcls.bulk.identify` - :func:`identify` a folder or list of images
  with a run, :func:`identify_unknown` for ``library/unknown/``;
* :mod:`~imgcls.bulk.beam` - :func:`identify_beam`, the same table computed on
  an Apache Beam runner (the ``beam`` extra; :mod:`~imgcls.bulk.beam_pipeline`
  holds its transforms and model handler);
* :mod:`~imgcls.bulk.store` - the Parquet job folder (resume after a kill),
  :func:`load_results`, :func:`load_errors`, the table's columns;
* :mod:`~imgcls.bulk.filters` - the write-up's cuts of a results table;
* :mod:`~imgcls.bulk.precision` - precision against known true labels;
* :mod:`~imgcls.bulk.throwaway` - :func:`throwaway_candidates`, the throw-away run's filter.
"""

import imgcls.core.quiet  # noqa: F401  (before TensorFlow loads: silences its start-up logging)

from imgcls.bulk.beam import identify_beam
from imgcls.bulk.filters import (
    FILTER_NAMES,
    SORT_KEYS,
    filter_results,
    in_unknown,
    look_alike,
    low_count_classes,
    lowest_scores,
    sort_by,
    staged_classes,
)
from imgcls.bulk.identify import identify, identify_unknown
from imgcls.bulk.plots import plot_precision, plot_true_labels
from imgcls.bulk.precision import DEFAULT_THRESHOLDS, precision_at_thresholds
from imgcls.bulk.store import (
    ERROR_COLUMNS,
    RESULT_COLUMNS,
    load_errors,
    load_results,
    result_columns,
)
from imgcls.bulk.throwaway import throwaway_candidates

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ERROR_COLUMNS",
    "RESULT_COLUMNS",
    "FILTER_NAMES",
    "SORT_KEYS",
    "filter_results",
    "identify",
    "identify_beam",
    "identify_unknown",
    "in_unknown",
    "load_errors",
    "load_results",
    "look_alike",
    "low_count_classes",
    "lowest_scores",
    "precision_at_thresholds",
    "plot_precision",
    "plot_true_labels",
    "result_columns",
    "sort_by",
    "staged_classes",
    "throwaway_candidates",
]
