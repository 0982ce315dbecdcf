"""Tests for imgcls.evaluation.gate_stats: every gate check passing and failing on hand-made prediction tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from imgcls.evaluation import (
    CHECK_COLUMNS,
    gate_checks,
    holm_adjust,
    mcnemar_worse_p,
    paired_counts,
)


def table(spec: dict[str, tuple[int, int, int, int]]):
    """Prediction table from {class: (both right, only candidate right, only production right, both wrong)}."""
    labels, prod, cand = [], [], []
    for k, (both, b, c, none) in spec.items():
        for p_ok, c_ok, n in ((True, True, both), (False, True, b), (True, False, c), (False, False, none)):
            labels += [k] * n
            prod += [p_ok] * n
            cand += [c_ok] * n
    return np.array(labels, dtype=object), np.array(prod), np.array(cand)


def row(checks: pd.DataFrame, prefix: str) -> pd.Series:
    hits = checks[checks["check"].str.startswith(prefix)]
    assert len(hits) == 1, (prefix, checks["check"].tolist())
    return hits.iloc[0]


@pytest.mark.parametrize("b,c", [(0, 0), (0, 5), (3, 7), (10, 2), (12, 12), (1, 30), (40, 55)])
def test_mcnemar_matches_scipy_and_statsmodels(b, c):
    p = mcnemar_worse_p(b, c)
    expected = binomtest(c, b + c, 0.5, alternative="greater").pvalue if b + c else 1.0
    assert p == pytest.approx(expected, rel=1e-12)
    # statsmodels' exact McNemar is two-sided: 2 x the smaller one-sided p (capped at 1).
    two_sided = mcnemar([[20, b], [c, 4]], exact=True).pvalue
    assert min(1.0, 2 * min(p, mcnemar_worse_p(c, b))) == pytest.approx(two_sided, rel=1e-12)


def test_mcnemar_is_vectorised_and_refuses_negative_counts():
    b, c = np.array([[0, 3], [10, 1]]), np.array([[5, 7], [2, 30]])
    out = mcnemar_worse_p(b, c)
    assert out.shape == (2, 2)
    assert out[0, 1] == pytest.approx(mcnemar_worse_p(3, 7))
    with pytest.raises(ValueError, match="counts"):
        mcnemar_worse_p(-1, 2)


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0, 0.2, 7)
        assert np.allclose(holm_adjust(p), multipletests(p, method="holm")[1])
    many = rng.uniform(0, 0.1, (5, 4))
    assert np.allclose(holm_adjust(many)[3], multipletests(many[3], method="holm")[1])
    assert holm_adjust([]).shape == (0,)


def test_paired_counts():
    assert paired_counts([True, True, False, False], [True, False, True, False]) == (1, 1)
    assert paired_counts([True, True, True], [False, False, True]) == (0, 2)


def test_equal_models_pass_every_check():
    labels, prod, cand = table({"a": (40, 3, 3, 4), "b": (40, 2, 2, 6)})
    checks, warnings = gate_checks(labels, prod, cand, min_class_n=50)
    assert list(checks.columns) == CHECK_COLUMNS
    assert checks["passed"].all() and set(checks["result"]) == {"pass"}
    overall = row(checks, "overall: not worse")
    assert overall["n"] == 100 and overall["b"] == 5 and overall["c"] == 5
    assert overall["p_value"] == pytest.approx(binomtest(5, 10, 0.5, alternative="greater").pvalue)
    assert overall["level"] == pytest.approx(0.04)
    assert row(checks, "class a: not worse")["level"] == pytest.approx(0.01)
    # 50 images per class: max_class_drop applies, so no "none has so many" warning.
    assert {"class a: drop at most 20%", "class b: drop at most 20%"} <= set(checks["check"])
    assert not any("max_class_drop" in w for w in warnings)


def test_overall_check_fails_when_worse_beyond_chance():
    # 10 images only production got right, 1 only the candidate: p = P(X >= 10 | Bin(11, 1/2)) = 12/2048.
    labels, prod, cand = table({"a": (20, 1, 5, 4), "b": (20, 0, 5, 5)})
    checks, _ = gate_checks(labels, prod, cand)
    overall = row(checks, "overall: not worse")
    assert overall["p_value"] == pytest.approx(12 / 2048)
    assert overall["result"] == "fail" and not overall["passed"]
    assert row(checks, "class a: not worse")["passed"] and row(checks, "class b: not worse")["passed"]  # each class alone: not significant


def test_overall_check_passes_a_small_unlucky_drop():
    labels, prod, cand = table({"a": (20, 1, 3, 6)})
    checks, _ = gate_checks(labels, prod, cand)
    assert row(checks, "overall: not worse")["p_value"] == pytest.approx(5 / 16)  # P(X >= 3 | Bin(4, 1/2))
    assert checks["passed"].all()


def test_margin_check():
    labels, prod, cand = table({"a": (20, 1, 3, 6)})  # candidate 2 points... of 30 images: -6.7 points
    no_margin, _ = gate_checks(labels, prod, cand)
    assert not no_margin["check"].str.contains("drop at most .* points").any()
    loose, _ = gate_checks(labels, prod, cand, margin=0.10)
    tight, _ = gate_checks(labels, prod, cand, margin=0.05)
    assert row(loose, "overall: drop at most 10.0 points")["passed"]
    failed = row(tight, "overall: drop at most 5.0 points")
    assert not failed["passed"] and failed["level"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="margin"):
        gate_checks(labels, prod, cand, margin=-0.01)


def test_class_check_is_holm_corrected():
    # Class "c" collapses: 12 of its images only production got right (p = 2**-12); others unchanged.
    spec = {"a": (20, 2, 2, 1), "b": (20, 2, 2, 1), "c": (5, 0, 12, 0)}
    labels, prod, cand = table(spec)
    checks, _ = gate_checks(labels, prod, cand)
    c_row = row(checks, "class c")
    assert c_row["p_value"] == pytest.approx(min(1.0, 3 * 2.0 ** -12))  # smallest of 3: times 3
    assert c_row["result"] == "fail" and row(checks, "class a")["passed"]
    assert c_row["production"] == pytest.approx(17 / 17) and c_row["candidate"] == pytest.approx(5 / 17)
    # 8 lost images: p = 2**-8 = 0.0039, times 3 = 0.0117 > 0.01 after Holm: passes.
    labels, prod, cand = table({"a": (20, 2, 2, 1), "b": (20, 2, 2, 1), "c": (5, 0, 8, 0)})
    checks, _ = gate_checks(labels, prod, cand)
    assert row(checks, "class c")["p_value"] == pytest.approx(3 * 2.0 ** -8)
    assert row(checks, "class c")["passed"]


def test_max_class_drop_only_for_large_classes():
    # Class "big" (60 images) drops 25 points but the paired test sees 15 vs 0 among 60: fails both ways.
    labels, prod, cand = table({"big": (40, 0, 15, 5), "small": (3, 0, 2, 0)})
    default, _ = gate_checks(labels, prod, cand, alpha=1e-9)  # tests silenced: only the drop rule
    assert default["passed"].all() and not default["check"].str.contains("drop at most").any()  # 60 < 150
    checks, warnings = gate_checks(labels, prod, cand, alpha=1e-9, min_class_n=50)
    drop = row(checks, "class big: drop at most 20%")
    assert not drop["passed"] and drop["detail"] == "big 92% -> 67%"
    assert not checks["check"].str.startswith("class small: drop").any()  # 5 images: not applied
    relaxed, _ = gate_checks(labels, prod, cand, alpha=1e-9, max_class_drop=0.3, min_class_n=50)
    assert relaxed["passed"].all()
    lowered, _ = gate_checks(labels, prod, cand, alpha=1e-9, min_class_n=5)
    assert not row(lowered, "class small: drop at most 20%")["passed"]
    off, warnings_off = gate_checks(labels, prod, cand, alpha=1e-9, max_class_drop=None, min_class_n=50)
    assert off["passed"].all() and not off["check"].str.contains("drop at most").any()


def test_warnings_name_what_cannot_be_judged():
    labels, prod, cand = table({"a": (4, 0, 1, 0), "b": (30, 1, 1, 3)})
    _, warnings = gate_checks(labels, prod, cand)
    assert any("none has so many" in w for w in warnings)
    small = next(w for w in warnings if "too small to judge" in w)
    assert "a (5)" in small and "b (" not in small


@pytest.mark.parametrize("kwargs,match", [({"alpha": 0}, "alpha"), ({"alpha": 0.7}, "alpha"),
                                           ({"class_share": 1}, "class_share"), ({"max_class_drop": 2}, "max_class_drop"),
                                           ({"min_class_n": 0}, "min_class_n")])
def test_bad_options(kwargs, match):
    labels, prod, cand = table({"a": (4, 0, 1, 0)})
    with pytest.raises(ValueError, match=match):
        gate_checks(labels, prod, cand, **kwargs)


def test_bad_tables():
    with pytest.raises(ValueError, match="one entry per image"):
        gate_checks(["a", "b"], [True], [True, False])
    with pytest.raises(ValueError, match="at least one"):
        gate_checks([], [], [])
