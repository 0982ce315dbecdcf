"""The rules every slide of the package follows, so that no slide overclaims.

One place for what a report may claim from how much data (the plotting side
of the same rules is in :mod:`imgcls.core.slides`: :func:`~imgcls.core.slides.gapped_line`,
:func:`~imgcls.core.slides.fade_weak`, :func:`~imgcls.core.slides.mark_simulated`):

1. **Thin data claims nothing.** A group (a period, a model version, a
   bucket, a class, a generation...) with fewer than :data:`MIN_JUDGED`
   judged predictions, and a period the data does not cover entirely (the
   first and last of a span are usually partial), is *weak*: drawn faded
   (:data:`~imgcls.core.slides.MUTED`) and never used in a headline
   (:func:`reliable`, :func:`headline_rows`).
2. **Lines break where there is no data**: a series is laid out on every
   period with NaN where a period has none (:func:`with_gaps`), and a line is
   drawn only between two neighbouring periods that are both strong; weak
   points are faded markers, so a version's line is never drawn from a handful.
3. **Every headline states n** (:func:`n_text`, :func:`too_few`).
4. **Simulated traffic is flagged** on every slide that counts it
   (:func:`simulated_note`; the log's ``simulated`` column).

Tables carry the threshold they were made with in ``attrs["min_judged"]``
(:func:`min_judged_of`), so a figure and its finding apply the same one.
Every slide module calls these: the serving reports (:mod:`imgcls.reports.figures`),
the generations and the label-noise slides. No plotting here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int

__all__ = [
    "MIN_JUDGED",
    "check_min_judged",
    "min_judged_of",
    "reliable",
    "mark_reliable",
    "headline_rows",
    "with_gaps",
    "n_text",
    "too_few",
    "simulated_note",
]

#: Fewest judged predictions (correct + wrong) a group needs before a headline
#: may use it. Below 20 a 95% Wilson interval is wider than +-20 points
#: (e.g. 10 of 20 correct: 30% to 70%), so one more verdict moves the number a lot.
MIN_JUDGED = 20


def check_min_judged(value: Any) -> int:
    """``value`` as a valid threshold (an int >= 1), with the package's one message shape."""
    return check_int(value, "min_judged", 1, fix="pass e.g. min_judged=20 (imgcls.reports.MIN_JUDGED)")


def min_judged_of(table: pd.DataFrame, default: int | None = None) -> int:
    """The threshold a table was made with (``attrs["min_judged"]``), else ``default`` or :data:`MIN_JUDGED`."""
    value = table.attrs.get("min_judged") if isinstance(table, pd.DataFrame) else None
    return int(value) if value else int(default or MIN_JUDGED)


def reliable(n: Any, *, complete: Any = None, min_n: int = MIN_JUDGED) -> np.ndarray:
    """Which groups may carry a claim: at least ``min_n`` judged, and complete.

    Args:
        n: Judged predictions (or images measured) per group; NaN counts as 0.
        complete: Per group, whether its period is fully covered by the data
            (None: not a period, always complete).
        min_n: The threshold (default :data:`MIN_JUDGED`).

    Returns:
        A bool array, one per group.
    """
    counts = np.nan_to_num(np.asarray(pd.to_numeric(pd.Series(np.asarray(n, dtype=object).ravel()),
                                                    errors="coerce"), dtype=float))
    ok = counts >= check_int(min_n, "min_n", 1)
    if complete is not None:
        ok &= np.asarray(complete, dtype=bool).ravel()
    return ok


def mark_reliable(table: pd.DataFrame, *, n: str = "judged", complete: str | None = "complete",
                  min_n: int | None = None) -> pd.DataFrame:
    """A copy of ``table`` with a bool column ``reliable`` (see :func:`reliable`).

    Args:
        table: A table with a count column ``n`` (and a ``complete`` column for periods).
        n: The count column.
        complete: The completeness column (ignored when the table has none).
        min_n: The threshold; default: the table's own (:func:`min_judged_of`).
    """
    out = table.copy()
    done = out[complete] if complete and complete in out.columns else None
    out["reliable"] = reliable(out[n] if len(out) else [], complete=done if len(out) else None,
                               min_n=min_n or min_judged_of(table))
    return out


def headline_rows(table: pd.DataFrame, **options: Any) -> pd.DataFrame:
    """Only the rows a headline may use (:func:`mark_reliable` options), in their order."""
    marked = mark_reliable(table, **options)
    return marked[marked["reliable"]].drop(columns="reliable")


def with_gaps(positions: Sequence[int], values: Sequence[float], length: int) -> np.ndarray:
    """Values laid out on ``length`` slots (e.g. every period of a span), NaN where there is none.

    A line drawn through the result breaks at every slot without data
    instead of joining its neighbours across it.
    """
    out = np.full(int(length), np.nan)
    idx = np.asarray(positions, dtype=int)
    if len(idx):
        out[idx] = np.asarray(values, dtype=float)
    return out


def n_text(n: Any, what: str = "judged") -> str:
    """``"n=1,234 judged"``: the count a headline states."""
    return f"n={int(np.nan_to_num(float(n))):,} {what}".rstrip()


def too_few(what: str, total: Any, *, min_n: int, per: str = "", unit: str = "judged predictions",
            extra: str = "") -> str:
    """The headline when nothing is strong enough to claim anything, with n.

    >>> too_few("a trend", 14, min_n=20, per="complete week", extra=" (64.3% correct)")
    'Too few judged predictions for a trend: 14 in all (64.3% correct); no complete week has 20+'
    """
    where = f"no {per} has {min_n}+" if per else f"fewer than {min_n} so far"
    return f"Too few {unit} for {what}: {int(np.nan_to_num(float(total))):,} in all{extra}; {where}"


def simulated_note(n_simulated: int, n_total: int, what: str = "requests") -> str | None:
    """The flag of a slide whose data includes simulated (demo) traffic; None when it has none.

    Args:
        n_simulated: Simulated rows counted by the slide (the log's ``simulated`` flag).
        n_total: All rows it counts.
        what: What is counted ("requests", "evaluations", ...).
    """
    n_simulated, n_total = int(n_simulated or 0), int(n_total or 0)
    if n_simulated <= 0:
        return None
    if n_simulated >= n_total:
        return f"Simulated: all {n_total:,} {what} are demo traffic"
    return f"Simulated: {n_simulated:,} of {n_total:,} {what} are demo traffic"
