"""Day and period arithmetic of the reports: UTC days, ISO weeks, calendar months.

A day is a UTC day, held as an int: days since 1970-01-01. A week starts on
Monday and is labelled by its ISO week (``2025-W02``); a month is a calendar
month (``2025-01``). A period is ``complete`` when it lies entirely inside
the report's span (first to last day).

Tables made per period keep the period length in ``attrs["freq"]`` and every
period of the span (the empty ones too) in ``attrs["periods"]``, so figures
and findings read them back from the table alone.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import pandas as pd

from imgcls.translog import to_utc_micros

__all__ = ["FREQS"]

#: Period lengths the over-time reports accept.
FREQS = ("day", "week", "month")
_FREQ_ALIASES = {"d": "day", "daily": "day", "w": "week", "weekly": "week",
                 "m": "month", "monthly": "month"}
_FREQ_ADJECTIVE = {"day": "Daily", "week": "Weekly", "month": "Monthly"}
_US_PER_DAY = 86_400_000_000
_EPOCH_DAY = np.datetime64("1970-01-01", "D")


# --------------------------------------------------------------------------
# days
# --------------------------------------------------------------------------
def _day_number(value: Any, name: str) -> int | None:
    """The UTC day number of a date, datetime or ISO string (None stays None)."""
    if value is None:
        return None
    return to_utc_micros(value, name=name) // _US_PER_DAY


def _days_of(times: pd.Series) -> np.ndarray:
    """UTC day numbers (int64) of a tz-aware datetime Series."""
    values = pd.DatetimeIndex(times).tz_convert(None).values
    return values.astype("datetime64[D]").astype(np.int64)


def _day_start(day: int) -> pd.Timestamp:
    """Midnight UTC at the start of day number ``day``."""
    return pd.Timestamp(_EPOCH_DAY + day, tz="UTC")


def _day_text(day: int | None) -> str:
    """ISO date of a day number ("-" for None)."""
    return "-" if day is None else (_dt.date(1970, 1, 1) + _dt.timedelta(days=int(day))).isoformat()


# --------------------------------------------------------------------------
# periods
# --------------------------------------------------------------------------
def _freq(freq: str) -> str:
    """``freq`` as one of :data:`FREQS` (aliases such as "D" or "weekly" allowed)."""
    key = str(freq).lower()
    key = _FREQ_ALIASES.get(key, key)
    if key not in FREQS:
        raise ValueError(f"`freq` must be one of {FREQS}. Received: freq={freq!r}")
    return key


def _period_start(days: np.ndarray, freq: str) -> np.ndarray:
    """First day of the period holding each day."""
    days = np.asarray(days, dtype=np.int64)
    if freq == "day":
        return days
    if freq == "week":  # 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays
        return days - (days + 3) % 7
    months = (_EPOCH_DAY + days).astype("datetime64[M]")
    return (months.astype("datetime64[D]") - _EPOCH_DAY).astype(np.int64)


def _period_end(starts: np.ndarray, freq: str) -> np.ndarray:
    """Exclusive end day of each period."""
    starts = np.asarray(starts, dtype=np.int64)
    if freq == "day":
        return starts + 1
    if freq == "week":
        return starts + 7
    months = (_EPOCH_DAY + starts).astype("datetime64[M]") + 1
    return (months.astype("datetime64[D]") - _EPOCH_DAY).astype(np.int64)


def _period_label(start: int, freq: str) -> str:
    day = _dt.date(1970, 1, 1) + _dt.timedelta(days=int(start))
    if freq == "day":
        return day.isoformat()
    if freq == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def _periods(first_day: int | None, last_day: int | None, freq: str) -> pd.DataFrame:
    """Every period of the span: period (UTC), label, start (day), complete."""
    if first_day is None:
        starts = np.array([], dtype=np.int64)
    else:
        starts = np.unique(_period_start(np.arange(first_day, last_day + 1), freq))
    ends = _period_end(starts, freq)
    complete = (starts >= (first_day or 0)) & (ends - 1 <= (last_day or 0))
    return pd.DataFrame({
        "period": pd.to_datetime((_EPOCH_DAY + starts).astype("datetime64[s]"), utc=True),
        "label": pd.Series([_period_label(s, freq) for s in starts], dtype="str"),
        "start": starts,
        "complete": complete.astype(bool),
    })


# --------------------------------------------------------------------------
# periods kept with a table
# --------------------------------------------------------------------------
def _periods_attr(periods: pd.DataFrame) -> tuple:
    """Every period of the span as plain tuples (kept in ``attrs``: also the empty ones)."""
    return tuple(zip(periods["period"].map(pd.Timestamp.isoformat), periods["label"],
                     periods["complete"].astype(bool).tolist()))


def _periods_of(table: pd.DataFrame) -> pd.DataFrame | None:
    """The periods a table keeps in ``attrs`` (None when it keeps none)."""
    periods = table.attrs.get("periods")
    if not periods:
        return None
    frame = pd.DataFrame(periods, columns=["period", "label", "complete"])
    frame["period"] = pd.to_datetime(frame["period"], utc=True)
    return frame.astype({"label": "str", "complete": bool})


def _freq_of(table: pd.DataFrame) -> str:
    """The period length of a table: its ``attrs["freq"]``, else guessed from its labels."""
    freq = table.attrs.get("freq")
    if freq in FREQS:
        return freq
    labels = table["label"].astype(str) if "label" in table else pd.Series([], dtype=str)
    if len(labels) and labels.str.contains("-W").all():
        return "week"
    if len(labels) and labels.str.len().eq(7).all():
        return "month"
    return "day"
