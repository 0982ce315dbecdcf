"""Tests for imgcls.core.calibration: temperature scaling and calibration error (no TensorFlow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imgcls import evaluation as ev
from imgcls.core import calibrate
from imgcls.core.calibration import (
    DEFAULT_CALIBRATION_BINS,
    calibration_edges,
    calibration_error,
    fit_calibration,
    fit_temperature,
    negative_log_likelihood,
)
from imgcls.runs import Run


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sharpened(n=4000, k=10, true_t=2.5, seed=0):
    """Labels drawn from softmax(z) (calibrated by construction) and scores softmax(z * true_t)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, k))
    p_true = softmax(z)
    y = np.array([rng.choice(k, p=row) for row in p_true])
    return softmax(z * true_t), y


def test_fit_temperature_recovers_the_sharpening_and_lowers_nll_and_ece():
    probs, y = sharpened()
    t = fit_temperature(probs, y)
    assert t == pytest.approx(2.5, rel=0.1)
    assert negative_log_likelihood(probs, y, temperature=t) < negative_log_likelihood(probs, y)
    assert calibration_error(probs, y, temperature=t) < 0.5 * calibration_error(probs, y)
    # The same as applying calibrate() first.
    assert negative_log_likelihood(calibrate(probs, t), y) == pytest.approx(
        negative_log_likelihood(probs, y, temperature=t), rel=1e-9)


def test_calibrated_scores_keep_t_near_one_and_under_confident_ones_get_t_below_one():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, (4000, 5))
    y = np.array([rng.choice(5, p=row) for row in softmax(z)])
    assert fit_temperature(softmax(z), y) == pytest.approx(1.0, abs=0.12)
    assert fit_temperature(softmax(z / 2), y) == pytest.approx(0.5, rel=0.15)


def test_fit_calibration_reports_before_and_after():
    probs, y = sharpened(n=1500)
    rec = fit_calibration(probs, y, fitted_on="val")
    assert set(rec) == {"temperature", "fitted_on", "n", "nll_before", "nll_after", "ece_before", "ece_after"}
    assert rec["fitted_on"] == "val" and rec["n"] == 1500 and rec["temperature"] > 1
    assert rec["nll_after"] < rec["nll_before"] and rec["ece_after"] < rec["ece_before"]
    json.dumps(rec)  # plain JSON for config.json


def test_a_search_no_better_than_one_returns_one():
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert fit_temperature(probs, [0, 1]) == 1.0


def test_ece_is_the_evaluation_tables_ece():
    probs, y = sharpened(n=800, k=4)
    classes = ["a", "b", "c", "d"]
    labels = np.asarray(classes)[y]
    for bins in (DEFAULT_CALIBRATION_BINS, 15, (0.0, 0.5, 0.8, 1.0)):
        table = ev.calibration_table(labels, probs, classes, bins=bins)
        assert calibration_error(probs, y, bins=bins) == pytest.approx(ev.expected_calibration_error(table))
    assert list(calibration_edges(4)) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_bad_input_says_what_was_expected():
    probs, y = sharpened(n=20, k=3)
    with pytest.raises(ValueError, match="no rows"):
        fit_temperature(np.zeros((0, 3)), [])
    with pytest.raises(ValueError, match="class indices 0..2"):
        fit_temperature(probs, y + 3)
    with pytest.raises(ValueError, match="one class index per row"):
        fit_temperature(probs, y[:5])
    with pytest.raises(ValueError, match=r"\(n, n_classes\)"):
        fit_temperature(probs[0], y[:1])
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature(probs, y, bounds=(2, 5))
    with pytest.raises(ValueError, match="bins"):
        calibration_error(probs, y, bins=(0.5, 0.2))
    assert np.isnan(negative_log_likelihood(np.zeros((0, 3)), np.zeros(0, dtype=int)))


def _run_folder(path, config):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "classes.json").write_text(json.dumps(["a", "b"]))
    return Run(path)


def test_run_temperature_reads_the_stored_calibration(tmp_path):
    cal = {"temperature": 1.7, "fitted_on": "val", "n": 30, "nll_before": 1.0, "nll_after": 0.9,
           "ece_before": 0.1, "ece_after": 0.03}
    run = _run_folder(tmp_path / "r1", {"model": "m", "calibration": cal})
    assert run.temperature == 1.7 and run.calibration == cal
    old = _run_folder(tmp_path / "r2", {"model": "m"})
    assert old.temperature is None and old.calibration is None
    broken = _run_folder(tmp_path / "r3", {"model": "m", "calibration": {"temperature": -1}})
    assert broken.temperature is None


def test_scipy_and_scikit_learn_are_declared_dependencies():
    import re
    import tomllib
    from pathlib import Path

    deps = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\s=<>!~\[;]", d, maxsplit=1)[0].lower() for d in deps["dependencies"]}
    assert {"scipy", "scikit-learn"} <= names
