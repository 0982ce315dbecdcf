"""Claim: `make demo` promotes generation 1 on its merits: the deploy gate accepts it in every one of 3 demo
runs with different seeds, with the benchmark set fixed from the start and the gate's default rules.

Each seed runs :func:`imgcls.demo.run_demo` in a fresh workspace with the
demo's own training settings (mini_inception, 64 px, ``max_epochs=40``,
``patience=6``: the defaults of ``imgcls demo``) and a smaller tail (an
unlabelled pool of 1,000 images instead of 3,000, 300 simulated requests over
2 weeks instead of 2,000 over 8): the pool and the traffic come after the
gate and do not change it. The sample's seed changes the library images, the
labelling round and every training seed.

Recorded per seed: both promotions' check tables and warnings, the accuracy
of generation 0 and 1 on the compared benchmark images, and the 2x2 table of
their right/wrong answers (``pair``, read from the overall McNemar check),
which ``bench_gate_errors.py`` turns into the correlation of two real
generations' errors.

Usage::

    python benchmarks/bench_demo_gate.py [--seeds 0 1 2] [--keep DIR]

Writes ``benchmarks/results/demo_gate.json``. Takes a while: it trains 6 models.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import machine_info, result_path, start_benchmark, write_result

RESULT = result_path("demo_gate")
SETTINGS = {"model": "mini_inception", "image_size": 64, "max_epochs": 40, "patience": 6,
            "pool_size": 1000, "traffic_requests": 300, "weeks": 2}


def _pair(gate: dict) -> dict | None:
    """The 2x2 table of production's and the candidate's answers, from the overall McNemar row."""
    row = next((c for c in gate.get("checks", []) if str(c.get("check", "")).startswith("overall: not worse")), None)
    if row is None:
        return None
    n, b, c = int(row["n"]), int(row["b"]), int(row["c"])
    both = round(n * row["production"]) - c
    return {"n": n, "both_right": both, "only_candidate_right": b, "only_production_right": c,
            "both_wrong": n - both - b - c, "production_accuracy": row["production"],
            "candidate_accuracy": row["candidate"], "p_value": row["p_value"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="demo seeds (default %(default)s)")
    ap.add_argument("--keep", default=None, help="keep the workspaces under this folder")
    ap.add_argument("--out", default=None, help="result file (default benchmarks/results/demo_gate.json)")
    args = ap.parse_args()
    bench = start_benchmark("demo_gate")
    from imgcls.demo import run_demo

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="demo-gate-"))
    runs = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        ws = root / f"seed-{seed}"
        out = run_demo(ws, seed=seed, verbose=0, **SETTINGS)
        gates = out["gates"]
        gen1 = next((g for g in gates if g["run_id"] == out["head_swap_run"]), None)
        runs.append({
            "seed": seed,
            "generation_0": out["scratch_run"],
            "generation_1": out["head_swap_run"],
            "generation_1_accepted": bool(gen1 and gen1["accepted"] and gen1.get("override") is None),
            "served_runs": out["served_runs"],
            "pair": _pair(gen1) if gen1 else None,
            "gates": gates,
            "wall_time_s": round(time.perf_counter() - t0, 1),
        })
        print(f"seed {seed}: generation 1 {'ACCEPTED' if runs[-1]['generation_1_accepted'] else 'REFUSED'} "
              f"({runs[-1]['pair']}) in {runs[-1]['wall_time_s']:.0f} s", flush=True)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    accepted = sum(r["generation_1_accepted"] for r in runs)
    result = {
        "claim": "The deploy gate accepts generation 1 of the demo on its merits in every one of 3 seeds.",
        "machine": machine_info(),
        "settings": {**SETTINGS, "seeds": args.seeds,
                     "gate": "imgcls.evaluation.promote defaults: alpha 0.05 (overall exact McNemar at 0.04, "
                             "per class 0.01 Holm), no margin, max_class_drop 0.2 for classes of 150+ images"},
        "generation_1_accepted": accepted,
        "target_met": accepted == len(runs),
        "runs": runs,
    }
    out_path = Path(args.out) if args.out else RESULT
    write_result(result, out_path, bench)
    print(f"generation 1 accepted in {accepted} of {len(runs)} demo runs -> {out_path}")


if __name__ == "__main__":
    main()
