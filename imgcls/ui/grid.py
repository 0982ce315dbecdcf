"""The review grid: look through bulk-identification results and write the
decisions back into the library.

:class:`ReviewGrid` is a small composition of smaller ipywidgets (in the spirit
of fastai's ``ImageClassifierCleaner``): one :class:`~imgcls.ui.ReviewTile`
per image on the page, with its first and second choice; decisions kept by a
:class:`~imgcls.ui.DecisionBook` keyed by path, so they survive page and filter
changes; applied to disk as one journaled batch that :meth:`ReviewGrid.undo`
reverts. Only ``page_size`` tiles exist; turning a page rebinds them to other
rows and makes thumbnails for that page only (:class:`~imgcls.ui.ThumbnailCache`),
so a results table of thousands of rows costs nothing until it is shown. Per
page: accept the rest, discard the rest, clear.

Every control has a stable handle (``grid.tiles[0].accept_button.click()``,
``grid.next_button.click()``...), so code drives the widget exactly as a
person would; :meth:`ReviewGrid.decide` and :attr:`ReviewGrid.decisions` are
the same as plain calls and data. Keys (:mod:`imgcls.ui.keys`; click the grid
first): ``1``/``a`` first choice, ``2`` second, ``u`` unknown, ``d`` discard,
``s`` skip, arrows tile, ``n``/``p`` page, Shift+A apply, Shift+Z undo; they
never reach JupyterLab, and ``grid.keys.press("1")`` presses one from code.

A scripted reviewer (e.g. one that knows hidden labels) never replaces a
person's decisions: it gets its own grid over the same results and decides
with :meth:`ReviewGrid.decide_with`, which leaves decided images alone::

    bot = ReviewGrid(results, lib, title="scripted reviewer")
    bot.decide_with(lambda row: ("label", truth[row["path"]]), scope="all")

Tiles and buttons carry CSS classes (``imgcls-tile``, ``imgcls-accept``,
``imgcls-current``, ``imgcls-next-bottom``...) for browser tests. No TensorFlow here.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from imgcls.core import Workspace, check_int
from imgcls.library import Library, validate_class_name
from imgcls.ui.decisions import DecisionBook
from imgcls.ui.keys import GridKeys
from imgcls.ui.paging import PageBar
from imgcls.ui.thumbnails import ThumbnailCache
from imgcls.ui.tile import TILE_CSS, ReviewTile, TileStyles, button

__all__ = ["ReviewGrid", "PAGE_SIZES"]

#: Page sizes offered by the page-size control.
PAGE_SIZES = (12, 24, 48, 96)


def _check_page_size(value: Any) -> int:
    return check_int(value, "page_size", 1, high=500)


class ReviewGrid:
    """Review a (filtered) bulk-results table and apply the decisions to the library.

    Args:
        results: A results table from :func:`imgcls.bulk.identify` or any
            of its filters: needs ``path``, ``top1_class``, ``top1_score``;
            uses ``relpath``, ``hash`` (thumbnail cache key), ``top2_class``,
            ``top2_score`` and ``turns`` when present.
        library: The :class:`~imgcls.library.Library` (or a workspace /
            workspace folder) the decisions are applied to.
        page_size: Tiles per page.
        thumb_size: Longest side of a thumbnail in pixels.
        class_names: Extra class names offered in each tile's class box
            (library folders and predicted classes are always offered).
        title: What the table is (e.g. "Look-alikes of horse"), shown in the
            grid's title. Default: ``results.attrs["filter"]``, which every
            filter of :mod:`imgcls.bulk` sets (e.g. "The 24 lowest
            first-choice scores"), else "All N results (no filter)".

    Attributes:
        library: The library decisions go to.
        book: The :class:`~imgcls.ui.DecisionBook` (pending and applied decisions).
        thumbnails: The :class:`ThumbnailCache`.
        tiles: The tiles of the current page (``tiles[i].accept_button`` ...).
        keys: The keyboard (:class:`~imgcls.ui.keys.GridKeys`): ``keys.press("1")``,
            ``keys.tile`` (the current tile).
        widget: The whole widget (displayed when the grid is shown).
        pager, pager_bottom: The paging bars above and below the tiles
            (``prev_button``, ``next_button``, ``page_label`` are the top one's).
        title: The grid's title (``imgcls-grid-title``): the view's name and counts.
        prev_button, next_button, page_size_control, page_label,
        accept_page_button, discard_page_button, clear_page_button,
        pending_label, apply_button, undo_button, summary_html:
            The controls around the tiles.
        last_render_seconds: Wall time of the last page render.

    Example:
        >>> grid = ReviewGrid(look_alike(results, "horse"), lib, title="Look-alikes of horse")
        >>> grid.decide(path, "label", "zebra"); grid.apply(); grid.undo()
    """

    def __init__(
        self,
        results: pd.DataFrame,
        library: Library | Workspace | str | os.PathLike,
        *,
        page_size: int = 24,
        thumb_size: int = 128,
        class_names: Iterable[str] | None = None,
        title: str | None = None,
    ):
        import ipywidgets as w

        self.library = library if isinstance(library, Library) else Library(library)
        self.book = DecisionBook(self.library)
        self.thumbnails = ThumbnailCache(self.library.workspace.cache_dir / "thumbs", size=thumb_size)
        self._page_size = _check_page_size(page_size)
        self._thumb_size = thumb_size
        self._styles: TileStyles | None = None
        self._extra_classes = [validate_class_name(c) for c in (class_names or [])]
        self._results = pd.DataFrame()
        self._shown: frozenset[str] = frozenset()  # paths of _results
        self._page = 0
        self._title = ""
        self.class_names: list[str] = []
        self.last_render_seconds = 0.0
        self._quiet_size = False

        self.title = w.HTML(_dom_classes=("imgcls-grid-title",))
        self.pager = PageBar(self.prev_page, self.next_page)
        self.pager_bottom = PageBar(self.prev_page, self.next_page, where="bottom")
        self.prev_button, self.next_button = self.pager.prev_button, self.pager.next_button
        self.page_label = self.pager.label
        self.page_size_control = w.Dropdown(options=sorted({*PAGE_SIZES, self._page_size}),
                                            value=self._page_size, description="per page",
                                            layout=w.Layout(width="150px"))
        self.accept_page_button = button("accept rest of page", icon="check-double", css="imgcls-accept-page",
                                         tooltip="accept the first choice of every undecided image on this page")
        self.discard_page_button = button("discard rest of page", icon="trash", css="imgcls-discard-page",
                                          tooltip="discard every undecided image on this page to trash/")
        self.clear_page_button = button("clear page", icon="eraser", css="imgcls-clear-page",
                                        tooltip="forget the decisions on this page")
        self.pending_label = w.HTML(_dom_classes=("imgcls-pending",))
        self.apply_button = button("Apply", icon="save", css="imgcls-apply", button_style="primary",
                                   tooltip="move the files now (one undoable step)")
        self.undo_button = button("Undo", icon="undo", css="imgcls-undo", tooltip="revert the last apply")
        self.summary_html = w.HTML(_dom_classes=("imgcls-summary",))

        self.page_size_control.observe(lambda change: self._set_page_size(change["new"]), names="value")
        self.accept_page_button.on_click(lambda _: self.decide_page("accept"))
        self.discard_page_button.on_click(lambda _: self.decide_page("discard"))
        self.clear_page_button.on_click(lambda _: self.clear(self.page_paths))
        self.apply_button.on_click(lambda _: self._guarded(self.apply))
        self.undo_button.on_click(lambda _: self._guarded(self.undo))

        self.tiles: list[ReviewTile] = []
        self.keys = GridKeys(self)
        self.tile_box = w.Box(layout=w.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"),
                              _dom_classes=("imgcls-grid",))
        self.widget = w.VBox([
            w.HTML(TILE_CSS),
            self.title,
            w.HBox([self.pager.widget, self.page_size_control], layout=w.Layout(align_items="center")),
            w.HBox([self.accept_page_button, self.discard_page_button, self.clear_page_button]),
            self.tile_box,
            self.pager_bottom.widget,
            w.HBox([self.pending_label, self.apply_button, self.undo_button],
                   layout=w.Layout(align_items="center")),
            self.summary_html,
            self.keys.widget,
        ], _dom_classes=("imgcls-review-grid",))
        self.set_results(results, title=title)

    # ------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (f"ReviewGrid({len(self._results)} images, page {self.page + 1} of {self.n_pages}, "
                f"{self.book.n_pending} pending decisions)")

    def close(self) -> None:
        """Close every widget of the grid (it cannot be shown again)."""
        for part in (*self.tiles, self.pager, self.pager_bottom, self.keys):
            part.close()
        self.widget.close()

    # ------------------------------------------------------------ results
    @property
    def results(self) -> pd.DataFrame:
        """The results table shown now."""
        return self._results

    def set_results(self, results: pd.DataFrame, *, page: int = 0, title: str | None = None) -> None:
        """Show another results table (e.g. another filter); decisions are kept.

        Args:
            results: A results table (see the class arguments).
            page: Page to show (0-based; clipped to the last page).
            title: What the table is, for the grid's title (see the class arguments).
        """
        if not isinstance(results, pd.DataFrame):
            raise ValueError(
                "`results` must be a results DataFrame from imgcls.bulk.identify() or one of its "
                f"filters. Received: {type(results).__name__}"
            )
        missing = [c for c in ("path", "top1_class", "top1_score") if c not in results.columns]
        if missing:
            raise ValueError(
                f"`results` needs columns path, top1_class and top1_score; missing {missing}. "
                "Pass a table from imgcls.bulk.identify() or load_results()."
            )
        table = results.reset_index(drop=True).copy()
        table["path"] = [os.path.abspath(os.fspath(p)) for p in table["path"]]
        table = table.drop_duplicates("path", keep="first").reset_index(drop=True)
        self._results = table
        self._title = str(title or results.attrs.get("filter") or f"All {len(results)} results (no filter)")
        self._shown = frozenset(table["path"])
        self.book.remember(table)
        self._update_class_names()
        self._page = min(max(int(page), 0), self.n_pages - 1)
        self._render()

    def _update_class_names(self) -> None:
        self.class_names = self.book.class_choices(self._results, self._extra_classes)

    # ------------------------------------------------------------ pages
    @property
    def page(self) -> int:
        """The page shown (0-based)."""
        return self._page

    @property
    def page_size(self) -> int:
        """Tiles per page (setting it rebuilds the tiles, keeping the first image in view)."""
        return self._page_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        value = _check_page_size(value)
        if value not in self.page_size_control.options:
            self._quiet_size = True  # new options reset the dropdown's value: not a user choice
            try:
                self.page_size_control.options = sorted({*self.page_size_control.options, value})
            finally:
                self._quiet_size = False
        self.page_size_control.value = value  # its observer rebuilds the tiles

    @property
    def n_pages(self) -> int:
        """Pages of the results shown (at least 1)."""
        return max(1, -(-len(self._results) // self._page_size))

    @property
    def page_paths(self) -> list[str]:
        """Paths shown on the current page."""
        start = self._page * self._page_size
        return self._results["path"].iloc[start:start + self._page_size].tolist() if len(self._results) else []

    @property
    def visible_tiles(self) -> list[ReviewTile]:
        """The tiles bound to an image on this page (a short last page has fewer)."""
        return [t for t in self.tiles if t.path is not None]

    def show_page(self, page: int) -> None:
        """Show page ``page`` (0-based)."""
        self._page = check_int(page, "page", 0, high=self.n_pages - 1)
        self._render()

    def next_page(self) -> None:
        """Show the next page, if any."""
        if self._page + 1 < self.n_pages:
            self.show_page(self._page + 1)

    def prev_page(self) -> None:
        """Show the previous page, if any."""
        if self._page > 0:
            self.show_page(self._page - 1)

    def _set_page_size(self, value: int) -> None:
        value = _check_page_size(value)
        if value == self._page_size or self._quiet_size:
            return
        first = self._page * self._page_size
        self._page_size = value
        self._drop_tiles()
        self._page = min(first // value, self.n_pages - 1)
        self._render()

    def _drop_tiles(self) -> None:
        """Drop the tiles; the next render makes ``page_size`` new ones, bound to its rows."""
        for tile in self.tiles:
            tile.close()
        self.tiles = []

    def _render(self) -> None:
        start_time = time.perf_counter()
        start = self._page * self._page_size
        rows = self._results.iloc[start:start + self._page_size]
        records = rows.to_dict("records")
        bound = [(rec, self.thumbnails.for_row(rec)) for rec in records]
        bound += [(None, None)] * (self._page_size - len(records))
        if len(self.tiles) != self._page_size:
            self._drop_tiles()
            if self._styles is None:
                self._styles = TileStyles(self._thumb_size)
            self.tiles = [ReviewTile(self, i, styles=self._styles, row=rec, thumbnail=thumb)
                          for i, (rec, thumb) in enumerate(bound)]
            self.tile_box.children = [t.box for t in self.tiles]
        else:
            for tile, (rec, thumb) in zip(self.tiles, bound):
                tile.bind(rec, thumb)
        n = len(self._results)
        for bar in (self.pager, self.pager_bottom):
            bar.update(self._page, self.n_pages)
        shown = f"{start + 1}-{start + len(records)}" if records else "0"
        self.title.value = (f'<span style="font-size:16px"><b>{html.escape(self._title)}</b></span> · '
                            f"{n} images in this view · showing {shown}")
        self.keys.reset()
        self._update_pending()
        self.last_render_seconds = time.perf_counter() - start_time

    def _refresh_tiles(self, paths: Iterable[str] | None = None) -> None:
        wanted = None if paths is None else set(paths)
        for tile in self.tiles:
            if tile.path is not None and (wanted is None or tile.path in wanted):
                tile.refresh()

    # ------------------------------------------------------------ decisions
    def decide(self, path: str | os.PathLike, action: str, label: str | None = None, *,
               overwrite: bool = True) -> dict[str, Any]:
        """Record a decision for one image (nothing moves until :meth:`apply`).

        Args:
            path: The image's path as in the results table.
            action: ``"accept"`` (the first choice), ``"label"`` (class
                ``label``; a new name creates the class on apply),
                ``"unknown"``, ``"discard"`` or ``"skip"``.
            label: The class for ``"label"``; validated with
                :func:`imgcls.library.validate_class_name`. ``"unknown"``
                means the unknown folder.
            overwrite: False keeps a decision already taken (pending or
                applied) and returns it: for code that must never replace a
                person's choice.

        Returns:
            The decision ``{"path", "action", "label"}``.

        Raises:
            ValueError: An unknown action, a missing or invalid class name,
                a path this grid never showed, or an image already moved by
                an apply (undo it first).
        """
        if not overwrite:
            key = os.path.abspath(os.fspath(path))
            taken = self.book.pending_for(key) or self.book.applied_for(key)
            if taken is not None:
                return {"path": key, "action": taken["action"], "label": taken.get("label")}
        decision = self.book.decide(path, action, label)
        if decision["label"] and decision["label"] not in self.class_names:
            self._update_class_names()
            for tile in self.tiles:
                tile.label_input.options = tuple(self.class_names)
        self._refresh_tiles([decision["path"]])
        self._update_pending()
        return decision

    def decide_page(self, action: str, label: str | None = None, *, overwrite: bool = False) -> int:
        """Decide every image on the current page at once.

        Args:
            action: As in :meth:`decide` (``"accept"`` takes each image's own
                first choice).
            label: For ``"label"``.
            overwrite: Also replace decisions already taken on this page
                (by default only undecided images get this one).

        Returns:
            How many images were decided.
        """
        n = 0
        for path in self.page_paths:
            if self.book.applied_for(path) is not None or (self.book.pending_for(path) and not overwrite):
                continue
            self.decide(path, action, label)
            n += 1
        return n

    def decide_with(self, rule: Callable[[dict[str, Any]], Any], *, scope: str = "page") -> int:
        """Decide images by a rule, leaving every image that already has a decision alone.

        For a scripted reviewer beside a person: running it after someone's
        clicks changes nothing they did.

        Args:
            rule: Called with each undecided results row (a dict); returns an
                action (``"accept"``, ``"unknown"``, ``"discard"``, ``"skip"``),
                ``("label", class)``, or None to leave the image undecided.
            scope: ``"page"`` (the current page) or ``"all"`` (every row shown).

        Returns:
            How many images were decided.

        Raises:
            ValueError: An unknown ``scope`` or an invalid decision (e.g. class name).
        """
        if scope not in ("page", "all"):
            raise ValueError(f"`scope` must be 'page' or 'all'. Received: scope={scope!r}")
        rows = self._results if scope == "all" else self._results[self._results["path"].isin(self.page_paths)]
        n = 0
        for row in self.book.undecided(rows):
            choice = rule(row)
            if choice is not None:
                action, label = (choice, None) if isinstance(choice, str) else tuple(choice)
                self.decide(row["path"], action, label, overwrite=False)
                n += 1
        return n

    def clear(self, paths: Iterable[str | os.PathLike] | str | os.PathLike | None = None) -> int:
        """Forget pending decisions (of ``paths``, or all). Returns how many."""
        if paths is None:
            keys = None
        elif isinstance(paths, (str, os.PathLike)):
            keys = [os.path.abspath(os.fspath(paths))]
        else:
            keys = [os.path.abspath(os.fspath(p)) for p in paths]
        n = self.book.clear(keys)
        self._refresh_tiles(keys)
        self._update_pending()
        return n

    @property
    def decisions(self) -> pd.DataFrame:
        """Pending decisions in the order taken: [path, action, label, top1_class, top1_score, error]."""
        return self.book.decisions

    def decisions_table(self) -> pd.DataFrame:
        """Pending decisions as a decisions CSV table [path, action, label, reason] for ``imgcls apply``."""
        return self.book.decisions_table()

    @property
    def n_pending(self) -> int:
        """Pending decisions (skips included)."""
        return self.book.n_pending

    @property
    def last_applied(self) -> pd.DataFrame | None:
        """The table the last :meth:`apply` returned (None before the first)."""
        return self.book.last_applied

    def _update_pending(self) -> None:
        self.pending_label.value = self.book.pending_html(self._shown)
        self.apply_button.disabled = not self.book.n_pending
        self.undo_button.disabled = not self.book.can_undo

    # ------------------------------------------------------------ apply / undo
    def _guarded(self, func) -> None:
        try:
            func()
        except ValueError as exc:
            self.summary_html.value = f'<span style="color:#c0392b">{html.escape(str(exc))}</span>'

    def apply(self) -> pd.DataFrame:
        """Apply the pending decisions to disk in one journaled, undoable batch.

        Labels move images into ``library/<class>/`` (new classes are
        created), ``unknown`` into ``library/unknown/``, ``discard`` into
        ``trash/``; skips move nothing. A failed row (e.g. a file gone
        meanwhile) never stops the others and stays pending with its error.

        Returns:
            The decisions with ``new_path`` and ``error`` (see
            :meth:`imgcls.library.Library.apply`); also in :attr:`last_applied`.
        """
        if not self.book.n_pending:
            self.summary_html.value = "Nothing to apply: no pending decisions."
            return self.book.apply()
        out = self.book.apply()
        self._update_class_names()
        self._refresh_tiles()
        self._update_pending()
        self.summary_html.value = self.book.summary_html(out)
        return out

    def summary(self, applied: pd.DataFrame | None = None) -> pd.DataFrame:
        """What an apply did: [action, label, applied, errors] per action and class.

        Args:
            applied: The output of :meth:`apply` (default: the last one).
        """
        return self.book.summary(applied)

    def undo(self) -> list[Path]:
        """Revert the last :meth:`apply`: every image goes back where it was.

        The reverted decisions become pending again (change them and apply
        again, or :meth:`clear` them).

        Returns:
            The paths the images have again.

        Raises:
            ValueError: Nothing applied by this grid, or the library was
                changed after that apply by something else (undo that first
                with :meth:`imgcls.library.Library.undo`).
        """
        restored, n = self.book.undo()
        self._update_class_names()
        self._refresh_tiles()
        self._update_pending()
        self.summary_html.value = (f"<b>Undone:</b> {len(restored)} image{'s' if len(restored) != 1 else ''} "
                                   f"back where they were; {n} decision{'s' if n != 1 else ''} pending again.")
        return restored
