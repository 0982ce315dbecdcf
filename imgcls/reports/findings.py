"""The finding of each report, as one sentence: the title of its slide and a line of the summary.

Each ``_*_finding(table)`` reads only the table its report returns (and the
period attributes the table carries), so a figure states the same finding
as the summary. Growth compares complete periods, so a half-finished
current week does not read as a collapse; a difference whose 95% intervals
overlap is said to be within the margin of error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imgcls.reports.counts import _add_accuracy
from imgcls.reports.periods import _FREQ_ADJECTIVE, _freq_of, _periods_of

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
    """Accuracy per period over all versions of an accuracy-over-time table."""
    overall = table.groupby(["period", "label"], sort=True)[["correct", "wrong", "unsure"]].sum()
    return _add_accuracy(overall.reset_index())


def _usage_finding(table: pd.DataFrame) -> str:
    freq = _freq_of(table)
    totals = _usage_totals(table)
    if totals["requests"].sum() == 0:
        return "No requests logged yet"
    if len(totals) == 1:
        row = totals.iloc[0]
        return f"{row.requests:,} requests in {row.label}"
    pool = totals[totals["complete"]]
    if len(pool) < 2:
        pool = totals
    first, last = pool.iloc[0], pool.iloc[-1]
    adjective = _FREQ_ADJECTIVE[freq]
    if first.requests == 0:
        return f"{adjective} requests rose from 0 in {first.label} to {last.requests:,} in {last.label}"
    change = last.requests / first.requests - 1
    if round(change * 100) == 0:
        return f"{adjective} requests held steady at about {last.requests:,} from {first.label} to {last.label}"
    verb = "grew" if change > 0 else "fell"
    return f"{adjective} requests {verb} {abs(change) * 100:.0f}% from {first.label} to {last.label}"


def _accuracy_time_finding(table: pd.DataFrame) -> str:
    overall = _overall_by_period(table)
    overall = overall[overall["judged"] > 0]
    if not len(overall):
        return "No evaluated predictions yet"
    first, last = overall.iloc[0], overall.iloc[-1]
    if len(overall) == 1:
        return f"Accuracy was {_pct(first.accuracy)} in {first.label} ({first.judged:,} judged)"
    diff = round((last.accuracy - first.accuracy) * 100, 1)
    if diff == 0:
        return f"Accuracy held at {_pct(last.accuracy)} from {first.label} to {last.label}"
    verb = "rose" if diff > 0 else "fell"
    return f"Accuracy {verb} from {_pct(first.accuracy)} in {first.label} to {_pct(last.accuracy)} in {last.label}"


def _version_finding(table: pd.DataFrame) -> str:
    judged = table[table["judged"] > 0]
    if not len(judged):
        return "No evaluated predictions yet"
    new = judged.iloc[-1]
    if len(judged) == 1:
        return f"{new.model_version} is {_pct(new.accuracy)} accurate ({new.judged:,} judged predictions)"
    old = judged.iloc[-2]
    points = round((new.accuracy - old.accuracy) * 100, 1)
    if points == 0:
        return f"{new.model_version} and {old.model_version} are equally accurate ({_pct(new.accuracy)})"
    more = "more" if points > 0 else "less"
    text = (f"{new.model_version} is {abs(points):.1f} points {more} accurate than {old.model_version} "
            f"({_pct(new.accuracy)} vs {_pct(old.accuracy)})")
    # Overlapping 95% intervals: say so, so a small sample is not over-read.
    if new.ci_low <= old.ci_high and old.ci_low <= new.ci_high:
        text += ", within the margin of error"
    return text


def _confidence_finding(table: pd.DataFrame) -> str:
    judged = table[table["judged"] > 0]
    if not len(judged):
        return "No evaluated predictions yet"
    low, high = judged.iloc[0], judged.iloc[-1]
    if len(judged) == 1:
        return f"Predictions with confidence {high.bucket} are {_pct(high.accuracy)} accurate"
    if round((high.accuracy - low.accuracy) * 100, 1) > 0:
        head = "Accuracy rises with confidence"
    else:
        head = "Accuracy does not rise with confidence"
    return f"{head}: {_pct(low.accuracy)} at {low.bucket} vs {_pct(high.accuracy)} at {high.bucket}"


def _class_finding(table: pd.DataFrame, *, min_judged: int = 5) -> str:
    by = table.attrs.get("by", "predicted")
    judged = table[table["judged"] > 0]
    if not len(judged):
        return "No evaluated predictions yet" if by == "predicted" else "No true classes known yet"
    pool = judged[judged["judged"] >= min_judged]
    pool = pool if len(pool) else judged
    worst = pool.sort_values(["accuracy", "judged"], ascending=[True, False], kind="stable").iloc[0]
    best = pool.sort_values(["accuracy", "judged"], ascending=[False, False], kind="stable").iloc[0]
    kind = "predicted class" if by == "predicted" else "true class"
    if len(pool) == 1:
        return f"{kind.capitalize()} {worst['class']} is {_pct(worst.accuracy)} accurate ({worst.judged:,} judged)"
    if worst.accuracy == best.accuracy:
        return f"Every {kind} is {_pct(worst.accuracy)} accurate"
    return (f"Weakest {kind}: {worst['class']} at {_pct(worst.accuracy)} ({worst.judged:,} judged); "
            f"best: {best['class']} at {_pct(best.accuracy)}")


def _share_finding(table: pd.DataFrame) -> str:
    served, evaluated = int(table["served"].sum()), int(table["evaluated"].sum())
    if served == 0:
        return "No predictions served yet"
    text = f"{_pct(evaluated / served)} of served predictions were evaluated ({evaluated:,} of {served:,})"
    shares = table["share"].dropna()
    if len(shares) > 1:
        word = _FREQ_ADJECTIVE[_freq_of(table)].lower()
        text += f"; {word} {_pct(shares.min())} to {_pct(shares.max())}"
    return text
