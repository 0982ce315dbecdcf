"""Temperature scaling and calibration error on plain arrays (NumPy; SciPy only to fit).

A softmax model trained to convergence is usually over-confident: among the
images it scores 0.9, fewer than 90% are right. Temperature scaling (Guo et
al., 2017) fixes that with one number per run: the scores are re-computed as
``softmax(log(p) / T)`` with the ``T > 0`` that minimises the negative
log-likelihood (NLL) of a held-out split. ``T > 1`` softens over-confident
scores; the order of the classes (and so every top-k and accuracy) is unchanged.

* :func:`fit_temperature` fits ``T`` (``scipy.optimize.minimize_scalar`` on ``log T``, bounded).
* :func:`fit_calibration` fits it and reports NLL and expected calibration error
  before and after: what training stores in ``config.json["calibration"]``.
* :func:`negative_log_likelihood`, :func:`calibration_error`: the two measures.
* :func:`calibration_edges`, :func:`confidence_buckets`: the confidence buckets
  shared with :func:`imgcls.evaluation.calibration_table`, so a run's stored
  ECE and an evaluation's ECE are the same number on the same images.

This lives in ``core`` because training (which fits ``T``), evaluation, bulk
identification, serving and the benchmarks all need it and may not import one
another; it is pure NumPy (SciPy is imported only inside :func:`fit_temperature`).
Scores are applied with :func:`imgcls.core.scores.calibrate`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from imgcls.core.scores import calibrate

__all__ = [
    "DEFAULT_CALIBRATION_BINS",
    "TEMPERATURE_BOUNDS",
    "calibration_edges",
    "confidence_buckets",
    "negative_log_likelihood",
    "calibration_error",
    "fit_temperature",
    "fit_calibration",
]

#: Confidence buckets of calibration tables and ECE (right-closed, the first one includes 0).
DEFAULT_CALIBRATION_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: The range :func:`fit_temperature` searches.
TEMPERATURE_BOUNDS = (0.05, 20.0)
_EPS = 1e-12  # the clip of imgcls.core.scores.calibrate


def calibration_edges(bins: Any = DEFAULT_CALIBRATION_BINS) -> np.ndarray:
    """Bucket edges on [0, 1] from a number of equal-width buckets or a list of edges.

    Args:
        bins: An int >= 1 (equal-width buckets) or increasing edges within [0, 1].

    Returns:
        The float edges (``len = buckets + 1``).

    Raises:
        ValueError: For anything else.
    """
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"`bins` must be an int >= 1 or a list of edges. Received: bins={bins!r}")
        return np.linspace(0.0, 1.0, int(bins) + 1)
    try:
        edges = np.asarray([float(b) for b in bins])
    except (TypeError, ValueError):
        edges = None
    if edges is None or len(edges) < 2 or np.any(np.diff(edges) <= 0) or edges[0] < 0 or edges[-1] > 1:
        raise ValueError(
            "`bins` must be an int >= 1 (equal-width buckets on [0, 1]) or increasing "
            f"edges within [0, 1], e.g. (0, 0.5, 0.7, 0.9, 1). Received: bins={bins!r}"
        )
    return edges


def confidence_buckets(confidence: Any, edges: Any) -> np.ndarray:
    """The bucket of each confidence: bucket ``i`` holds ``edges[i] < c <= edges[i + 1]``.

    The first bucket also holds ``c == edges[0]``; values outside the edges go
    to the first or last bucket.
    """
    edges = np.asarray(edges, dtype=float)
    conf = np.asarray(confidence, dtype=float)
    return np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, len(edges) - 2)


def _check(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"`probs` must be an (n, n_classes) array of probabilities. Received: shape {p.shape}")
    if y.ndim != 1 or len(y) != len(p):
        raise ValueError(
            f"`labels` must hold one class index per row of `probs` ({len(p)}). Received: shape {y.shape}"
        )
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(
            f"`labels` must be class indices 0..{p.shape[1] - 1} (the column of the true class in "
            f"`probs`). Received: dtype {y.dtype}, values {np.unique(y)[:10].tolist()}"
        )
    if not np.isfinite(p).all():
        raise ValueError("`probs` must be finite probabilities; found NaN or infinity.")
    return p, y.astype(np.int64)


def _log_probs(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, _EPS, 1.0))


def _nll(logp: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logp / temperature
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def negative_log_likelihood(probs: Any, labels: Any, *, temperature: float | None = None) -> float:
    """Mean negative log-likelihood (nats) of the true classes; NaN for no rows.

    Args:
        probs: ``(n, n_classes)`` softmax probabilities.
        labels: ``(n,)`` int index of each row's true class.
        temperature: Score with ``calibrate(probs, temperature)`` (None: as given).
    """
    p, y = _check(probs, labels)
    if not len(y):
        return float("nan")
    return _nll(_log_probs(p), y, 1.0 if temperature is None else float(temperature))


def calibration_error(probs: Any, labels: Any, *, bins: Any = DEFAULT_CALIBRATION_BINS,
                      temperature: float | None = None) -> float:
    """Expected calibration error: the mean |accuracy - confidence| over confidence buckets,
    weighted by bucket size (the top score is the confidence); NaN for no rows.

    The same number as :func:`imgcls.evaluation.expected_calibration_error` of
    :func:`imgcls.evaluation.calibration_table` with the same ``bins``.

    Args:
        probs: ``(n, n_classes)`` probabilities.
        labels: ``(n,)`` int index of each row's true class.
        bins: Bucket edges or a number of equal-width buckets (see :func:`calibration_edges`).
        temperature: Score with ``calibrate(probs, temperature)`` (None: as given).
    """
    p, y = _check(probs, labels)
    edges = calibration_edges(bins)
    if not len(y):
        return float("nan")
    p = calibrate(p, temperature)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    which = confidence_buckets(conf, edges)
    total = 0.0
    for i in np.unique(which):
        mask = which == i
        total += mask.sum() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total / len(y))


def fit_temperature(probs: Any, labels: Any, *, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature ``T`` that minimises the NLL of ``softmax(log(probs) / T)``.

    Fitted on held-out images (a run's validation split), never on the images
    it is judged on. Bounded search on ``log T``; if the search ends no better
    than ``T = 1`` (already calibrated, or too few rows), 1.0 is returned.

    Args:
        probs: ``(n, n_classes)`` softmax probabilities of a model.
        labels: ``(n,)`` int index of each row's true class.
        bounds: ``(low, high)`` range of ``T``.

    Returns:
        ``T > 0`` (``> 1`` for an over-confident model); apply it with
        :func:`imgcls.core.scores.calibrate`.

    Raises:
        ValueError: No rows, or malformed ``probs``/``labels``.

    Example:
        >>> p = np.array([[0.99, 0.01], [0.99, 0.01], [0.99, 0.01], [0.01, 0.99]])
        >>> round(fit_temperature(p, [0, 1, 0, 1]), 1) > 1
        True
    """
    p, y = _check(probs, labels)
    if not len(y):
        raise ValueError("`probs` has no rows: a temperature needs labelled held-out images (e.g. the val split).")
    low, high = (float(b) for b in bounds)
    if not (0 < low < 1 < high):
        raise ValueError(f"`bounds` must satisfy 0 < low < 1 < high. Received: bounds={bounds!r}")
    from scipy.optimize import minimize_scalar

    logp = _log_probs(p)
    res = minimize_scalar(lambda log_t: _nll(logp, y, math.exp(log_t)),
                          bounds=(math.log(low), math.log(high)), method="bounded",
                          options={"xatol": 1e-4})
    t = float(math.exp(res.x))
    return t if _nll(logp, y, t) < _nll(logp, y, 1.0) else 1.0


def fit_calibration(probs: Any, labels: Any, *, fitted_on: str = "val",
                    bins: Any = DEFAULT_CALIBRATION_BINS) -> dict[str, Any]:
    """Fit the temperature and measure what it does on the same images.

    Args:
        probs: ``(n, n_classes)`` softmax probabilities of held-out images.
        labels: ``(n,)`` int index of each row's true class.
        fitted_on: The name of those images (recorded as is).
        bins: Buckets of the ECE (default: the package's calibration buckets).

    Returns:
        ``{"temperature", "fitted_on", "n", "nll_before", "nll_after",
        "ece_before", "ece_after"}`` (plain floats): what a run stores as
        ``config.json["calibration"]``.
    """
    p, y = _check(probs, labels)
    t = fit_temperature(p, y)
    return {
        "temperature": t,
        "fitted_on": str(fitted_on),
        "n": int(len(y)),
        "nll_before": negative_log_likelihood(p, y),
        "nll_after": negative_log_likelihood(p, y, temperature=t),
        "ece_before": calibration_error(p, y, bins=bins),
        "ece_after": calibration_error(p, y, bins=bins, temperature=t),
    }
