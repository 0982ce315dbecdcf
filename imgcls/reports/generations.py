"""The lineage report of a workspace: the family tree, the generations and the training-cost table.

Read only from the run folders' plain JSON and the promotions log (through
:func:`imgcls.runs.run_family`), so it rebuilds on a laptop without TensorFlow
and without a serving log:

* ``tree`` -- every run with its parent, how it was trained (head swap or
  from scratch), throw-away or not, the classes and images it added, and
  whether it is on the production line (root to the production run);
* ``generations`` -- per run: epochs, training hours (wall; CPU where the
  training recorded it), test and benchmark accuracy with their n, and its
  promotion (promoted when; refused when and why);
* ``cost`` -- per generation of the production line: training hours and
  their running total, the cost at ``price_per_hour``, and the hours a head
  swap saved against training the same classes from scratch -- measured
  ONLY from this workspace's own from-scratch runs on the same classes. An
  estimate from the lineage experiment's ratio (``benchmarks/results/lineage.json``)
  is added only when asked for, in columns ending ``_estimate``, and is never
  drawn on a slide.

:func:`lineage_report` makes all three; :mod:`imgcls.reports.generation_figures`
turns them into slides.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_number
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.reports.counts import _wilson

__all__ = [
    "TREE_COLUMNS",
    "GENERATION_COLUMNS",
    "COST_COLUMNS",
    "ESTIMATE_COLUMNS",
    "lineage_report",
    "generation_table",
    "cost_table",
    "experiment_ratio",
    "generation_findings",
    "MIN_BENCHMARK_N",
    "format_hours",
]

#: Fewest benchmark images an accuracy must rest on to be compared across
#: generations; one measured on fewer is drawn faded (MUTED) and claims nothing.
MIN_BENCHMARK_N = 30

#: Columns of the report's ``tree``.
TREE_COLUMNS = ["run_id", "parent", "root", "generation", "method", "throwaway", "on_line", "created",
                "n_classes", "classes_added", "classes_lost", "n_images", "images_added", "promotion"]
#: Columns of the report's ``generations`` (one row per run).
GENERATION_COLUMNS = ["generation", "run_id", "method", "throwaway", "on_line", "epochs_trained", "best_epoch",
                      "wall_hours", "cpu_hours", "best_val_accuracy", "test_accuracy", "test_n",
                      "benchmark_accuracy", "benchmark_n", "promotion", "promoted_at", "refused_at",
                      "refusal_reason"]
#: Columns of the report's ``cost`` table. ``kind`` is "generation" (one row per
#: run of the production line), "other runs" (every run off the line: throw-away,
#: refused and comparison runs) or "total".
COST_COLUMNS = ["kind", "generation", "run_id", "method", "runs", "hours", "cpu_hours", "cum_hours",
                "cost", "cum_cost", "scratch_run_id", "scratch_hours", "hours_saved", "cum_hours_saved",
                "cost_saved"]
#: Columns added to the cost table when an estimate is asked for (never on a slide).
ESTIMATE_COLUMNS = ["scratch_hours_estimate", "hours_saved_estimate", "cum_hours_saved_estimate"]


def _hours(seconds: pd.Series) -> pd.Series:
    return pd.to_numeric(seconds, errors="coerce") / 3600.0


def _tree(family: pd.DataFrame, line: list[str]) -> pd.DataFrame:
    tree = family.assign(on_line=family["run_id"].isin(line))
    tree = tree[TREE_COLUMNS].reset_index(drop=True)
    from imgcls.runs import family_tree_text  # lazy: `import imgcls.reports` stays light
    tree.attrs["text"] = family_tree_text(family)
    tree.attrs["line"] = list(line)
    return tree


def generation_table(family: pd.DataFrame, line: list[str] | None = None) -> pd.DataFrame:
    """Per run: generation, epochs, training hours, accuracy with n, promotion.

    Args:
        family: The table from :func:`imgcls.runs.run_family`.
        line: Run ids of the production line (default
            :func:`imgcls.runs.production_line` of ``family``).

    Returns:
        One row per run, columns :data:`GENERATION_COLUMNS`, the production
        line first (root to tip), then the other runs by generation and age.
    """
    from imgcls.runs import production_line  # lazy: `import imgcls.reports` stays light
    line = production_line(family) if line is None else list(line)
    df = family.assign(
        on_line=family["run_id"].isin(line),
        wall_hours=_hours(family["wall_time_s"]),
        cpu_hours=_hours(family["cpu_time_s"]),
        _order=family["run_id"].map({r: i for i, r in enumerate(line)}),
    )
    df = df.sort_values(["_order", "generation", "created", "run_id"], kind="stable", na_position="last")
    out = df[GENERATION_COLUMNS].reset_index(drop=True)
    out.attrs["line"] = list(line)
    return out


def _same_classes(family: pd.DataFrame, classes: str) -> pd.DataFrame:
    want = set(str(classes).split(","))
    return family[family["classes"].map(lambda c: set(str(c).split(",")) == want)]


def _scratch_match(family: pd.DataFrame, row: pd.Series, line: list[str]) -> pd.Series | None:
    """This workspace's own from-scratch run on the same classes as ``row`` (None when there is none).

    Candidates: finished runs trained from scratch, not throw-away, not on
    the production line (the line's root trained on an older library), with
    a recorded wall time and exactly ``row``'s classes. Of several, the one
    whose library size is closest to ``row``'s, then the newest.
    """
    pool = family[(family["method"] == "scratch") & ~family["throwaway"] & ~family["run_id"].isin(line)
                  & pd.to_numeric(family["wall_time_s"], errors="coerce").notna()]
    pool = _same_classes(pool, row["classes"])
    if not len(pool):
        return None
    gap = (pd.to_numeric(pool["n_images"], errors="coerce") - _number(row["n_images"])).abs().fillna(np.inf)
    pool = pool.assign(_gap=gap).sort_values(["_gap", "created"], ascending=[True, False], kind="stable")
    return pool.iloc[0]


def _number(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def cost_table(
    family: pd.DataFrame,
    *,
    price_per_hour: float = 0.0,
    estimate_ratio: float | None = None,
    line: list[str] | None = None,
) -> pd.DataFrame:
    """Training hours and cost per generation of the production line, and the hours head swaps saved.

    * ``hours`` is the run's recorded training wall time (what a cloud
      machine is billed for); ``cpu_hours`` only where the training recorded
      CPU time; ``cum_hours`` the running total along the line.
    * ``cost`` / ``cum_cost`` / ``cost_saved`` = hours x ``price_per_hour``
      (NaN with the default price 0: hours only).
    * ``scratch_run_id`` / ``scratch_hours``: for a head-swap generation, this
      workspace's own from-scratch run on exactly the same classes (not
      throw-away, not on the line; the closest library size, then the
      newest); ``hours_saved`` = its hours minus the generation's (negative
      when the head swap took longer); NaN where no such run exists.
      ``cum_hours_saved`` adds up the measured savings only.
    * With ``estimate_ratio`` (scratch hours per head-swap hour, e.g. from
      :func:`experiment_ratio`), ``scratch_hours_estimate``,
      ``hours_saved_estimate`` and ``cum_hours_saved_estimate`` are added for
      every head-swap generation: an ESTIMATE from another data set, labelled
      so in ``attrs["estimate"]``, never measured here and never on a slide.
    * A row ``"other runs"`` adds up the runs off the line (throw-away,
      refused and comparison runs: compute spent too) and ``"total"`` all runs.

    Args:
        family: The table from :func:`imgcls.runs.run_family`.
        price_per_hour: Price of one training hour (any currency; 0 = hours only).
        estimate_ratio: Scratch hours per head-swap hour for the estimate
            columns (None: no estimate).
        line: Run ids of the production line (default
            :func:`imgcls.runs.production_line` of ``family``).

    Returns:
        Columns :data:`COST_COLUMNS` (+ :data:`ESTIMATE_COLUMNS` with an
        estimate); ``attrs``: ``price_per_hour``, ``line``,
        ``saved_measured`` (generations with a measured saving),
        ``saved_missing`` (head-swap generations without one) and
        ``estimate`` (None, or its ratio and label).
    """
    price = check_number(price_per_hour, "price_per_hour", 0.0)
    if estimate_ratio is not None:
        estimate_ratio = check_number(estimate_ratio, "estimate_ratio", 0.0, low_open=True)
    from imgcls.runs import production_line  # lazy: `import imgcls.reports` stays light
    line = production_line(family) if line is None else list(line)
    by_id = family.set_index("run_id", drop=False)
    rows: list[dict[str, Any]] = []
    cum = cum_saved = 0.0
    measured, missing = [], []
    for run_id in line:
        run = by_id.loc[run_id]
        hours = _number(run["wall_time_s"]) / 3600.0
        cum = cum + hours if not math.isnan(cum) else math.nan
        row: dict[str, Any] = {"kind": "generation", "generation": run["generation"], "run_id": run_id,
                               "method": run["method"], "runs": 1, "hours": hours,
                               "cpu_hours": _number(run["cpu_time_s"]) / 3600.0, "cum_hours": cum,
                               "scratch_run_id": None, "scratch_hours": math.nan, "hours_saved": math.nan}
        if run["method"] == "head_swap":
            match = _scratch_match(family, run, line)
            if match is not None and not math.isnan(hours):
                row["scratch_run_id"] = match["run_id"]
                row["scratch_hours"] = _number(match["wall_time_s"]) / 3600.0
                row["hours_saved"] = row["scratch_hours"] - hours
                cum_saved += row["hours_saved"]
                measured.append(int(run["generation"]))
            else:
                missing.append(int(run["generation"]))
            if estimate_ratio is not None:
                row["scratch_hours_estimate"] = hours * estimate_ratio
                row["hours_saved_estimate"] = hours * estimate_ratio - hours
        row["cum_hours_saved"] = cum_saved if measured else math.nan
        rows.append(row)
    off = family[~family["run_id"].isin(line)]
    if len(off):
        rows.append({"kind": "other runs", "runs": len(off),
                     "hours": float(_hours(off["wall_time_s"]).sum(min_count=1)),
                     "cpu_hours": float(_hours(off["cpu_time_s"]).sum(min_count=1))})
    if len(family):
        rows.append({"kind": "total", "runs": len(family),
                     "hours": float(_hours(family["wall_time_s"]).sum(min_count=1)),
                     "cpu_hours": float(_hours(family["cpu_time_s"]).sum(min_count=1)),
                     "hours_saved": cum_saved if measured else math.nan,
                     "cum_hours_saved": cum_saved if measured else math.nan})
    columns = COST_COLUMNS + (ESTIMATE_COLUMNS if estimate_ratio is not None else [])
    df = pd.DataFrame(rows, columns=columns)
    if estimate_ratio is not None:
        gen = df["kind"] == "generation"
        df.loc[gen, "cum_hours_saved_estimate"] = df.loc[gen, "hours_saved_estimate"].fillna(0).cumsum()
        df.loc[df["kind"] == "total", "hours_saved_estimate"] = df.loc[gen, "hours_saved_estimate"].sum(min_count=1)
    for col in ("hours", "cpu_hours", "cum_hours", "scratch_hours", "hours_saved", "cum_hours_saved",
                *(ESTIMATE_COLUMNS if estimate_ratio is not None else [])):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["generation"] = pd.array(df["generation"], dtype="Int64")
    df["runs"] = pd.array(df["runs"], dtype="Int64")
    if price > 0:
        df["cost"] = df["hours"] * price
        df["cum_cost"] = df["cum_hours"] * price
        df["cost_saved"] = df["hours_saved"] * price
    else:
        df[["cost", "cum_cost", "cost_saved"]] = math.nan
    df.attrs.update(price_per_hour=price, line=list(line), saved_measured=measured, saved_missing=missing,
                    estimate=None if estimate_ratio is None else {
                        "ratio": estimate_ratio,
                        "label": "ESTIMATE: scratch hours = head-swap hours x the lineage experiment's ratio "
                                 f"({estimate_ratio:.2f}); not measured in this workspace"})
    return df


def experiment_ratio(path: str | os.PathLike) -> float:
    """Scratch hours per head-swap hour in the lineage experiment's results.

    From the ``runs`` of ``benchmarks/results/lineage.json`` (written by
    ``benchmarks/bench_lineage.py``): the from-scratch arm's total wall time
    over the head-swap arm's, over the generations after the first where
    both arms ran (generation 1 is one shared run).

    Args:
        path: The results file.

    Raises:
        ValueError: The file is missing or holds no generation with both arms.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise ValueError(f"No lineage results at {str(p)!r}. Pass the path of benchmarks/results/lineage.json "
                         "(written by `python benchmarks/bench_lineage.py`), or no estimate.")
    try:
        runs = pd.DataFrame(json.loads(p.read_text(encoding="utf-8")).get("runs") or [])
    except (ValueError, AttributeError):
        raise ValueError(f"{str(p)!r} is not the JSON bench_lineage.py writes (no list of runs).") from None
    need = {"arm", "generation", "seed", "wall_time_s"}
    if not need <= set(runs.columns):
        raise ValueError(f"{str(p)!r} has no runs with {sorted(need)}; rerun benchmarks/bench_lineage.py.")
    runs = runs[pd.to_numeric(runs["generation"], errors="coerce") > 1]
    wall = pd.to_numeric(runs["wall_time_s"], errors="coerce")
    both = runs.assign(wall=wall).dropna(subset=["wall"]).pivot_table(
        index=["generation", "seed"], columns="arm", values="wall", aggfunc="sum")
    if not {"head_swap", "scratch"} <= set(both.columns):
        raise ValueError(f"{str(p)!r} has no generation after the first with both arms.")
    both = both[["head_swap", "scratch"]].dropna()
    if not len(both) or both["head_swap"].sum() <= 0:
        raise ValueError(f"{str(p)!r} has no generation after the first with both arms.")
    return float(both["scratch"].sum() / both["head_swap"].sum())


def lineage_report(
    workspace: Workspace | str | os.PathLike,
    *,
    price_per_hour: float = 0.0,
    estimate_from: str | os.PathLike | float | None = None,
) -> dict[str, pd.DataFrame]:
    """The lineage report of a workspace: family tree, generations, training cost (no TensorFlow).

    Args:
        workspace: The workspace (or its folder).
        price_per_hour: Price of one training hour for the cost columns
            (0, the default, leaves them empty: hours only).
        estimate_from: Add estimated savings to the cost table (never to a
            slide): the path of the lineage experiment's results
            (``benchmarks/results/lineage.json``, see :func:`experiment_ratio`)
            or a ratio of scratch hours per head-swap hour. None: measured
            savings only.

    Returns:
        ``{"tree": ..., "generations": ..., "cost": ...}``, DataFrames with
        :data:`TREE_COLUMNS` (``attrs["text"]``: the tree as text),
        :data:`GENERATION_COLUMNS` and :data:`COST_COLUMNS` (see
        :func:`cost_table`); each has ``attrs["line"]``, the production line's
        run ids root first. A workspace without runs gives empty tables.
    """
    ws = as_workspace(workspace, must_exist=False)
    ratio = None
    if isinstance(estimate_from, (int, float)) and not isinstance(estimate_from, bool):
        ratio = float(estimate_from)
    elif estimate_from is not None:
        ratio = experiment_ratio(estimate_from)
    from imgcls.runs import production_line, run_family  # lazy: `import imgcls.reports` stays light
    family = run_family(ws)
    line = production_line(family)
    return {
        "tree": _tree(family, line),
        "generations": generation_table(family, line),
        "cost": cost_table(family, price_per_hour=price_per_hour, estimate_ratio=ratio, line=line),
    }


def format_hours(hours: float) -> str:
    """Hours for a sentence: minutes under an hour ("45 min"), else hours ("3.2 h"); "n/a" when unknown."""
    hours = _number(hours)
    if math.isnan(hours):
        return "n/a"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:,.1f} h"


def _accuracy_interval(acc: float, n: float) -> tuple[float, float]:
    low, high = _wilson(np.array([round(acc * n)]), np.array([n]))
    return float(low[0]), float(high[0])


def _accuracy_finding(gens: pd.DataFrame) -> tuple[str, bool]:
    """(finding, whether it compares generations) for the accuracy-by-generation slide."""
    line = gens[gens["on_line"]]
    if len(line) < 2:
        which = "one generation" if len(line) == 1 else "no run"
        return f"Too early to compare generations: the production line has {which} so far", False
    acc = pd.to_numeric(line["benchmark_accuracy"], errors="coerce")
    n = pd.to_numeric(line["benchmark_n"], errors="coerce")
    solid = line[acc.notna() & (n >= MIN_BENCHMARK_N)]
    if len(solid) < 2:
        return (f"Too early to compare generations: fewer than two were measured on {MIN_BENCHMARK_N} or "
                "more benchmark images"), False
    first, last = solid.iloc[0], solid.iloc[-1]
    a0, n0, a1, n1 = (float(first["benchmark_accuracy"]), float(first["benchmark_n"]),
                      float(last["benchmark_accuracy"]), float(last["benchmark_n"]))
    lo0, hi0 = _accuracy_interval(a0, n0)
    lo1, hi1 = _accuracy_interval(a1, n1)
    g0, g1 = int(first["generation"]), int(last["generation"])
    n_both = f" (n={int(n0):,} and {int(n1):,} benchmark images)"  # every headline states n (reports.rules)
    if lo1 > hi0:
        return f"Benchmark accuracy rose from {a0:.1%} in generation {g0} to {a1:.1%} in generation {g1}{n_both}", True
    if hi1 < lo0:
        return f"Benchmark accuracy fell from {a0:.1%} in generation {g0} to {a1:.1%} in generation {g1}{n_both}", True
    return (f"Benchmark accuracy went from {a0:.1%} (generation {g0}) to {a1:.1%} (generation {g1}): "
            f"no change beyond chance on {int(n0)} and {int(n1)} images"), True


def _cost_finding(cost: pd.DataFrame) -> str:
    gens = cost[cost["kind"] == "generation"]
    price = cost.attrs.get("price_per_hour", 0.0) or 0.0
    if len(gens) < 2:
        return "Too early to compare the cost of generations: the production line has one generation so far"
    measured = cost.attrs.get("saved_measured") or []
    if measured:
        saved = float(gens["hours_saved"].sum(min_count=1))
        money = f" ({abs(saved) * price:,.2f} at {price:,.2f}/h)" if price > 0 else ""
        if saved >= 0:
            return (f"Head swaps saved {format_hours(saved)} of training{money} against from-scratch runs "
                    "on the same classes")
        return (f"Head swaps took {format_hours(-saved)} more training{money} than from-scratch runs "
                "on the same classes")
    total = float(gens["hours"].sum(min_count=1))
    first, last = gens.iloc[0], gens.iloc[-1]
    money = f", {total * price:,.2f} at {price:,.2f} per hour" if price > 0 else ""
    return (f"{format_hours(total)} of training over {len(gens)} generations{money}; generation "
            f"{int(last['generation'])} took {format_hours(last['hours'])}, generation {int(first['generation'])} "
            f"({'from scratch' if first['method'] == 'scratch' else 'head swap'}) {format_hours(first['hours'])}")


def generation_findings(report: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The sentences the generation slides and the deck summary state.

    Args:
        report: The dict from :func:`lineage_report`.

    Returns:
        ``{"accuracy": str, "cost": str, "slides": bool}``; ``slides`` is False
        when the production line has fewer than two generations (then the
        deck gets no generation slides, only the "too early" note).
        Estimates never enter a finding.
    """
    if not isinstance(report, dict) or not {"generations", "cost"} <= set(report):
        raise ValueError("`report` must be the dict from imgcls.reports.lineage_report(workspace).")
    accuracy, _ = _accuracy_finding(report["generations"])
    gens = report["cost"][report["cost"]["kind"] == "generation"]
    return {"accuracy": accuracy, "cost": _cost_finding(report["cost"]), "slides": len(gens) >= 2}
