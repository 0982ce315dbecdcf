"""The ipywidgets review grid and its thumbnails (layer 6).

* :mod:`~imgcls.ui.grid` - :class:`ReviewGrid`: pages of tiles over a bulk results table;
* :mod:`~imgcls.ui.tile` - :class:`ReviewTile`: one image and its decision controls;
* :mod:`~imgcls.ui.keys` - :class:`GridKeys`: the grid's keyboard shortcuts (:data:`KEYMAP`), kept from JupyterLab;
* :mod:`~imgcls.ui.paging` - :class:`PageBar`: the paging bar shown above and below the tiles;
* :mod:`~imgcls.ui.decisions` - :class:`DecisionBook`: pending decisions, apply and undo, export as a
  decisions CSV (no widgets);
* :mod:`~imgcls.ui.thumbnails` - :class:`ThumbnailCache`: JPEG thumbnails cached by content hash;
* :mod:`~imgcls.ui.label_issues` - :class:`LabelIssueGrid`: the grid's library mode over likely wrong labels.
"""

from imgcls.ui.decisions import DecisionBook
from imgcls.ui.grid import PAGE_SIZES, ReviewGrid
from imgcls.ui.keys import KEYMAP, GridKeys
from imgcls.ui.label_issues import ISSUE_ACTIONS, LabelIssueGrid, issue_results
from imgcls.ui.paging import PageBar
from imgcls.ui.thumbnails import ThumbnailCache
from imgcls.ui.tile import ReviewTile

__all__ = [
    "ReviewGrid",
    "ReviewTile",
    "DecisionBook",
    "ThumbnailCache",
    "PAGE_SIZES",
    "GridKeys",
    "KEYMAP",
    "PageBar",
    "LabelIssueGrid",
    "ISSUE_ACTIONS",
    "issue_results",
]
