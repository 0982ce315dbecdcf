"""The image library: catalog, flags, duplicates, journaled moves and undo, splits (layer 2; no TensorFlow)."""

from imgcls.library.catalog import (
    CATALOG_COLUMNS,
    FLAG_COLUMNS,
    Library,
    plot_class_counts,
    plot_image_grid,
    validate_class_name,
)
from imgcls.library.splits import (
    SPLITS,
    assign_splits,
    choose_benchmark,
    split_sizes,
    training_rows,
)

__all__ = [
    "Library",
    "validate_class_name",
    "plot_class_counts",
    "plot_image_grid",
    "CATALOG_COLUMNS",
    "FLAG_COLUMNS",
    "SPLITS",
    "assign_splits",
    "split_sizes",
    "training_rows",
    "choose_benchmark",
]
