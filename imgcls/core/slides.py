"""The one slide style: every figure the package makes is a 16:9 slide.

A slide states its finding as the title (bold, left-aligned, wrapped to at
most two lines) and its context -- what was measured, on how many (n) -- as
a grey subtitle. Model versions keep one colour each across every figure.
Figures are ``matplotlib.figure.Figure`` objects (not pyplot's: no global
figure list, no backend chosen), so scripts and servers never open a window;
in a Jupyter kernel a returned figure displays as the cell's value.

matplotlib is imported only when a figure is made, so importing
:mod:`imgcls.core` stays light.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "SLIDE_SIZE", "PALETTE", "NEUTRAL", "ACCENT", "MUTED", "SLIDE_RC",
    "slide_style", "new_figure", "new_slide", "set_headline", "style_axes",
    "no_data", "percent_axis", "legend_outside", "version_colors", "new_page", "set_footer",
    "SIMULATED_COLOR", "SIMULATED_GID", "gapped_line", "fade_weak", "mark_simulated",
]

#: Figure size of every slide (inches, 16:9).
SLIDE_SIZE = (13.33, 7.5)
#: Colour-blind-safe colours (seaborn "colorblind" without its grey), given to
#: model versions and series in order; tab20 follows when they run out.
PALETTE = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
           "#ca9161", "#fbafe4", "#56b4e9", "#ece133")
#: Totals and reference lines.
NEUTRAL = "#4d4d4d"
#: The one highlighted series of a single-series slide.
ACCENT = PALETTE[0]
#: Faded marks: data too thin to draw a conclusion from (small or partial periods).
MUTED = "#bbbbbb"
#: matplotlib settings of every slide.
SLIDE_RC = {
    "font.size": 16,
    "axes.titlesize": 16,
    "axes.labelsize": 18,
    "xtick.labelsize": 15,
    "ytick.labelsize": 15,
    "legend.fontsize": 15,
    "legend.title_fontsize": 15,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "lines.linewidth": 2.5,
    "svg.hashsalt": "imgcls",
}
TITLE_SIZE = 24
TITLE_WRAP = 66
SUBTITLE_SIZE = 16
SUBTITLE_WRAP = 105


def _notebook_display() -> None:
    """In a Jupyter kernel, let a returned Figure display as an image.

    Loading the notebook's matplotlib backend module registers IPython's
    display hook for figures; it does not switch backends. Outside a kernel
    nothing happens.
    """
    if "IPython" not in sys.modules:
        return
    try:
        import matplotlib as mpl

        shell = sys.modules["IPython"].get_ipython()
        if shell is None or getattr(shell, "kernel", None) is None:
            return
        try:
            backend = mpl.get_backend(auto_select=False)
        except TypeError:  # matplotlib < 3.10
            backend = mpl.rcParams["backend"]
        if backend:
            from matplotlib.backends import backend_registry

            backend_registry.load_backend_module(backend)
    except Exception:  # noqa: BLE001 - display is a nicety; plotting must not fail over it
        pass


@contextlib.contextmanager
def slide_style() -> Iterator[None]:
    """A context in which matplotlib draws with the slide settings."""
    import matplotlib as mpl

    with mpl.rc_context(SLIDE_RC):
        yield


def new_figure(*, nrows: int = 1, ncols: int = 1, size: tuple[float, float] = SLIDE_SIZE,
               **subplot_kw: Any) -> tuple["Figure", Any]:
    """A slide-sized ``Figure`` with a grid of axes (``(fig, ax)`` or ``(fig, axes)``)."""
    from matplotlib.figure import Figure

    _notebook_display()
    with slide_style():
        fig = Figure(figsize=size, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    for ax in (axes.flat if hasattr(axes, "flat") else [axes]):
        style_axes(ax)
    return fig, axes


def set_headline(fig: "Figure", finding: str, subtitle: str = "", *, ax: Any = None) -> None:
    """Write the finding as the slide's title and the context (n) as its subtitle.

    With one ``ax`` the subtitle is that axes' left title, under the headline;
    with several axes (``ax=None``) it is a footer line (:func:`set_footer`),
    which the layout keeps clear of every panel.
    """
    fig.suptitle(textwrap.fill(str(finding), TITLE_WRAP), x=0.01, ha="left",
                 fontsize=TITLE_SIZE, fontweight="bold")
    if subtitle:
        text = textwrap.fill(str(subtitle), SUBTITLE_WRAP)
        if ax is not None:
            ax.set_title(text, loc="left", fontsize=SUBTITLE_SIZE, color="#555555", pad=12)
        else:
            set_footer(fig, subtitle)


def new_slide(finding: str, subtitle: str = "", *, nrows: int = 1, ncols: int = 1,
              **subplot_kw: Any) -> tuple["Figure", Any]:
    """A slide whose title is ``finding`` and subtitle ``subtitle``; ``(fig, ax)`` or ``(fig, axes)``."""
    fig, axes = new_figure(nrows=nrows, ncols=ncols, **subplot_kw)
    set_headline(fig, finding, subtitle, ax=axes if nrows * ncols == 1 else None)
    return fig, axes


def style_axes(ax: Any, *, xlabel: str | None = None, ylabel: str | None = None, grid: str = "y") -> None:
    """Slide look for one axes: light grid on ``grid`` ("x", "y", "both" or ""), no top/right spines."""
    ax.tick_params(labelsize=15)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if grid:
        ax.grid(axis=grid, color="#dddddd", linewidth=1)
        ax.set_axisbelow(True)
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=18)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=18)


def no_data(ax: Any, text: str = "No data yet") -> None:
    """Say on the axes that there is nothing to draw (instead of an empty plot)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=22, color="#888888", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def percent_axis(ax: Any, axis: str = "y", *, decimals: int = 0) -> None:
    """Show fractions (0-1) on ``axis`` as percentages."""
    from matplotlib import ticker

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(ticker.PercentFormatter(1.0, decimals=decimals))


def legend_outside(ax: Any, **kwargs: Any) -> None:
    """A legend to the right of the plot (only when something is labelled)."""
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=15,
                  title_fontsize=15, **kwargs)


def version_colors(versions: Sequence[str]) -> dict[str, str]:
    """The colour of each model version: the i-th version gets the i-th colour.

    Pass versions in first-seen order and a version keeps its colour in every
    figure of a deck and in later decks (new versions are appended).
    """
    import matplotlib as mpl

    palette = list(PALETTE) + [mpl.colors.to_hex(c) for c in mpl.colormaps["tab20"].colors]
    return {str(v): palette[i % len(palette)] for i, v in enumerate(dict.fromkeys(map(str, versions)))}


def new_page(*, size: tuple[float, float] = SLIDE_SIZE) -> tuple["Figure", Any]:
    """A slide-sized text page (a summary): ``(fig, ax)``, ``ax`` one invisible full-page axes.

    Place text with ``ax.text(x, y, ...)`` in page fractions (0 to 1 from the
    bottom left); there is no layout engine, so nothing moves. The axes is
    there because a figure without axes does not display in a notebook.
    """
    from matplotlib.figure import Figure

    _notebook_display()
    with slide_style():
        fig = Figure(figsize=size)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.axis("off")
    return fig, ax


def set_footer(fig: "Figure", text: str) -> None:
    """Grey context line(s) at the bottom of a slide, kept clear of the axes by the layout.

    For the subtitle (what was measured, on how many) of a slide with several
    panels: :func:`set_headline` without ``ax`` writes it as free figure text,
    which the constrained layout does not make room for, so it can overlap the
    tick labels; this writes it as ``fig.supxlabel``, which the layout places
    below every panel.

    Args:
        fig: A figure from :func:`new_figure` or :func:`new_slide`.
        text: The line(s); wrapped like a subtitle.
    """
    if text:
        fig.supxlabel(textwrap.fill(str(text), SUBTITLE_WRAP), x=0.01, ha="left",
                      fontsize=SUBTITLE_SIZE - 2, color="#555555")




# --------------------------------------------------------------------------
# Drawing the report rules (imgcls.reports.rules says what is weak; these draw it)
# --------------------------------------------------------------------------
#: The flag colour of simulated (demo) data.
SIMULATED_COLOR = "#d55e00"
#: The ``gid`` of the flag :func:`mark_simulated` writes (tests and tools find it by it).
SIMULATED_GID = "imgcls-simulated"


def gapped_line(ax: Any, x: Sequence[float], y: Sequence[float], *, strong: Sequence[bool] | None = None,
                color: str = ACCENT, label: str | None = None, linestyle: str = "-", marker: str = "o",
                **kwargs: Any) -> list[Any]:
    """A line that breaks where there is no data and is never drawn through weak points.

    ``y`` holds NaN where a slot (e.g. a period) has no data; the line is not
    drawn across it. Points where ``strong`` is False (too few judged, a
    partial period: see :mod:`imgcls.reports.rules`) are faded markers
    (:data:`MUTED`) that no line joins, so a line rests on strong points only.

    Args:
        ax: The axes.
        x, y: Positions and values (NaN: no data).
        strong: Per point, whether it may be drawn as part of the line (default: all).
        color: The line's colour.
        label: Legend label of the line.
        linestyle, marker: Of the line.
        **kwargs: More ``Axes.plot`` options for the line.

    Returns:
        The ``Line2D`` objects drawn: the line (NaN at gaps and weak points),
        then the faded weak points if any.
    """
    import numpy as np

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.ones(len(ys), bool) if strong is None else np.asarray(strong, dtype=bool)
    drawn = ax.plot(xs, np.where(ok, ys, np.nan), color=color, label=label, linestyle=linestyle,
                    marker=marker, markersize=kwargs.pop("markersize", 8), zorder=3, **kwargs)
    weak = ~ok & np.isfinite(ys)
    if weak.any():
        drawn += ax.plot(xs, np.where(weak, ys, np.nan), linestyle="none", marker=marker, markersize=8,
                         color=MUTED, markeredgecolor=color, markeredgewidth=1, zorder=2)
    return drawn


def fade_weak(colors: Sequence[str] | str, strong: Sequence[bool]) -> list[str]:
    """Bar colours with every weak bar (``strong`` False) faded to :data:`MUTED`."""
    import numpy as np

    ok = np.asarray(strong, dtype=bool)
    base = [colors] * len(ok) if isinstance(colors, str) else list(colors)
    return [c if o else MUTED for c, o in zip(base, ok)]


def mark_simulated(fig: "Figure", note: str | None) -> None:
    """Flag a slide whose data includes simulated (demo) traffic, in its top-right corner.

    The headline is re-wrapped narrower so the flag never covers it. Nothing
    happens when ``note`` is empty (see :func:`imgcls.reports.rules.simulated_note`).

    Args:
        fig: A slide from :func:`new_slide` or :func:`new_page`.
        note: The flag's text, e.g. "Simulated: 40 of 120 requests are demo traffic".
    """
    if not note:
        return
    headline = getattr(fig, "_suptitle", None)  # re-wrapped in place: keeps its position and style
    if headline is not None and headline.get_text():
        headline.set_text(textwrap.fill(" ".join(headline.get_text().split()), TITLE_WRAP - 20))
    fig.text(0.995, 0.995, textwrap.fill(str(note), 34), ha="right", va="top", fontsize=13,
             fontweight="bold", color="white", gid=SIMULATED_GID,
             bbox={"boxstyle": "round,pad=0.4", "facecolor": SIMULATED_COLOR, "edgecolor": "none"})
