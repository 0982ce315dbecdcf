"""The ipywidgets review grid and its thumbnails (layer 6).

* :mod:`~imgcls.ui.grid` - :class:`ReviewGrid`: pages of tiles over a bulk results table;
* :mod:`~imgcls.ui.tile` - :class:`ReviewTile`: one image and its decision controls;
* :mod:`~imgcls.ui.decisions` - :class:`DecisionBook`: pending decisions, apply and undo, export as a decisions CSV (no widgets);
* :mod:`~imgcls.ui.thumbnails` - :class:`ThumbnailCache`: JPEG thumbnails cached by content hash.
"""

from imgcls.ui.decisions import DecisionBook
from imgcls.ui.grid import PAGE_SIZES, ReviewGrid
from imgcls.ui.thumbnails import ThumbnailCache
from imgcls.ui.tile import ReviewTile

__all__ = [
    "ReviewGrid",
    "ReviewTile",
    "DecisionBook",
    "ThumbnailCache",
    "PAGE_SIZES",
]
