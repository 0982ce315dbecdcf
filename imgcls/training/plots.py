"""Figures of a training: loss and accuracy per epoch, train vs validation.

matplotlib is imported only when a figure is made; every figure is a slide in
the package's one style (:mod:`imgcls.core.slides`) whose title states what
the history shows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pandas as pd

from imgcls.core.slides import NEUTRAL, PALETTE, new_slide, no_data, percent_axis, set_footer
from imgcls.runs import Run, load_run

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_history"]

_TRAIN_COLOR, _VAL_COLOR = PALETTE[0], PALETTE[1]


def _history_frame(run_or_history: Any) -> tuple[pd.DataFrame, int | None, str]:
    """(history with an ``epoch`` column, the run's best epoch or None, the subtitle's context)."""
    best, context = None, ""
    obj = run_or_history
    if isinstance(obj, (str, os.PathLike)):
        obj = load_run(obj)
    if isinstance(obj, Run):
        best = (obj.metrics.get("training") or {}).get("best_epoch")
        df = obj.history
        data = obj.metrics.get("data") or {}
        context = f"run {obj.run_id}: {obj.model_name or 'model'}, {obj.num_classes} classes"
        if data.get("n_train") is not None and data.get("n_val") is not None:
            context += f"; n = {int(data['n_train']):,} train / {int(data['n_val']):,} val images"
    elif isinstance(obj, keras.callbacks.History):
        df = pd.DataFrame(obj.history)
        df.insert(0, "epoch", np.asarray(obj.epoch, dtype=int) + 1)
    elif isinstance(obj, pd.DataFrame):
        df = obj.copy()
    elif isinstance(obj, Mapping):
        df = pd.DataFrame(dict(obj))
    else:
        raise ValueError(
            "`run_or_history` must be a Run, a run folder path, a history DataFrame (history.csv), "
            f"a dict of metric lists or a keras History. Received: {type(run_or_history).__name__}"
        )
    if len(df) == 0:
        raise ValueError("The history is empty: there is no epoch to plot.")
    if "epoch" not in df.columns:
        df.insert(0, "epoch", np.arange(1, len(df) + 1))
    return df, best, context


def _recorded(df: pd.DataFrame, key: str) -> bool:
    return key in df and df[key].notna().any()


def _finding(df: pd.DataFrame, best: int | None) -> str:
    """What the history shows, in one sentence (the slide's title)."""
    last = int(df["epoch"].max())
    epochs = f"{last} epoch{'s' if last != 1 else ''}"
    for key, name, better in (("val_accuracy", "Validation accuracy", "max"),
                              ("val_loss", "Validation loss", "min")):
        if not _recorded(df, key):
            continue
        values = df.set_index("epoch")[key].dropna()
        at = best if key == "val_accuracy" and best in values.index else None
        at = at if at is not None else int(values.idxmax() if better == "max" else values.idxmin())
        value = float(values[at])
        shown = f"{value:.0%}" if better == "max" else f"{value:.3g}"
        if last == 1:
            return f"{name} is {shown} after 1 epoch"
        if at < last:
            verb = "plateaued" if better == "max" else "bottomed out"
            return f"{name} {verb} at {shown} by epoch {at}"
        return f"{name} was still improving at the last of {epochs}: {shown}"
    if _recorded(df, "accuracy"):
        return f"Training accuracy reached {float(df['accuracy'].max()):.0%} in {epochs}"
    if _recorded(df, "loss"):
        return f"Training loss fell to {float(df['loss'].min()):.3g} in {epochs}"
    return f"No loss or accuracy was recorded in {epochs}"


def plot_history(run_or_history: Any, *, title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, train vs validation, on one slide.

    The title states the finding (e.g. "Validation accuracy plateaued at 68%
    by epoch 14"); for a run the subtitle names it, its model and the number
    of training and validation images.

    Args:
        run_or_history: A :class:`~imgcls.runs.Run`, a run folder path, a
            history DataFrame (``run.history``), a dict of lists, or a keras
            ``History``.
        title: The slide's title (default: the finding, stated from the history).

    Returns:
        A ``matplotlib.figure.Figure`` with two panels, "Loss" and "Accuracy"
        (not registered with pyplot; a notebook shows it as the cell's value;
        ``fig.savefig(path)`` writes it).
    """
    from matplotlib import ticker

    df, best, context = _history_frame(run_or_history)
    if best is None and _recorded(df, "val_accuracy"):
        best = int(df.loc[df["val_accuracy"].idxmax(), "epoch"])
    n_epochs = len(df)
    subtitle = "; ".join(x for x in (context, f"{n_epochs} epoch{'s' if n_epochs != 1 else ''}") if x)
    if best is not None:
        subtitle += f"; dashed line: the best epoch ({best})"
    fig, axes = new_slide(title or _finding(df, best), ncols=2)
    set_footer(fig, subtitle)
    for ax, metric, label in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        plotted = False
        for key, name, color in ((metric, "train", _TRAIN_COLOR), (f"val_{metric}", "validation", _VAL_COLOR)):
            if _recorded(df, key):
                ax.plot(df["epoch"], df[key], label=name, color=color,
                        marker="o" if len(df) <= 30 else None, markersize=4)
                plotted = True
        if best is not None:
            ax.axvline(best, color=NEUTRAL, linestyle="--", linewidth=1.5, label=f"best epoch ({best})")
        ax.set_title(label)
        ax.set_xlabel("Epoch", fontsize=18)
        if metric == "accuracy":
            percent_axis(ax)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        if plotted:
            ax.legend(loc="best")
        else:
            no_data(ax, f"no {metric} recorded")
    return fig
