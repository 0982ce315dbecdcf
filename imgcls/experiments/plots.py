"""Figures of the experiments: the bake-off's trade-offs, learning curves of head swap vs scratch.

matplotlib is imported only when a figure is made; every figure is a slide in
the package's one style (:mod:`imgcls.core.slides`) whose title states the
finding and whose subtitle says what was measured, on how many.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core.slides import NEUTRAL, PALETTE, new_figure, new_slide, percent_axis, set_footer, set_headline
from imgcls.core.workspace import Workspace
from imgcls.runs import Run, load_run

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_bakeoff", "plot_learning_curves"]

#: One colour per arm of the head-swap experiment, the same on every slide.
ARM_COLORS = {"head_swap": PALETTE[1], "scratch": PALETTE[2], "generation0": PALETTE[4]}


# =========================================================================== bake-off
def _bakeoff_finding(df: pd.DataFrame) -> str:
    names = df["model"].astype(str).tolist()
    acc = pd.to_numeric(df["val_accuracy"], errors="coerce").to_numpy(dtype=float)
    speed = pd.to_numeric(df["images_per_s_batch1"], errors="coerce").to_numpy(dtype=float)
    fast = names[int(np.nanargmax(speed))] if np.isfinite(speed).any() else None
    fast_text = f"{np.nanmax(speed):,.0f} images/s" if fast else ""
    if not np.isfinite(acc).any():
        return f"{fast} is the fastest at {fast_text}" if fast else "No model has a validation accuracy"
    best = names[int(np.nanargmax(acc))]
    best_text = f"{np.nanmax(acc):.0%}"
    if len(names) == 1:
        return f"{best}: {best_text} validation accuracy" + (f", {fast_text} on the CPU" if fast else "")
    if fast is None:
        return f"{best} is the most accurate at {best_text}"
    if fast == best:
        return f"{best} is both the most accurate ({best_text}) and the fastest ({fast_text})"
    return f"{best} is the most accurate at {best_text}, {fast} the fastest at {fast_text}"


def _bakeoff_subtitle(df: pd.DataFrame) -> str:
    epochs = sorted(pd.to_numeric(df["epochs"], errors="coerce").dropna().astype(int).unique()) \
        if "epochs" in df else []
    trained = f", each trained {epochs[0]} epoch{'s' if epochs[0] != 1 else ''} from scratch" \
        if len(epochs) == 1 else ", each trained from scratch"
    text = f"{len(df)} model{'s' if len(df) != 1 else ''}{trained} on the same splits"
    n_train, n_val = df.attrs.get("n_train"), df.attrs.get("n_val")
    if n_train is not None and n_val is not None:
        text += f"; n = {int(n_train):,} train / {int(n_val):,} val images"
    return text + "; validation accuracy at the best epoch; speed: CPU inference at batch 1"


def plot_bakeoff(df: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Validation accuracy, CPU inference speed and epoch time per model, on one slide.

    The title states the finding (e.g. "mini_inception is the most accurate
    at 81%, simple_cnn the fastest at 2,400 images/s").

    Args:
        df: The table from :func:`imgcls.experiments.bakeoff`.
        title: The slide's title (default: the finding).

    Returns:
        A ``matplotlib.figure.Figure`` with three panels.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"`df` must be the DataFrame returned by bakeoff(). Received: {type(df).__name__}")
    need = ["model", "val_accuracy", "images_per_s_batch1", "images_per_s_batch32", "mean_epoch_time_s"]
    missing = [c for c in need if c not in df.columns]
    if missing or len(df) == 0:
        raise ValueError(
            f"`df` must be a non-empty table from bakeoff() with columns {need}. "
            f"Missing: {missing}; rows: {len(df)}"
        )
    names = df["model"].astype(str).tolist()
    x = np.arange(len(names))
    fig, (ax_acc, ax_speed, ax_time) = new_slide(title or _bakeoff_finding(df), ncols=3)
    set_footer(fig, _bakeoff_subtitle(df))

    acc = df["val_accuracy"].astype(float).to_numpy()
    bars = ax_acc.bar(x, acc, color=PALETTE[0])
    ax_acc.bar_label(bars, labels=[f"{100 * v:.0f}%" if np.isfinite(v) else "n/a" for v in acc], padding=3)
    ax_acc.set_ylim(0, 1.1)
    percent_axis(ax_acc)
    ax_acc.set_title("Validation accuracy")

    width = 0.38
    b1 = ax_speed.bar(x - width / 2, df["images_per_s_batch1"].astype(float), width, label="batch 1",
                      color=PALETTE[1])
    b32 = ax_speed.bar(x + width / 2, df["images_per_s_batch32"].astype(float), width, label="batch 32",
                       color=PALETTE[2])
    for bars_ in (b1, b32):
        ax_speed.bar_label(bars_, fmt="%.0f", padding=3, fontsize=12)
    ax_speed.set_yscale("log")
    ax_speed.set_title("CPU inference (images/s)")
    ax_speed.legend(loc="upper right")

    t = df["mean_epoch_time_s"].astype(float)
    bars = ax_time.bar(x, t, color=NEUTRAL)
    ax_time.bar_label(bars, fmt="%.1f s", padding=3)
    ax_time.set_title("Training time per epoch")
    ax_time.set_ylabel("seconds")

    for ax in (ax_acc, ax_speed, ax_time):
        ax.set_xticks(x, names, rotation=20, ha="right")
    return fig


# =========================================================================== learning curves
def _headswap_finding(results: pd.DataFrame, means: Mapping[str, pd.Series]) -> str:
    """Headline of the learning-curve slide, from the experiment's numbers."""
    hs = results[results["arm"] == "head_swap"]
    sc = results[results["arm"] == "scratch"]
    reach = pd.to_numeric(hs["epochs_to_scratch_best"], errors="coerce")
    scratch_best = pd.to_numeric(sc["best_epoch"], errors="coerce").mean()
    if len(reach) and reach.notna().all():
        return (f"Head swap reaches the from-scratch best in {reach.mean():.0f} epochs "
                f"instead of {scratch_best:.0f}")
    missed = f"missed the from-scratch best in {int(reach.isna().sum())} of {len(reach)} seeds"
    if "head_swap" in means and "scratch" in means:
        common = means["head_swap"].index.intersection(means["scratch"].index)
        at = [e for e in (10, 5, 3, 1) if e in common]
        if at:
            a, b = float(means["head_swap"][at[0]]), float(means["scratch"][at[0]])
            if a > b:
                return (f"Head swap leads after {at[0]} epochs ({a:.0%} vs {b:.0%} val accuracy) "
                        f"but {missed}")
    return f"Head swap {missed} (from scratch needed {scratch_best:.0f} epochs)"


def _curves_finding(curves: list[tuple[str, str, pd.DataFrame]], metric: str) -> str:
    """Which run does best on ``metric`` (the title of a chart of given runs)."""
    name = metric.replace("_", " ")
    higher = not metric.endswith("loss")
    best: tuple[float, str, int] | None = None
    for label, _, hist in curves:
        values = hist.set_index("epoch")[metric].dropna() if metric in hist else pd.Series(dtype=float)
        if not len(values):
            continue
        epoch = int(values.idxmax() if higher else values.idxmin())
        value = float(values[epoch])
        if best is None or (value > best[0] if higher else value < best[0]):
            best = (value, label, epoch)
    if best is None:
        return f"No run recorded {name}"
    value, label, epoch = best
    shown = f"{value:.0%}" if metric.endswith("accuracy") else f"{value:.3g}"
    if len(curves) == 1:
        return f"{label}: {name} {'peaks' if higher else 'bottoms out'} at {shown} in epoch {epoch}"
    return f"{label} reaches the {'highest' if higher else 'lowest'} {name}: {shown} in epoch {epoch}"


def _runs_subtitle(runs: list[Run], metric: str, n_curves: int) -> str:
    text = f"{metric.replace('_', ' ')} per epoch of {n_curves} run{'s' if n_curves != 1 else ''}"
    sizes = {((r.metrics.get("data") or {}).get("n_train"), (r.metrics.get("data") or {}).get("n_val"))
             for r in runs}
    if runs and len(runs) == n_curves and len(sizes) == 1:
        n_train, n_val = sizes.pop()
        if n_train is not None and n_val is not None:
            text += f"; n = {int(n_train):,} train / {int(n_val):,} val images"
    return text


def plot_learning_curves(
    runs: Any,
    *,
    metric: str = "val_accuracy",
    workspace: Workspace | str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Learning curves of several runs on one slide.

    Args:
        runs: One of

            * the :func:`imgcls.experiments.headswap_experiment` table: the
              generation-1 arms are drawn, one line per seed, coloured by arm,
              with the from-scratch best validation accuracy as a dashed line;
            * the dict from :func:`imgcls.experiments.read_headswap_benchmark`
              (the same chart from the committed benchmark numbers);
            * a list of runs / run references, or a dict ``label -> run`` or
              ``label -> history DataFrame``.
        metric: History column to draw (``"val_accuracy"``, ``"val_loss"``,
            ``"accuracy"``, ``"loss"``).
        workspace: Needed when runs are given by id.
        title: The slide's title (default: the finding, e.g. "Head swap
            reaches the from-scratch best in 4 epochs instead of 14").

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    from matplotlib import ticker

    curves: list[tuple[str, str, pd.DataFrame]] = []  # (label, colour group, history)
    loaded: list[Run] = []
    results: pd.DataFrame | None = None
    if isinstance(runs, pd.DataFrame):
        if not {"arm", "run_path", "seed"} <= set(runs.columns):
            raise ValueError("A DataFrame for `runs` must be the table from headswap_experiment().")
        results = runs
        gen1 = runs[runs["arm"].isin(["head_swap", "scratch"])]
        for _, r in gen1.sort_values(["arm", "seed"]).iterrows():
            curves.append((f"{r['arm'].replace('_', ' ')} (seed {r['seed']})", r["arm"],
                           Run(r["run_path"]).history))
    elif isinstance(runs, Mapping) and {"runs", "curves"} <= set(runs):
        results = runs["runs"]
        for label, hist in sorted(runs["curves"].items()):
            arm, _, seed = str(label).partition("/")
            curves.append((f"{arm.replace('_', ' ')} ({seed.replace('seed', 'seed ')})", arm, hist))
    else:
        items = runs.items() if isinstance(runs, Mapping) else [(None, r) for r in runs]
        for i, (label, ref) in enumerate(items):
            if isinstance(ref, pd.DataFrame):
                curves.append((str(label), f"run{i}", ref))
                continue
            run = load_run(ref, workspace=workspace)
            loaded.append(run)
            kind = "head swap" if run.parent else "from scratch"
            curves.append((label or f"{run.run_id} ({kind})", f"run{i}", run.history))
    if not curves:
        raise ValueError("`runs` holds no run to plot.")

    target = None
    if results is not None and metric == "val_accuracy" and "arm" in results:
        sc = results[results["arm"] == "scratch"]
        if len(sc):
            target = float(pd.to_numeric(sc["best_val_accuracy"], errors="coerce").mean())

    fig, ax = new_figure()
    groups: list[str] = []
    by_group: dict[str, list[pd.Series]] = {}
    experiment = results is not None
    for label, group, hist in curves:
        if metric not in hist:
            continue
        if group not in groups:
            groups.append(group)
        color = ARM_COLORS.get(group) or PALETTE[groups.index(group) % len(PALETTE)]
        if experiment:  # thin lines per seed, the mean in bold below
            ax.plot(hist["epoch"], hist[metric], color=color, lw=1.2, alpha=0.35)
            by_group.setdefault(group, []).append(hist.set_index("epoch")[metric])
        else:
            ax.plot(hist["epoch"], hist[metric], color=color, lw=2.5, alpha=0.85, label=label)
    means: dict[str, pd.Series] = {}
    for group, series in by_group.items():
        table = pd.concat(series, axis=1)
        means[group] = table.dropna().mean(axis=1)  # while every seed is still training
        ax.plot(means[group].index, means[group].to_numpy(), color=ARM_COLORS.get(group, NEUTRAL), lw=3.5,
                label=f"{group.replace('_', ' ')} (mean of {len(series)} seed(s); thin: each seed)")
    if target is not None:
        ax.axhline(target, color=NEUTRAL, ls="--", lw=2, label=f"from-scratch best (mean {target:.1%})")
    if title is None:
        if target is not None:
            title = _headswap_finding(results, means)
        elif experiment:
            title = _curves_finding([c for c in curves if c[1] in ("head_swap", "scratch")], metric)
        else:
            title = _curves_finding(curves, metric)
    if results is not None and "seed" in results:
        subtitle = (f"the zoo sample's second generation (the first head swap), {results['seed'].nunique()} seed(s); "
                    "same data, splits, model, optimiser and stopping rule in both arms")
    else:
        subtitle = _runs_subtitle(loaded, metric, len(curves))
    set_headline(fig, title, subtitle, ax=ax)
    ax.set_xlabel("epoch", fontsize=18)
    ax.set_ylabel(metric.replace("_", " "), fontsize=18)
    if metric.endswith("accuracy"):
        percent_axis(ax)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.legend(fontsize=13, frameon=False, loc="lower right" if metric.endswith("accuracy") else "upper right")
    return fig
