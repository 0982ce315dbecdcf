"""The finding of each report, as one sentence: the title of its slide and a line of the summary.

Each ``_*_finding(table)`` reads only the table its report returns (and the
period attributes the table carries), so a figure states the same finding
as the summary. They follow :mod:`imgcls.reports.rules`: a headline uses
only strong groups -- complete periods, and groups with at least the
table's ``min_judged`` judged predictions -- and states its n; when nothing
is strong enough it says so instead of claiming anything. A difference whose
95% intervals overlap is said to be within the margin of error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imgcls.reports.counts import _add_accuracy
from imgcls.reports.periods import _FREQ_ADJECTIVE, _freq_of, _periods_of
from imgcls.reports.rules import headline_rows, min_judged_of, n_text, too_few

__all__: list[str] = []


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _usage_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Requests and failures per period of a usage table (every period of its span)."""
    periods = _periods_of(table)
    totals = table.groupby(["period", "label"], sort=True)[["requests", "failed"]].sum()
    totals = totals.reset_index()
    complete = table.groupby("period")["complete"].first()
    if periods is not None:
        totals = periods.merge(totals, on=["period", "label"], how="left").fillna(
            {"requests": 0, "failed": 0})
    else:
        totals["complete"] = complete.reindex(totals["period"]).to_numpy(dtype=bool)
    return totals.astype({"requests": np.int64, "failed": np.int64})


def _overall_by_period(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per period over all versions of an accuracy-over-time table (with ``complete``)."""
    overall = table.groupby(["period", "label"], sort=True)[["correct", "wrong", "unsure"]].sum()
    overall = _add_accuracy(overall.reset_index())
    complete = table.groupby("period")["complete"].all() if "complete" in table else None
    overall["complete"] = (complete.reindex(overall["period"]).to_numpy(dtype=bool) if complete is not None
                           else np.ones(len(overall), bool))
    return overall


def _usage_finding(table: pd.DataFrame) -> str:
    freq = _freq_of(table)
    totals = _usage_totals(table)
    total = int(totals["requests"].sum())
    if total == 0:
        return "No requests logged yet"
    pool = totals[totals["complete"]]  # a partial period is never compared
    if len(pool) < 2:
        first, last = totals.iloc[0], totals.iloc[-1]
        if len(totals) == 1:
            return f"{total:,} requests in {first.label}" + ("" if len(pool) else f" (a partial {freq})")
        return f"{total:,} requests from {first.label} to {last.label}; too few complete {freq}s for a trend"
    first, last = pool.iloc[0], pool.iloc[-1]
    adjective = _FREQ_ADJECTIVE[freq]
    counts = f"({first.requests:,} to {last.requests:,} requests)"
    if first.requests == 0:
        return f"{adjective} requests rose from 0 in {first.label} to {last.requests:,} in {last.label}"
    change = last.requests / first.requests - 1
    if round(change * 100) == 0:
        return (f"{adjective} requests held steady at about {last.requests:,} from {first.label} "
                f"to {last.label} ({first.requests:,} to {last.requests:,} requests)")
    verb = "grew" if change > 0 else "fell"
    return f"{adjective} requests {verb} {abs(change) * 100:.0f}% from {first.label} to {last.label} {counts}"


def _accuracy_time_finding(table: pd.DataFrame) -> str:
    freq, min_n = _freq_of(table), min_judged_of(table)
    overall = _overall_by_period(table)
    overall = overall[overall["judged"] > 0]
    if not len(overall):
        return "No evaluated predictions yet"
    strong = headline_rows(overall, min_n=min_n)
    if not len(strong):
        judged = int(overall["judged"].sum())
        acc = overall["correct"].sum() / judged
        return too_few("a trend", judged, min_n=min_n, per=f"complete {freq}", extra=f" ({_pct(acc)} correct)")
    first, last = strong.iloc[0], strong.iloc[-1]
    if len(strong) == 1:
        return (f"Accuracy was {_pct(first.accuracy)} in {first.label} ({n_text(first.judged)}), "
                f"the only complete {freq} with {min_n}+ judged")
    diff = round((last.accuracy - first.accuracy) * 100, 1)
    if diff == 0:
        return (f"Accuracy held at {_pct(last.accuracy)} from {first.label} to {last.label} "
                f"({n_text(first.judged)}, {n_text(last.judged)})")
    verb = "rose" if diff > 0 else "fell"
    return (f"Accuracy {verb} from {_pct(first.accuracy)} in {first.label} ({n_text(first.judged)}) "
            f"to {_pct(last.accuracy)} in {last.label} ({n_text(last.judged)})")


def _version_finding(table: pd.DataFrame) -> str:
    min_n = min_judged_of(table)
    judged = table[table["judged"] > 0]
    if not len(judged):
        return "No evaluated predictions yet"
    strong = headline_rows(judged, complete=None, min_n=min_n)
    if not len(strong):
        return too_few("comparing model versions", judged["judged"].sum(), min_n=min_n, per="version")
    new = strong.iloc[-1]
    if len(strong) == 1:
        return f"{new.model_version} is {_pct(new.accuracy)} accurate ({n_text(new.judged)} predictions)"
    old = strong.iloc[-2]
    points = round((new.accuracy - old.accuracy) * 100, 1)
    if points == 0:
        return (f"{new.model_version} and {old.model_version} are equally accurate ({_pct(new.accuracy)}; "
                f"{n_text(new.judged)}, {n_text(old.judged)})")
    more = "more" if points > 0 else "less"
    text = (f"{new.model_version} is {abs(points):.1f} points {more} accurate than {old.model_version} "
            f"({_pct(new.accuracy)} of {new.judged:,} vs {_pct(old.accuracy)} of {old.judged:,} judged)")
    # Overlapping 95% intervals: say so, so a small sample is not over-read.
    if new.ci_low <= old.ci_high and old.ci_low <= new.ci_high:
        text += ", within the margin of error"
    return text


def _confidence_finding(table: pd.DataFrame) -> str:
    min_n = min_judged_of(table)
    judged = table[table["judged"] > 0]
    if not len(judged):
        return "No evaluated predictions yet"
    strong = headline_rows(judged, complete=None, min_n=min_n)
    if not len(strong):
        return too_few("accuracy by confidence", judged["judged"].sum(), min_n=min_n, per="confidence bucket")
    low, high = strong.iloc[0], strong.iloc[-1]
    if len(strong) == 1:
        return f"Predictions with confidence {high.bucket} are {_pct(high.accuracy)} accurate ({n_text(high.judged)})"
    if round((high.accuracy - low.accuracy) * 100, 1) > 0:
        head = "Accuracy rises with confidence"
    else:
        head = "Accuracy does not rise with confidence"
    return (f"{head}: {_pct(low.accuracy)} at {low.bucket} ({n_text(low.judged)}) vs "
            f"{_pct(high.accuracy)} at {high.bucket} ({n_text(high.judged)})")


def _class_finding(table: pd.DataFrame, *, min_judged: int | None = None) -> str:
    by = table.attrs.get("by", "predicted")
    min_n = min_judged or min_judged_of(table)
    judged = table[table["judged"] > 0]
    if not len(judged):
        return "No evaluated predictions yet" if by == "predicted" else "No true classes known yet"
    kind = "predicted class" if by == "predicted" else "true class"
    pool = headline_rows(judged, complete=None, min_n=min_n)
    if not len(pool):
        return too_few(f"accuracy by {kind}", judged["judged"].sum(), min_n=min_n, per=kind)
    worst = pool.sort_values(["accuracy", "judged"], ascending=[True, False], kind="stable").iloc[0]
    best = pool.sort_values(["accuracy", "judged"], ascending=[False, False], kind="stable").iloc[0]
    if len(pool) == 1:
        return f"{kind.capitalize()} {worst['class']} is {_pct(worst.accuracy)} accurate ({n_text(worst.judged)})"
    if worst.accuracy == best.accuracy:
        return f"Every {kind} with {min_n}+ judged is {_pct(worst.accuracy)} accurate ({n_text(pool['judged'].sum())})"
    return (f"Weakest {kind}: {worst['class']} at {_pct(worst.accuracy)} ({n_text(worst.judged)}); "
            f"best: {best['class']} at {_pct(best.accuracy)} ({n_text(best.judged)})")


def _share_finding(table: pd.DataFrame) -> str:
    served, evaluated = int(table["served"].sum()), int(table["evaluated"].sum())
    if served == 0:
        return "No predictions served yet"
    text = f"{_pct(evaluated / served)} of served predictions were evaluated ({evaluated:,} of {served:,})"
    done = table[table["complete"].astype(bool)] if "complete" in table else table
    shares = done["share"].dropna()  # partial periods are never part of a range claimed
    if len(shares) > 1:
        word = _FREQ_ADJECTIVE[_freq_of(table)].lower()
        text += f"; {word} {_pct(shares.min())} to {_pct(shares.max())} in complete {_freq_of(table)}s"
    return text
