"""Slides of the model generations: accuracy by generation and training cost by generation.

Each takes the dict from :func:`imgcls.reports.lineage_report` and returns a
16:9 slide in the package's one style (:mod:`imgcls.core.slides`): the
finding (:func:`imgcls.reports.generation_findings`) as the title, what was
measured on how many in the subtitle. An accuracy resting on fewer than
:data:`~imgcls.reports.generations.MIN_BENCHMARK_N` benchmark images is drawn
faded (MUTED) and claims nothing. Estimated savings are never drawn: the cost
slide shows measured hours only. matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core.slides import (
    ACCENT,
    MUTED,
    NEUTRAL,
    PALETTE,
    gapped_line,
    legend_outside,
    new_slide,
    no_data,
    percent_axis,
    style_axes,
)
from imgcls.reports.generations import (
    MIN_BENCHMARK_N,
    _accuracy_interval,
    format_hours,
    generation_findings,
    lineage_report,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_generation_accuracy", "plot_generation_cost", "build_generation_figures", "generation_deck"]

_TEST = PALETTE[1]


def _n_list(values: pd.Series) -> str:
    nums = [str(int(v)) if pd.notna(v) else "?" for v in values]
    return ", ".join(nums) if len(nums) <= 8 else f"{nums[0]} to {nums[-1]}"


def plot_generation_accuracy(report: dict[str, pd.DataFrame]) -> Figure:
    """Benchmark (and test) accuracy of each generation of the production line.

    Benchmark accuracy with its 95% Wilson interval per generation; test
    accuracy as a dashed line; refused candidates as grey crosses at their
    generation. Generations measured on fewer than
    :data:`~imgcls.reports.generations.MIN_BENCHMARK_N` benchmark images are faded.

    Args:
        report: The dict from :func:`imgcls.reports.lineage_report`.
    """
    findings = generation_findings(report)
    gens = report["generations"]
    line = gens[gens["on_line"]]
    acc = pd.to_numeric(line["benchmark_accuracy"], errors="coerce")
    n = pd.to_numeric(line["benchmark_n"], errors="coerce")
    subtitle = (f"Benchmark accuracy of each generation of the production line (n = {_n_list(n)} benchmark "
                "images; the set grows when classes are added); bars: 95% Wilson interval; dashed: test "
                f"accuracy; faded: fewer than {MIN_BENCHMARK_N} images")
    fig, ax = new_slide(findings["accuracy"], subtitle)
    if not len(line) or acc.isna().all():
        no_data(ax, "No generation has a benchmark accuracy yet")
        return fig
    x = line["generation"].astype(float).to_numpy()
    solid = (n >= MIN_BENCHMARK_N).to_numpy() & acc.notna().to_numpy()
    # reports.rules: the line joins strong generations only (a faded point stands alone)
    gapped_line(ax, x, acc, strong=solid, color=ACCENT, label="benchmark", marker="")
    for xi, a, ni, ok in zip(x, acc, n, solid):
        if pd.isna(a):
            continue
        colour = ACCENT if ok else MUTED
        if pd.notna(ni) and ni > 0:
            low, high = _accuracy_interval(float(a), float(ni))
            ax.errorbar([xi], [a], yerr=[[a - low], [high - a]], color=colour, capsize=6, lw=2, zorder=3)
        ax.scatter([xi], [a], s=90, color=colour, zorder=4)
        ax.annotate(f"{a:.1%}", (xi, a), textcoords="offset points", xytext=(10, 8), fontsize=14,
                    color=NEUTRAL if ok else MUTED)
    test = pd.to_numeric(line["test_accuracy"], errors="coerce")
    if test.notna().any():
        ax.plot(x, test, color=_TEST, ls="--", marker="o", ms=6, label="test", zorder=2)
    refused = gens[~gens["on_line"] & (gens["promotion"] == "refused")]
    ref_acc = pd.to_numeric(refused["benchmark_accuracy"], errors="coerce")
    if ref_acc.notna().any():
        ax.scatter(refused["generation"].astype(float), ref_acc, marker="x", s=110, color=NEUTRAL, lw=2.5,
                   label="refused candidate", zorder=4)
    ticks = {int(g): f"{int(g)}\n{'scratch' if m == 'scratch' else 'head swap'}"
             for g, m in zip(line["generation"], line["method"])}
    for g in refused.loc[ref_acc.notna(), "generation"]:
        ticks.setdefault(int(g), f"{int(g)}\nrefused")
    ax.set_xticks(sorted(ticks))
    ax.set_xticklabels([ticks[g] for g in sorted(ticks)])
    style_axes(ax, xlabel="generation", ylabel="accuracy")
    low = np.nanmin([acc.min(), test.min() if test.notna().any() else np.nan,
                     ref_acc.min() if ref_acc.notna().any() else np.nan])
    ax.set_ylim(max(0.0, float(low) - 0.1), 1.02)
    ax.set_xlim(min(ticks) - 0.5, max(ticks) + 0.5)
    percent_axis(ax)
    legend_outside(ax)
    return fig


def plot_generation_cost(report: dict[str, pd.DataFrame]) -> Figure:
    """Training hours of each generation of the production line, beside measured from-scratch hours.

    Bars: the generation's training wall time (the root from scratch in grey,
    head swaps in colour); hollow bars beside: this workspace's own
    from-scratch run on the same classes, where one exists. No estimate is drawn.

    Args:
        report: The dict from :func:`imgcls.reports.lineage_report`.
    """
    findings = generation_findings(report)
    cost = report["cost"]
    gens = cost[cost["kind"] == "generation"]
    other = cost[cost["kind"] == "other runs"]
    price = cost.attrs.get("price_per_hour", 0.0) or 0.0
    total = float(gens["hours"].sum(min_count=1)) if len(gens) else float("nan")
    parts = [(f"Training wall time of each of the {len(gens)} generations of the production line, "
              f"{format_hours(total)} in all")]
    if len(other):
        o = other.iloc[0]
        parts.append(f"{int(o['runs'])} other run(s) (throw-away, refused, comparison) took "
                     f"{format_hours(o['hours'])} more")
    if price > 0:
        parts.append(f"cost at {price:,.2f} per hour")
    measured = cost.attrs.get("saved_measured") or []
    if measured:
        parts.append("hatched bars: this workspace's own from-scratch run on the same classes (measured for "
                     f"generation{'s' if len(measured) != 1 else ''} {', '.join(map(str, measured))})")
    else:
        parts.append("no from-scratch run on the same classes in this workspace to measure savings against")
    fig, ax = new_slide(findings["cost"], "; ".join(parts))
    hours = pd.to_numeric(gens["hours"], errors="coerce")
    if not len(gens) or hours.isna().all():
        no_data(ax, "No generation recorded its training time")
        return fig
    scratch = pd.to_numeric(gens["scratch_hours"], errors="coerce")
    scale, unit = (60.0, "minutes") if np.nanmax([hours.max(), scratch.max()]) < 2 else (1.0, "hours")
    hours, scratch = hours * scale, scratch * scale
    x = np.arange(len(gens), dtype=float)
    width = 0.38 if scratch.notna().any() else 0.6
    shift = width / 2 if scratch.notna().any() else 0.0
    for method, colour, label in (("scratch", NEUTRAL, "generation from scratch"),
                                  ("head_swap", ACCENT, "generation by head swap")):
        sel = (gens["method"] == method).to_numpy()
        if sel.any():
            ax.bar(x[sel] - shift, hours[sel].fillna(0), width=width, color=colour, label=label)
    for xi, h in zip(x - shift, hours):
        if pd.notna(h):
            label = format_hours(h / scale) + (f"\n{h / scale * price:,.2f}" if price > 0 else "")
            ax.annotate(label, (xi, h), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=13)
    if scratch.notna().any():
        ax.bar(x[scratch.notna().to_numpy()] + shift, scratch.dropna(), width=width, facecolor="none",
               edgecolor=NEUTRAL, lw=2, hatch="//", label="same classes from scratch (measured)")
    ax.set_xticks(x)
    ax.set_xticklabels([str(int(g)) for g in gens["generation"]])
    style_axes(ax, xlabel="generation", ylabel=f"training {unit}")
    legend_outside(ax)
    return fig


def build_generation_figures(report: dict[str, pd.DataFrame]) -> dict[str, Figure]:
    """The deck's "model generations" slides: ``{"generation_accuracy", "generation_cost"}``.

    Empty when the production line has fewer than two generations (nothing
    to compare yet; :func:`imgcls.reports.generation_findings` says so).

    Args:
        report: The dict from :func:`imgcls.reports.lineage_report`.
    """
    if not generation_findings(report)["slides"]:
        return {}
    return {"generation_accuracy": plot_generation_accuracy(report),
            "generation_cost": plot_generation_cost(report)}



def generation_deck(workspace: Any) -> tuple[dict[str, pd.DataFrame], dict[str, Figure], str]:
    """The deck's "model generations" section: its tables, its slides and its summary lines.

    Measured numbers only: no estimate is computed, so none reaches a slide
    or a deck table. A workspace without runs gives nothing; one whose
    production line has a single generation gets the tables and a "too
    early" note but no slides.

    Args:
        workspace: The workspace (or its folder).

    Returns:
        ``({"generation_tree", "generations", "generation_cost"}: DataFrames,
        {"generation_accuracy", "generation_cost"}: Figures,
        the Markdown section for summary.md)``.
    """
    report = lineage_report(workspace)
    if not len(report["tree"]):
        return {}, {}, ""
    findings = generation_findings(report)
    tables = {"generation_tree": report["tree"], "generations": report["generations"],
              "generation_cost": report["cost"]}
    figures = build_generation_figures(report)
    lines = ["", "## Model generations", ""]
    if figures:
        lines += [f"- **Accuracy by generation**: {findings['accuracy']}.",
                  f"- **Cost by generation**: {findings['cost']}.", ""]
    else:
        lines += [f"- {findings['accuracy']}; no generation slides yet.", ""]
    lines += ["```", report["tree"].attrs.get("text", ""), "```", ""]
    return tables, figures, "\n".join(lines)
