"""Claim: the paired statistical deploy gate refuses an equal-or-better model at most 5% of the time at
every benchmark size, and accepts a model 10 points worse at most 20% of the time at 20 images per class.

Simulated predictions, no TensorFlow. Each trial draws a benchmark set of
``n`` images per class for 10 classes and the right/wrong answers of two
models on it, production with true accuracy ``base`` and the candidate with
``base + delta``. Errors are correlated through a latent per-image difficulty:
model m is right on image i when ``sqrt(rho) * z_i + sqrt(1 - rho) * e_mi <
Phi^-1(accuracy_m)``, where ``z_i`` (shared by both models) carries a class
effect (some classes harder: ``z = (s_class + u_i) / sqrt(1 + 0.5**2)``,
``s ~ N(0, 0.5**2)``) and ``e_mi`` is each model's own noise. ``rho`` is the
latent correlation of the two models' errors: 0 = independent errors. The
candidate is uniformly better or worse (every class shifted alike).

Two rules decide every trial:

* ``gate``: :func:`imgcls.evaluation.gate_checks` with its defaults
  (exact one-sided McNemar overall at 0.04; per class at 0.01 Holm;
  ``max_class_drop=0.2`` for classes of 150+ images; no margin), vectorised
  here over trials and checked against ``gate_checks`` itself on a sample
  of trials;
* ``today``: the rule this gate replaces - refuse when the candidate's mean
  accuracy is below production's, or any class loses more than 20 points.

Reported per (base, rho, images per class, delta): the refusal rate of each
rule. The correlation of two real generations on the zoo sample (gen 0 and
its head-swap gen 1 on the same benchmark images, from
``benchmarks/results/demo_gate.json`` when it exists) is estimated the same
way (the tetrachoric latent correlation of their right/wrong answers) to say
which ``rho`` is realistic.

Usage::

    python benchmarks/bench_gate_errors.py [--trials 4000] [--quick]

Writes ``benchmarks/results/gate_errors.json`` (``--quick``: 500 trials, written where ``--out`` says).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from _common import machine_info, result_path, start_benchmark, write_result

import numpy as np
from scipy.optimize import brentq
from scipy.stats import multivariate_normal, norm

from imgcls.evaluation import (
    DEFAULT_ALPHA,
    DEFAULT_CLASS_SHARE,
    DEFAULT_MAX_CLASS_DROP,
    DEFAULT_MIN_CLASS_N,
    gate_checks,
    holm_adjust,
    mcnemar_worse_p,
)

RESULT = result_path("gate_errors")
DEMO_RESULT = result_path("demo_gate")
N_CLASSES = 10
PER_CLASS = (5, 10, 20, 50, 150)  # 150: where max_class_drop starts to apply
TARGET_SIZES = (5, 10, 20, 50)
DELTAS = (0.0, 0.02, 0.05, 0.10, -0.10)
RHOS = (0.0, 0.3, 0.6, 0.8)
BASES = (0.7, 0.8, 0.9)
CLASS_SD = 0.5
TARGET_FALSE_REFUSAL = 0.05
TARGET_WORSE_ACCEPTED = 0.20  # at 20 images per class


def simulate(rng, *, n_per_class: int, base: float, delta: float, rho: float, trials: int):
    """(labels (n,), production right (trials, n), candidate right (trials, n))."""
    n = n_per_class * N_CLASSES
    labels = np.repeat(np.arange(N_CLASSES), n_per_class)
    s = rng.normal(0.0, CLASS_SD, (trials, N_CLASSES))[:, labels]
    z = (s + rng.standard_normal((trials, n))) / math.sqrt(1 + CLASS_SD ** 2)
    lp = math.sqrt(rho) * z + math.sqrt(1 - rho) * rng.standard_normal((trials, n))
    lc = math.sqrt(rho) * z + math.sqrt(1 - rho) * rng.standard_normal((trials, n))
    return labels, lp < norm.ppf(base), lc < norm.ppf(min(base + delta, 0.999))


def gate_refuses(labels, prod, cand) -> np.ndarray:
    """The gate's decision (True = refused) for every trial, vectorised."""
    alpha_all = DEFAULT_ALPHA * (1 - DEFAULT_CLASS_SHARE)
    alpha_cls = DEFAULT_ALPHA * DEFAULT_CLASS_SHARE
    b_img, c_img = cand & ~prod, ~cand & prod
    refuse = mcnemar_worse_p(b_img.sum(1), c_img.sum(1)) <= alpha_all
    trials, n = prod.shape
    per = n // N_CLASSES
    bk = b_img.reshape(trials, N_CLASSES, per).sum(-1)
    ck = c_img.reshape(trials, N_CLASSES, per).sum(-1)
    refuse |= (holm_adjust(mcnemar_worse_p(bk, ck)) <= alpha_cls).any(-1)
    if per >= DEFAULT_MIN_CLASS_N:
        drop = (ck - bk) / per
        refuse |= (drop > DEFAULT_MAX_CLASS_DROP + 1e-9).any(-1)
    return refuse


def today_refuses(labels, prod, cand) -> np.ndarray:
    """The replaced rule: refuse if mean accuracy drops at all or any class drops more than 20 points."""
    trials, n = prod.shape
    per = n // N_CLASSES
    refuse = cand.mean(1) < prod.mean(1) - 1e-12
    drop = prod.reshape(trials, N_CLASSES, per).mean(-1) - cand.reshape(trials, N_CLASSES, per).mean(-1)
    return refuse | (drop > 0.2 + 1e-9).any(-1)


def check_against_gate_checks(rng, samples: int = 60) -> int:
    """The vectorised decision equals gate_checks' on random trials of several shapes; returns how many."""
    done = 0
    for per, delta, rho in ((5, -0.1, 0.3), (20, 0.0, 0.6), (50, -0.1, 0.0), (50, -0.05, 0.8)):
        labels, prod, cand = simulate(rng, n_per_class=per, base=0.8, delta=delta, rho=rho, trials=samples)
        fast = gate_refuses(labels, prod, cand)
        for t in range(samples):
            checks, _ = gate_checks(labels, prod[t], cand[t])
            slow = bool((checks["result"] == "fail").any())
            if slow != bool(fast[t]):
                raise AssertionError(f"vectorised gate disagrees with gate_checks (per={per}, delta={delta}, "
                                     f"rho={rho}, trial {t})")
            done += 1
    return done


def tetrachoric(both: int, first_only: int, second_only: int, neither: int) -> float:
    """Latent bivariate-normal correlation of two models' right/wrong answers (2x2 table)."""
    n = both + first_only + second_only + neither
    a1, a2, p11 = (both + first_only) / n, (both + second_only) / n, both / n
    t1, t2 = norm.ppf(a1), norm.ppf(a2)

    def gap(r: float) -> float:
        return multivariate_normal.cdf([t1, t2], mean=[0, 0], cov=[[1, r], [r, 1]]) - p11

    lo, hi = -0.99, 0.995
    if gap(lo) > 0:
        return lo
    if gap(hi) < 0:
        return hi
    return float(brentq(gap, lo, hi, xtol=1e-4))


def real_correlations() -> list[dict]:
    """Gen 0 vs gen 1 of each demo run recorded by bench_demo_gate.py (empty when not run yet)."""
    if not DEMO_RESULT.is_file():
        return []
    data = json.loads(DEMO_RESULT.read_text())
    out = []
    for run in data.get("runs", []):
        pair = run.get("pair")
        if not pair:
            continue
        out.append({"seed": run.get("seed"), **pair,
                    "tetrachoric_rho": round(tetrachoric(pair["both_right"], pair["only_production_right"],
                                                         pair["only_candidate_right"], pair["both_wrong"]), 3)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=4000, help="trials per setting (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="500 trials; write only where --out says")
    ap.add_argument("--out", default=None, help="result file (default benchmarks/results/gate_errors.json)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    args = ap.parse_args()
    trials = 500 if args.quick else args.trials
    bench = start_benchmark("gate_errors")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    checked = check_against_gate_checks(rng)
    rows = []
    for base in BASES:
        for rho in RHOS:
            for per in PER_CLASS:
                for delta in DELTAS:
                    labels, prod, cand = simulate(rng, n_per_class=per, base=base, delta=delta, rho=rho,
                                                  trials=trials)
                    with np.errstate(invalid="ignore", divide="ignore"):  # a constant row has no correlation
                        phi = float(np.nanmean([np.corrcoef(prod[t], cand[t])[0, 1] for t in range(min(200, trials))]))
                    b = (cand & ~prod).sum(1)
                    c = (~cand & prod).sum(1)
                    rows.append({
                        "base": base, "rho": rho, "per_class": per, "n_images": per * N_CLASSES, "delta": delta,
                        "gate_refused": round(float(gate_refuses(labels, prod, cand).mean()), 4),
                        "today_refused": round(float(today_refuses(labels, prod, cand).mean()), 4),
                        "mean_discordant": round(float((b + c).mean()), 1),
                        "phi": round(phi, 3),
                    })
    elapsed = time.perf_counter() - t0

    def rate(rule, base, rho, per, delta):
        return next(r[rule] for r in rows if (r["base"], r["rho"], r["per_class"], r["delta"]) == (base, rho, per, delta))

    targets = []
    for base in BASES:
        for rho in RHOS:
            worst_false = max(rate("gate_refused", base, rho, per, d) for per in PER_CLASS for d in DELTAS if d >= 0)
            worst_false_targets = max(rate("gate_refused", base, rho, per, d) for per in TARGET_SIZES
                                      for d in DELTAS if d >= 0)
            worse_acc = 1 - rate("gate_refused", base, rho, 20, -0.10)
            targets.append({
                "base": base, "rho": rho,
                "gate_max_false_refusal": worst_false,
                "gate_max_false_refusal_5_to_50": worst_false_targets,
                "gate_false_refusal_ok": worst_false <= TARGET_FALSE_REFUSAL,
                "gate_worse_accepted_at_20": round(worse_acc, 4),
                "gate_worse_accepted_ok": worse_acc <= TARGET_WORSE_ACCEPTED,
                "today_max_false_refusal": max(rate("today_refused", base, rho, per, d)
                                               for per in PER_CLASS for d in DELTAS if d >= 0),
                "today_worse_accepted_at_20": round(1 - rate("today_refused", base, rho, 20, -0.10), 4),
            })
    result = {
        "claim": "The paired gate refuses an equal-or-better model <= 5% of the time at every size, and accepts "
                 "a 10-points-worse model <= 20% of the time at 20 images per class.",
        "machine": machine_info(),
        "setup": {"classes": N_CLASSES, "per_class": list(PER_CLASS), "deltas": list(DELTAS), "rhos": list(RHOS),
                  "bases": list(BASES), "class_effect_sd": CLASS_SD, "trials": trials, "seed": args.seed,
                  "gate": {"alpha": DEFAULT_ALPHA, "overall_level": DEFAULT_ALPHA * (1 - DEFAULT_CLASS_SHARE),
                           "class_level_holm": DEFAULT_ALPHA * DEFAULT_CLASS_SHARE,
                           "max_class_drop": DEFAULT_MAX_CLASS_DROP, "min_class_n": DEFAULT_MIN_CLASS_N,
                           "margin": None},
                  "today": {"margin": 0.0, "max_class_drop": 0.2},
                  "decisions_checked_against_gate_checks": checked},
        "targets": targets,
        "real_generations": real_correlations(),
        "rows": rows,
        "wall_time_s": round(elapsed, 1),
    }
    out = Path(args.out) if args.out else (None if args.quick else RESULT)
    for t in targets:
        print(f"base {t['base']:.1f} rho {t['rho']:.1f}: gate max false refusal {t['gate_max_false_refusal']:.3f}, "
              f"10-worse accepted at 20/class {t['gate_worse_accepted_at_20']:.3f} | today "
              f"{t['today_max_false_refusal']:.3f} / {t['today_worse_accepted_at_20']:.3f}")
    for r in result["real_generations"]:
        print(f"real gen0 vs gen1 (seed {r['seed']}): tetrachoric rho {r['tetrachoric_rho']}")
    if out is not None:
        write_result(result, out, bench)
        print(f"-> {out} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
