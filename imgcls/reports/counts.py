"""Counting verdicts: accuracy with its 95% Wilson interval.

accuracy = correct / (correct + wrong). ``unsure`` verdicts are excluded from
accuracy and counted in an ``unsure`` column; ``judged`` is correct + wrong
and ``evaluated`` is judged + unsure. ``ci_low`` / ``ci_high`` bound a 95%
Wilson score interval (NaN where nothing was judged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__: list[str] = []

#: The counting columns every accuracy table has, in this order.
_COUNT_COLUMNS = ["evaluated", "judged", "correct", "wrong", "unsure",
                  "accuracy", "ci_low", "ci_high"]


def _wilson(correct: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``correct`` successes in ``n`` trials (NaN where n is 0)."""
    correct = np.asarray(correct, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = correct / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        low = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        high = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return low, high


def _add_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Add judged, evaluated, accuracy, ci_low, ci_high to a frame of correct, wrong, unsure."""
    df["judged"] = df["correct"] + df["wrong"]
    df["evaluated"] = df["judged"] + df["unsure"]
    with np.errstate(divide="ignore", invalid="ignore"):
        df["accuracy"] = np.where(df["judged"] > 0, df["correct"] / df["judged"].where(df["judged"] > 0, 1), np.nan)
    df["ci_low"], df["ci_high"] = _wilson(df["correct"], df["judged"])
    return df


def _verdict_counts(ev: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per key: evaluated, judged, correct, wrong, unsure, accuracy, ci_low, ci_high."""
    verdict = ev["verdict"]
    counts = ev[keys].assign(
        correct=(verdict == "correct").to_numpy(np.int64),
        wrong=(verdict == "wrong").to_numpy(np.int64),
        unsure=(verdict == "unsure").to_numpy(np.int64),
    )
    grouped = counts.groupby(keys, observed=True, sort=True)[["correct", "wrong", "unsure"]].sum()
    return _add_accuracy(grouped.reset_index())


def _empty_counts(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every count zero (and accuracy NaN)."""
    for col in ("correct", "wrong", "unsure"):
        df[col] = np.zeros(len(df), dtype=np.int64)
    return _add_accuracy(df)
