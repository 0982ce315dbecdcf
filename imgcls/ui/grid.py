"""The review grid: look through bulk-identification results and write the
decisions back into the library.

:class:`ReviewGrid` is a small composition of smaller ipywidgets (in the spirit
of fastai's ``ImageClassifierCleaner``), but it

* shows each image with its first and second predicted classes and scores;
* keeps the decisions in a dict keyed by path, so they survive page changes
  and filter changes (:meth:`ReviewGrid.set_results` with another cut of the
  results table);
* applies them to disk itself, through :meth:`imgcls.library.Library.apply`,
  as one journaled batch that :meth:`ReviewGrid.undo` reverts.

Per tile: accept the first choice, accept the second, type or pick another
class (a new name creates the class; invalid names show an error on the tile),
send to ``library/unknown/``, discard to ``trash/``, or skip. Per page:
accept the rest, discard the rest, clear. Nothing needs a keyboard except a
new class name.

Thumbnails are made lazily, one page at a time, and cached on disk by content
hash (``<workspace>/.imgcls/thumbs/<hash>_<size>.jpg``): a page shown once
never decodes its images again, even after the files were moved. Only
``page_size`` tiles exist; turning a page rebinds them to other rows, so a
results table of thousands of rows costs nothing until it is shown.

Every control has a stable handle, so code (tests, headless notebooks) drives
the widget exactly as a person would::

    grid = ReviewGrid(results, lib, page_size=24)
    grid                                   # show it
    grid.tiles[0].accept_button.click()    # accept the first choice
    grid.tiles[1].label_input.value = "gazelle"   # a new class
    grid.next_button.click()
    grid.apply_button.click()              # one undoable batch
    grid.undo_button.click()

and :meth:`ReviewGrid.decide` / :attr:`ReviewGrid.decisions` are the same
thing as plain calls and data. Tiles and buttons carry CSS classes
(``imgcls-tile``, ``imgcls-accept``, ``imgcls-label-input``, ``imgcls-apply``,
...) for browser tests.

This module never imports TensorFlow.
"""

from __future__ import annotations

import html
import io
import os
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.fileio import write_atomic
from imgcls.core.images import ImageError, file_hash, read_image, read_image_resized
from imgcls.core.workspace import UNKNOWN_CLASS, Workspace
from imgcls.library import Library, validate_class_name

__all__ = ["ReviewGrid", "ReviewTile", "ThumbnailCache", "ACTIONS", "PAGE_SIZES"]

#: Decisions a grid keeps (``"accept"`` given to :meth:`ReviewGrid.decide`
#: is stored as ``"label"`` with the first choice).
ACTIONS = ("label", "unknown", "discard", "skip")
#: Page sizes offered by the page-size control.
PAGE_SIZES = (12, 24, 48, 96)

_COLOURS = {"label": "#2e8b57", "unknown": "#d08c17", "discard": "#c0392b", "skip": "#8c8c8c"}
_CSS = """
<style>
.imgcls-tile { border: 2px solid #dddddd; border-radius: 6px; background: #fafafa; }
.imgcls-tile.imgcls-state-unused { display: none !important; }
.imgcls-tile.imgcls-state-label { border-color: #2e8b57; }
.imgcls-tile.imgcls-state-unknown { border-color: #d08c17; }
.imgcls-tile.imgcls-state-discard { border-color: #c0392b; }
.imgcls-tile.imgcls-state-skip { border-color: #8c8c8c; }
.imgcls-tile.imgcls-state-applied { border-style: dashed; border-color: #555555; opacity: 0.75; }
.imgcls-tile .widget-html, .imgcls-tile .widget-html-content { line-height: 1.25; height: auto; }
.imgcls-tile .imgcls-filename { font-size: 11px; color: #555; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.imgcls-tile button { padding: 0 4px; font-size: 12px; }
.imgcls-tile .imgcls-label-input input { font-size: 12px; }
</style>
"""


# --------------------------------------------------------------------------
# Thumbnails
# --------------------------------------------------------------------------
class ThumbnailCache:
    """JPEG thumbnails made once and kept on disk by content hash.

    A thumbnail is ``folder/<hash>_<size>.jpg`` (``_t<turns>`` added when the
    image is turned upright first). The hash is the file's content hash
    (:func:`imgcls.core.file_hash`, the ``hash`` column of results tables
    and the catalog), so a cached thumbnail is found again after the image
    was moved or renamed, and a changed file gets a new one.

    Args:
        folder: Where the thumbnails live, e.g. ``workspace.cache_dir / "thumbs"``.
        size: Longest side of a thumbnail in pixels (aspect ratio kept).
        quality: JPEG quality.

    Attributes:
        hits: Thumbnails served from the disk cache.
        misses: Thumbnails made by decoding the original image.
        failures: Images that could not be read (a placeholder was served).
    """

    def __init__(self, folder: str | os.PathLike, *, size: int = 128, quality: int = 85):
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1024:
            raise ValueError(f"`size` must be an int in [16, 1024]. Received: size={size!r}")
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
            raise ValueError(f"`quality` must be an int in [1, 95]. Received: quality={quality!r}")
        self.folder = Path(os.fspath(folder)).expanduser()
        self.size = size
        self.quality = quality
        self.hits = 0
        self.misses = 0
        self.failures = 0
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._placeholder: bytes | None = None

    def file_for(self, digest: str, *, turns: int = 0) -> Path:
        """The cache file of the image with content hash ``digest``."""
        suffix = f"_t{turns % 4}" if turns % 4 else ""
        return self.folder / f"{digest}_{self.size}{suffix}.jpg"

    def _digest(self, path: str) -> str:
        st = os.stat(path)
        key = (path, int(st.st_size), int(st.st_mtime_ns))
        digest = self._hashes.get(key)
        if digest is None:
            digest = self._hashes[key] = file_hash(path)
        return digest

    def get(self, path: str | os.PathLike, *, digest: str | None = None, turns: int = 0) -> bytes:
        """JPEG bytes of the thumbnail of ``path`` (made and cached if needed).

        Args:
            path: The image file.
            digest: Its content hash if known (then the file is not read at
                all when the thumbnail is cached).
            turns: Quarter turns counter-clockwise to make it upright.

        Returns:
            JPEG bytes; a grey placeholder if the image cannot be read.
        """
        path = os.fspath(path)
        try:
            digest = digest or self._digest(path)
        except (OSError, ImageError):
            self.failures += 1
            return self.placeholder()
        target = self.file_for(digest, turns=turns)
        try:
            data = target.read_bytes()
            self.hits += 1
            return data
        except OSError:
            pass
        try:
            size = self._upright_size(path, turns)
            if size is None:
                pixels = read_image(path)
                if turns % 4:
                    pixels = np.ascontiguousarray(np.rot90(pixels, k=turns % 4))
            else:  # decoded at a reduced scale where the format allows (JPEG)
                pixels = read_image_resized(path, size, turns=turns)
        except ImageError:
            self.failures += 1
            return self.placeholder()
        data = self._encode(pixels)
        self._store(target, data)
        self.misses += 1
        return data

    def _upright_size(self, path: str, turns: int) -> tuple[int, int] | None:
        """(height, width) of the thumbnail from the file header, or None
        to decode the whole image (small images, unknown headers)."""
        from PIL import Image

        try:
            with Image.open(path) as im:
                width, height = im.size
                orientation = im.getexif().get(0x0112, 1)
        except Exception:  # the safe reader gives the real reason
            return None
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        if turns % 2:
            width, height = height, width
        longest = max(width, height)
        if longest <= self.size or min(width, height) < 1:
            return None
        scale = self.size / longest
        return max(1, round(height * scale)), max(1, round(width * scale))

    def _encode(self, pixels: np.ndarray) -> bytes:
        from PIL import Image

        image = Image.fromarray(pixels)
        image.thumbnail((self.size, self.size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=self.quality)
        return buf.getvalue()

    def _store(self, target: Path, data: bytes) -> None:
        try:
            write_atomic(target, data)
        except OSError:
            pass  # a read-only workspace still shows thumbnails, uncached

    def placeholder(self) -> bytes:
        """A grey square shown for images that cannot be read."""
        if self._placeholder is None:
            pixels = np.full((self.size, self.size, 3), 205, np.uint8)
            k = max(2, self.size // 24)
            idx = np.arange(self.size)
            for d in range(-k, k + 1):  # a red cross
                j = np.clip(idx + d, 0, self.size - 1)
                pixels[idx, j] = (192, 57, 43)
                pixels[idx, self.size - 1 - j] = (192, 57, 43)
            self._placeholder = self._encode(pixels)
        return self._placeholder


# --------------------------------------------------------------------------
# One tile
# --------------------------------------------------------------------------
def _button(description: str = "", *, icon: str = "", tooltip: str = "", css: str, layout=None, style=None,
            **traits):
    import ipywidgets as w

    traits = {"description": description, "icon": icon, "tooltip": tooltip, **traits}
    if style is not None:
        traits["style"] = style
    # CSS classes go into the constructor: add_class() afterwards would cost
    # one more message to the front end per widget.
    return w.Button(_dom_classes=(css,), layout=layout if layout is not None else w.Layout(width="auto", margin="1px"),
                    **traits)


class _Shared:
    """Layouts and styles shared by every tile of a grid: one widget model
    each instead of one per tile (creating a page of tiles is 3x faster)."""

    def __init__(self, thumb_size: int):
        import ipywidgets as w
        from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle

        side = f"{thumb_size}px"
        self.image = w.Layout(width=side, height=side, object_fit="contain", margin="0 auto")
        self.html = w.Layout(overflow="hidden", margin="0", width="100%")
        self.html_style = HTMLStyle()
        self.half = w.Layout(width="48%", height="26px", margin="1px", overflow="hidden")
        self.wide = w.Layout(width="37%", height="26px", margin="1px", overflow="hidden")
        self.third = w.Layout(width="33%", height="26px", margin="1px", overflow="hidden")
        self.narrow = w.Layout(width="25%", height="26px", margin="1px", overflow="hidden")
        self.button_style = w.ButtonStyle()
        self.combo = w.Layout(width="97%", margin="1px")
        self.combo_style = TextStyle()
        self.tile = w.Layout(width=f"{max(thumb_size, 128) + 62}px", margin="3px", padding="3px",
                             display="flex", flex_flow="row wrap", align_content="flex-start")


_ACTION_BUTTONS = {"unknown": ("unknown_button", "warning"), "discard": ("discard_button", "danger"),
                   "skip": ("skip_button", "info")}


class ReviewTile:
    """The widgets of one tile of a :class:`ReviewGrid`.

    A tile is bound to one results row at a time (:attr:`path`); turning the
    page rebinds it. Drive it through its controls.

    Attributes:
        image: The thumbnail (``ipywidgets.Image``).
        caption: File name (``imgcls-path``).
        prediction: First and second choice with scores.
        status: The decision taken for this image, if any.
        error: An error message (e.g. an invalid class name), else empty.
        accept_button: Accept the first choice (``imgcls-accept``).
        second_button: Accept the second choice (``imgcls-second``).
        label_input: A ``Combobox`` of the known classes that also takes a
            new name; setting its ``value`` decides (``imgcls-label-input``).
        unknown_button: Send to ``library/unknown/`` (``imgcls-unknown``).
        discard_button: Discard to ``trash/`` (``imgcls-discard``).
        skip_button: Leave the image where it is (``imgcls-skip``).
        box: The tile's container (``imgcls-tile``; ``imgcls-state-<action>``
            while decided, ``imgcls-state-applied`` once applied,
            ``imgcls-state-unused`` when a short page leaves it empty).
        path: The bound row's path (None when the tile is unused).
    """

    _WIDGETS = ("image", "caption", "prediction", "accept_button", "second_button", "label_input",
                "unknown_button", "discard_button", "skip_button", "status", "error")

    def __init__(self, grid: "ReviewGrid", index: int, *, shared: _Shared,
                 row: dict[str, Any] | None = None, thumbnail: bytes | None = None):
        import ipywidgets as w

        self._grid = grid
        self.index = index
        self.path: str | None = row["path"] if row else None
        self.row: dict[str, Any] | None = row
        self._binding = False
        # Every widget is created with its final state for this row: one
        # message per widget to the front end, none after.
        view = self._view(row, thumbnail)
        sh, bs = shared, shared.button_style
        self.image = w.Image(format="jpeg", layout=sh.image, _dom_classes=("imgcls-thumb",), **view["image"])
        self.caption = w.HTML(layout=sh.html, style=sh.html_style, _dom_classes=("imgcls-path",),
                              **view["caption"])
        self.prediction = w.HTML(layout=sh.html, style=sh.html_style, _dom_classes=("imgcls-prediction",),
                                 **view["prediction"])
        self.accept_button = _button(tooltip="accept the first choice", css="imgcls-accept",
                                     layout=sh.half, style=bs, **view["accept_button"])
        self.second_button = _button(tooltip="accept the second choice", css="imgcls-second",
                                     layout=sh.half, style=bs, **view["second_button"])
        self.label_input = w.Combobox(placeholder="other class…", ensure_option=False, continuous_update=False,
                                      layout=sh.combo, style=sh.combo_style,
                                      _dom_classes=("imgcls-label-input",), **view["label_input"])
        self.unknown_button = _button("unknown", tooltip="send to library/unknown/", css="imgcls-unknown",
                                      layout=sh.wide, style=bs, **view["unknown_button"])
        self.discard_button = _button("discard", tooltip="discard to trash/", css="imgcls-discard",
                                      layout=sh.third, style=bs, **view["discard_button"])
        self.skip_button = _button("skip", tooltip="leave it where it is", css="imgcls-skip",
                                   layout=sh.narrow, style=bs, **view["skip_button"])
        self.status = w.HTML(layout=sh.html, style=sh.html_style, _dom_classes=("imgcls-status",),
                             **view["status"])
        self.error = w.HTML(layout=sh.html, style=sh.html_style, _dom_classes=("imgcls-error",),
                            **view["error"])
        self.accept_button.on_click(lambda _: self._decide("accept"))
        self.second_button.on_click(lambda _: self._decide("second"))
        self.unknown_button.on_click(lambda _: self._decide("unknown"))
        self.discard_button.on_click(lambda _: self._decide("discard"))
        self.skip_button.on_click(lambda _: self._decide("skip"))
        self.label_input.observe(self._typed, names="value")
        self.box = w.Box([getattr(self, name) for name in self._WIDGETS], layout=sh.tile,
                         _dom_classes=self._classes(view["state"]))

    @property
    def buttons(self) -> list:
        return [self.accept_button, self.second_button, self.unknown_button, self.discard_button,
                self.skip_button]

    def close(self) -> None:
        """Close the tile's widgets (not the shared layouts)."""
        for name in self._WIDGETS:
            getattr(self, name).close()
        self.box.close()

    # -- user actions ---------------------------------------------------------
    def _decide(self, action: str) -> None:
        if self.path is None:
            return
        self.error.value = ""
        try:
            if action == "second":
                label = (self.row or {}).get("top2_class")
                if not label:
                    raise ValueError("This image has no second choice.")
                self._grid.decide(self.path, "label", label)
            else:
                self._grid.decide(self.path, action)
        except ValueError as exc:
            self.show_error(str(exc))

    def _typed(self, change: dict) -> None:
        if self._binding or self.path is None:
            return
        text = change["new"]
        if not isinstance(text, str) or not text.strip():
            return
        self.error.value = ""
        try:
            self._grid.decide(self.path, "label", text)
        except ValueError as exc:
            self.show_error(str(exc))

    def show_error(self, message: str) -> None:
        """Show ``message`` on the tile (never raises)."""
        self.error.value = f'<span style="color:#c0392b;font-size:11px">{html.escape(message)}</span>'

    # -- what the tile shows ----------------------------------------------------
    @staticmethod
    def _classes(state: str) -> tuple[str, ...]:
        return ("imgcls-tile", f"imgcls-state-{state}") if state else ("imgcls-tile",)

    def _view(self, row: dict[str, Any] | None, thumbnail: bytes | None, *,
              with_row: bool = True) -> dict[str, Any]:
        """The traits of every widget for ``row`` and its decision (pure)."""
        grid = self._grid
        view: dict[str, Any] = {name: {} for name in self._WIDGETS}
        if row is None:
            view["state"] = "unused"
            return view
        if with_row:
            if thumbnail is not None:
                view["image"]["value"] = thumbnail
            name = html.escape(str(row.get("relpath") or Path(row["path"]).name))
            view["caption"]["value"] = (f'<div class="imgcls-filename" title="{html.escape(row["path"])}">'
                                        f"{name}</div>")
            top1, top2 = row.get("top1_class"), row.get("top2_class")
            lines = [f"<b>{html.escape(str(top1))}</b> {_pct(row.get('top1_score'))}"]
            if top2:
                lines.append(f'<span style="color:#666">{html.escape(str(top2))} '
                             f"{_pct(row.get('top2_score'))}</span>")
            view["prediction"]["value"] = '<div style="font-size:12px">' + "<br>".join(lines) + "</div>"
            view["accept_button"].update(description=str(top1), icon="check")
            view["second_button"].update(description=str(top2) if top2 else "—", icon="check" if top2 else "")
            view["error"]["value"] = ""
        decision = grid._decisions.get(row["path"])
        applied = grid._applied.get(row["path"])
        for b in ("accept_button", "second_button", "unknown_button", "discard_button", "skip_button"):
            view[b].update(button_style="", disabled=applied is not None)
        view["label_input"].update(options=tuple(grid.class_names), disabled=applied is not None, value="")
        if applied is not None:
            view["status"]["value"] = _status_html(applied["action"], applied.get("label"), applied=True)
            view["state"] = "applied"
            return view
        if decision is None:
            view["status"]["value"] = ""
            view["state"] = ""
            return view
        action, label = decision["action"], decision.get("label")
        view["status"]["value"] = _status_html(action, label)
        view["state"] = action
        if action == "label" and label == row.get("top1_class"):
            view["accept_button"]["button_style"] = "success"
        elif action == "label" and label == row.get("top2_class"):
            view["second_button"]["button_style"] = "success"
        elif action == "label":
            view["label_input"]["value"] = label
        else:
            button, style = _ACTION_BUTTONS[action]
            view[button]["button_style"] = style
        return view

    def _show(self, view: dict[str, Any]) -> None:
        was_binding, self._binding = self._binding, True
        try:
            for name in self._WIDGETS:
                traits = view[name]
                if traits:
                    widget = getattr(self, name)
                    with widget.hold_sync():
                        for key, value in traits.items():
                            setattr(widget, key, value)
            classes = self._classes(view["state"])
            if tuple(self.box._dom_classes) != classes:
                self.box._dom_classes = classes
        finally:
            self._binding = was_binding

    def bind(self, row: dict[str, Any] | None, thumbnail: bytes | None) -> None:
        """Show ``row`` (a results row as a dict) or leave the tile unused (None)."""
        self.path, self.row = (row["path"], row) if row else (None, None)
        self._show(self._view(row, thumbnail))

    def refresh(self) -> None:
        """Show the current decision (or applied state) of the bound image."""
        if self.path is not None:
            self._show(self._view(self.row, None, with_row=False))


def _pct(score: Any) -> str:
    try:
        value = float(score)
    except (TypeError, ValueError):
        return ""
    return "" if np.isnan(value) else f"{value:.0%}"


def _status_html(action: str, label: str | None, *, applied: bool = False) -> str:
    text = {"label": f"→ {label}", "unknown": "→ unknown/", "discard": "→ trash/", "skip": "skip"}[action]
    if applied:
        text = "skipped (left in place)" if action == "skip" else f"applied {text}"
    return (f'<span style="color:{_COLOURS[action]};font-size:12px;font-weight:600">'
            f"{html.escape(text)}</span>")


# --------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------
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

    Attributes:
        library: The library decisions go to.
        thumbnails: The :class:`ThumbnailCache`.
        tiles: The tiles of the current page (``tiles[i].accept_button`` ...).
        widget: The whole widget (displayed when the grid is shown).
        prev_button, next_button, page_size_control, page_label,
        accept_page_button, discard_page_button, clear_page_button,
        pending_label, apply_button, undo_button, summary_html:
            The controls around the tiles.
        last_render_seconds: Wall time of the last page render.

    Example:
        >>> grid = ReviewGrid(look_alike(results, "horse"), lib, page_size=24)
        >>> grid                                   # in a notebook
        >>> grid.decide(path, "label", "zebra")    # or click in the grid
        >>> grid.apply()                           # one undoable batch
        >>> grid.undo()
    """

    def __init__(
        self,
        results: pd.DataFrame,
        library: Library | Workspace | str | os.PathLike,
        *,
        page_size: int = 24,
        thumb_size: int = 128,
        class_names: Iterable[str] | None = None,
    ):
        import ipywidgets as w

        self.library = library if isinstance(library, Library) else Library(library)
        self.thumbnails = ThumbnailCache(self.library.workspace.cache_dir / "thumbs", size=thumb_size)
        self._page_size = _check_page_size(page_size)
        self._thumb_size = thumb_size
        self._shared: _Shared | None = None
        self._extra_classes = [validate_class_name(c) for c in (class_names or [])]
        self._decisions: dict[str, dict[str, Any]] = {}
        self._applied: dict[str, dict[str, Any]] = {}
        self._seen: dict[str, dict[str, Any]] = {}
        self._applies: list[dict[str, Any]] = []
        self._results = pd.DataFrame()
        self._shown: frozenset[str] = frozenset()  # paths of _results
        self._page = 0
        self.class_names: list[str] = []
        self.last_render_seconds = 0.0
        self.last_applied: pd.DataFrame | None = None
        self._quiet_size = False

        self.title = w.HTML(_dom_classes=("imgcls-grid-title",))
        self.prev_button = _button("prev", icon="arrow-left", css="imgcls-prev")
        self.next_button = _button("next", icon="arrow-right", css="imgcls-next")
        self.page_label = w.HTML(_dom_classes=("imgcls-page",))
        self.page_size_control = w.Dropdown(options=sorted({*PAGE_SIZES, self._page_size}),
                                            value=self._page_size, description="per page",
                                            layout=w.Layout(width="150px"))
        self.accept_page_button = _button("accept rest of page", icon="check-double", css="imgcls-accept-page",
                                          tooltip="accept the first choice of every undecided image on this page")
        self.discard_page_button = _button("discard rest of page", icon="trash", css="imgcls-discard-page",
                                           tooltip="discard every undecided image on this page to trash/")
        self.clear_page_button = _button("clear page", icon="eraser", css="imgcls-clear-page",
                                         tooltip="forget the decisions on this page")
        self.pending_label = w.HTML(_dom_classes=("imgcls-pending",))
        self.apply_button = _button("Apply", icon="save", css="imgcls-apply", button_style="primary",
                                    tooltip="move the files now (one undoable step)")
        self.undo_button = _button("Undo", icon="undo", css="imgcls-undo", tooltip="revert the last apply")
        self.summary_html = w.HTML(_dom_classes=("imgcls-summary",))

        self.prev_button.on_click(lambda _: self.prev_page())
        self.next_button.on_click(lambda _: self.next_page())
        self.page_size_control.observe(lambda change: self._set_page_size(change["new"]), names="value")
        self.accept_page_button.on_click(lambda _: self.decide_page("accept"))
        self.discard_page_button.on_click(lambda _: self.decide_page("discard"))
        self.clear_page_button.on_click(lambda _: self.clear(self.page_paths))
        self.apply_button.on_click(lambda _: self._guarded(self.apply))
        self.undo_button.on_click(lambda _: self._guarded(self.undo))

        self.tiles: list[ReviewTile] = []
        self.tile_box = w.Box(layout=w.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"),
                              _dom_classes=("imgcls-grid",))
        self.widget = w.VBox([
            w.HTML(_CSS),
            self.title,
            w.HBox([self.prev_button, self.page_label, self.next_button, self.page_size_control],
                   layout=w.Layout(align_items="center")),
            w.HBox([self.accept_page_button, self.discard_page_button, self.clear_page_button]),
            self.tile_box,
            w.HBox([self.pending_label, self.apply_button, self.undo_button],
                   layout=w.Layout(align_items="center")),
            self.summary_html,
        ], _dom_classes=("imgcls-review-grid",))
        self.set_results(results)

    # ------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (f"ReviewGrid({len(self._results)} images, page {self.page + 1} of {self.n_pages}, "
                f"{len(self._decisions)} pending decisions)")

    def close(self) -> None:
        """Close every widget of the grid (it cannot be shown again)."""
        for tile in self.tiles:
            tile.close()
        self.widget.close()

    # ------------------------------------------------------------ results
    @property
    def results(self) -> pd.DataFrame:
        """The results table shown now."""
        return self._results

    def set_results(self, results: pd.DataFrame, *, page: int = 0) -> None:
        """Show another results table (e.g. another filter); decisions are kept.

        Args:
            results: A results table (see the class arguments).
            page: Page to show (0-based; clipped to the last page).
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
        self._shown = frozenset(table["path"])
        keep = [c for c in ("path", "top1_class", "top1_score", "top2_class", "top2_score") if c in table]
        for rec in table[keep].to_dict("records"):
            self._seen[rec["path"]] = rec
        self._update_class_names()
        self._page = min(max(int(page), 0), self.n_pages - 1)
        self._render()

    def _update_class_names(self) -> None:
        names: set[str] = set(self._extra_classes)
        lib = self.library.workspace.library
        if lib.is_dir():
            with os.scandir(lib) as entries:
                names.update(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
        for col in self._results.columns:
            if col.startswith("top") and col.endswith("_class"):
                names.update(str(v) for v in self._results[col].dropna().unique())
        names.update(d["label"] for d in self._decisions.values() if d.get("label"))
        names.discard(UNKNOWN_CLASS)
        names.discard("")
        self.class_names = sorted(names)

    # ------------------------------------------------------------ pages
    @property
    def page(self) -> int:
        """The page shown (0-based)."""
        return self._page

    @property
    def page_size(self) -> int:
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
        if isinstance(page, bool) or not isinstance(page, (int, np.integer)) or not 0 <= page < self.n_pages:
            raise ValueError(f"`page` must be an int in [0, {self.n_pages - 1}]. Received: page={page!r}")
        self._page = int(page)
        self._render()

    def next_page(self) -> None:
        if self._page + 1 < self.n_pages:
            self.show_page(self._page + 1)

    def prev_page(self) -> None:
        if self._page > 0:
            self.show_page(self._page - 1)

    def _set_page_size(self, value: int) -> None:
        value = _check_page_size(value)
        if value == self._page_size or self._quiet_size:
            return
        first = self._page * self._page_size
        self._page_size = value
        self._build_tiles()
        self._page = min(first // value, self.n_pages - 1)
        self._render()

    def _build_tiles(self) -> None:
        """Drop the tiles; the next render makes ``page_size`` new ones, bound to its rows."""
        for tile in self.tiles:
            tile.close()
        self.tiles = []

    def _render(self) -> None:
        start_time = time.perf_counter()
        start = self._page * self._page_size
        rows = self._results.iloc[start:start + self._page_size]
        has = {c: c in rows.columns for c in ("hash", "turns", "relpath")}
        records = rows.to_dict("records")
        bound: list[tuple[dict | None, bytes | None]] = []
        for i in range(self._page_size):
            if i >= len(records):
                bound.append((None, None))
                continue
            rec = records[i]
            digest = rec.get("hash") if has["hash"] else None
            turns = rec.get("turns") if has["turns"] else 0
            turns = 0 if turns is None or (isinstance(turns, float) and np.isnan(turns)) else int(turns)
            bound.append((rec, self.thumbnails.get(rec["path"], digest=str(digest) if digest else None,
                                                   turns=turns)))
        if len(self.tiles) != self._page_size:
            self._build_tiles()
            if self._shared is None:
                self._shared = _Shared(self._thumb_size)
            self.tiles = [ReviewTile(self, i, shared=self._shared, row=rec, thumbnail=thumb)
                          for i, (rec, thumb) in enumerate(bound)]
            self.tile_box.children = [t.box for t in self.tiles]
        else:
            for tile, (rec, thumb) in zip(self.tiles, bound):
                tile.bind(rec, thumb)
        n = len(self._results)
        self.page_label.value = f"page {self._page + 1} of {self.n_pages}"
        self.prev_button.disabled = self._page == 0
        self.next_button.disabled = self._page + 1 >= self.n_pages
        shown = f"{start + 1}-{start + len(records)}" if records else "0"
        self.title.value = f"<b>{n} images</b> in this view · showing {shown}"
        self._update_pending()
        self.last_render_seconds = time.perf_counter() - start_time

    def _refresh_tiles(self, paths: Iterable[str] | None = None) -> None:
        wanted = None if paths is None else set(paths)
        for tile in self.tiles:
            if tile.path is not None and (wanted is None or tile.path in wanted):
                tile.refresh()

    # ------------------------------------------------------------ decisions
    def decide(self, path: str | os.PathLike, action: str, label: str | None = None) -> dict[str, Any]:
        """Record a decision for one image (nothing moves until :meth:`apply`).

        Args:
            path: The image's path as in the results table.
            action: ``"accept"`` (the first choice), ``"label"`` (class
                ``label``; a new name creates the class on apply),
                ``"unknown"``, ``"discard"`` or ``"skip"``.
            label: The class for ``"label"``; validated with
                :func:`imgcls.library.validate_class_name`. ``"unknown"``
                means the unknown folder.

        Returns:
            The decision ``{"path", "action", "label"}``.

        Raises:
            ValueError: An unknown action, a missing or invalid class name,
                a path this grid never showed, or an image already moved by
                an apply (undo it first).
        """
        key = os.path.abspath(os.fspath(path))
        row = self._seen.get(key)
        if row is None:
            raise ValueError(
                f"{os.fspath(path)!r} is not in any results table shown by this grid. "
                "Pass a path from grid.results['path']."
            )
        if key in self._applied:
            raise ValueError(
                f"{Path(key).name!r} was moved by the last apply; undo it (grid.undo()) to change its decision."
            )
        if action == "accept":
            action, label = "label", row.get("top1_class")
        if action not in ACTIONS:
            raise ValueError(
                f"`action` must be one of accept, {', '.join(ACTIONS)}. Received: action={action!r}"
            )
        if action == "label":
            if label is None:
                raise ValueError("`label` is required for action 'label': the class to move the image to.")
            label = validate_class_name(label)
            if label == UNKNOWN_CLASS:
                action = "unknown"
        if action != "label":
            label = None
        decision = {"path": key, "action": action, "label": label}
        self._decisions.pop(key, None)  # re-deciding moves it to the end (decision order)
        self._decisions[key] = decision
        if label and label not in self.class_names:
            self._update_class_names()
            for tile in self.tiles:
                tile.label_input.options = tuple(self.class_names)
        self._refresh_tiles([key])
        self._update_pending()
        return dict(decision)

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
            if path in self._applied or (path in self._decisions and not overwrite):
                continue
            self.decide(path, action, label)
            n += 1
        return n

    def clear(self, paths: Iterable[str | os.PathLike] | str | os.PathLike | None = None) -> int:
        """Forget pending decisions (of ``paths``, or all). Returns how many."""
        if paths is None:
            keys = list(self._decisions)
        elif isinstance(paths, (str, os.PathLike)):
            keys = [os.path.abspath(os.fspath(paths))]
        else:
            keys = [os.path.abspath(os.fspath(p)) for p in paths]
        n = sum(self._decisions.pop(k, None) is not None for k in keys)
        self._refresh_tiles(keys)
        self._update_pending()
        return n

    @property
    def decisions(self) -> pd.DataFrame:
        """Pending decisions in the order taken: [path, action, label, top1_class, top1_score, error]."""
        cols = ["path", "action", "label", "top1_class", "top1_score", "error"]
        rows = [
            {**d, "top1_class": self._seen[p].get("top1_class"), "top1_score": self._seen[p].get("top1_score"),
             "error": d.get("error", "")}
            for p, d in self._decisions.items()
        ]
        df = pd.DataFrame(rows, columns=cols)
        df["label"] = df["label"].astype(object).where(df["label"].notna(), None)
        return df

    @property
    def n_pending(self) -> int:
        """Pending decisions (skips included)."""
        return len(self._decisions)

    def _update_pending(self) -> None:
        counts = Counter(d["action"] for d in self._decisions.values())
        parts = [f"{counts[a]} {a}" for a in ACTIONS if a in counts]
        elsewhere = sum(p not in self._shown for p in self._decisions)
        text = f"<b>{len(self._decisions)} pending</b>"
        if parts:
            text += " (" + ", ".join(parts) + ")"
        if elsewhere:
            text += f" · {elsewhere} from other views"
        self.pending_label.value = text
        self.apply_button.disabled = not self._decisions
        self.undo_button.disabled = not self._applies

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
        pending = self.decisions
        if pending.empty:
            self.summary_html.value = "Nothing to apply: no pending decisions."
            return pending.assign(new_path=pd.Series(dtype=object))
        moves = pending[pending["action"] != "skip"]
        if len(moves):
            result = self.library.apply(moves[["path", "action", "label"]].reset_index(drop=True))
            batch = result.attrs.get("batch")
            moved = result.set_index("path")
        else:
            batch, moved = None, pd.DataFrame(columns=["new_path", "error"])
        out = pending.drop(columns=["error"]).copy()
        new_paths = [moved.at[p, "new_path"] if p in moved.index else None for p in out["path"]]
        out["new_path"] = pd.Series([v if isinstance(v, str) and v else None for v in new_paths],
                                    index=out.index, dtype=object)
        out["error"] = [str(moved.at[p, "error"] or "") if p in moved.index else "" for p in out["path"]]
        done = []
        for rec in out.to_dict("records"):
            p = rec["path"]
            if rec["error"]:
                self._decisions[p]["error"] = rec["error"]
                continue
            self._applied[p] = {"action": rec["action"], "label": rec["label"], "new_path": rec["new_path"]}
            done.append(self._decisions.pop(p))
        n_moved = int(((out["action"] != "skip") & ~out["error"].astype(bool)).sum())
        self._applies.append({"batch": batch if n_moved else None, "decisions": done, "result": out})
        out.attrs["batch"] = batch
        self.last_applied = out
        self._update_class_names()
        self._refresh_tiles()
        self._update_pending()
        self.summary_html.value = self._summary_html(out)
        return out

    def summary(self, applied: pd.DataFrame | None = None) -> pd.DataFrame:
        """What an apply did: [action, label, applied, errors] per action and class.

        Args:
            applied: The output of :meth:`apply` (default: the last one).
        """
        applied = self.last_applied if applied is None else applied
        cols = ["action", "label", "applied", "errors"]
        if applied is None or applied.empty:
            return pd.DataFrame(columns=cols)
        df = applied.assign(label=applied["label"].fillna("").astype(str),
                            failed=applied["error"].astype(bool))
        g = df.groupby(["action", "label"], sort=True)["failed"].agg(["size", "sum"]).reset_index()
        g["applied"] = (g["size"] - g["sum"]).astype("int64")
        g["errors"] = g["sum"].astype("int64")
        order = {a: i for i, a in enumerate(ACTIONS)}
        g = g.sort_values(["action", "label"], key=lambda s: s.map(order) if s.name == "action" else s)
        return g[cols].reset_index(drop=True)

    def _summary_html(self, out: pd.DataFrame) -> str:
        table = self.summary(out)
        n_ok = int(table["applied"].sum())
        n_err = int(table["errors"].sum())
        head = f"<b>Applied {n_ok} decision{'s' if n_ok != 1 else ''}</b> in one step"
        head += " (Undo reverts it)." if self._applies and self._applies[-1]["batch"] else "."
        body = table.to_html(index=False, border=0)
        errs = ""
        if n_err:
            bad = out[out["error"].astype(bool)]
            items = "".join(f"<li>{html.escape(Path(p).name)}: {html.escape(e)}</li>"
                            for p, e in zip(bad["path"], bad["error"]))
            errs = f'<div style="color:#c0392b">{n_err} failed (still pending):<ul>{items}</ul></div>'
        return f"<div>{head}{body}{errs}</div>"

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
        if not self._applies:
            raise ValueError("Nothing to undo: this grid has applied no decisions yet.")
        last = self._applies[-1]
        restored: list[Path] = []
        if last["batch"]:
            journal = self.library.journal()
            todo = journal[(~journal["undone"]) & (journal["op"] != "undo")]
            latest = todo["batch"].iloc[-1] if len(todo) else None
            if latest != last["batch"]:
                raise ValueError(
                    "The library was changed after this grid's last apply (another label operation "
                    "is newer in journal.jsonl), so undoing here would revert the wrong step. Undo "
                    "the newer operation first with Library.undo(), then grid.undo()."
                )
            restored = self.library.undo(1)
        self._applies.pop()
        for d in last["decisions"]:
            self._applied.pop(d["path"], None)
            d.pop("error", None)
            self._decisions[d["path"]] = d
        self._update_class_names()
        self._refresh_tiles()
        self._update_pending()
        n = len(last["decisions"])
        self.summary_html.value = (f"<b>Undone:</b> {len(restored)} image{'s' if len(restored) != 1 else ''} "
                                   f"back where they were; {n} decision{'s' if n != 1 else ''} pending again.")
        return restored


def _check_page_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 500:
        raise ValueError(f"`page_size` must be an int in [1, 500]. Received: page_size={value!r}")
    return int(value)
