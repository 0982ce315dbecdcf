"""The report figures: one 16:9 slide per table, in the package's one slide style.

Each ``plot_*`` function turns the DataFrame its report returns into a
:class:`matplotlib.figure.Figure` for a slide (:mod:`imgcls.core.slides`):
large text, a title that states the finding computed from the data (the same
sentence as in the summary, see :mod:`imgcls.reports.findings`), the counts
(n) in the subtitle, and one colour per model version in every figure.
They draw the rules of :mod:`imgcls.reports.rules`: weak groups (too few
judged predictions, partial periods) faded and never joined by a line, lines
broken where a period has no data, simulated traffic flagged.

Figures are bare :class:`~matplotlib.figure.Figure` objects (not pyplot's),
so nothing here selects or changes the matplotlib backend: saving works
headless, and in a notebook a returned figure displays inline with whatever
backend is active. matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core.slides import (
    ACCENT,
    NEUTRAL,
    TITLE_SIZE,
    fade_weak,
    gapped_line,
    legend_outside,
    mark_simulated,
    new_page,
    new_slide,
    no_data,
    percent_axis,
    slide_style,
    version_colors,
)
from imgcls.reports.data import version_order
from imgcls.reports.failures import _failures_finding
from imgcls.reports.findings import (
    _accuracy_time_finding,
    _class_finding,
    _confidence_finding,
    _overall_by_period,
    _pct,
    _share_finding,
    _usage_finding,
    _usage_totals,
    _version_finding,
)
from imgcls.reports.periods import _freq_of, _periods_of
from imgcls.reports.rules import min_judged_of, reliable, with_gaps

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "plot_usage_over_time",
    "plot_accuracy_over_time",
    "plot_accuracy_by_version",
    "plot_accuracy_by_confidence",
    "plot_accuracy_by_class",
    "plot_evaluated_share",
    "plot_failed_requests",
    "plot_summary",
    "build_figures",
]


def _versions_of(table: pd.DataFrame) -> list[str]:
    """The versions of a table in its order (the categorical's, else natural order)."""
    col = table["model_version"] if "model_version" in table else pd.Series([], dtype="str")
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [str(c) for c in col.cat.categories]
    return version_order(col.dropna().unique())


def _period_ticks(ax: Any, labels: Sequence[str], max_labels: int = 14) -> None:
    """Period labels on the x axis: at most ``max_labels``, slanted when there are many."""
    n = len(labels)
    step = max(1, math.ceil(n / max_labels))
    ax.set_xticks(range(0, n, step))
    ax.set_xticklabels([labels[i] for i in range(0, n, step)], rotation=0 if n <= 8 else 30,
                       ha="center" if n <= 8 else "right")
    ax.set_xlim(-0.6, n - 0.4)


def plot_usage_over_time(table: pd.DataFrame) -> Figure:
    """Stacked requests per period by model version (partial periods hatched).

    Args:
        table: The result of :func:`~imgcls.reports.usage_over_time`.

    Returns:
        The slide.
    """
    from matplotlib import ticker

    freq = _freq_of(table)
    totals = _usage_totals(table)
    versions = _versions_of(table)
    colors = version_colors(versions)
    with slide_style():
        subtitle = (f"Requests served per {freq} (UTC) by model version; "
                    f"{int(totals['requests'].sum()):,} in total, {int(totals['failed'].sum()):,} failed")
        if not totals["complete"].all():
            subtitle += "; hatched = partial " + freq
        if table.attrs.get("purged"):
            subtitle += "; " + table.attrs["purged"]
        fig, ax = new_slide(_usage_finding(table), subtitle)
        mark_simulated(fig, table.attrs.get("simulated"))
        if totals["requests"].sum() == 0:
            no_data(ax, "No requests logged yet")
            return fig
        wide = (table.pivot_table(index="period", columns="model_version", values="requests",
                                  aggfunc="sum", observed=True)
                .reindex(totals["period"]).fillna(0))
        x = np.arange(len(totals))
        bottom = np.zeros(len(totals))
        partial = ~totals["complete"].to_numpy(bool)
        for version in versions:
            if version not in wide.columns:
                continue
            values = wide[version].to_numpy(float)
            bars = ax.bar(x, values, bottom=bottom, width=0.8, color=colors[version],
                          label=str(version), edgecolor="white", linewidth=0.5)
            for bar, is_partial in zip(bars, partial):
                if is_partial:
                    bar.set_hatch("//")
                    bar.set_alpha(0.55)
            bottom += values
        _period_ticks(ax, list(totals["label"]))
        ax.set_ylabel("Requests")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        legend_outside(ax, title="Model version")
    return fig


def plot_accuracy_over_time(table: pd.DataFrame) -> Figure:
    """Accuracy per period: one line per model version, all versions dashed.

    Lines break at periods without judged predictions and join strong points
    only; a period with fewer than the table's ``min_judged`` judged
    predictions, or a partial period, is a faded point (see
    :mod:`imgcls.reports.rules`).

    Args:
        table: The result of :func:`~imgcls.reports.accuracy_over_time`.

    Returns:
        The slide.
    """
    freq, min_n = _freq_of(table), min_judged_of(table)
    versions = _versions_of(table)
    colors = version_colors(versions)
    periods = _periods_of(table)
    labels = list(periods["label"]) if periods is not None else \
        list(dict.fromkeys(table.sort_values("period")["label"]))
    pos = {label: i for i, label in enumerate(labels)}
    with slide_style():
        unsure = int(table["unsure"].sum())
        subtitle = (f"Share of evaluated predictions judged correct (current verdicts), by {freq} served "
                    f"and model version; {int(table['judged'].sum()):,} judged, {unsure:,} 'unsure' excluded; "
                    f"faded: fewer than {min_n} judged or a partial {freq}")
        fig, ax = new_slide(_accuracy_time_finding(table), subtitle)
        mark_simulated(fig, table.attrs.get("simulated"))
        if table["judged"].sum() == 0:
            no_data(ax, "No evaluated predictions yet")
            return fig
        x = np.arange(len(labels))
        for version in versions:
            rows = table[(table["model_version"].astype(str) == version) & (table["judged"] > 0)]
            if not len(rows):
                continue
            at = [pos[label] for label in rows["label"]]
            strong = with_gaps(at, reliable(rows["judged"], complete=rows["complete"], min_n=min_n), len(labels))
            gapped_line(ax, x, with_gaps(at, rows["accuracy"], len(labels)), strong=strong == 1,
                        color=colors[version], label=str(version))
        overall = _overall_by_period(table)
        overall = overall[overall["judged"] > 0]
        at = [pos[label] for label in overall["label"]]
        strong = with_gaps(at, reliable(overall["judged"], complete=overall["complete"], min_n=min_n), len(labels))
        gapped_line(ax, x, with_gaps(at, overall["accuracy"], len(labels)), strong=strong == 1, color=NEUTRAL,
                    linestyle="--", marker="", linewidth=2, label="All versions")
        _period_ticks(ax, labels)
        percent_axis(ax)
        low = float(np.nanmin(table.loc[table["judged"] > 0, "accuracy"]))
        ax.set_ylim(max(0.0, low - 0.1), 1.02)
        ax.set_ylabel("Accuracy")
        legend_outside(ax, title="Model version")
    return fig


def plot_accuracy_by_version(table: pd.DataFrame) -> Figure:
    """Accuracy per model version with 95% intervals and offline test accuracy.

    Args:
        table: The result of :func:`~imgcls.reports.accuracy_by_version`.

    Returns:
        The slide.
    """
    versions = _versions_of(table)
    colors = version_colors(versions)
    with slide_style():
        subtitle = ("Live accuracy of evaluated predictions per model version (95% interval); "
                    "current verdicts, 'unsure' excluded")
        if table["test_accuracy"].notna().any():
            subtitle += "; ◆ offline test accuracy"
        min_n = min_judged_of(table)
        strong = reliable(table["judged"], min_n=min_n)
        if not strong.all():
            subtitle += f"; faded: fewer than {min_n} judged"
        fig, ax = new_slide(_version_finding(table), subtitle)
        mark_simulated(fig, table.attrs.get("simulated"))
        if table["judged"].sum() == 0:
            no_data(ax, "No evaluated predictions yet")
            return fig
        names = [str(v) for v in table["model_version"]]
        x = np.arange(len(names))
        acc = table["accuracy"].to_numpy(float)
        heights = np.nan_to_num(acc)
        err = np.vstack([np.nan_to_num(acc - table["ci_low"].to_numpy(float)),
                         np.nan_to_num(table["ci_high"].to_numpy(float) - acc)])
        ax.bar(x, heights, width=0.6, color=fade_weak([colors[n] for n in names], strong), yerr=err,
               error_kw={"ecolor": "#333333", "capsize": 8, "linewidth": 1.5})
        for xi, a, n, ok in zip(x, acc, table["judged"], strong):
            text = "no evaluations" if n == 0 else f"{_pct(a)}\nn={n:,}" + ("" if ok else "\ntoo few")
            inside = ok and a >= 0.15
            ax.text(xi, 0.03 if inside or n == 0 else a + 0.01, text, ha="center", va="bottom",
                    fontsize=15, color="white" if inside else "#333333", fontweight="bold")
        test = table["test_accuracy"].to_numpy(float)
        if np.isfinite(test).any():
            ax.scatter(x, test, marker="D", s=120, color="black", zorder=3, label="Offline test accuracy")
            legend_outside(ax)
        ax.set_xticks(x)
        ax.set_xticklabels(names)
        ax.set_xlabel("Model version")
        ax.set_ylabel("Accuracy")
        ax.set_ylim(0, 1.08)
        percent_axis(ax)
    return fig


def plot_accuracy_by_confidence(table: pd.DataFrame) -> Figure:
    """Accuracy per confidence bucket, with each bucket's mean confidence.

    Args:
        table: The result of :func:`~imgcls.reports.accuracy_by_confidence`.

    Returns:
        The slide.
    """
    with slide_style():
        subtitle = ("Bars: share judged correct per top-1 confidence bucket; dots: mean confidence "
                    "(a calibrated model's bar reaches its dot)")
        min_n = min_judged_of(table)
        strong = reliable(table["judged"], min_n=min_n)
        if not strong.all():
            subtitle += f"; faded: fewer than {min_n} judged"
        fig, ax = new_slide(_confidence_finding(table), subtitle)
        mark_simulated(fig, table.attrs.get("simulated"))
        if table["judged"].sum() == 0:
            no_data(ax, "No evaluated predictions yet")
            return fig
        x = np.arange(len(table))
        acc = table["accuracy"].to_numpy(float)
        ax.bar(x, np.nan_to_num(acc), width=0.7, color=fade_weak(ACCENT, strong), label="Accuracy")
        ax.scatter(x, table["mean_confidence"], s=110, color="black", zorder=3, label="Mean confidence")
        for xi, a, n in zip(x, acc, table["judged"]):
            ax.text(xi, (0 if np.isnan(a) else a) + 0.02, f"n={n:,}", ha="center", va="bottom",
                    fontsize=13, color="#333333")
        ax.set_xticks(x)
        ax.set_xticklabels(list(table["bucket"]), rotation=0 if len(x) <= 8 else 30)
        ax.set_xlabel("Top-1 confidence")
        ax.set_ylabel("Accuracy")
        ax.set_ylim(0, 1.12)
        percent_axis(ax)
        legend_outside(ax)
    return fig


def plot_accuracy_by_class(table: pd.DataFrame, *, top: int = 20, min_judged: int | None = None) -> Figure:
    """The least accurate classes as horizontal bars, overall accuracy dashed.

    Args:
        table: The result of :func:`~imgcls.reports.accuracy_by_class`.
        top: Show at most this many classes (the least accurate).
        min_judged: Leave out classes with fewer judged predictions (unless
            none has that many: then all are shown, faded, and the title
            claims nothing). Default: the table's (see :mod:`imgcls.reports.rules`).

    Returns:
        The slide.
    """
    by = table.attrs.get("by", "predicted")
    kind = "predicted" if by == "predicted" else "true"
    min_judged = min_judged or min_judged_of(table)
    with slide_style():
        judged = table[table["judged"] > 0]
        pool = judged[judged["judged"] >= min_judged]
        pool = pool if len(pool) else judged
        shown = pool.sort_values(["accuracy", "judged"], ascending=[True, False], kind="stable").head(top)
        subtitle = f"Accuracy by {kind} class"
        if len(pool) > len(shown):
            subtitle += f", the {len(shown)} least accurate of {len(pool)}"
        if len(judged) > len(pool):
            subtitle += f"; classes with < {min_judged} judged left out"
        unknown = table.attrs.get("unknown_true_class", 0)
        if by == "true" and unknown:
            subtitle += f"; {unknown:,} evaluations without a known true class left out"
        if len(shown) and not len(judged[judged["judged"] >= min_judged]):
            subtitle += f"; faded: fewer than {min_judged} judged"
        fig, ax = new_slide(_class_finding(table, min_judged=min_judged), subtitle)
        mark_simulated(fig, table.attrs.get("simulated"))
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", color="#dddddd", linewidth=1)
        if not len(shown):
            no_data(ax, "No evaluated predictions yet")
            return fig
        shown = shown.iloc[::-1]  # worst at the top
        y = np.arange(len(shown))
        ax.barh(y, shown["accuracy"], color=fade_weak(ACCENT, reliable(shown["judged"], min_n=min_judged)),
                height=0.7)
        for yi, a, n in zip(y, shown["accuracy"], shown["judged"]):
            inside = a > 0.75
            ax.text(a - 0.01 if inside else a + 0.01, yi, f"{_pct(a)} (n={n:,})", va="center",
                    ha="right" if inside else "left", fontsize=13,
                    color="white" if inside else "#222222")
        overall = judged["correct"].sum() / judged["judged"].sum()
        ax.axvline(overall, color=NEUTRAL, linestyle="--", linewidth=2,
                   label=f"All classes: {_pct(overall)}")
        ax.set_yticks(y)
        ax.set_yticklabels(list(shown["class"]), fontsize=15 if len(shown) <= 15 else 12)
        ax.set_xlim(0, 1.0)
        percent_axis(ax, "x")
        ax.set_xlabel("Accuracy")
        legend_outside(ax)
    return fig


def plot_evaluated_share(table: pd.DataFrame) -> Figure:
    """Share of served predictions evaluated per period, overall dashed.

    Args:
        table: The result of :func:`~imgcls.reports.evaluated_share`.

    Returns:
        The slide.
    """
    freq = _freq_of(table)
    with slide_style():
        subtitle = f"Evaluated predictions as a share of those served, by {freq} served"
        complete = table["complete"].to_numpy(bool) if "complete" in table else np.ones(len(table), bool)
        if not complete.all():
            subtitle += f"; faded: partial {freq}"
        fig, ax = new_slide(_share_finding(table), subtitle)
        mark_simulated(fig, table.attrs.get("simulated"))
        served = table["served"].sum()
        if served == 0:
            no_data(ax, "No predictions served yet")
            return fig
        x = np.arange(len(table))
        ax.bar(x, table["share"].fillna(0), width=0.8, color=fade_weak(ACCENT, complete))
        overall = table["evaluated"].sum() / served
        ax.axhline(overall, color=NEUTRAL, linestyle="--", linewidth=2, label=f"Overall: {_pct(overall)}")
        _period_ticks(ax, list(table["label"]))
        percent_axis(ax, decimals=1)
        ax.set_ylabel("Share evaluated")
        top = max(float(np.nan_to_num(table["share"].max(skipna=True))), overall)
        ax.set_ylim(0, min(1.05, top * 1.25) if top > 0 else 1.0)
        legend_outside(ax)
    return fig


def plot_summary(table: pd.DataFrame, *, title: str = "Serving report") -> Figure:
    """A one-page summary slide: headline numbers, then the findings.

    Args:
        table: The result of :func:`~imgcls.reports.summary_table`.
        title: Heading of the page.

    Returns:
        The slide.
    """
    head = table[table["section"] == "headline"]
    finds = table[table["section"] == "finding"]
    period = head.loc[head["metric"] == "Period", "value"]
    with slide_style():
        fig, ax = new_page()
        fig.suptitle(f"{title}: {period.iloc[0]}" if len(period) else title, x=0.04, y=0.95,
                     ha="left", fontsize=TITLE_SIZE, fontweight="bold")
        mark_simulated(fig, table.attrs.get("simulated"))
        y = 0.84
        for _, row in head[head["metric"] != "Period"].iterrows():
            ax.text(0.04, y, row["metric"], fontsize=16, color="#555555", va="top")
            ax.text(0.30, y, textwrap.shorten(row["value"], 70), fontsize=18, fontweight="bold",
                    va="top")
            y -= 0.055
        y -= 0.03
        ax.text(0.04, y, "Findings", fontsize=18, fontweight="bold", va="top")
        y -= 0.06
        for _, row in finds.iterrows():
            ax.text(0.05, y, "• " + textwrap.shorten(row["value"], 110), fontsize=15, va="top")
            y -= 0.05
    return fig


def plot_failed_requests(table: pd.DataFrame, *, top: int = 12) -> Figure:
    """Failed requests by kind (and endpoint, status) as horizontal bars, most frequent on top.

    Args:
        table: The result of :func:`~imgcls.reports.failed_requests`.
        top: Show at most this many kinds.

    Returns:
        The slide.
    """
    total, failed = int(table.attrs.get("requests", 0)), int(table.attrs.get("failed", 0))
    with slide_style():
        subtitle = f"{failed:,} of {total:,} requests failed; by kind · endpoint · HTTP status"
        shown = table.head(top)
        if len(table) > len(shown):
            subtitle += f" (top {len(shown)} of {len(table)})"
        fig, ax = new_slide(_failures_finding(table), subtitle)
        mark_simulated(fig, table.attrs.get("simulated"))
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", color="#dddddd", linewidth=1)
        if not failed:
            no_data(ax, "No failed requests" if total else "No requests logged yet")
            return fig
        shown = shown.iloc[::-1]  # most frequent at the top
        y = np.arange(len(shown))
        ax.barh(y, shown["requests"], color=ACCENT, height=0.7)
        for yi, n, share in zip(y, shown["requests"], shown["share_of_requests"]):
            ax.text(n, yi, f"  {n:,} ({_pct(share)} of requests)", va="center", ha="left", fontsize=13)
        labels = [f"{k} · /{e}" + ("" if pd.isna(c) else f" · {int(c)}")
                  for k, e, c in zip(shown["kind"], shown["endpoint"], shown["http_status"])]
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=14 if len(shown) <= 8 else 12)
        ax.set_xlim(0, float(shown["requests"].max()) * 1.35)
        ax.set_xlabel("Failed requests")
    return fig


#: Table name -> figure function (the order of the deck).
_FIGURES = {
    "usage_over_time": plot_usage_over_time,
    "accuracy_over_time": plot_accuracy_over_time,
    "accuracy_by_version": plot_accuracy_by_version,
    "accuracy_by_confidence": plot_accuracy_by_confidence,
    "accuracy_by_predicted_class": plot_accuracy_by_class,
    "accuracy_by_true_class": plot_accuracy_by_class,
    "evaluated_share": plot_evaluated_share,
    "failed_requests": plot_failed_requests,
    "summary": plot_summary,
}



def build_figures(tables: Mapping[str, pd.DataFrame]) -> dict[str, Figure]:
    """A figure for every table of :func:`~imgcls.reports.build_tables` (same names).

    Args:
        tables: {name: DataFrame} as :func:`~imgcls.reports.build_tables` returns
            (tables it lacks get no figure).

    Returns:
        {name: Figure}, in the order of the deck.
    """
    return {name: fn(tables[name]) for name, fn in _FIGURES.items() if name in tables}

