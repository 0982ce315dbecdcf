"""One tile of the review grid, and the small widget helpers the grid shares.

A :class:`ReviewTile` is bound to one results row at a time; turning the page
rebinds it. Per tile: accept the first choice, accept the second, type or pick
another class (a new name creates the class; invalid names show an error on
the tile), send to ``library/unknown/``, discard to ``trash/``, or skip.

Every widget is created with its final state for its row (one message per
widget to the front end), and :class:`TileStyles` holds the layouts and
styles every tile of a grid shares.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.ui.grid import ReviewGrid

__all__ = ["ReviewTile", "TileStyles", "button", "TILE_CSS"]

_COLOURS = {"label": "#2e8b57", "unknown": "#d08c17", "discard": "#c0392b", "skip": "#8c8c8c"}
_ACTION_BUTTONS = {"unknown": ("unknown_button", "warning"), "discard": ("discard_button", "danger"),
                   "skip": ("skip_button", "info")}

#: The style sheet of the grid: tile borders by state, compact tile widgets.
TILE_CSS = """
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
.imgcls-tile .imgcls-accept { font-weight: 700; border: 2px solid #2e8b57; }
.imgcls-tile .imgcls-second { font-style: italic; color: #555555; background: #ffffff;
  border: 1px dashed #8c8c8c; }
.imgcls-tile .imgcls-second.mod-success { color: #ffffff; }
.imgcls-tile.imgcls-current { box-shadow: 0 0 0 3px #0173b2; }
.imgcls-review-grid:focus, .imgcls-review-grid:focus-within { outline: 2px solid #0173b2; outline-offset: 2px; }
.imgcls-keys-help, .imgcls-keys-help .widget-html-content { font-size: 12px; color: #555555; }
.imgcls-keys-help kbd { border: 1px solid #bbbbbb; border-radius: 3px; padding: 0 3px; background: #f4f4f4; }
</style>
"""


def button(description: str = "", *, icon: str = "", tooltip: str = "", css: str, layout=None, style=None,
           **traits):
    """An ``ipywidgets.Button`` carrying the CSS class ``css`` from its creation.

    Args:
        description: The button's text.
        icon: A Font Awesome icon name.
        tooltip: Text shown on hover.
        css: The CSS class browser tests find it by (e.g. ``"imgcls-apply"``).
        layout: A shared ``Layout`` (default: a new auto-width one).
        style: A shared ``ButtonStyle``.
        **traits: Other Button traits (``button_style``, ``disabled``...).
    """
    import ipywidgets as w

    traits = {"description": description, "icon": icon, "tooltip": tooltip, **traits}
    if style is not None:
        traits["style"] = style
    # CSS classes go into the constructor: add_class() afterwards would cost
    # one more message to the front end per widget.
    return w.Button(_dom_classes=(css,), layout=layout if layout is not None else w.Layout(width="auto", margin="1px"),
                    **traits)


class TileStyles:
    """Layouts and styles shared by every tile of a grid: one widget model
    each instead of one per tile (creating a page of tiles is 3x faster).

    Args:
        thumb_size: Longest side of a thumbnail in pixels.
    """

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


class ReviewTile:
    """The widgets of one tile of a :class:`~imgcls.ui.ReviewGrid`.

    A tile is bound to one results row at a time (:attr:`path`); turning the
    page rebinds it. Drive it through its controls.

    Args:
        grid: The grid it belongs to (decisions go through :meth:`ReviewGrid.decide`).
        index: Its position on the page.
        styles: The grid's shared layouts and styles.
        row: The results row (a dict) it shows first, or None (unused).
        thumbnail: JPEG bytes of that row's image.

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
            ``imgcls-state-unused`` when a short page leaves it empty;
            ``imgcls-current`` while it is the keyboard's current tile).
        path: The bound row's path (None when the tile is unused).
        current: Whether it is the keyboard's current tile.
    """

    _WIDGETS = ("image", "caption", "prediction", "accept_button", "second_button", "label_input",
                "unknown_button", "discard_button", "skip_button", "status", "error")

    def __init__(self, grid: "ReviewGrid", index: int, *, styles: TileStyles,
                 row: dict[str, Any] | None = None, thumbnail: bytes | None = None):
        import ipywidgets as w

        self._grid = grid
        self.index = index
        self.path: str | None = row["path"] if row else None
        self.row: dict[str, Any] | None = row
        self.current = False
        self._binding = False
        # Every widget is created with its final state for this row: one
        # message per widget to the front end, none after.
        view = self._view(row, thumbnail)
        sh, bs = styles, styles.button_style
        self.image = w.Image(format="jpeg", layout=sh.image, _dom_classes=("imgcls-thumb",), **view["image"])
        self.caption = w.HTML(layout=sh.html, style=sh.html_style, _dom_classes=("imgcls-path",),
                              **view["caption"])
        self.prediction = w.HTML(layout=sh.html, style=sh.html_style, _dom_classes=("imgcls-prediction",),
                                 **view["prediction"])
        self.accept_button = button(tooltip="accept the first choice (key 1 or a)", css="imgcls-accept",
                                    layout=sh.half, style=bs, **view["accept_button"])
        self.second_button = button(tooltip="accept the second choice (key 2)", css="imgcls-second",
                                    layout=sh.half, style=bs, **view["second_button"])
        self.label_input = w.Combobox(placeholder="other class…", ensure_option=False, continuous_update=False,
                                      layout=sh.combo, style=sh.combo_style,
                                      _dom_classes=("imgcls-label-input",), **view["label_input"])
        self.unknown_button = button("unknown", tooltip="send to library/unknown/ (key u)", css="imgcls-unknown",
                                     layout=sh.wide, style=bs, **view["unknown_button"])
        self.discard_button = button("discard", tooltip="discard to trash/ (key d)", css="imgcls-discard",
                                     layout=sh.third, style=bs, **view["discard_button"])
        self.skip_button = button("skip", tooltip="leave it where it is (key s)", css="imgcls-skip",
                                  layout=sh.narrow, style=bs, **view["skip_button"])
        self.status = w.HTML(layout=sh.html, style=sh.html_style, _dom_classes=("imgcls-status",),
                             **view["status"])
        self.error = w.HTML(layout=sh.html, style=sh.html_style, _dom_classes=("imgcls-error",),
                            **view["error"])
        self.accept_button.on_click(lambda _: self.click("accept"))
        self.second_button.on_click(lambda _: self.click("second"))
        self.unknown_button.on_click(lambda _: self.click("unknown"))
        self.discard_button.on_click(lambda _: self.click("discard"))
        self.skip_button.on_click(lambda _: self.click("skip"))
        self.label_input.observe(self._typed, names="value")
        self.box = w.Box([getattr(self, name) for name in self._WIDGETS], layout=sh.tile,
                         _dom_classes=self._classes(view["state"]))

    @property
    def buttons(self) -> list:
        """The five decision buttons."""
        return [self.accept_button, self.second_button, self.unknown_button, self.discard_button,
                self.skip_button]

    def close(self) -> None:
        """Close the tile's widgets (not the shared layouts)."""
        for name in self._WIDGETS:
            getattr(self, name).close()
        self.box.close()

    # -- user actions ---------------------------------------------------------
    def click(self, action: str) -> bool:
        """What a click on one of the five decision buttons does (a key press does the same).

        Args:
            action: ``"accept"``, ``"second"``, ``"unknown"``, ``"discard"`` or ``"skip"``.

        Returns:
            Whether the decision was taken (else the tile shows why); when
            it was, the next tile becomes the keyboard's current tile.
        """
        ok = self._decide(action)
        if ok:
            self._grid.keys.decided(self)
        return ok

    def _decide(self, action: str) -> bool:
        if self.path is None:
            return False
        self.error.value = ""
        try:
            if action == "second":
                label = _choice(self.row or {}, "top2_class")
                if not label:
                    raise ValueError("This image has no second choice.")
                self._grid.decide(self.path, "label", label)
            else:
                self._grid.decide(self.path, action)
        except ValueError as exc:
            self.show_error(str(exc))
            return False
        return True

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
            top1, top2 = row.get("top1_class"), _choice(row, "top2_class")
            lines = [f"<b>{html.escape(str(top1))}</b> {_confidence_html(row)}"]
            if top2:
                lines.append(f'<span style="color:#666">{html.escape(str(top2))} '
                             f"{_pct(row.get('top2_score'))}</span>")
            view["prediction"]["value"] = '<div style="font-size:12px">' + "<br>".join(lines) + "</div>"
            view["accept_button"].update(description=str(top1), icon="check")
            view["second_button"].update(description=f"or {top2}" if top2 else "—")
            view["error"]["value"] = ""
        decision = grid.book.pending_for(row["path"])
        applied = grid.book.applied_for(row["path"])
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
        elif action == "label" and label == _choice(row, "top2_class"):
            view["second_button"]["button_style"] = "success"
        elif action == "label":
            view["label_input"]["value"] = label
        else:
            widget, style = _ACTION_BUTTONS[action]
            view[widget]["button_style"] = style
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
            self._set_classes(view["state"])
        finally:
            self._binding = was_binding

    def _set_classes(self, state: str) -> None:
        classes = self._classes(state) + (("imgcls-current",) if self.current else ())
        if tuple(self.box._dom_classes) != classes:
            self.box._dom_classes = classes

    def mark_current(self, current: bool) -> None:
        """Highlight the tile as the one the keyboard acts on (CSS class ``imgcls-current``), or not."""
        self.current = bool(current)
        state = next((c[len("imgcls-state-"):] for c in self.box._dom_classes
                      if c.startswith("imgcls-state-")), "")
        self._set_classes(state)

    def bind(self, row: dict[str, Any] | None, thumbnail: bytes | None) -> None:
        """Show ``row`` (a results row as a dict) or leave the tile unused (None)."""
        self.path, self.row = (row["path"], row) if row else (None, None)
        self._show(self._view(row, thumbnail))

    def refresh(self) -> None:
        """Show the current decision (or applied state) of the bound image."""
        if self.path is not None:
            self._show(self._view(self.row, None, with_row=False))


def _choice(row: dict[str, Any], column: str) -> str | None:
    """A class column of a results row; None when missing, empty or NaN (no such choice)."""
    value = row.get(column)
    return None if value is None or value != value or value == "" else str(value)


def _confidence_html(row: dict[str, Any]) -> str:
    """The first choice's (calibrated) score; hovering shows the model's raw score when it differs."""
    shown, raw = _pct(row.get("top1_score")), _pct(row.get("raw_top1_score"))
    if raw and raw != shown:
        return f'<span title="calibrated confidence; the model\'s raw score: {raw}">{shown}</span>'
    return shown


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
