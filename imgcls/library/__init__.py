"""The image library: catalog, flags, duplicates, journaled moves and undo under the workspace lock, splits (layer 2; no TensorFlow)."""

from imgcls.library.catalog import CATALOG_COLUMNS, Library, count_changes
from imgcls.library.decisions import (
    DECISION_ACTIONS,
    DECISION_COLUMNS,
    DecisionsError,
    apply_decisions,
    check_decisions,
    read_decisions,
)
from imgcls.library.duplicates import NEAR_DUPLICATE_DISTANCE
from imgcls.library.flags import FLAG_COLUMNS
from imgcls.library.journal import BATCH_COLUMNS, JOURNAL_COLUMNS, Journal
from imgcls.library.names import look_alike_classes, validate_class_name
from imgcls.library.plots import plot_class_counts, plot_image_grid
from imgcls.library.splits import (
    BENCHMARK_MAX_SHARE,
    BENCHMARK_MIN_IMAGES,
    BENCHMARK_SHARE,
    SPLITS,
    assign_splits,
    benchmark_size,
    benchmark_table,
    choose_benchmark,
    ensure_benchmark,
    split_sizes,
    training_rows,
)

__all__ = [
    "Library",
    "DECISION_ACTIONS",
    "DECISION_COLUMNS",
    "DecisionsError",
    "check_decisions",
    "read_decisions",
    "apply_decisions",
    "count_changes",
    "Journal",
    "validate_class_name",
    "look_alike_classes",
    "plot_class_counts",
    "plot_image_grid",
    "CATALOG_COLUMNS",
    "FLAG_COLUMNS",
    "JOURNAL_COLUMNS",
    "BATCH_COLUMNS",
    "NEAR_DUPLICATE_DISTANCE",
    "SPLITS",
    "assign_splits",
    "split_sizes",
    "training_rows",
    "choose_benchmark",
    "ensure_benchmark",
    "benchmark_size",
    "benchmark_table",
    "BENCHMARK_SHARE",
    "BENCHMARK_MIN_IMAGES",
    "BENCHMARK_MAX_SHARE",
]
