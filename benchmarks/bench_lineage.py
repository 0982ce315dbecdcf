"""Benchmark: head swap vs from scratch over many generations of a growing library (the lineage experiment).

Claim (the write-up): from scratch the model plateaus after about 120 epochs
at about 93%; after repeating the head swap dozens of times each generation
plateaus after about 20 epochs at about 99%, and training gets cheaper while
accuracy goes up. Goal tested here: from generation 4 on the head-swap run
plateaus in at most 1/3 of the from-scratch run's epochs and its test
accuracy is at least the from-scratch run's (means over seeds), with total
compute over all generations at most half of the from-scratch arm's.

The reduced configuration (the default; the one whose results are checked
in, budget 90 minutes on a 2-core machine): 6 generations growing from 1,200
images of 6 classes to 3,000 images of 9 classes (animal-mnist silhouettes
rendered at 32 px; a new class in generations 2, 4 and 6), 2 seeds,
mini_inception at 32 px, patience 10, at most 100 epochs; both arms train on
the same catalog snapshot each generation (see
:func:`imgcls.experiments.lineage_experiment`).

Usage::

    python benchmarks/bench_lineage.py            # reduced configuration
    python benchmarks/bench_lineage.py --quick    # 3 generations, 150 -> 330 images, simple_cnn, 2 epochs

Writes ``benchmarks/results/lineage.json`` (a ``--quick`` or otherwise
changed run writes beside its workspace instead, unless ``--out`` is given)
and the three figures as PNG beside the workspace.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine_info, result_path, start_benchmark, write_result

RESULT = result_path("lineage")


def _clean(obj):
    """NaN -> None, numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _summary(summary) -> list[dict]:
    """The (generation, arm) x (metric, statistic) table as records."""
    out = []
    for (gen, arm), row in summary.iterrows():
        rec = {"generation": int(gen), "arm": arm, "n_seeds": int(row[("n_seeds", "")])}
        for metric in summary.columns.get_level_values(0).unique():
            if metric != "n_seeds":
                rec[metric] = {stat: row[(metric, stat)] for stat in ("mean", "std", "min", "max")}
        out.append(rec)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 generations, 150 -> 330 images, 1 seed, simple_cnn at 32 px, 2 epochs (smoke test)")
    parser.add_argument("--generations", type=int, default=None, help="generations (default 6; quick: 3)")
    parser.add_argument("--final-images", type=int, default=None, help="library size at the last generation")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0 1; quick: 0)")
    parser.add_argument("--model", default=None, help="model name (default mini_inception; quick: simple_cnn)")
    parser.add_argument("--image-size", type=int, default=None, help="image side (default 32)")
    parser.add_argument("--max-epochs", type=int, default=None, help="epoch cap (default 100; quick: 2)")
    parser.add_argument("--patience", type=int, default=None, help="early-stopping patience (default 10; quick: 1)")
    parser.add_argument("--workspace", default=None, help="folder for the workspace (default: a temp folder)")
    parser.add_argument("--out", default=None, help=f"JSON output (default {RESULT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    bench = start_benchmark("lineage", argv)

    from imgcls.experiments import (
        QUICK_LINEAGE,
        REDUCED_LINEAGE,
        lineage_experiment,
        lineage_plan,
        lineage_verdict,
        plot_lineage_accuracy,
        plot_lineage_compute,
        plot_lineage_epochs,
        summarize_lineage,
    )
    from imgcls.runs import Run

    config = {**(QUICK_LINEAGE if args.quick else REDUCED_LINEAGE)}
    plan_options = dict(config.pop("plan"))
    overrides = {"seeds": args.seeds, "model": args.model, "image_size": args.image_size,
                 "max_epochs": args.max_epochs, "patience": args.patience}
    changed = {k: v for k, v in overrides.items() if v is not None}
    for key, value in (("generations", args.generations), ("final_images", args.final_images)):
        if value is not None:
            plan_options[key] = changed[key] = value
    config.update({k: v for k, v in changed.items() if k in overrides})
    name = "quick" if args.quick else "reduced"
    if changed:
        name += " (changed: " + ", ".join(f"{k}={v}" for k, v in changed.items()) + ")"
    root = Path(args.workspace) if args.workspace else Path(tempfile.mkdtemp(prefix="lineage-")) / "ws"
    default_out = RESULT if name == "reduced" else root.parent / "lineage.json"
    out = Path(args.out) if args.out else default_out

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    plan = lineage_plan(**plan_options)
    log(f"lineage ({name}): {plan_options} {config} workspace={root}")
    started = time.perf_counter()

    def payload_of(table, total, *, complete, figures=None, curves=None):
        import keras
        import tensorflow as tf

        verdict = lineage_verdict(table)
        return verdict, {
            "claim": "from generation 4 on, the head-swap run plateaus in <= 1/3 of the from-scratch run's epochs "
                     "and its test accuracy is >= the from-scratch run's (means over seeds); total compute over "
                     "all generations of the head-swap arm <= 1/2 of the from-scratch arm's",
            "configuration": name,
            "quick": bool(args.quick),
            "complete": complete,
            "generations_done": int(table["generation"].max()) if len(table) else 0,
            "generations_planned": int(plan["generation"].max()),
            "settings": {
                "plan": plan.attrs, **config, "monitor": "val_accuracy", "optimizer": "adam 1e-3 (both arms)",
                "batch_size": 32, "augmentation": "flip, +-10 deg rotation, +-10% zoom (imgcls default)",
                "benchmark": "imgcls.library.choose_benchmark defaults, chosen when a class first appears, "
                             "never re-drawn",
                "epochs_to_plateau": "best epoch under early stopping (patience epochs without a better "
                                     "val_accuracy)",
                "compute": "time.process_time of the process around each training call (all threads: fit, "
                           "test and benchmark evaluation, save); wall time as the run records it",
                "generation_1": "trained once per seed from scratch; the root of both arms",
            },
            "machine": machine_info(cpus=os.cpu_count(), tensorflow=tf.__version__, keras=keras.__version__),
            "total_time_s": round(total, 1),
            "budget_s": 90 * 60,
            "within_budget": bool(complete and total <= 90 * 60),
            "verdict": verdict,
            "summary": _summary(summarize_lineage(table)),
            "plan": plan.to_dict("records"),
            "runs": table.drop(columns=["run_path"]).to_dict("records"),
            "learning_curves": curves or {},
            "figures": figures or {},
            "workspace": str(root),
        }

    def save_partial(table):
        # A long run on a shared machine may not finish: keep what each finished generation showed.
        _, partial = payload_of(table, time.perf_counter() - started, complete=False)
        write_result(_clean(partial), out, bench)
        log(f"partial results after generation {partial['generations_done']} -> {out}")

    table = lineage_experiment(root, plan=plan, log=log, on_generation=save_partial, **config)
    total = time.perf_counter() - started

    figures = {}
    for key, plot in (("epochs", plot_lineage_epochs), ("accuracy", plot_lineage_accuracy),
                      ("compute", plot_lineage_compute)):
        figures[key] = str(root.parent / f"lineage_{key}.png")
        fig = plot(table)
        fig.savefig(figures[key], dpi=100)
        log(f"figure: {fig.get_suptitle()!r} -> {figures[key]}")

    curves = {}
    for run_id, path in table.drop_duplicates("run_id")[["run_id", "run_path"]].itertuples(index=False):
        h = Run(path).history
        curves[run_id] = {"epoch": h["epoch"].tolist(), "val_accuracy": h["val_accuracy"].tolist(),
                          "epoch_time_s": h["epoch_time_s"].tolist() if "epoch_time_s" in h else None}
    verdict, payload = payload_of(table, total, complete=True, figures=figures, curves=curves)
    write_result(_clean(payload), out, bench)
    log(verdict["text"])
    log(f"wrote {out} ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
