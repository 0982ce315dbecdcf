"""Figures of the library: images per class against the cutoff, thumbnail grids.

Both draw in the package's one slide style (:mod:`imgcls.core.slides`):
the title states the finding, the subtitle the n behind it. matplotlib is
imported only when a figure is made.

This module never imports TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from imgcls.core import UNKNOWN_CLASS, ImageError, check_int, check_number, read_image
from imgcls.core.slides import (
    ACCENT,
    MUTED,
    NEUTRAL,
    PALETTE,
    SLIDE_SIZE,
    legend_outside,
    new_figure,
    new_slide,
    no_data,
    set_headline,
    style_axes,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_class_counts", "plot_image_grid"]

_UNDER_CUTOFF = PALETTE[1]
_PROBLEM = PALETTE[3]


def plot_class_counts(counts: pd.DataFrame, *, cutoff: int, title: str | None = None) -> "Figure":
    """Bar chart of readable images per class against the cutoff.

    Args:
        counts: Output of :meth:`Library.counts`.
        cutoff: Drawn as a line; bars under it are orange, ``unknown`` grey
            and hatched (it never trains).
        title: The finding to state instead of the default
            ("7 classes make the cutoff of 40; 2 below it (giraffe, sheep)").

    Returns:
        A matplotlib Figure (a slide).
    """
    cutoff = check_int(cutoff, "cutoff")
    n_ok = int(counts["meets_cutoff"].sum())
    near = counts[(~counts["meets_cutoff"]) & (counts["label"] != UNKNOWN_CLASS)]
    finding = title or (f"{n_ok} classes make the cutoff of {cutoff}; "
                        f"{len(near)} below it ({', '.join(near['label']) or 'none'})")
    subtitle = (f"Readable images per class folder (n = {int(counts['n'].sum()):,} images in "
                f"{len(counts)} folders); {UNKNOWN_CLASS}/ never trains")
    fig, ax = new_slide(finding, subtitle)
    if len(counts) == 0:
        no_data(ax, "No images in the library yet")
        return fig
    colours = [
        MUTED if lbl == UNKNOWN_CLASS else (ACCENT if ok else _UNDER_CUTOFF)
        for lbl, ok in zip(counts["label"], counts["meets_cutoff"])
    ]
    bars = ax.bar(counts["label"], counts["n"], color=colours)
    for bar, lbl in zip(bars, counts["label"]):
        if lbl == UNKNOWN_CLASS:
            bar.set_hatch("//")
    line = ax.axhline(cutoff, color=NEUTRAL, lw=2, ls="--", label=f"cutoff = {cutoff}")
    ax.bar_label(bars, fontsize=13)
    style_axes(ax, ylabel="readable images")
    if len(counts) > 10:
        ax.tick_params(axis="x", labelrotation=45)
    from matplotlib.patches import Patch

    legend_outside(ax, handles=[
        line,
        Patch(color=ACCENT, label="trains"),
        Patch(color=_UNDER_CUTOFF, label="under the cutoff"),
        Patch(facecolor=MUTED, hatch="//", label=f"{UNKNOWN_CLASS}/"),
    ])
    return fig


def plot_image_grid(
    paths: Iterable[str | os.PathLike],
    *,
    titles: Iterable[object] | None = None,
    ncols: int = 8,
    size: float = 1.6,
    suptitle: str | None = None,
) -> "Figure":
    """Thumbnails of image files in a grid; unreadable files show their reason.

    Args:
        paths: The image files.
        titles: One caption per image (default: the file names).
        ncols: Thumbnails per row (fewer when there are fewer images).
        size: Side of a thumbnail, in inches.
        suptitle: The finding the grid shows (its title); the subtitle gives n.

    Returns:
        A matplotlib Figure.
    """
    ncols = check_int(ncols, "ncols")
    size = check_number(size, "size", 0, low_open=True)
    paths = [Path(os.fspath(p)) for p in paths]
    titles = list(titles) if titles is not None else [p.name for p in paths]
    n = max(len(paths), 1)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    width = max(ncols * size, SLIDE_SIZE[0] if suptitle else 0)
    fig, axes = new_figure(nrows=nrows, ncols=ncols, size=(width, nrows * (size + 0.35) + 1.2))
    cells = np.asarray(axes, dtype=object).ravel()
    for ax in cells:
        ax.axis("off")
    if not paths:
        no_data(cells[0], "No images")
    for ax, p, t in zip(cells, paths, titles):
        try:
            ax.imshow(read_image(p))
        except ImageError as exc:
            ax.text(0.5, 0.5, exc.reason[:60], ha="center", va="center", wrap=True, fontsize=7,
                    color=_PROBLEM)
        ax.set_title(str(t)[:28], fontsize=8)
    if suptitle:
        set_headline(fig, suptitle, f"n = {len(paths):,} image{'s' if len(paths) != 1 else ''}")
    return fig
