"""The image library: catalog, flags, duplicates, journaled moves and undo, splits (layer 2; no TensorFlow)."""

from imgcls.library.catalog import CATALOG_COLUMNS, Library, count_changes
from imgcls.library.duplicates import NEAR_DUPLICATE_DISTANCE
from imgcls.library.flags import FLAG_COLUMNS
from imgcls.library.journal import JOURNAL_COLUMNS, Journal
from imgcls.library.names import validate_class_name
from imgcls.library.plots import plot_class_counts, plot_image_grid
from imgcls.library.splits import (
    SPLITS,
    assign_splits,
    choose_benchmark,
    split_sizes,
    training_rows,
)

__all__ = [
    "Library",
    "count_changes",
    "Journal",
    "validate_class_name",
    "plot_class_counts",
    "plot_image_grid",
    "CATALOG_COLUMNS",
    "FLAG_COLUMNS",
    "JOURNAL_COLUMNS",
    "NEAR_DUPLICATE_DISTANCE",
    "SPLITS",
    "assign_splits",
    "split_sizes",
    "training_rows",
    "choose_benchmark",
]
