"""Figures of the lineage experiment: epochs to plateau, accuracy and compute by generation, both arms.

Each takes the :func:`imgcls.experiments.lineage_table` (from
:func:`imgcls.experiments.lineage_experiment` or
:func:`imgcls.experiments.read_lineage_benchmark`) and returns a slide in the
package's one style (:mod:`imgcls.core.slides`): the finding as the title,
what was measured on how many in the subtitle, the mean over seeds as a line,
each seed as a dot, the write-up's numbers (:data:`imgcls.experiments.WRITEUP_LINEAGE`)
as dotted reference lines. matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.slides import NEUTRAL, legend_outside, new_slide, percent_axis, style_axes
from imgcls.experiments.lineage_table import WRITEUP_LINEAGE
from imgcls.experiments.plots import ARM_COLORS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_lineage_epochs", "plot_lineage_accuracy", "plot_lineage_compute"]

_ARMS = ("scratch", "head_swap")
_LABEL = {"scratch": "from scratch", "head_swap": "head swap"}
_OFFSET = {"scratch": -0.08, "head_swap": 0.08}


def _check(table: Any, columns: list[str]) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame) or not {"generation", "arm", "seed", *columns} <= set(table.columns):
        raise ValueError("`table` must be the DataFrame from lineage_experiment() / lineage_table() "
                         f"(or read_lineage_benchmark()['table']) with columns {columns}.")
    table = table[table["arm"].isin(_ARMS)]
    if not len(table):
        raise ValueError("`table` has no row of the arms 'head_swap' or 'scratch'.")
    return table


def _stats(table: pd.DataFrame, column: str) -> dict[str, pd.DataFrame]:
    """arm -> DataFrame indexed by generation with mean, min, max over seeds."""
    values = pd.to_numeric(table[column], errors="coerce")
    out = {}
    for arm in _ARMS:
        sel = table["arm"] == arm
        if sel.any():
            out[arm] = values[sel].groupby(table.loc[sel, "generation"]).agg(["mean", "min", "max"]).dropna()
    return out


def _judged(table: pd.DataFrame, from_generation: int) -> list[int]:
    """Generations with both arms from ``from_generation`` on (else from 2 on, else all)."""
    both = sorted(set(table.loc[table["arm"] == "head_swap", "generation"])
                  & set(table.loc[table["arm"] == "scratch", "generation"]))
    for low in (from_generation, 2, 1):
        gens = [int(g) for g in both if g >= low]
        if gens:
            return gens
    return []


def _span(gens: list[int]) -> str:
    if not gens:
        return "In no generation"
    return f"From generation {gens[0]} on" if len(gens) > 1 else f"In generation {gens[0]}"


def _mean_over(stats: dict[str, pd.DataFrame], arm: str, gens: list[int]) -> float:
    s = stats.get(arm)
    if s is None:
        return float("nan")
    vals = s["mean"].reindex(gens).dropna()
    return float(vals.mean()) if len(vals) else float("nan")


def _subtitle(table: pd.DataFrame, what: str, *, reference: bool = True) -> str:
    gens = sorted(table["generation"].unique())
    n_seeds = table["seed"].nunique()
    text = f"{what}; n = {n_seeds} seed{'s' if n_seeds != 1 else ''} x {len(gens)} generations"
    first, last = table[table["generation"] == gens[0]], table[table["generation"] == gens[-1]]
    n_img = pd.to_numeric(table.get("n_images"), errors="coerce") if "n_images" in table else None
    if n_img is not None and n_img.notna().any():
        text += (f"; library {int(n_img[first.index].max()):,} -> {int(n_img[last.index].max()):,} images, "
                 f"{int(first['n_classes'].max())} -> {int(last['n_classes'].max())} classes")
    if "model" in table and table["model"].notna().any():
        text += f"; {', '.join(sorted(table['model'].dropna().astype(str).unique()))}"
    return text + ("; both arms on the same snapshot, splits and stopping rule each generation; "
                   "line: mean, bars: min-max, dots: seeds" + (", dotted: the write-up" if reference else ""))


def _draw_arms(ax: Any, table: pd.DataFrame, column: str, *, scale: float = 1.0) -> dict[str, pd.DataFrame]:
    """Mean line with min-max bars per arm, each seed as a dot; returns the stats."""
    stats = _stats(table, column)
    for arm, s in stats.items():
        color = ARM_COLORS[arm]
        x = s.index.to_numpy(dtype=float) + _OFFSET[arm]
        mean = s["mean"].to_numpy() * scale
        err = np.vstack([mean - s["min"].to_numpy() * scale, s["max"].to_numpy() * scale - mean])
        ax.errorbar(x, mean, yerr=err, color=color, lw=3, marker="o", ms=8, capsize=4, label=_LABEL[arm])
        sel = table["arm"] == arm
        pts = pd.to_numeric(table.loc[sel, column], errors="coerce") * scale
        ax.scatter(table.loc[sel, "generation"].astype(float) + _OFFSET[arm], pts, color=color, s=22,
                   alpha=0.5, zorder=3)
    gens = sorted(table["generation"].unique())
    ax.set_xticks(gens)
    return stats


def _reference(ax: Any, value: float, arm: str, text: str) -> None:
    """A dotted line at one of the write-up's numbers, named in the legend."""
    ax.axhline(value, color=ARM_COLORS[arm], ls=":", lw=2, alpha=0.8, label=text)


def plot_lineage_epochs(table: pd.DataFrame, *, from_generation: int = 4, title: str | None = None) -> Figure:
    """Epochs to plateau (the best epoch under early stopping) by generation, both arms.

    Args:
        table: The :func:`imgcls.experiments.lineage_table`.
        from_generation: First generation the title's finding looks at (as in
            :func:`imgcls.experiments.lineage_verdict`).
        title: The slide's title (default: the finding, e.g. "From generation 4
            on, head swap plateaus after 6 epochs, from scratch after 31").

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    table = _check(table, ["best_epoch"])
    from_generation = check_int(from_generation, "from_generation")
    gens = _judged(table, from_generation)
    stats = _stats(table, "best_epoch")
    hs, sc = _mean_over(stats, "head_swap", gens), _mean_over(stats, "scratch", gens)
    if title is None:
        title = (f"{_span(gens)}, head swap plateaus after {hs:.0f} epochs, from scratch after {sc:.0f}"
                 + (f" ({hs / sc:.2f}x)" if sc else "")) if np.isfinite(hs) and np.isfinite(sc) \
            else "Epochs to plateau by generation"
    fig, ax = new_slide(title, _subtitle(table, "best epoch under early stopping"))
    _draw_arms(ax, table, "best_epoch")
    _reference(ax, WRITEUP_LINEAGE["scratch_epochs"], "scratch",
               f"write-up: from scratch ~{WRITEUP_LINEAGE['scratch_epochs']} epochs")
    _reference(ax, WRITEUP_LINEAGE["head_swap_epochs"], "head_swap",
               f"write-up: head swap ~{WRITEUP_LINEAGE['head_swap_epochs']} epochs")
    top = pd.to_numeric(table["best_epoch"], errors="coerce").max()
    ax.set_ylim(0, max(WRITEUP_LINEAGE["scratch_epochs"], float(top) if np.isfinite(top) else 0) * 1.12)
    style_axes(ax, xlabel="generation", ylabel="epochs to plateau")
    legend_outside(ax)
    return fig


def plot_lineage_accuracy(table: pd.DataFrame, *, from_generation: int = 4, title: str | None = None) -> Figure:
    """Test and benchmark accuracy by generation, both arms, on two panels.

    Args:
        table: The :func:`imgcls.experiments.lineage_table`.
        from_generation: First generation the title's finding looks at.
        title: The slide's title (default: the finding, e.g. "From generation 4
            on, head swap's test accuracy is 2.1 points above from scratch's").

    Returns:
        A ``matplotlib.figure.Figure`` with two panels (test, benchmark).
    """
    table = _check(table, ["test_accuracy", "benchmark_accuracy"])
    from_generation = check_int(from_generation, "from_generation")
    gens = _judged(table, from_generation)
    stats = _stats(table, "test_accuracy")
    hs, sc = _mean_over(stats, "head_swap", gens), _mean_over(stats, "scratch", gens)
    if title is None:
        if np.isfinite(hs) and np.isfinite(sc):
            diff = 100 * (hs - sc)
            how = "equals" if abs(diff) < 0.05 else (f"is {abs(diff):.1f} points " + ("above" if diff > 0 else "below"))
            title = f"{_span(gens)}, head swap's test accuracy {how} from scratch's ({hs:.1%} vs {sc:.1%})"
        else:
            title = "Test and benchmark accuracy by generation"
    n_test = pd.to_numeric(table.get("n_test"), errors="coerce") if "n_test" in table else pd.Series(dtype=float)
    n_bench = pd.to_numeric(table.get("n_benchmark"), errors="coerce") if "n_benchmark" in table \
        else pd.Series(dtype=float)
    what = "accuracy of the best epoch's weights on the test split and the fixed benchmark set"
    if n_test.notna().any() and n_bench.notna().any():
        what += (f" (n = {int(n_test.min()):,}-{int(n_test.max()):,} test, "
                 f"{int(n_bench.min()):,}-{int(n_bench.max()):,} benchmark images)")
    fig, axes = new_slide(title, _subtitle(table, what), ncols=2, sharey=True)
    values = pd.concat([pd.to_numeric(table[c], errors="coerce") for c in ("test_accuracy", "benchmark_accuracy")])
    low = min(float(values.min()) if values.notna().any() else 0.9, WRITEUP_LINEAGE["scratch_accuracy"]) - 0.03
    for ax, column, name in zip(axes, ("test_accuracy", "benchmark_accuracy"), ("Test", "Benchmark")):
        _draw_arms(ax, table, column)
        _reference(ax, WRITEUP_LINEAGE["scratch_accuracy"], "scratch",
                   f"write-up: from scratch ~{WRITEUP_LINEAGE['scratch_accuracy']:.0%}")
        _reference(ax, WRITEUP_LINEAGE["head_swap_accuracy"], "head_swap",
                   f"write-up: head swap ~{WRITEUP_LINEAGE['head_swap_accuracy']:.0%}")
        ax.set_ylim(max(0.0, low), 1.01)
        percent_axis(ax)
        style_axes(ax, xlabel="generation")
        ax.set_title(f"{name} accuracy", loc="left", fontsize=16)
    axes[0].set_ylabel("accuracy", fontsize=18)
    axes[0].legend(loc="lower right", fontsize=14)
    return fig


def plot_lineage_compute(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Compute per generation and cumulative, both arms, on two panels.

    CPU time when the table has it for every run, else wall time. Generation
    1's run is the same in both arms, so both lines start together.

    Args:
        table: The :func:`imgcls.experiments.lineage_table`.
        title: The slide's title (default: the finding, e.g. "Over 6
            generations the head-swap lineage used 41% of the CPU time of
            training every generation from scratch").

    Returns:
        A ``matplotlib.figure.Figure`` with two panels (per generation, cumulative).
    """
    table = _check(table, ["wall_time_s"])
    cpu = pd.to_numeric(table.get("cpu_time_s"), errors="coerce") if "cpu_time_s" in table else None
    column = "cpu_time_s" if cpu is not None and cpu.notna().all() else "wall_time_s"
    what = "CPU time" if column == "cpu_time_s" else "wall time"
    data = table.copy()
    data[column] = pd.to_numeric(data[column], errors="coerce")
    data["cum"] = data.sort_values("generation").groupby(["arm", "seed"])[column].cumsum()
    peak = float(data["cum"].max()) if data["cum"].notna().any() else 0.0
    unit, div = ("hours", 3600.0) if peak >= 2 * 3600 else ("minutes", 60.0) if peak >= 120 else ("seconds", 1.0)
    totals = data.groupby(["arm", "seed"])[column].sum().groupby("arm").mean()
    n_gen = data["generation"].nunique()
    if title is None:
        if {"head_swap", "scratch"} <= set(totals.index) and totals["scratch"] > 0:
            share = totals["head_swap"] / totals["scratch"]
            title = (f"Over {n_gen} generations the head-swap lineage used {share:.0%} of the {what} "
                     "of training every generation from scratch")
        else:
            title = f"{what.capitalize()} by generation"
    fig, (ax_gen, ax_cum) = new_slide(
        title, _subtitle(data, f"{what} of each training call (fit, test and benchmark evaluation, save)",
                         reference=False), ncols=2)
    _draw_arms(ax_gen, data, column, scale=1 / div)
    style_axes(ax_gen, xlabel="generation", ylabel=f"{what} ({unit})")
    ax_gen.set_title("Per generation", loc="left", fontsize=16)
    stats = _draw_arms(ax_cum, data, "cum", scale=1 / div)
    for arm, s in stats.items():
        if len(s):
            ax_cum.annotate(f"{s['mean'].iloc[-1] / div:.3g} {unit}", xy=(s.index[-1] + _OFFSET[arm],
                            s["mean"].iloc[-1] / div), xytext=(-8, 0), textcoords="offset points",
                            ha="right", va="center", fontsize=13, color=ARM_COLORS[arm])
    style_axes(ax_cum, xlabel="generation", ylabel=f"cumulative {what} ({unit})")
    ax_cum.set_title("Cumulative", loc="left", fontsize=16)
    ax_cum.set_ylim(bottom=0)
    ax_gen.set_ylim(bottom=0)
    ax_gen.legend(loc="lower left", fontsize=14)
    for ax in (ax_gen, ax_cum):
        ax.axhline(0, color=NEUTRAL, lw=1)
    return fig
