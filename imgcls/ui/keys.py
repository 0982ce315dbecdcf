"""Keyboard shortcuts of the review grid, kept away from JupyterLab's own.

ipywidgets alone cannot catch keys, and in JupyterLab a key pressed while a
grid button has the focus runs a notebook command (``a`` inserts a cell,
``1`` turns a cell into a heading, ``d d`` deletes one). :class:`GridKeys`
adds one small invisible `anywidget <https://anywidget.dev>`_ to the grid
(no build step: anywidget ships its JupyterLab 4 extension prebuilt). Its
front end listens to ``keydown`` on the grid's own element, so:

* once the grid has the focus (click anywhere on it; a blue outline shows
  it), every plain key pressed on it stops there and never reaches
  JupyterLab; the keys of :data:`KEYMAP` are sent to Python;
* typing in a tile's class box is left alone (the box gets its letters and
  JupyterLab already ignores keys typed in a widget's text box);
* keys with Ctrl, Cmd or Alt (save, copy, ...) and Tab (moving the focus)
  keep their usual meaning;
* a click on a tile makes it the current tile.

JupyterLab 4 handles shortcuts when a key event bubbles up to the document,
which is why stopping it on the grid's element is enough.

A highlighted *current tile* (CSS class ``imgcls-current``) is what the
decision keys act on; after a decision (key or click) the next tile becomes
current. Code
and tests press keys with :meth:`GridKeys.press`, exactly as the browser
does::

    grid.keys.press("1")          # accept the current tile's first choice
    grid.keys.press("ArrowRight") # next tile
    grid.keys.press("A")          # apply (Shift+A)
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.ui.grid import ReviewGrid
    from imgcls.ui.tile import ReviewTile

__all__ = ["GridKeys", "KEYMAP", "KEY_HELP"]

#: Key (``KeyboardEvent.key``) -> grid command.
KEYMAP: dict[str, str] = {
    "1": "accept", "a": "accept",
    "2": "second",
    "u": "unknown",
    "d": "discard", "x": "discard", "Delete": "discard",
    "s": "skip",
    "c": "clear", "Backspace": "clear",
    "ArrowRight": "next_tile", "j": "next_tile",
    "ArrowLeft": "prev_tile", "k": "prev_tile",
    "n": "next_page", "PageDown": "next_page",
    "p": "prev_page", "PageUp": "prev_page",
    "A": "apply",
    "Z": "undo",
}

#: The one-line help shown under the grid (also the order of the commands).
KEY_HELP = ("<b>Keys</b> (click the grid first; an outline shows it listens): "
            "<kbd>1</kbd>/<kbd>a</kbd> first choice · <kbd>2</kbd> second choice · <kbd>u</kbd> unknown · "
            "<kbd>d</kbd> discard · <kbd>s</kbd> skip · <kbd>c</kbd> clear · <kbd>←</kbd>/<kbd>→</kbd> tile · "
            "<kbd>n</kbd>/<kbd>p</kbd> page · <kbd>Shift</kbd>+<kbd>A</kbd> apply · "
            "<kbd>Shift</kbd>+<kbd>Z</kbd> undo")

# The front end: attach to the enclosing grid once the view is in the page.
_ESM = r"""
const EDITABLE = "input, textarea, select, [contenteditable='true']";

function render({ model, el }) {
  el.classList.add("imgcls-keys-listener");
  let root = null;
  let frame = 0;
  const onKey = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.key === "Tab") return;
    const target = event.target;
    if (target && target.closest && target.closest(EDITABLE)) return;  // typing a class name
    event.stopPropagation();  // never a JupyterLab shortcut
    if ((model.get("bound_keys") || []).includes(event.key)) {
      event.preventDefault();
      model.send({ key: event.key });
    }
  };
  const onPoint = (event) => {  // a click on a tile makes it the current one
    const tile = event.target && event.target.closest && event.target.closest(".imgcls-tile");
    if (!tile || !root.contains(tile)) return;
    const index = Array.from(root.querySelectorAll(".imgcls-tile")).indexOf(tile);
    if (index >= 0) model.send({ tile: index });
  };
  const attach = () => {
    frame = 0;
    if (!el.isConnected) { frame = requestAnimationFrame(attach); return; }
    root = el.closest(".imgcls-review-grid");
    if (!root) return;  // shown outside a grid: nothing to listen to
    if (!root.hasAttribute("tabindex")) root.setAttribute("tabindex", "0");
    root.addEventListener("keydown", onKey);
    root.addEventListener("mousedown", onPoint);
  };
  const onCurrent = () => requestAnimationFrame(() => {
    const tile = root && root.querySelector(".imgcls-tile.imgcls-current");
    if (tile && root.contains(document.activeElement)) tile.scrollIntoView({ block: "nearest" });
  });
  model.on("change:current", onCurrent);
  attach();
  return () => {
    if (frame) cancelAnimationFrame(frame);
    if (root) {
      root.removeEventListener("keydown", onKey);
      root.removeEventListener("mousedown", onPoint);
    }
    model.off("change:current", onCurrent);
  };
}
export default { render };
"""


@functools.cache
def _listener_class() -> type:
    """The anywidget class (made on first use: importing :mod:`imgcls.ui` stays light)."""
    import anywidget
    import traitlets

    class KeyListener(anywidget.AnyWidget):
        """Sends the keys of ``bound_keys`` pressed on the enclosing grid to Python (see the module)."""

        _esm = _ESM
        bound_keys = traitlets.List(traitlets.Unicode()).tag(sync=True)
        current = traitlets.Int(-1).tag(sync=True)

    return KeyListener


class GridKeys:
    """The keyboard of a :class:`~imgcls.ui.ReviewGrid`: the current tile and the key commands.

    Args:
        grid: The grid (its tiles and decisions).

    Attributes:
        listener: The invisible widget that catches keys in the browser.
        help: The help line (an ``ipywidgets.HTML``, ``imgcls-keys-help``).
        widget: Both, as one row placed in the grid.
        index: Position of the current tile on the page (0-based).
        last_command: The command the last key ran (None for an unbound key).
    """

    def __init__(self, grid: "ReviewGrid"):
        import ipywidgets as w

        self._grid = grid
        self.index = 0
        self.last_command: str | None = None
        self.listener = _listener_class()(bound_keys=list(KEYMAP), layout=w.Layout(width="0px", height="0px"))
        self.listener.on_msg(self._on_msg)
        self.help = w.HTML(KEY_HELP, _dom_classes=("imgcls-keys-help",))
        self.widget = w.HBox([self.listener, self.help], layout=w.Layout(align_items="center"))

    def close(self) -> None:
        """Close the key widgets."""
        self.listener.close()
        self.help.close()
        self.widget.close()

    # ------------------------------------------------------------ current tile
    @property
    def tile(self) -> "ReviewTile | None":
        """The current tile (None when the page is empty)."""
        tiles = self._grid.visible_tiles
        return tiles[min(self.index, len(tiles) - 1)] if tiles else None

    def reset(self) -> None:
        """Make the first tile of the page current (after the page or the results changed)."""
        self.move_to(0)

    def move_to(self, index: int) -> None:
        """Make tile ``index`` of the page current (clipped to the page)."""
        n = len(self._grid.visible_tiles)
        self.index = min(max(int(index), 0), max(n - 1, 0))
        for i, tile in enumerate(self._grid.tiles):
            tile.mark_current(n > 0 and i == self.index)
        self.listener.current = self.index if n else -1

    # ------------------------------------------------------------ keys
    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        content = content if isinstance(content, dict) else {}
        key, tile = content.get("key"), content.get("tile")
        if isinstance(key, str):
            self.press(key)
        elif isinstance(tile, int) and not isinstance(tile, bool) and tile != self.index:
            self.move_to(tile)

    def decided(self, tile: "ReviewTile") -> None:
        """After a decision on ``tile`` (a key or a click), make the next tile current."""
        self.move_to(tile.index + 1)

    def press(self, key: str) -> str | None:
        """Do what pressing ``key`` on the grid does (the browser calls this too).

        Decisions go to the current tile through its own controls (an error,
        e.g. an image without a second choice, shows on the tile); after a
        decision the next tile becomes current. Never raises on a key.

        Args:
            key: A ``KeyboardEvent.key`` value: see :data:`KEYMAP`
                (``"1"``, ``"a"``, ``"ArrowRight"``, ``"A"`` for Shift+A, ...).

        Returns:
            The command run (``"accept"``, ``"next_page"``, ...), or None for
            a key with no command.
        """
        command = KEYMAP.get(key)
        self.last_command = command
        grid = self._grid
        if command is None:
            return None
        tile = self.tile
        if command in ("accept", "second", "unknown", "discard", "skip"):
            if tile is not None:
                tile.click(command)
        elif command == "clear":
            if tile is not None:
                grid.clear(tile.path)
        elif command in ("next_tile", "prev_tile"):
            self.move_to(self.index + (1 if command == "next_tile" else -1))
        elif command == "next_page":
            grid.next_page()
        elif command == "prev_page":
            grid.prev_page()
        elif command in ("apply", "undo"):
            grid._guarded(getattr(grid, command))
        return command

