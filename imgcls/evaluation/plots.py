"""Slides of an evaluation: confusion, per-class scores, look-alikes, calibration, run comparison.

Every function takes the dict of :func:`imgcls.evaluation.evaluate` (or the
one table it plots) or of :func:`imgcls.evaluation.compare_runs` and returns a
16:9 ``matplotlib.figure.Figure`` in the one slide style of
:mod:`imgcls.core.slides`: the title states the finding, the subtitle says
what was measured and on how many images. Nothing is computed here that the
metric functions do not already return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core.slides import (
    ACCENT,
    MUTED,
    NEUTRAL,
    PALETTE,
    legend_outside,
    new_slide,
    no_data,
    percent_axis,
    style_axes,
    version_colors,
)
from imgcls.evaluation.metrics import expected_calibration_error

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_confusion", "plot_per_class", "plot_confused_pairs", "plot_calibration", "plot_comparison"]


def _pick(obj: Any, key: str) -> Any:
    """``obj[key]`` of an evaluate() dict, or ``obj`` itself when it is the table."""
    if isinstance(obj, Mapping):
        if key not in obj:
            raise ValueError(f"Expected an evaluate() result with key {key!r}. Received keys: {list(obj)}")
        return obj[key]
    return obj


def _who(obj: Any, n: int | None = None) -> str:
    """The subtitle: which run, which images, how many."""
    if isinstance(obj, Mapping) and "run_id" in obj:
        n = obj.get("summary", {}).get("n", n)
        return f"run {obj['run_id']}, {obj.get('split')} images" + (f" (n={n})" if n is not None else "")
    return f"n={n} images" if n is not None else ""


def plot_confusion(evaluation: Mapping[str, Any] | pd.DataFrame, *, normalize: bool = True,
                   title: str | None = None) -> "Figure":
    """Confusion matrix heat map; the title names the most confused pair.

    Args:
        evaluation: An :func:`imgcls.evaluation.evaluate` result or a confusion DataFrame.
        normalize: Colour each row as shares of the true class (counts stay in the cells).
        title: Override the generated title.

    Returns:
        A 16:9 ``matplotlib.figure.Figure``.
    """
    cm = _pick(evaluation, "confusion")
    counts = cm.to_numpy()
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(support > 0, counts / np.where(support > 0, support, 1), 0.0)
    values = shares if normalize else counts
    off = shares.copy()
    np.fill_diagonal(off, 0)
    if title is None:
        if off.size and off.max() > 0:
            i, j = np.unravel_index(off.argmax(), off.shape)
            title = (f"Most confused: {cm.index[i]} taken for {cm.columns[j]} "
                     f"({counts[i, j]} of {support[i, 0]} {cm.index[i]} images, {off[i, j]:.0%})")
        else:
            title = "No confusion: every image predicted as its true class"
    fig, ax = new_slide(title, _who(evaluation, int(counts.sum())))
    ax.grid(False)
    style_axes(ax, xlabel="predicted class", ylabel="true class", grid="")
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None, aspect="auto")
    n = len(cm)
    ax.set_xticks(range(n), cm.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), cm.index)
    fs = max(8, min(16, 160 // max(n, 1)))
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=fs,
                        color="white" if values[i, j] > (0.5 if normalize else counts.max() / 2) else "black")
    cbar = fig.colorbar(im, ax=ax)
    cbar.ax.tick_params(labelsize=14)
    cbar.set_label("share of the true class" if normalize else "images", fontsize=16)
    return fig


def plot_per_class(evaluation: Mapping[str, Any] | pd.DataFrame, *, metric: str = "f1",
                   title: str | None = None) -> "Figure":
    """Per-class precision, recall and F1 bars, weakest class first; the title names it.

    Args:
        evaluation: An :func:`imgcls.evaluation.evaluate` result or a per-class DataFrame.
        metric: Sort by and name this metric (``"f1"``, ``"recall"``, ``"precision"``).
        title: Override the generated title.

    Returns:
        A 16:9 ``matplotlib.figure.Figure``.
    """
    pc = _pick(evaluation, "per_class")
    if metric not in ("f1", "recall", "precision"):
        raise ValueError(f"`metric` must be 'f1', 'recall' or 'precision'. Received: metric={metric!r}")
    pc = pc[pc["support"] > 0].sort_values(metric, kind="stable")
    if title is None:
        if len(pc):
            title = (f"Weakest class: {pc.index[0]} ({metric} {pc[metric].iloc[0]:.2f}); "
                     f"best: {pc.index[-1]} ({pc[metric].iloc[-1]:.2f})")
        else:
            title = "No class has images in this evaluation"
    fig, ax = new_slide(title, _who(evaluation, int(pc["support"].sum())))
    x = np.arange(len(pc))
    w = 0.27
    others = iter((PALETTE[7], MUTED))
    for off, col in ((-w, "precision"), (0, "recall"), (w, "f1")):
        ax.bar(x + off, pc[col], width=w, label=col, color=ACCENT if col == metric else next(others))
    ax.set_xticks(x, [f"{c}\n(n={s})" for c, s in zip(pc.index, pc["support"])],
                  rotation=0 if len(pc) <= 10 else 45)
    ax.set_ylim(0, 1.05)
    style_axes(ax, ylabel="score")
    legend_outside(ax)
    if not len(pc):
        no_data(ax, "no class has images")
    return fig


def plot_confused_pairs(evaluation: Mapping[str, Any] | pd.DataFrame, *,
                        title: str | None = None) -> "Figure":
    """Horizontal bars of the most-confused class pairs (look-alike candidates).

    Args:
        evaluation: An :func:`imgcls.evaluation.evaluate` result or a
            :func:`imgcls.evaluation.most_confused_pairs` table.
        title: Override the generated title.

    Returns:
        A 16:9 ``matplotlib.figure.Figure``.
    """
    pairs = _pick(evaluation, "confused_pairs")
    if len(pairs):
        top = pairs.iloc[0]
        title = title or (f"Look-alike candidates: {top['class_a']} and {top['class_b']} "
                          f"mixed up {top['count']} times ({top['rate']:.0%} of their images)")
    else:
        title = title or "No look-alike classes: nothing was confused"
    fig, ax = new_slide(title, _who(evaluation))
    style_axes(ax, xlabel="images predicted as the other class", grid="x")
    if len(pairs):
        from matplotlib.ticker import MaxNLocator

        p = pairs.iloc[::-1]
        labels = [f"{a} / {b}" for a, b in zip(p["class_a"], p["class_b"])]
        ax.barh(labels, p["a_as_b"], color=ACCENT, label="first taken for second")
        ax.barh(labels, p["b_as_a"], left=p["a_as_b"], color=PALETTE[7], label="second taken for first")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend_outside(ax)
    else:
        no_data(ax, "no class was confused with another")
    return fig


def _calibration_finding(after: pd.DataFrame, before: pd.DataFrame) -> str:
    """The title of a before/after reliability diagram."""
    e0, e1 = expected_calibration_error(before), expected_calibration_error(after)
    n = f"n={int(after['n'].sum()):,}"
    if not (np.isfinite(e0) and np.isfinite(e1)):
        return "No predictions to calibrate"
    if e1 < e0:
        return f"Temperature scaling cut calibration error from {e0:.1%} to {e1:.1%} ({n})"
    if e1 == e0:
        return f"Temperature scaling left calibration error at {e1:.1%} ({n})"
    return f"Temperature scaling raised calibration error from {e0:.1%} to {e1:.1%} ({n})"


def plot_calibration(evaluation: Mapping[str, Any] | pd.DataFrame, *, before: pd.DataFrame | None = None,
                     title: str | None = None) -> "Figure":
    """Reliability diagram: accuracy by confidence bucket against the diagonal; the
    title says how far the model's confidence can be trusted.

    With the scores before temperature scaling as well (an evaluation of a
    run that has a temperature, or ``before=``), both are drawn side by side
    and the title states what the scaling did to the expected calibration
    error, e.g. "Temperature scaling cut calibration error from 9.1% to 2.3%
    (n=3,000)".

    Args:
        evaluation: An :func:`imgcls.evaluation.evaluate` result or a
            :func:`imgcls.evaluation.calibration_table` (of the scores shown).
        before: The calibration table of the raw scores (default: the
            evaluation's ``calibration_raw`` when the run has a temperature).
        title: Override the generated title.

    Returns:
        A 16:9 ``matplotlib.figure.Figure``.
    """
    cal = _pick(evaluation, "calibration")
    temperature = None
    if isinstance(evaluation, Mapping):
        temperature = (evaluation.get("summary") or {}).get("temperature")
        if before is None and temperature is not None:
            before = evaluation.get("calibration_raw")
    have = cal[cal["n"] > 0]
    if title is None:
        if before is not None:
            title = _calibration_finding(cal, before)
        elif len(have):
            ece = expected_calibration_error(cal)
            top = have.iloc[-1]
            mood = ("over-confident" if (have["gap"] * have["n"]).sum() < 0 else "under-confident")
            title = (f"At confidence {top['lower']:.0%}-{top['upper']:.0%} the model is right "
                     f"{top['accuracy']:.0%} of the time; overall {mood} "
                     f"(calibration error {ece * 100:.1f} points)")
        else:
            title = "No predictions to calibrate"
    subtitle = _who(evaluation, int(cal["n"].sum()))
    if temperature is not None:
        subtitle += f"; temperature {temperature:.2f} fitted on the run's validation split"
    fig, ax = new_slide(title, subtitle.lstrip("; "))
    width = (cal["upper"] - cal["lower"]) * 0.9
    centers = (cal["upper"] + cal["lower"]) / 2
    series = [(cal, ACCENT, "accuracy", 0.0, width)]
    if before is not None:
        series = [(before, MUTED, "before temperature scaling", -width / 4, width / 2),
                  (cal, ACCENT, "after temperature scaling", width / 4, width / 2)]
    for table, color, label, shift, w in series:
        ax.bar(centers + shift, table["accuracy"].fillna(0), width=w, color=color, label=label)
        for c, a, n in zip(centers + shift, table["accuracy"], table["n"]):
            if n:
                ax.text(c, min(a, 1.0) + 0.02, f"n={n}", ha="center", fontsize=13 if before is None else 10)
    ax.plot([0, 1], [0, 1], "--", color=NEUTRAL, lw=2, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.1)
    style_axes(ax, xlabel="confidence (top score)", ylabel="accuracy")
    percent_axis(ax, "x")
    percent_axis(ax, "y")
    ax.legend(loc="upper left", fontsize=15, frameon=False)
    return fig


def plot_comparison(comparison: Mapping[str, Any], *, labels: Mapping[str, str] | None = None,
                    title: str | None = None) -> "Figure":
    """Per-class benchmark accuracy of several runs side by side.

    Args:
        comparison: The dict from :func:`imgcls.evaluation.compare_runs`.
        labels: Short names for the legend and title, ``{run_id: "gen 1 (head swap)"}``.
        title: Override the generated title (it names the leader and its lead).

    Returns:
        A 16:9 ``matplotlib.figure.Figure``; each run keeps its version colour.
    """
    pc = comparison["per_class"]
    summary = comparison["summary"]
    run_ids = [r for r in summary["run_id"]]
    name = {r: (labels or {}).get(r, r) for r in run_ids}
    if title is None:
        s = summary.sort_values("accuracy_common", ascending=False, kind="stable")
        if len(s) >= 2:
            lead = (s["accuracy_common"].iloc[0] - s["accuracy_common"].iloc[1]) * 100
            if lead < 0.05:
                tied = [name[r] for r, a in zip(s["run_id"], s["accuracy_common"])
                        if a >= s["accuracy_common"].iloc[0] - 0.0005]
                title = (f"{', '.join(tied[:-1])} and {tied[-1]} tie on the shared benchmark "
                         f"({s['accuracy_common'].iloc[0]:.1%})")
            else:
                title = (f"{name[s['run_id'].iloc[0]]} leads by {lead:.1f} points on the shared "
                         f"benchmark ({s['accuracy_common'].iloc[0]:.1%})")
        else:
            title = f"{name[s['run_id'].iloc[0]]}: {s['accuracy_common'].iloc[0]:.1%} on the benchmark"
    subtitle = str(comparison.get("note", ""))
    if len(summary) and "n_common" in summary:
        subtitle += (f" n={int(summary['n_common'].max())} benchmark images of the "
                     f"{len(comparison.get('common_classes', []))} shared classes.")
    fig, ax = new_slide(title, subtitle.strip())
    colors = version_colors(run_ids)
    x = np.arange(len(pc))
    w = 0.8 / max(len(run_ids), 1)
    for i, rid in enumerate(run_ids):
        acc = summary.loc[summary["run_id"] == rid, "accuracy_common"].iloc[0]
        ax.bar(x - 0.4 + w * (i + 0.5), pc[rid].fillna(0), width=w, color=colors[str(rid)],
               label=f"{name[rid]} (shared classes {acc:.1%})")
    ax.set_xticks(x, pc.index, rotation=0 if len(pc) <= 10 else 45)
    ax.set_ylim(0, 1.15)
    style_axes(ax, ylabel="benchmark accuracy (recall)")
    percent_axis(ax, "y")
    legend_outside(ax)
    return fig
