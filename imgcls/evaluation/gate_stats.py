"""The deploy gate's statistics: paired exact tests on two models' right/wrong answers.

Pure NumPy/SciPy, no TensorFlow, no files: :func:`gate_checks` takes the
benchmark images' true classes and whether production and the candidate got
each one right, and returns every check of the gate as a table.
:func:`imgcls.evaluation.promote` feeds it real predictions;
``benchmarks/bench_gate_errors.py`` feeds it simulated ones to measure how
often the gate refuses an equal-or-better model and accepts a worse one.

The rules (both models answer the *same* images, so the test is paired):

* **Overall** - an exact one-sided McNemar test on the discordant images:
  with ``b`` = candidate right and production wrong, ``c`` = candidate wrong
  and production right, ``p = P(X >= c)`` for ``X ~ Binomial(b + c, 1/2)``.
  The candidate is refused when ``p <= alpha * (1 - class_share)``
  (0.04 with the defaults): it is worse beyond chance.
* **Margin** (optional) - refused when the candidate's accuracy is below
  production's by more than ``margin`` (a share: 0.02 = two points).
* **Per class** - the same exact test per class, Holm-corrected across the
  compared classes at ``alpha * class_share`` (0.01), so a class drop counts
  only when it is significant given that class's n.
* **Max class drop** - for classes with at least ``min_class_n`` images only
  (150 by default): refused when a class loses more than ``max_class_drop``
  of accuracy. With fewer images a drop that large happens by chance (with 5
  images one image is 20 points), so the rule is noise there and left to the
  per-class test.

Splitting ``alpha`` between the overall test and the class family (a
Bonferroni split) keeps the chance of refusing a model that is truly as good
as production at most ``alpha`` whatever the benchmark size: exact tests
never exceed their level (``benchmarks/bench_gate_errors.py`` measures it,
with the max-class-drop rule, on simulated predictions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_fraction, check_int, check_number

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_CLASS_SHARE",
    "DEFAULT_MAX_CLASS_DROP",
    "DEFAULT_MIN_CLASS_N",
    "CHECK_COLUMNS",
    "mcnemar_worse_p",
    "holm_adjust",
    "paired_counts",
    "smallest_judgeable_n",
    "gate_checks",
]

#: Chance of refusing a candidate that is truly as good as production (overall + classes).
DEFAULT_ALPHA = 0.05
#: Share of ``alpha`` spent on the per-class family (the rest on the overall test).
DEFAULT_CLASS_SHARE = 0.2
#: Largest per-class accuracy drop allowed, for classes with ``min_class_n`` images or more.
DEFAULT_MAX_CLASS_DROP = 0.2
#: Benchmark images a class needs before ``max_class_drop`` applies to it. Below about 120 a
#: 20-point drop of one class in ten happens by chance often enough to push the false-refusal
#: rate over 5% (benchmarks/bench_gate_errors.py: 10-12% at 50 images per class, 5.2% at 100).
DEFAULT_MIN_CLASS_N = 150
#: Columns of the check table, in order.
CHECK_COLUMNS = ["check", "scope", "n", "production", "candidate", "b", "c", "p_value", "level",
                 "passed", "result", "detail"]

#: Slack for comparing accuracies (float noise is not a difference).
_TOL = 1e-9


def mcnemar_worse_p(b: Any, c: Any) -> Any:
    """One-sided exact McNemar p-value that the candidate is worse.

    ``P(X >= c)`` for ``X ~ Binomial(b + c, 1/2)``: the chance of at least
    ``c`` candidate-only errors among the ``b + c`` discordant images if both
    models were equally good. 1.0 when there is no discordant image.

    Args:
        b: Images the candidate got right and production wrong (int or array).
        c: Images the candidate got wrong and production right (same shape).

    Returns:
        A float, or an array of the broadcast shape.
    """
    from scipy.stats import binom

    b = np.asarray(b, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if np.any(b < 0) or np.any(c < 0):
        raise ValueError(f"`b` and `c` must be counts >= 0. Received: b={b!r}, c={c!r}")
    n = b + c
    p = np.where(n > 0, binom.sf(c - 1, np.maximum(n, 1), 0.5), 1.0)
    p = np.clip(p, 0.0, 1.0)
    return float(p) if p.ndim == 0 else p


def holm_adjust(pvalues: Any) -> np.ndarray:
    """Holm step-down adjusted p-values along the last axis.

    A hypothesis is rejected at family level ``a`` exactly when its adjusted
    p-value is ``<= a`` (Holm 1979): the i-th smallest of m p-values is
    multiplied by ``m - i + 1``, made non-decreasing, and capped at 1.

    Args:
        pvalues: p-values, shape ``(..., m)``.

    Returns:
        The adjusted p-values, same shape and order.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] == 0:
        return p.copy()
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    ranked = np.minimum(np.maximum.accumulate(ranked, axis=-1), 1.0)
    out = np.empty_like(ranked)
    np.put_along_axis(out, order, ranked, axis=-1)
    return out


def paired_counts(production_correct: Any, candidate_correct: Any) -> tuple[int, int]:
    """``(b, c)``: candidate-only right answers and candidate-only wrong answers.

    Args:
        production_correct: Per image, whether production was right (bools).
        candidate_correct: Per image, whether the candidate was right.
    """
    p = np.asarray(production_correct, dtype=bool)
    c = np.asarray(candidate_correct, dtype=bool)
    return int(np.sum(c & ~p)), int(np.sum(~c & p))


def smallest_judgeable_n(level: float) -> int:
    """Fewest images a class needs before the exact test can flag it at ``level``.

    Even a total collapse (production right on all n, candidate on none)
    gives ``p = 0.5 ** n``; below this n the class cannot fail its test.

    Args:
        level: The per-test level (for Holm, the strictest: family level / m).
    """
    return max(1, math.ceil(math.log2(1.0 / level) - 1e-12))


def _checked(alpha, class_share, margin, max_class_drop, min_class_n):
    alpha = check_number(alpha, "alpha", 0.0, 0.5, low_open=True,
                         fix="pass the chance of refusing an equally good model, e.g. alpha=0.05")
    class_share = check_number(class_share, "class_share", 0.0, 1.0, low_open=True, high_open=True,
                               fix="pass the share of alpha spent on the per-class tests, e.g. 0.2")
    margin = check_fraction(margin, "margin", allow_none=True,
                            fix="pass the accuracy drop allowed as a share (0.02 = two points), or None")
    max_class_drop = check_fraction(max_class_drop, "max_class_drop", allow_none=True,
                                    fix="pass a share of accuracy (0.2 = 20 points), or None to skip the check")
    min_class_n = check_int(min_class_n, "min_class_n", 1, " (benchmark images a class needs for max_class_drop)")
    return alpha, class_share, margin, max_class_drop, min_class_n


def _row(check: str, scope: str, n: int | None, prod: float, cand: float, b: Any = None, c: Any = None,
         p: float = math.nan, level: float = math.nan, passed: bool = True, detail: str = "") -> dict:
    return {"check": check, "scope": scope, "n": None if n is None else int(n), "production": prod, "candidate": cand,
            "b": b, "c": c, "p_value": p, "level": level, "passed": bool(passed),
            "result": "pass" if passed else "fail", "detail": detail}


def gate_checks(
    labels: Sequence[Any] | np.ndarray,
    production_correct: Sequence[bool] | np.ndarray,
    candidate_correct: Sequence[bool] | np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
    class_share: float = DEFAULT_CLASS_SHARE,
    margin: float | None = None,
    max_class_drop: float | None = DEFAULT_MAX_CLASS_DROP,
    min_class_n: int = DEFAULT_MIN_CLASS_N,
) -> tuple[pd.DataFrame, list[str]]:
    """Every check of the deploy gate on one paired benchmark comparison.

    Args:
        labels: The true class of each benchmark image both models answered.
        production_correct: Per image, whether production was right.
        candidate_correct: Per image, whether the candidate was right.
        alpha: Chance of refusing a candidate truly as good as production
            (overall test and class family together).
        class_share: Share of ``alpha`` for the per-class family; the overall
            test gets the rest.
        margin: Largest accuracy drop allowed (a share; 0.02 = two points), or
            None for no margin check.
        max_class_drop: Largest per-class accuracy drop allowed for classes
            with at least ``min_class_n`` images; None skips the check.
        min_class_n: Images a class needs for ``max_class_drop`` to apply.

    Returns:
        ``(checks, warnings)``: a DataFrame with :data:`CHECK_COLUMNS`, one
        row per check (``passed`` is a bool, ``result`` "pass" or "fail"; ``production`` and
        ``candidate`` are accuracies; ``p_value`` is Holm-adjusted for the
        class rows; ``level`` is the level the p-value is compared with, or
        the largest drop allowed for the margin and drop rows), and sentences about what the
        data could not judge.

    Raises:
        ValueError: Arrays of different lengths, no image, or a bad option.
    """
    alpha, class_share, margin, max_class_drop, min_class_n = _checked(
        alpha, class_share, margin, max_class_drop, min_class_n)
    labels = np.asarray(labels, dtype=object)
    prod = np.asarray(production_correct, dtype=bool)
    cand = np.asarray(candidate_correct, dtype=bool)
    if not len(labels) == len(prod) == len(cand):
        raise ValueError(
            "`labels`, `production_correct` and `candidate_correct` must have one entry per image. "
            f"Received lengths {len(labels)}, {len(prod)} and {len(cand)}"
        )
    if len(labels) == 0:
        raise ValueError("The gate needs at least one benchmark image both models answered. Received: 0 images")
    level_all, level_cls = alpha * (1 - class_share), alpha * class_share
    rows: list[dict] = []
    warnings: list[str] = []

    n = len(labels)
    b, c = paired_counts(prod, cand)
    p = mcnemar_worse_p(b, c)
    pa, ca = float(prod.mean()), float(cand.mean())
    rows.append(_row(
        "overall: not worse beyond chance", "all", n, pa, ca, b, c, p, level_all, bool(p > level_all),
        f"exact one-sided McNemar on {b + c} discordant images: candidate-only right {b}, "
        f"candidate-only wrong {c}",
    ))
    if margin is not None:
        rows.append(_row(
            f"overall: drop at most {margin * 100:.1f} points", "all", n, pa, ca, level=margin,
            passed=bool(ca - pa >= -margin - _TOL), detail=f"candidate {(ca - pa) * 100:+.1f} points",
        ))

    classes = sorted({str(x) for x in labels})
    per = []
    for k in classes:
        m = np.array([str(x) == k for x in labels])
        bk, ck = paired_counts(prod[m], cand[m])
        per.append((k, int(m.sum()), float(prod[m].mean()), float(cand[m].mean()), bk, ck,
                    mcnemar_worse_p(bk, ck)))
    adjusted = holm_adjust([r[-1] for r in per]) if per else np.array([])
    for (k, nk, pk, ck_acc, bk, ck, raw), adj in zip(per, adjusted):
        rows.append(_row(
            f"class {k}: not worse beyond chance", k, nk, pk, ck_acc, bk, ck, float(adj), level_cls,
            bool(adj > level_cls), f"exact McNemar p={raw:.3g}, Holm-adjusted over {len(per)} classes",
        ))
    if max_class_drop is not None:
        for k, nk, pk, ck_acc, *_ in per:
            if nk >= min_class_n:
                drop = pk - ck_acc
                rows.append(_row(
                    f"class {k}: drop at most {max_class_drop:.0%}", k, nk, pk, ck_acc, level=max_class_drop,
                    passed=bool(drop <= max_class_drop + _TOL), detail=f"{k} {pk:.0%} -> {ck_acc:.0%}",
                ))
        if not any(nk >= min_class_n for _, nk, *_ in per):
            warnings.append(
                f"max_class_drop ({max_class_drop:.0%}) applies to classes with at least {min_class_n} "
                f"benchmark images; none has so many (largest: {max((r[1] for r in per), default=0)}), "
                "so class drops are judged by the per-class test only."
            )
    if per:
        need = smallest_judgeable_n(level_cls / len(per))
        small = [f"{k} ({nk})" for k, nk, *_ in per if nk < need]
        if small:
            warnings.append(
                f"{len(small)} class(es) are too small to judge on their own: with fewer than {need} "
                f"images even a total collapse is not significant at {level_cls:g} over {len(per)} "
                f"classes: {', '.join(small)}. The overall test still covers their images."
            )
    table = pd.DataFrame(rows, columns=CHECK_COLUMNS)
    table["passed"] = table["passed"].astype(bool)
    return table, warnings
