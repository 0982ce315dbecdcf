"""The review grid's library mode: look through likely wrong labels and fix them in one undoable step.

:class:`LabelIssueGrid` is a :class:`~imgcls.ui.ReviewGrid` over the ranking of
:func:`imgcls.cleaning.find_label_issues` instead of bulk results: flagged
library images, most likely wrong first; each tile shows the label the image
is filed under (given), the class the model suggests, and thumbnails of its
nearest labelled neighbours (why the model thinks so). The decisions are the
library's (:data:`ISSUE_ACTIONS`):

==========  =========================================  ==============================
 decision    tile control (key)                         decisions schema action
==========  =========================================  ==============================
 keep        ``keep <given>`` / ``keep`` (2, s)          ``skip``
 relabel     ``relabel <suggested>`` (1) or the box      ``label`` + the class
 unknown     ``unknown`` (u)                             ``unknown``
 trash       ``trash`` (d)                               ``discard``
==========  =========================================  ==============================

Applying moves the files in ONE journaled batch (through
:meth:`imgcls.library.Library.apply`, as :func:`imgcls.library.apply_decisions`
does) that ``Undo`` (or ``imgcls undo``) reverts; :meth:`LabelIssueGrid.decisions_table`
exports the same decisions as a CSV for ``imgcls apply``. This module never
imports TensorFlow::

    grid = LabelIssueGrid(issues, lib, embeddings=emb)
    grid.tiles[0].accept_button.click()      # relabel to the suggested class
    grid.tiles[1].second_button.click()      # keep the given label
    grid.apply_button.click(); grid.undo_button.click()
"""

from __future__ import annotations

import base64
import html
import os
from typing import Any

import pandas as pd

from imgcls.cleaning import Embeddings, nearest_neighbours
from imgcls.core import Workspace, check_bool, check_int
from imgcls.library import Library
from imgcls.ui.grid import ReviewGrid
from imgcls.ui.thumbnails import ThumbnailCache

__all__ = ["ISSUE_ACTIONS", "LabelIssueGrid", "issue_results"]

#: The library mode's decisions -> the decisions schema's actions (keep = skip).
ISSUE_ACTIONS = {"keep": "skip", "relabel": "label", "unknown": "unknown", "trash": "discard"}
_NEEDED = ("path", "given_label", "suggested_label", "label_quality", "is_issue")


def issue_results(issues: pd.DataFrame, *, flagged_only: bool = True) -> pd.DataFrame:
    """The ranking of :func:`imgcls.cleaning.find_label_issues` as rows the review grid shows.

    Args:
        issues: The ranked label-issue table.
        flagged_only: Only the images cleanlab flagged (default); False: all, most likely wrong first.

    Returns:
        The rows in rank order with ``top1_class`` / ``top1_score`` the
        suggested class and its probability (the given class for an image not
        flagged), ``top2_class`` / ``top2_score`` the given class and its
        probability, and the ranking's columns.
    """
    if not isinstance(issues, pd.DataFrame):
        raise ValueError(f"`issues` must be the DataFrame from find_label_issues(). Received: {type(issues).__name__}")
    missing = [c for c in _NEEDED if c not in issues.columns]
    if missing:
        raise ValueError(f"`issues` must come from imgcls.cleaning.find_label_issues(); missing columns {missing}.")
    check_bool(flagged_only, "flagged_only")
    rows = issues[issues["is_issue"].astype(bool)] if flagged_only else issues
    rows = rows.sort_values("label_quality", kind="stable").reset_index(drop=True).copy()
    given = rows["given_label"].astype(str)
    suggested = rows["suggested_label"].fillna("").astype(str)
    has = suggested != ""
    given_prob = rows["given_prob"] if "given_prob" in rows else pd.Series(float("nan"), index=rows.index)
    suggested_prob = rows["suggested_prob"] if "suggested_prob" in rows else given_prob
    rows["path"] = [os.path.abspath(os.fspath(p)) for p in rows["path"]]
    rows["top1_class"] = suggested.where(has, given)
    rows["top1_score"] = suggested_prob.where(has, given_prob).astype(float)
    rows["top2_class"] = given.where(has, None)
    rows["top2_score"] = given_prob.where(has, float("nan")).astype(float)
    return rows


class LabelIssueGrid(ReviewGrid):
    """The review grid in library mode: flagged images, given vs suggested label, nearest neighbours.

    Args:
        issues: From :func:`imgcls.cleaning.find_label_issues`.
        library: The :class:`~imgcls.library.Library` (or workspace) the images are in.
        embeddings: The library's embeddings
            (:func:`imgcls.cleaning.library_embeddings`): the nearest labelled
            neighbours of each shown image are found in them.
        neighbours: A table from :func:`imgcls.cleaning.nearest_neighbours`
            instead (``embeddings`` is then not needed).
        top_k: Neighbour thumbnails per tile.
        flagged_only: Only flagged images (default); False shows every ranked image.
        page_size: Tiles per page.
        thumb_size: Longest side of a tile's thumbnail in pixels.
        neighbour_size: Longest side of a neighbour's thumbnail in pixels.
        title: The grid's title.

    Attributes:
        issues: The ranking as given.
        neighbours: The neighbour table shown (:data:`imgcls.cleaning.NEIGHBOUR_COLUMNS`).
        neighbour_html: Per visible tile path, the HTML widget of its neighbour strip
            (CSS class ``imgcls-neighbours``).

    Everything else is :class:`~imgcls.ui.ReviewGrid`'s: ``tiles``,
    ``apply_button``, ``undo_button``, ``keys``, :meth:`decide`, :meth:`apply`, :meth:`undo`.
    """

    def __init__(
        self,
        issues: pd.DataFrame,
        library: Library | Workspace | str | os.PathLike,
        *,
        embeddings: Embeddings | None = None,
        neighbours: pd.DataFrame | None = None,
        top_k: int = 4,
        flagged_only: bool = True,
        page_size: int = 12,
        thumb_size: int = 128,
        neighbour_size: int = 40,
        title: str | None = None,
    ):
        rows = issue_results(issues, flagged_only=flagged_only)
        self.issues = issues
        self._top_k = check_int(top_k, "top_k", 0, high=12)
        self._rows = {p: r for p, r in zip(rows["path"], rows.to_dict("records"))}
        if neighbours is None and embeddings is not None and self._top_k and len(rows):
            neighbours = nearest_neighbours(embeddings, top_k=self._top_k, paths=rows["path"].tolist())
        elif neighbours is not None and not isinstance(neighbours, pd.DataFrame):
            raise ValueError("`neighbours` must be a table from imgcls.cleaning.nearest_neighbours(). "
                             f"Received: {type(neighbours).__name__}")
        self.neighbours = neighbours if neighbours is not None else pd.DataFrame(
            columns=["path", "label", "rank", "neighbour_path", "neighbour_relpath", "neighbour_label", "similarity"])
        self._by_path: dict[str, list[dict[str, Any]]] = {}
        for rec in self.neighbours.sort_values(["path", "rank"]).to_dict("records"):
            self._by_path.setdefault(os.path.abspath(str(rec["path"])), []).append(rec)
        self._hashes: dict[str, str] = {}
        if embeddings is not None:
            self._hashes = {os.path.abspath(str(p)): str(h) for p, h in zip(embeddings.rows["path"],
                                                                           embeddings.rows["hash"]) if h}
        lib = library if isinstance(library, Library) else Library(library)
        self._small = ThumbnailCache(lib.workspace.cache_dir / "thumbs", size=check_int(neighbour_size,
                                                                                        "neighbour_size", 16, high=256))
        self._strips: dict[int, Any] = {}
        self.neighbour_html: dict[str, Any] = {}
        n = int(issues["is_issue"].astype(bool).sum())
        classes = [c for c in (issues.attrs.get("classes") or []) if c]
        super().__init__(rows, lib, page_size=page_size, thumb_size=thumb_size, class_names=classes,
                         title=title or f"Label issues: {n} of {len(issues)} labelled images flagged")

    # ------------------------------------------------------------ decisions
    def decide(self, path: str | os.PathLike, action: str, label: str | None = None, **options) -> dict[str, Any]:
        """Record a decision for one image (nothing moves until :meth:`apply`).

        Args:
            path: The image's path as in the ranking.
            action: ``"keep"``, ``"relabel"`` (to ``label``, by default the
                suggested class), ``"unknown"``, ``"trash"``; or the grid's own
                ``"accept"`` (the suggested class), ``"label"``, ``"discard"``,
                ``"skip"``. Labelling an image with the class it is filed under is a keep.
            label: The class for ``"relabel"`` / ``"label"``.
            **options: As for :meth:`imgcls.ui.ReviewGrid.decide` (``overwrite``).

        Returns:
            The decision in the decisions schema: ``{"path", "action", "label"}``.
        """
        key = os.path.abspath(os.fspath(path))
        row = self._rows.get(key, {})
        if action == "relabel":
            action, label = "label", label or row.get("top1_class")
        elif action == "accept":
            action, label = "label", row.get("top1_class")
        else:
            action = ISSUE_ACTIONS.get(action, action)
        if action == "label" and label is not None and str(label).strip() == row.get("given_label"):
            action, label = "skip", None
        return super().decide(key, action, label, **options)

    def decisions_table(self) -> pd.DataFrame:
        """Pending decisions as a decisions CSV table [path, action, label, reason] for ``imgcls apply``."""
        table = super().decisions_table()
        table["reason"] = [self._reason(p) for p in table["path"]]
        return table

    def _reason(self, path: str) -> str:
        row = self._rows.get(path, {})
        suggested = row.get("suggested_label") or ""
        quality = row.get("label_quality")
        return (f"label-issue review; given {row.get('given_label')}" + (f", suggested {suggested}" if suggested else "")
                + (f", label quality {float(quality):.3f}" if quality is not None else ""))

    # ------------------------------------------------------------ display
    def _render(self) -> None:
        super()._render()
        self._decorate()

    def _decorate(self) -> None:
        """Show given vs suggested on each tile, name its buttons after the library's decisions, add neighbours."""
        import ipywidgets as w

        live = {id(t) for t in self.tiles}
        for key in [k for k in self._strips if k not in live]:
            self._strips.pop(key).close()
        self.neighbour_html = {}
        for tile in self.tiles:
            strip = self._strips.get(id(tile))
            if strip is None:
                strip = self._strips[id(tile)] = w.HTML(_dom_classes=("imgcls-neighbours",),
                                                        layout=w.Layout(width="100%", margin="0"))
            if strip not in tile.box.children:
                tile.box.children = (*tile.box.children, strip)
            if tile.path is None:
                strip.value = ""
                continue
            row = self._rows.get(tile.path, {})
            given, suggested = str(row.get("given_label")), str(row.get("top1_class"))
            tile.prediction.value = self._labels_html(row)
            relabel = suggested != given
            tile.accept_button.description = f"relabel {suggested}" if relabel else f"keep {given}"
            tile.accept_button.tooltip = (f"move it to {suggested}/ (key 1)" if relabel
                                          else "keep the label (key 1)")
            tile.second_button.description = f"keep {given}" if relabel else "—"
            tile.second_button.tooltip = "keep the label it has (key 2)"
            tile.skip_button.description = "keep"
            tile.discard_button.description = "trash"
            strip.value = self._neighbours_html(tile.path, suggested)
            self.neighbour_html[tile.path] = strip

    @staticmethod
    def _labels_html(row: dict[str, Any]) -> str:
        given, suggested = html.escape(str(row.get("given_label"))), html.escape(str(row.get("suggested_label") or ""))
        parts = [f'<span style="color:#666">filed as</span> <b>{given}</b> {_pct(row.get("given_prob"))}']
        if suggested:
            parts.append(f'<span style="color:#666">model says</span> <b style="color:#2e8b57">{suggested}</b> '
                         f'{_pct(row.get("suggested_prob"))}')
        quality = row.get("label_quality")
        if quality is not None:
            parts.append(f'<span style="color:#666">label quality {float(quality):.2f} · rank {row.get("rank", "")}'
                         "</span>")
        return '<div style="font-size:12px">' + "<br>".join(parts) + "</div>"

    def _neighbours_html(self, path: str, suggested: str) -> str:
        found = self._by_path.get(path, [])[: self._top_k]
        if not found:
            return ""
        agree = sum(str(r["neighbour_label"]) == suggested for r in found)
        cells = []
        for rec in found:
            npath = os.path.abspath(str(rec["neighbour_path"]))
            jpeg = self._small.get(npath, digest=self._hashes.get(npath))
            name = html.escape(str(rec["neighbour_label"]))
            cells.append(
                f'<span style="display:inline-block;text-align:center;margin:1px" '
                f'title="{name} · similarity {float(rec["similarity"]):.2f}">'
                f'<img src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}" '
                f'style="max-width:{self._small.size}px;max-height:{self._small.size}px"><br>{name}</span>'
            )
        head = f"nearest labelled: {agree} of {len(found)} are {html.escape(suggested)}"
        return (f'<div style="font-size:10px;line-height:1.1;color:#444">{head}<br>'
                + "".join(cells) + "</div>")

    def close(self) -> None:
        """Close every widget of the grid (it cannot be shown again)."""
        for strip in self._strips.values():
            strip.close()
        self._strips = {}
        super().close()


def _pct(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if v != v else f"{v:.0%}"
