"""The paging bar of the review grid: previous, "page i of n", next.

The grid shows one above the tiles and one below them, so a long page never
has to be scrolled back up to turn it.
"""

from __future__ import annotations

from collections.abc import Callable

from imgcls.ui.tile import button

__all__ = ["PageBar"]


class PageBar:
    """Previous / page label / next, wired to the grid's page turns.

    Args:
        prev_page: Called by the previous button.
        next_page: Called by the next button.
        where: ``"top"`` or ``"bottom"``; the bottom bar's CSS classes end in
            ``-bottom`` (``imgcls-prev-bottom``...), the top bar's do not.

    Attributes:
        prev_button, label, next_button: The widgets.
        widget: The row holding them (extra widgets can be appended to its children).
    """

    def __init__(self, prev_page: Callable[[], None], next_page: Callable[[], None], *, where: str = "top"):
        import ipywidgets as w

        end = "" if where == "top" else "-" + where
        self.prev_button = button("prev", icon="arrow-left", css="imgcls-prev" + end, tooltip="previous page (key p)")
        self.next_button = button("next", icon="arrow-right", css="imgcls-next" + end, tooltip="next page (key n)")
        self.label = w.HTML(_dom_classes=("imgcls-page" + end,))
        self.prev_button.on_click(lambda _: prev_page())
        self.next_button.on_click(lambda _: next_page())
        self.widget = w.HBox([self.prev_button, self.label, self.next_button], layout=w.Layout(align_items="center"))

    def update(self, page: int, n_pages: int) -> None:
        """Show page ``page`` (0-based) of ``n_pages``."""
        self.label.value = f"page {page + 1} of {n_pages}"
        self.prev_button.disabled = page == 0
        self.next_button.disabled = page + 1 >= n_pages

    def close(self) -> None:
        """Close the bar's widgets."""
        for widget in (self.prev_button, self.label, self.next_button, self.widget):
            widget.close()
