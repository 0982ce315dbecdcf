"""Figures of bulk identification: precision at each threshold, and what a look-alike filter holds.

matplotlib is imported only when a figure is made; every figure is a slide in
the package's one style (:mod:`imgcls.core.slides`) whose title states the
finding and whose subtitle gives n.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from imgcls.core.slides import MUTED, NEUTRAL, PALETTE, new_slide, no_data, percent_axis, style_axes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_precision", "plot_true_labels"]


def _precision_finding(table: pd.DataFrame, target: float) -> str:
    ok = table[table["precision"] >= target]
    if len(ok):
        best = ok.sort_values("threshold").iloc[0]
        return (f"Accepting scores of {best['threshold']:.0%} or more is {best['precision']:.0%} precise "
                f"and covers {best['share']:.0%} of the pool")
    top = table.loc[table["precision"].idxmax()] if table["precision"].notna().any() else None
    if top is None:
        return "No prediction is accepted at any threshold"
    return (f"No threshold reaches {target:.0%} precision: the best is {top['precision']:.0%} "
            f"at scores of {top['threshold']:.0%} or more")


def plot_precision(
    precision: pd.DataFrame,
    *,
    target: float = 0.95,
    run_id: str | None = None,
    title: str | None = None,
) -> Figure:
    """Precision of the accepted predictions and the share of the pool accepted, per threshold.

    The title states the finding (e.g. "Accepting scores of 90% or more is
    97% precise and covers 41% of the pool"); the subtitle gives n.

    Args:
        precision: The table from :func:`imgcls.bulk.precision_at_thresholds`.
        target: The precision the headline looks for.
        run_id: The run that made the predictions (named in the subtitle).
        title: The slide's title (default: the finding).

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    need = {"threshold", "precision", "share", "n_accepted"}
    if not isinstance(precision, pd.DataFrame) or not need <= set(precision.columns):
        raise ValueError(f"`precision` must be the table from precision_at_thresholds() with columns {sorted(need)}. "
                         f"Received: {type(precision).__name__}")
    n = precision.attrs.get("n")
    n = int(n) if n is not None else int(precision["n_accepted"].max() if len(precision) else 0)
    subtitle = (f"n = {n:,} pool images with a known true label" + (f"; predictions by {run_id}" if run_id else "")
                + "; accepted = first-choice score at or above the threshold")
    table = precision.sort_values("threshold")
    fig, ax = new_slide(title or _precision_finding(table, target), subtitle)
    if not len(table) or not n:
        no_data(ax, "No image with a known true label")
        return fig
    ax.plot(table["threshold"], table["precision"], marker="o", color=PALETTE[0], linewidth=3, label="precision")
    ax.plot(table["threshold"], table["share"], marker="o", color=PALETTE[1], linewidth=3,
            label="share of the pool accepted")
    ax.axhline(target, color=MUTED, linestyle="--", linewidth=1.5, label=f"target {target:.0%}")
    ax.set_ylim(0, 1.05)
    percent_axis(ax)
    percent_axis(ax, "x")
    style_axes(ax, xlabel="Confidence threshold", grid="both")
    ax.legend(loc="lower left", fontsize=15, frameon=False)
    return fig


def plot_true_labels(
    rows: pd.DataFrame,
    *,
    predicted: str,
    column: str = "true_label",
    title: str | None = None,
) -> Figure:
    """What the images a filter kept really are: one bar per true label (the look-alike chart).

    Args:
        rows: Filtered results with a true-label column (from
            :func:`imgcls.sample.attach_truth`).
        predicted: The class the filter looked at (e.g. the look-alike's prediction).
        column: The true-label column.
        title: The slide's title (default: the finding, e.g. "18 of 31 images
            predicted 'horse' at middling confidence are zebras").

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    if not isinstance(rows, pd.DataFrame) or column not in rows.columns:
        raise ValueError(f"`rows` must be a results table with a {column!r} column "
                         "(imgcls.sample.attach_truth(results, workspace) adds it).")
    labels = rows[column].astype(str).replace("", "(no label)")
    counts = labels.value_counts()
    n = int(counts.sum())
    if n == 0:
        finding = f"No image predicted {predicted!r} was kept by the filter"
    else:
        top, top_n = str(counts.index[0]), int(counts.iloc[0])
        if top == predicted:
            finding = f"{top_n} of {n} images predicted {predicted!r} here are right; the rest are other animals"
            if top_n == n:
                finding = f"All {n} images predicted {predicted!r} here really are {predicted}"
        else:
            finding = f"{top_n} of {n} images predicted {predicted!r} here are really {top}"
    fig, ax = new_slide(title or finding, f"n = {n:,} images kept by the filter; true labels from the hidden sample labels")
    if n == 0:
        no_data(ax, "The filter kept no image")
        return fig
    colors = [PALETTE[2] if c == predicted else (NEUTRAL if c == "(no label)" else PALETTE[0]) for c in counts.index]
    x = np.arange(len(counts))
    bars = ax.bar(x, counts.to_numpy(), color=colors)
    ax.bar_label(bars, padding=3, fontsize=14)
    ax.set_xticks(x, counts.index, rotation=20, ha="right")
    style_axes(ax, ylabel="images")
    return fig
