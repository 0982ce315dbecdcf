"""The per-generation table of a model lineage: one row per trained run, its cost and its gains.

Built from what a run folder records (``config.json``, ``metrics.json``) plus
what only the caller measured (CPU time, which arm of an experiment a run
belongs to), so the same columns and arithmetic serve the lineage experiment
(:func:`imgcls.experiments.lineage_experiment`) and a lineage report of any
workspace:

* :func:`run_record` turns one run into a row;
* :func:`lineage_table` orders rows into lineages and adds the running totals
  (images added, cumulative epochs, wall time and CPU time);
* :func:`summarize_lineage` gives mean and spread over seeds per generation and arm;
* :func:`lineage_verdict` tests the write-up's claim on the table;
* :func:`read_lineage_benchmark` reads ``benchmarks/results/lineage.json`` back
  into the same table.

This module imports no TensorFlow (pandas and the run metadata only).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int, check_number
from imgcls.runs import Run

__all__ = [
    "LINEAGE_COLUMNS",
    "WRITEUP_LINEAGE",
    "run_record",
    "lineage_table",
    "summarize_lineage",
    "lineage_verdict",
    "read_lineage_benchmark",
]

#: Columns of :func:`lineage_table`, in order. ``arm`` names the lineage a row
#: belongs to ("head_swap" or "scratch" in the experiment); ``method`` how the
#: run itself was trained ("scratch" or "head_swap"); ``shared`` marks a run
#: that belongs to both arms (generation 1, trained once per seed).
LINEAGE_COLUMNS = [
    "generation", "arm", "seed", "run_id", "parent", "method", "shared", "model",
    "n_classes", "classes_added", "n_images", "images_added",
    "n_train", "n_val", "n_test", "n_benchmark",
    "epochs_trained", "best_epoch", "stopped_early", "epochs_to_scratch_best",
    "best_val_accuracy", "test_accuracy", "benchmark_accuracy",
    "wall_time_s", "cpu_time_s", "cum_epochs", "cum_wall_time_s", "cum_cpu_time_s",
]

#: The write-up's numbers, drawn as reference lines: from scratch a model
#: plateaus after about 120 epochs at about 93%; after dozens of head swaps a
#: generation plateaus after about 20 epochs at about 99%.
WRITEUP_LINEAGE = {"scratch_epochs": 120, "scratch_accuracy": 0.93,
                   "head_swap_epochs": 20, "head_swap_accuracy": 0.99}

_NUMERIC = ["epochs_trained", "best_epoch", "epochs_to_scratch_best", "best_val_accuracy", "test_accuracy",
            "benchmark_accuracy", "wall_time_s", "cpu_time_s", "n_images", "images_added", "n_classes"]


def run_record(
    run: Run,
    *,
    arm: str | None = None,
    seed: int | None = None,
    cpu_time_s: float | None = None,
    classes_added: Iterable[str] | None = None,
    shared: bool = False,
    generation: int | None = None,
) -> dict[str, Any]:
    """One row of the lineage table from a run's own records.

    Args:
        run: A loaded :class:`~imgcls.runs.Run`.
        arm: The lineage the row belongs to (default: how the run was trained).
        seed: The training seed (default: the run's config ``seed``).
        cpu_time_s: CPU seconds the training call took, when measured (runs
            record wall time only).
        classes_added: Classes new in this generation (default: the run's
            ``metrics["lineage"]["classes_added"]`` for a head-swap run, else none).
        shared: The run belongs to more than one arm (a common root).
        generation: The generation of the row (default: the run's own, which
            is 1 for every run trained from scratch; an experiment that trains
            a from-scratch run beside each generation passes that generation).

    Returns:
        A dict with the keys of :data:`LINEAGE_COLUMNS` except the running
        totals (``images_added`` and ``cum_*``, added by :func:`lineage_table`)
        plus ``run_path``.
    """
    if not isinstance(run, Run):
        raise ValueError(f"`run` must be an imgcls.runs.Run (load it with load_run). Received: {type(run).__name__}")
    m = run.metrics
    t, te, be, data = (m.get(k) or {} for k in ("training", "test", "benchmark", "data"))
    method = "head_swap" if run.parent else "scratch"
    if classes_added is None:
        classes_added = (m.get("lineage") or {}).get("classes_added") or []
    library = run.config.get("library") or {}
    return {
        "generation": int(run.generation if generation is None else generation), "arm": arm or method,
        "seed": int(run.config.get("seed", 0) if seed is None else seed),
        "run_id": run.run_id, "parent": run.parent, "method": method, "shared": bool(shared),
        "model": run.model_name, "n_classes": run.num_classes,
        "classes_added": ",".join(str(c) for c in classes_added),
        "n_images": library.get("n_images"),
        "n_train": data.get("n_train"), "n_val": data.get("n_val"),
        "n_test": data.get("n_test"), "n_benchmark": data.get("n_benchmark"),
        "epochs_trained": t.get("epochs_trained"), "best_epoch": t.get("best_epoch"),
        "stopped_early": t.get("stopped_early"), "epochs_to_scratch_best": None,
        "best_val_accuracy": t.get("best_val_accuracy"),
        "test_accuracy": te.get("accuracy"), "benchmark_accuracy": be.get("accuracy"),
        "wall_time_s": t.get("wall_time_s"), "cpu_time_s": cpu_time_s,
        "run_path": str(run.path),
    }


def lineage_table(records: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Order rows into lineages and add the running totals.

    Rows are grouped by lineage (``arm`` and ``seed``) and ordered by
    ``generation``. Within a lineage:

    * ``images_added`` = ``n_images`` minus the previous generation's (the
      first generation: all its images), unless given;
    * ``cum_epochs``, ``cum_wall_time_s``, ``cum_cpu_time_s`` = running sums of
      ``epochs_trained``, ``wall_time_s`` and ``cpu_time_s`` (NaN from the first
      generation whose value is missing on).

    Args:
        records: Rows from :func:`run_record` (or a DataFrame of them); they
            need at least ``generation``, ``arm``, ``seed``, ``epochs_trained``
            and ``wall_time_s``.

    Returns:
        A DataFrame with :data:`LINEAGE_COLUMNS` first (missing ones filled
        with NaN), then any other columns (e.g. ``run_path``).
    """
    df = records.copy() if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    need = ["generation", "arm", "seed", "epochs_trained", "wall_time_s"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"`records` must have the columns {need} (rows from run_record()). Missing: {missing}")
    for col in LINEAGE_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    if df.duplicated(["arm", "seed", "generation"]).any():
        raise ValueError("`records` has more than one row for an (arm, seed, generation).")
    for col in _NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["generation"] = df["generation"].astype(int)
    df = df.sort_values(["arm", "seed", "generation"], kind="stable").reset_index(drop=True)
    by = df.groupby(["arm", "seed"], sort=False)
    if df["images_added"].isna().all():
        df["images_added"] = df["n_images"] - by["n_images"].shift(1).fillna(0)
    df["cum_epochs"] = by["epochs_trained"].cumsum(skipna=False)
    df["cum_wall_time_s"] = by["wall_time_s"].cumsum(skipna=False)
    df["cum_cpu_time_s"] = by["cpu_time_s"].cumsum(skipna=False)
    extra = [c for c in df.columns if c not in LINEAGE_COLUMNS]
    return df[LINEAGE_COLUMNS + extra]


def _check_table(table: Any) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame) or not {"generation", "arm", "seed"} <= set(table.columns):
        raise ValueError("`table` must be the DataFrame from lineage_table() / lineage_experiment() "
                         "(or read_lineage_benchmark()['table']).")
    return table


_SUMMARY_METRICS = ("epochs_trained", "best_epoch", "epochs_to_scratch_best", "best_val_accuracy",
                    "test_accuracy", "benchmark_accuracy", "wall_time_s", "cpu_time_s",
                    "cum_wall_time_s", "cum_cpu_time_s", "n_images", "n_classes")


def summarize_lineage(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, min and max over seeds per generation and arm.

    Args:
        table: The table from :func:`lineage_table`.

    Returns:
        DataFrame indexed by ``(generation, arm)`` with columns
        ``(metric, statistic)`` (statistic in mean, std, min, max) and ``n_seeds``.
    """
    table = _check_table(table)
    metrics = [m for m in _SUMMARY_METRICS if m in table]
    data = table[["generation", "arm", *metrics]].copy()
    data[metrics] = data[metrics].apply(pd.to_numeric, errors="coerce")
    out = data.groupby(["generation", "arm"])[metrics].agg(["mean", "std", "min", "max"])
    out["n_seeds"] = table.groupby(["generation", "arm"])["seed"].nunique()
    return out


def _arm_means(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """generation x arm table of the mean of ``column`` over seeds."""
    values = pd.to_numeric(table[column], errors="coerce")
    return values.groupby([table["generation"], table["arm"]]).mean().unstack("arm")


def lineage_verdict(
    table: pd.DataFrame,
    *,
    from_generation: int = 4,
    epoch_ratio: float = 1 / 3,
    compute_ratio: float = 0.5,
    max_test_drop: float = 0.0,
) -> dict[str, Any]:
    """Does the head-swap lineage meet the write-up's claim on this data?

    Three criteria, on means over seeds:

    * speed: in every generation from ``from_generation`` on, the head-swap
      run's epochs to plateau (its best epoch under the early-stopping rule)
      are at most ``epoch_ratio`` of the from-scratch run's;
    * quality: in those generations its test accuracy is at least the
      from-scratch run's minus ``max_test_drop`` (0: at least equal);
    * compute: the head-swap arm's total CPU time over all generations
      (generation 1 included, it is the same run in both arms) is at most
      ``compute_ratio`` of the from-scratch arm's (wall time when CPU time
      was not measured).

    Args:
        table: The table from :func:`lineage_table` with arms "head_swap" and "scratch".
        from_generation: First generation the speed and quality criteria look at.
        epoch_ratio: Largest allowed ratio of epochs to plateau (head swap / scratch).
        compute_ratio: Largest allowed ratio of total compute.
        max_test_drop: Largest allowed drop in mean test accuracy.

    Returns:
        A JSON-able dict: ``per_generation`` (mean epochs, ratios, test and
        benchmark accuracy of both arms), the pooled means over the judged
        generations, total compute of both arms, ``speed_ok``, ``quality_ok``,
        ``compute_ok``, ``claim_holds`` and a plain-language ``text``.
    """
    table = _check_table(table)
    from_generation = check_int(from_generation, "from_generation")
    epoch_ratio = check_number(epoch_ratio, "epoch_ratio", 0.0, low_open=True)
    compute_ratio = check_number(compute_ratio, "compute_ratio", 0.0, low_open=True)
    max_test_drop = check_number(max_test_drop, "max_test_drop", 0.0)
    arms = set(table["arm"])
    if not {"head_swap", "scratch"} <= arms:
        raise ValueError(f"`table` needs both arms 'head_swap' and 'scratch'. Received arms: {sorted(arms)}")
    means = {c: _arm_means(table, c) for c in ("best_epoch", "epochs_trained", "test_accuracy",
                                               "benchmark_accuracy", "best_val_accuracy")}
    gens = sorted(g for g in means["best_epoch"].index if g >= from_generation
                  and means["best_epoch"].loc[g].notna().all())
    per_gen = []
    for g in sorted(means["best_epoch"].index):
        row: dict[str, Any] = {"generation": int(g)}
        for c, m in means.items():
            row[f"head_swap_{c}"] = _num(m.at[g, "head_swap"])
            row[f"scratch_{c}"] = _num(m.at[g, "scratch"])
        row["best_epoch_ratio"] = _ratio(row["head_swap_best_epoch"], row["scratch_best_epoch"])
        row["epochs_trained_ratio"] = _ratio(row["head_swap_epochs_trained"], row["scratch_epochs_trained"])
        row["test_diff"] = _diff(row["head_swap_test_accuracy"], row["scratch_test_accuracy"])
        row["benchmark_diff"] = _diff(row["head_swap_benchmark_accuracy"], row["scratch_benchmark_accuracy"])
        row["judged"] = g in gens
        per_gen.append(row)
    judged = [r for r in per_gen if r["judged"]]
    speed_ok = bool(judged) and all(r["best_epoch_ratio"] is not None and r["best_epoch_ratio"] <= epoch_ratio + 1e-9
                                    for r in judged)
    quality_ok = bool(judged) and all(r["test_diff"] is not None and r["test_diff"] >= -max_test_drop - 1e-9
                                      for r in judged)
    basis = "cpu_time_s" if pd.to_numeric(table["cpu_time_s"], errors="coerce").notna().all() else "wall_time_s"
    totals = pd.to_numeric(table[basis], errors="coerce").groupby([table["arm"], table["seed"]]).sum()
    total = {arm: float(totals[arm].mean()) for arm in ("head_swap", "scratch")}
    walls = pd.to_numeric(table["wall_time_s"], errors="coerce").groupby([table["arm"], table["seed"]]).sum()
    wall = {arm: float(walls[arm].mean()) for arm in ("head_swap", "scratch")}
    c_ratio = _ratio(total["head_swap"], total["scratch"])
    compute_ok = c_ratio is not None and c_ratio <= compute_ratio + 1e-9
    pooled = {
        "head_swap_best_epoch": _mean(r["head_swap_best_epoch"] for r in judged),
        "scratch_best_epoch": _mean(r["scratch_best_epoch"] for r in judged),
        "test_diff": _mean(r["test_diff"] for r in judged),
        "benchmark_diff": _mean(r["benchmark_diff"] for r in judged),
    }
    pooled["best_epoch_ratio"] = _ratio(pooled["head_swap_best_epoch"], pooled["scratch_best_epoch"])
    n_seeds = int(table["seed"].nunique())
    text = _verdict_text(judged, pooled, from_generation, epoch_ratio, c_ratio, compute_ratio, basis,
                         n_seeds, speed_ok, quality_ok, compute_ok)
    return {
        "from_generation": from_generation, "judged_generations": [int(g) for g in gens],
        "n_seeds": n_seeds, "per_generation": per_gen, "pooled": pooled,
        "epoch_ratio_target": epoch_ratio, "max_test_drop": max_test_drop,
        "compute_basis": basis, "total_compute_s": total, "total_wall_time_s": wall,
        "compute_ratio": c_ratio, "compute_ratio_target": compute_ratio,
        "speed_ok": bool(speed_ok), "quality_ok": bool(quality_ok), "compute_ok": bool(compute_ok),
        "claim_holds": bool(speed_ok and quality_ok and compute_ok), "text": text,
    }


def _verdict_text(judged, pooled, from_generation, epoch_ratio, c_ratio, compute_ratio, basis, n_seeds,
                  speed_ok, quality_ok, compute_ok) -> str:
    if not judged:
        return (f"No generation from {from_generation} on has both arms; nothing to judge "
                f"({n_seeds} seed(s)).")
    gens = f"generations {judged[0]['generation']}-{judged[-1]['generation']}" if len(judged) > 1 \
        else f"generation {judged[0]['generation']}"
    ratios = ", ".join(f"{r['best_epoch_ratio']:.2f}" if r["best_epoch_ratio"] is not None else "n/a"
                       for r in judged)
    diffs = ", ".join(f"{100 * r['test_diff']:+.1f}" if r["test_diff"] is not None else "n/a" for r in judged)
    what = "CPU time" if basis == "cpu_time_s" else "wall time"
    held = [name for name, ok in (("speed", speed_ok), ("test accuracy", quality_ok), ("compute", compute_ok)) if ok]
    missed = [name for name, ok in (("speed", speed_ok), ("test accuracy", quality_ok), ("compute", compute_ok))
              if not ok]
    return (
        f"Means over {n_seeds} seed(s), {gens}: the head-swap run plateaued after "
        f"{pooled['head_swap_best_epoch']:.1f} epochs against {pooled['scratch_best_epoch']:.1f} from scratch "
        f"(ratio per generation {ratios}; target <= {epoch_ratio:.2f}); test accuracy head swap minus scratch "
        f"{diffs} points per generation (target >= 0). Total {what} over all generations: head swap "
        + (f"{c_ratio:.2f}" if c_ratio is not None else "n/a")
        + f" of scratch (target <= {compute_ratio:.2f}). "
        + ("The claim holds on this data." if not missed else
           f"Held: {', '.join(held) or 'none'}; missed: {', '.join(missed)}.")
    )


def _num(v: Any) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def read_lineage_benchmark(path: str | os.PathLike) -> dict[str, Any]:
    """Read the JSON written by ``benchmarks/bench_lineage.py``.

    So a notebook can show the committed numbers and redraw the figures
    without re-running the experiment.

    Args:
        path: The results file (``benchmarks/results/lineage.json``).

    Returns:
        ``{"table": DataFrame (the :func:`lineage_table`; works with
        :func:`summarize_lineage`, :func:`lineage_verdict` and the lineage
        plots), "plan": DataFrame, "verdict": dict, "settings": dict,
        "total_time_s": float}``.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise ValueError(f"No lineage results at {str(p)!r}. Run `python benchmarks/bench_lineage.py` "
                         "(or pass the path of its JSON output).")
    data = json.loads(p.read_text(encoding="utf-8"))
    table = lineage_table(pd.DataFrame(data.get("runs", [])))
    return {"table": table, "plan": pd.DataFrame(data.get("plan", [])), "verdict": data.get("verdict", {}),
            "settings": data.get("settings", {}), "total_time_s": data.get("total_time_s")}
