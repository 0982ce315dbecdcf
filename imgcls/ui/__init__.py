"""The ipywidgets review grid and its thumbnails (layer 6)."""

from imgcls.ui.grid import (
    ACTIONS,
    PAGE_SIZES,
    ReviewGrid,
    ReviewTile,
    ThumbnailCache,
)

__all__ = [
    "ReviewGrid",
    "ReviewTile",
    "ThumbnailCache",
    "ACTIONS",
    "PAGE_SIZES",
]
