"""Reports: usage and accuracy of the served models, as tables and slide-ready figures.

Everything here is computed from the transaction log (:mod:`imgcls.translog`)
and, for context, the plain JSON metadata of the runs that served
(``runs/<run_id>/config.json``, ``classes.json``, ``metrics.json``). Nothing
imports TensorFlow or Keras, so a report rebuilds on a laptop from a copy of
the workspace's ``serving.sqlite`` and ``runs/*/*.json``.

Each report is a function returning a DataFrame and a ``plot_*`` function
turning that DataFrame into a matplotlib Figure for a slide (16:9, large
text, a title that states the finding computed from the data, one colour per
model version everywhere)::

    usage_over_time        requests per day / week / month and model version
    accuracy_over_time     accuracy of evaluated predictions per period and version
    accuracy_by_version    accuracy per model version (with offline test accuracy)
    accuracy_by_confidence accuracy per top-1 confidence bucket (calibration-like)
    accuracy_by_class      accuracy per predicted class, or per true class where known
    evaluated_share        share of served predictions that were evaluated
    summary_table          the headline numbers and every finding

:func:`export_deck` writes all figures (PNG, SVG, PDF), all tables (CSV) and a
one-page summary (``summary.md`` plus the summary figure) into
``<workspace>/reports/<UTC date>/``.

Definitions used throughout:

* Times are UTC; a day is a UTC day, a week starts on Monday (ISO week labels
  such as ``2025-W02``), a month is a calendar month.
* Usage counts every request (``ok`` and ``failed``); accuracy and the
  evaluated share count served predictions (``ok``).
* A prediction's *period* is when it was served, not when it was judged.
* One verdict per transaction: its latest evaluation.
* accuracy = correct / (correct + wrong). ``unsure`` verdicts are excluded
  from accuracy and counted in an ``unsure`` column; ``judged`` is
  correct + wrong. ``ci_low`` / ``ci_high`` are 95% Wilson intervals.
* A period is ``complete`` when it lies entirely inside the report's span
  (first to last day); growth in titles compares complete periods, so a
  half-finished current week does not read as a collapse.

Speed: usage comes from an index-only ``GROUP BY`` in SQLite; only evaluated
transactions (a few percent of the log) are read into pandas, and only the
columns the reports need. :func:`load_report_data` reads once; pass its result
to every table function to avoid reading again.

Figures are created as bare :class:`matplotlib.figure.Figure` objects (not
through ``pyplot``), so nothing here selects or changes the matplotlib
backend: saving works headless (Agg / PDF / SVG canvases), and in a notebook
a returned figure displays inline with whatever backend is active.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from imgcls.core.workspace import Workspace
from imgcls.translog import TransactionLog, to_utc_micros

__all__ = [
    "FREQS",
    "DEFAULT_CONFIDENCE_BUCKETS",
    "SLIDE_SIZE",
    "ReportData",
    "load_report_data",
    "run_metadata",
    "version_order",
    "version_colors",
    "usage_over_time",
    "accuracy_over_time",
    "accuracy_by_version",
    "accuracy_by_confidence",
    "accuracy_by_class",
    "evaluated_share",
    "summary_table",
    "plot_usage_over_time",
    "plot_accuracy_over_time",
    "plot_accuracy_by_version",
    "plot_accuracy_by_confidence",
    "plot_accuracy_by_class",
    "plot_evaluated_share",
    "plot_summary",
    "build_tables",
    "build_figures",
    "export_deck",
]

#: Period lengths the over-time reports accept.
FREQS = ("day", "week", "month")
_FREQ_ALIASES = {"d": "day", "daily": "day", "w": "week", "weekly": "week",
                 "m": "month", "monthly": "month"}
_FREQ_ADJECTIVE = {"day": "Daily", "week": "Weekly", "month": "Monthly"}
#: Bucket edges for :func:`accuracy_by_confidence` (the last bucket includes 1.0).
DEFAULT_CONFIDENCE_BUCKETS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
#: Figure size of every slide (inches, 16:9).
SLIDE_SIZE = (13.33, 7.5)
#: Colour-blind-safe colours given to model versions in order (seaborn
#: "colorblind" without its grey, which marks totals); then tab20.
_PALETTE = (
    "#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
    "#ca9161", "#fbafe4", "#56b4e9", "#ece133",
)
_NEUTRAL = "#4d4d4d"
_ACCENT = "#0173b2"
_US_PER_DAY = 86_400_000_000
_EPOCH_DAY = np.datetime64("1970-01-01", "D")
_COUNT_COLUMNS = ["evaluated", "judged", "correct", "wrong", "unsure",
                  "accuracy", "ci_low", "ci_high"]
_RC = {
    "font.size": 16,
    "axes.titlesize": 16,
    "axes.labelsize": 18,
    "xtick.labelsize": 15,
    "ytick.labelsize": 15,
    "legend.fontsize": 15,
    "legend.title_fontsize": 15,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "svg.hashsalt": "imgcls",
}
_TITLE_SIZE = 24
_TITLE_WRAP = 66
_SUBTITLE_WRAP = 105


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportData:
    """What the reports need from a log, read once.

    Attributes:
        usage: Requests per UTC day and version: day (int, days since
            1970-01-01), model_version, requests, ok, failed.
        evaluated: One row per evaluated transaction (its latest verdict):
            transaction_id, day (int), model_version, run_id, top1_class,
            top1_score, verdict, true_class.
        versions: Every model version in the log, in first-seen order (the
            order, and so the colours, of every figure).
        version_runs: {model_version: run id that first served it}.
        runs: Run metadata of the runs in the log (see :func:`run_metadata`).
        first_day, last_day: The report's span as day numbers (None when the
            log is empty).
        include_simulated: Whether demo traffic is included.
        log_path: The SQLite file read.
        root: The workspace folder (reports go to ``root/reports``).
    """

    usage: pd.DataFrame
    evaluated: pd.DataFrame
    versions: tuple[str, ...]
    version_runs: Mapping[str, str]
    runs: pd.DataFrame
    first_day: int | None
    last_day: int | None
    include_simulated: bool
    log_path: Path
    root: Path


def _day_number(value: Any, name: str) -> int | None:
    if value is None:
        return None
    return to_utc_micros(value, name=name) // _US_PER_DAY


def _days_of(times: pd.Series) -> np.ndarray:
    """UTC day numbers (int64) of a tz-aware datetime Series."""
    values = pd.DatetimeIndex(times).tz_convert(None).values
    return values.astype("datetime64[D]").astype(np.int64)


def _open_log(source: Any) -> tuple[TransactionLog, bool, Path]:
    """(log, opened_here, workspace root) for a Workspace, folder, file or log."""
    if isinstance(source, TransactionLog):
        return source, False, source.path.parent
    if isinstance(source, Workspace):
        return TransactionLog(source, create=False), True, source.root
    if isinstance(source, (str, os.PathLike)):
        log = TransactionLog(source, create=False)
        return log, True, log.path.parent
    raise ValueError(
        "`source` must be a Workspace, a workspace folder, a serving.sqlite path, a "
        f"TransactionLog or ReportData. Received: {type(source).__name__}"
    )


def load_report_data(
    source: Any,
    *,
    first_day: Any = None,
    last_day: Any = None,
    include_simulated: bool = True,
) -> ReportData:
    """Read what every report needs from a log, once.

    Args:
        source: A :class:`~imgcls.core.Workspace`, workspace folder,
            ``serving.sqlite`` path, open :class:`~imgcls.translog.TransactionLog`
            (left open) or a :class:`ReportData` (returned as is).
        first_day: First UTC day of the report (inclusive; date, datetime or
            ISO string). Default: the first day in the log.
        last_day: Last UTC day of the report (inclusive). Default: the last day
            in the log.
        include_simulated: False leaves out demo traffic and demo evaluations.

    Returns:
        A :class:`ReportData`.
    """
    if isinstance(source, ReportData):
        if first_day is not None or last_day is not None or include_simulated is not True:
            raise ValueError(
                "Filters (first_day, last_day, include_simulated) are fixed when ReportData "
                "is loaded. Pass them to load_report_data(...) instead."
            )
        return source
    fd, ld = _day_number(first_day, "first_day"), _day_number(last_day, "last_day")
    if fd is not None and ld is not None and fd > ld:
        raise ValueError(
            f"`first_day` must not be after `last_day`. Received: first_day={first_day!r}, "
            f"last_day={last_day!r}"
        )
    log, owned, root = _open_log(source)
    try:
        usage = log.usage_by_day(first_day=first_day, last_day=last_day,
                                 include_simulated=include_simulated)
        since = None if fd is None else pd.Timestamp(_EPOCH_DAY + fd, tz="UTC")
        until = None if ld is None else pd.Timestamp(_EPOCH_DAY + ld + 1, tz="UTC")
        ev = log.evaluated_transactions(
            since=since, until=until, include_simulated=include_simulated,
            columns=["transaction_id", "time", "model_version", "run_id", "top1_class",
                     "top1_score", "verdict", "true_class"],
        )
        known = log.model_versions()
        log_path = log.path
    finally:
        if owned:
            log.close()
    usage = usage.assign(day=_days_of(usage["day"]))
    ev.insert(1, "day", _days_of(ev["time"]))
    ev = ev.drop(columns="time")
    versions = list(known["model_version"])
    extra = set(usage["model_version"]) | set(ev["model_version"])
    versions += version_order(extra - set(versions))
    firsts = ev.drop_duplicates("model_version")
    version_runs = dict(zip(firsts["model_version"], firsts["run_id"]))
    version_runs.update(zip(known["model_version"], known["run_id"]))
    run_ids = list(dict.fromkeys(version_runs.values()))
    if fd is None and len(usage):
        fd = int(usage["day"].min())
    if ld is None and len(usage):
        ld = int(usage["day"].max())
    return ReportData(
        usage=usage, evaluated=ev, versions=tuple(versions), version_runs=version_runs,
        runs=run_metadata(root, run_ids=run_ids), first_day=fd, last_day=ld,
        include_simulated=bool(include_simulated), log_path=log_path, root=root,
    )


def _data(source: Any, filters: Mapping[str, Any]) -> ReportData:
    return load_report_data(source, **filters)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_metadata(root: Workspace | str | os.PathLike, *, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Metadata of runs from their plain JSON files (no TensorFlow, no imgcls.runs).

    Args:
        root: A workspace (or its folder); runs are read from ``root/runs``.
        run_ids: Only these runs (default: every folder in ``runs/``).
            Missing runs get a row of NaN.

    Returns:
        DataFrame [run_id, model, created, generation, n_classes,
        test_accuracy, benchmark_accuracy].
    """
    runs_dir = (root.runs if isinstance(root, Workspace) else Path(os.fspath(root)) / "runs")
    if run_ids is None:
        run_ids = sorted(p.name for p in runs_dir.glob("*") if (p / "config.json").is_file()) \
            if runs_dir.is_dir() else []
    rows = []
    for run_id in map(str, run_ids):
        # a run id is a folder name; anything else (e.g. "../x" in a log) reads nothing
        safe = run_id not in ("", ".", "..") and "/" not in run_id and "\\" not in run_id
        folder = runs_dir / run_id
        config = _read_json(folder / "config.json") if safe else None
        classes = _read_json(folder / "classes.json") if safe else None
        metrics = _read_json(folder / "metrics.json") if safe else None
        config = config if isinstance(config, dict) else {}
        metrics = metrics if isinstance(metrics, dict) else {}

        def section_accuracy(name: str) -> float:
            section = metrics.get(name)
            value = section.get("accuracy") if isinstance(section, dict) else None
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return float(value) if ok else math.nan

        rows.append({
            "run_id": run_id,
            "model": config.get("model"),
            "created": config.get("created"),
            "generation": config.get("generation"),
            "n_classes": len(classes) if isinstance(classes, list) else math.nan,
            "test_accuracy": section_accuracy("test"),
            "benchmark_accuracy": section_accuracy("benchmark"),
        })
    df = pd.DataFrame(rows, columns=["run_id", "model", "created", "generation", "n_classes",
                                     "test_accuracy", "benchmark_accuracy"])
    df["created"] = pd.to_datetime(df["created"], utc=True, errors="coerce")
    return df


# --------------------------------------------------------------------------
# versions and colours
# --------------------------------------------------------------------------
def _natural_key(text: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower())
                 for p in re.split(r"(\d+)", str(text)) if p)


def version_order(versions: Iterable[str]) -> list[str]:
    """Versions in natural order ("v2" before "v10"); used for versions the log
    has no first-seen time for. Reports otherwise order versions by first use."""
    return sorted({str(v) for v in versions}, key=_natural_key)


def version_colors(versions: Sequence[str]) -> dict[str, str]:
    """The colour of each model version: the i-th version gets the i-th colour.

    Reports pass the log's versions in first-seen order, so a version keeps
    its colour in every figure of a deck and in later decks of the same log
    (new versions are appended, they never shift older ones).

    Args:
        versions: Version labels in their order.

    Returns:
        {version: hex colour}.
    """
    extra = [mpl.colors.to_hex(c) for c in mpl.colormaps["tab20"].colors]
    palette = list(_PALETTE) + extra
    return {str(v): palette[i % len(palette)] for i, v in enumerate(dict.fromkeys(map(str, versions)))}


def _versions_of(table: pd.DataFrame) -> list[str]:
    col = table["model_version"] if "model_version" in table else pd.Series([], dtype="str")
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [str(c) for c in col.cat.categories]
    return version_order(col.dropna().unique())


def _categorical_versions(values: pd.Series, versions: Sequence[str]) -> pd.Categorical:
    return pd.Categorical(values.astype(str), categories=list(versions), ordered=True)


# --------------------------------------------------------------------------
# periods
# --------------------------------------------------------------------------
def _freq(freq: str) -> str:
    key = str(freq).lower()
    key = _FREQ_ALIASES.get(key, key)
    if key not in FREQS:
        raise ValueError(f"`freq` must be one of {FREQS}. Received: freq={freq!r}")
    return key


def _period_start(days: np.ndarray, freq: str) -> np.ndarray:
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


def _periods(data: ReportData, freq: str) -> pd.DataFrame:
    """Every period of the span: period (UTC), label, start (day), complete."""
    if data.first_day is None:
        starts = np.array([], dtype=np.int64)
    else:
        starts = np.unique(_period_start(np.arange(data.first_day, data.last_day + 1), freq))
    ends = _period_end(starts, freq)
    complete = (starts >= (data.first_day or 0)) & (ends - 1 <= (data.last_day or 0))
    return pd.DataFrame({
        "period": pd.to_datetime((_EPOCH_DAY + starts).astype("datetime64[s]"), utc=True),
        "label": pd.Series([_period_label(s, freq) for s in starts], dtype="str"),
        "start": starts,
        "complete": complete.astype(bool),
    })


# --------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------
def _wilson(correct: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
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
    for col in ("correct", "wrong", "unsure"):
        df[col] = np.zeros(len(df), dtype=np.int64)
    return _add_accuracy(df)


# --------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------
def usage_over_time(source: Any, *, freq: str = "week", **filters: Any) -> pd.DataFrame:
    """Requests per period and model version.

    Args:
        source: Anything :func:`load_report_data` accepts.
        freq: ``"day"``, ``"week"`` or ``"month"``.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`load_report_data`).

    Returns:
        DataFrame [period (UTC start), label, model_version (categorical in
        first-seen order), requests, ok, failed, complete], one row per period
        and version with requests; ordered by period then version.
    """
    freq = _freq(freq)
    data = _data(source, filters)
    usage = data.usage
    periods = _periods(data, freq)
    grouped = (
        usage.assign(start=_period_start(usage["day"].to_numpy(), freq),
                     model_version=_categorical_versions(usage["model_version"], data.versions))
        .groupby(["start", "model_version"], observed=True, sort=True)[["requests", "ok", "failed"]]
        .sum()
        .reset_index()
    )
    out = grouped.merge(periods, on="start", how="left")
    out = out[["period", "label", "model_version", "requests", "ok", "failed", "complete"]]
    out = out.astype({"requests": np.int64, "ok": np.int64, "failed": np.int64})
    out.attrs.update(freq=freq, periods=_periods_attr(periods))
    return out.reset_index(drop=True)


def accuracy_over_time(source: Any, *, freq: str = "week", **filters: Any) -> pd.DataFrame:
    """Accuracy of evaluated predictions per period (when served) and model version.

    Returns:
        DataFrame [period, label, model_version, evaluated, judged, correct,
        wrong, unsure, accuracy, ci_low, ci_high, complete]; accuracy =
        correct / judged, unsure excluded (and counted).
    """
    freq = _freq(freq)
    data = _data(source, filters)
    ev = data.evaluated
    periods = _periods(data, freq)
    keyed = pd.DataFrame({
        "start": _period_start(ev["day"].to_numpy(), freq),
        "model_version": _categorical_versions(ev["model_version"], data.versions),
        "verdict": ev["verdict"].to_numpy(),
    })
    counts = _verdict_counts(keyed, ["start", "model_version"])
    out = counts.merge(periods, on="start", how="left")
    out = out[["period", "label", "model_version", *_COUNT_COLUMNS, "complete"]]
    out.attrs.update(freq=freq, periods=_periods_attr(periods))
    return out.reset_index(drop=True)


def accuracy_by_version(source: Any, **filters: Any) -> pd.DataFrame:
    """Accuracy per model version, beside its traffic and its offline test accuracy.

    Returns:
        DataFrame [model_version (categorical, first-seen order), run_id,
        model, requests, served, evaluated, judged, correct, wrong, unsure,
        accuracy, ci_low, ci_high, share_evaluated, test_accuracy]; one row per
        version with traffic or evaluations in the span. ``test_accuracy``
        comes from the run's ``metrics.json`` (NaN when unknown).
    """
    data = _data(source, filters)
    versions = list(data.versions)
    traffic = (
        data.usage.groupby("model_version", sort=False)[["requests", "ok"]].sum()
        .rename(columns={"ok": "served"})
    )
    keyed = data.evaluated[["model_version", "verdict"]]
    counts = _verdict_counts(keyed, ["model_version"]).set_index("model_version") if len(keyed) \
        else _empty_counts(pd.DataFrame(index=pd.Index([], name="model_version", dtype="str")))
    present = [v for v in versions if v in traffic.index or v in counts.index]
    out = pd.DataFrame({"model_version": pd.Series(present, dtype="str")})
    out = out.join(traffic, on="model_version").join(
        counts[["correct", "wrong", "unsure"]], on="model_version")
    out = out.fillna({"requests": 0, "served": 0, "correct": 0, "wrong": 0, "unsure": 0})
    out = out.astype({c: np.int64 for c in ("requests", "served", "correct", "wrong", "unsure")})
    out = _add_accuracy(out)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share_evaluated"] = np.where(out["served"] > 0, out["evaluated"] / out["served"].clip(lower=1), np.nan)
    out["run_id"] = pd.Series([data.version_runs.get(v) for v in out["model_version"]], dtype="str")
    runs = data.runs.set_index("run_id") if len(data.runs) else None
    for col in ("model", "test_accuracy"):
        out[col] = [runs[col].get(r) if runs is not None and r in runs.index else None
                    for r in out["run_id"]]
    out["test_accuracy"] = pd.to_numeric(out["test_accuracy"], errors="coerce").astype(float)
    out["model_version"] = _categorical_versions(out["model_version"], versions)
    return out[["model_version", "run_id", "model", "requests", "served", *_COUNT_COLUMNS,
                "share_evaluated", "test_accuracy"]]


def _check_buckets(buckets: Any) -> np.ndarray:
    if isinstance(buckets, numbers.Integral) and not isinstance(buckets, bool):
        if buckets < 1:
            raise ValueError(f"`buckets` as an int must be >= 1. Received: buckets={buckets!r}")
        return np.linspace(0.0, 1.0, int(buckets) + 1)
    try:
        edges = np.asarray(list(buckets), dtype=float)
    except (TypeError, ValueError):
        edges = np.array([])
    if (
        edges.ndim != 1 or len(edges) < 2 or not np.all(np.isfinite(edges))
        or np.any(np.diff(edges) <= 0) or edges[0] < 0 or edges[-1] > 1
    ):
        raise ValueError(
            "`buckets` must be increasing edges in [0, 1] (at least two, e.g. "
            f"(0, 0.5, 0.9, 1.0)) or a number of equal buckets. Received: buckets={buckets!r}"
        )
    return edges


def accuracy_by_confidence(
    source: Any, *, buckets: Sequence[float] | int = DEFAULT_CONFIDENCE_BUCKETS, **filters: Any
) -> pd.DataFrame:
    """Accuracy per bucket of top-1 confidence (calibration-like).

    Args:
        source: Anything :func:`load_report_data` accepts.
        buckets: Increasing edges in [0, 1]; bucket i is [edge i, edge i+1),
            the last one includes its upper edge. An int n means n equal
            buckets. Scores outside the edges are left out.
        **filters: See :func:`load_report_data`.

    Returns:
        DataFrame [bucket (label), low, high, evaluated, judged, correct,
        wrong, unsure, accuracy, ci_low, ci_high, mean_confidence], one row per
        bucket (empty buckets included with zeros).
    """
    edges = _check_buckets(buckets)
    data = _data(source, filters)
    ev = data.evaluated
    score = ev["top1_score"].to_numpy(dtype=float)
    idx = np.searchsorted(edges, score, side="right") - 1
    idx = np.where(score == edges[-1], len(edges) - 2, idx)
    keep = (idx >= 0) & (idx < len(edges) - 1)
    keyed = pd.DataFrame({"bucket_index": idx[keep], "verdict": ev["verdict"].to_numpy()[keep],
                          "score": score[keep]})
    counts = _verdict_counts(keyed, ["bucket_index"]).set_index("bucket_index")
    mean_conf = keyed.groupby("bucket_index")["score"].mean()
    n = len(edges) - 1
    out = pd.DataFrame({
        "bucket": pd.Series([f"{edges[i]:.2f}–{edges[i + 1]:.2f}" for i in range(n)], dtype="str"),
        "low": edges[:-1],
        "high": edges[1:],
    })
    for col in ("correct", "wrong", "unsure"):
        out[col] = counts[col].reindex(range(n), fill_value=0).to_numpy(np.int64)
    out = _add_accuracy(out)
    out["mean_confidence"] = mean_conf.reindex(range(n)).to_numpy(dtype=float)
    out.attrs["excluded"] = int((~keep).sum())
    return out[["bucket", "low", "high", *_COUNT_COLUMNS, "mean_confidence"]]


def accuracy_by_class(source: Any, *, by: str = "predicted", **filters: Any) -> pd.DataFrame:
    """Accuracy per class.

    Args:
        source: Anything :func:`load_report_data` accepts.
        by: ``"predicted"``: per predicted (top-1) class, i.e. how often the
            model is right when it says this class. ``"true"``: per true
            class, i.e. how often this class is recognised; the true class is
            the evaluation's ``true_class``, or the prediction when the
            verdict is ``correct``. Evaluations whose true class is unknown
            are left out and counted in ``attrs["unknown_true_class"]``.
        **filters: See :func:`load_report_data`.

    Returns:
        DataFrame [class, evaluated, judged, correct, wrong, unsure,
        accuracy, ci_low, ci_high], least accurate first (then most judged,
        then name); classes with only unsure verdicts last.
    """
    if by not in ("predicted", "true"):
        raise ValueError(f"`by` must be 'predicted' or 'true'. Received: by={by!r}")
    data = _data(source, filters)
    ev = data.evaluated
    if by == "predicted":
        cls = ev["top1_class"]
        unknown = 0
    else:
        cls = ev["true_class"].where(ev["true_class"].notna(),
                                     ev["top1_class"].where(ev["verdict"] == "correct"))
        unknown = int(cls.isna().sum())
    keyed = pd.DataFrame({"class": cls.to_numpy(), "verdict": ev["verdict"].to_numpy()})
    keyed = keyed[keyed["class"].notna()]
    out = _verdict_counts(keyed, ["class"])
    out = out.sort_values(["accuracy", "judged", "class"], ascending=[True, False, True],
                          na_position="last", kind="stable")
    out = out[["class", *_COUNT_COLUMNS]].reset_index(drop=True)
    out["class"] = out["class"].astype("str")
    out.attrs.update(by=by, unknown_true_class=unknown)
    return out


def evaluated_share(source: Any, *, freq: str = "week", **filters: Any) -> pd.DataFrame:
    """Share of served predictions (status ok) that were evaluated, per period.

    Returns:
        DataFrame [period, label, served, evaluated, share, complete], every
        period of the span (periods without traffic have share NaN). The
        overall share is ``evaluated.sum() / served.sum()``.
    """
    freq = _freq(freq)
    data = _data(source, filters)
    periods = _periods(data, freq)
    served = (data.usage.assign(start=_period_start(data.usage["day"].to_numpy(), freq))
              .groupby("start")["ok"].sum())
    evaluated = pd.Series(_period_start(data.evaluated["day"].to_numpy(), freq)).value_counts()
    out = periods.copy()
    out["served"] = served.reindex(out["start"], fill_value=0).to_numpy(np.int64)
    out["evaluated"] = evaluated.reindex(out["start"], fill_value=0).to_numpy(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share"] = np.where(out["served"] > 0, out["evaluated"] / out["served"].clip(lower=1), np.nan)
    out.attrs["freq"] = freq
    return out[["period", "label", "served", "evaluated", "share", "complete"]]


# --------------------------------------------------------------------------
# findings (the titles)
# --------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _freq_of(table: pd.DataFrame) -> str:
    freq = table.attrs.get("freq")
    if freq in FREQS:
        return freq
    labels = table["label"].astype(str) if "label" in table else pd.Series([], dtype=str)
    if len(labels) and labels.str.contains("-W").all():
        return "week"
    if len(labels) and labels.str.len().eq(7).all():
        return "month"
    return "day"


def _periods_attr(periods: pd.DataFrame) -> list[tuple]:
    """Every period of the span as plain tuples (kept in ``attrs``: also the empty ones)."""
    return tuple(zip(periods["period"].map(pd.Timestamp.isoformat), periods["label"],
                     periods["complete"].astype(bool).tolist()))


def _periods_of(table: pd.DataFrame) -> pd.DataFrame | None:
    periods = table.attrs.get("periods")
    if not periods:
        return None
    frame = pd.DataFrame(periods, columns=["period", "label", "complete"])
    frame["period"] = pd.to_datetime(frame["period"], utc=True)
    return frame.astype({"label": "str", "complete": bool})


def _usage_totals(table: pd.DataFrame) -> pd.DataFrame:
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


def _overall_by_period(table: pd.DataFrame) -> pd.DataFrame:
    overall = table.groupby(["period", "label"], sort=True)[["correct", "wrong", "unsure"]].sum()
    return _add_accuracy(overall.reset_index())


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
        word = {"day": "daily", "week": "weekly", "month": "monthly"}[_freq_of(table)]
        text += f"; {word} {_pct(shares.min())} to {_pct(shares.max())}"
    return text


# --------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------
def _notebook_display() -> None:
    """In a Jupyter kernel, let a returned Figure display as an image.

    A bare Figure (not pyplot's) shows as an image once the notebook's
    matplotlib backend module is loaded: loading it registers IPython's
    display hook for figures (matplotlib-inline does this). Loading a backend
    module does not switch backends or touch pyplot's figures. Outside a
    kernel nothing happens, so scripts and servers never load a backend.
    """
    if "IPython" not in sys.modules:
        return
    try:
        shell = sys.modules["IPython"].get_ipython()
        if shell is None or getattr(shell, "kernel", None) is None:
            return
        try:
            backend = mpl.get_backend(auto_select=False)
        except TypeError:  # matplotlib < 3.10
            backend = mpl.rcParams["backend"]
        if backend:
            from matplotlib.backends import backend_registry

            backend_registry.load_backend_module(backend)
    except Exception:  # noqa: BLE001 - display is a nicety; plotting must not fail over it
        pass


def _new_figure(**kwargs: Any) -> Figure:
    _notebook_display()
    # Not pyplot: no global figure list to leak or auto-show, no backend chosen.
    return Figure(figsize=SLIDE_SIZE, **kwargs)


def _slide(finding: str, subtitle: str) -> tuple[Figure, Any]:
    fig = _new_figure(layout="constrained")
    fig.suptitle(textwrap.fill(finding, _TITLE_WRAP), x=0.01, ha="left",
                 fontsize=_TITLE_SIZE, fontweight="bold")
    ax = fig.add_subplot()
    ax.set_title(textwrap.fill(subtitle, _SUBTITLE_WRAP), loc="left", fontsize=16, color="#555555",
                 pad=12)
    ax.tick_params(labelsize=15)
    ax.grid(axis="y", color="#dddddd", linewidth=1)
    ax.set_axisbelow(True)
    return fig, ax


def _no_data(ax: Any, text: str = "No data yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=22, color="#888888",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _period_ticks(ax: Any, labels: Sequence[str], max_labels: int = 14) -> None:
    n = len(labels)
    step = max(1, math.ceil(n / max_labels))
    ax.set_xticks(range(0, n, step))
    ax.set_xticklabels([labels[i] for i in range(0, n, step)], rotation=0 if n <= 8 else 30,
                       ha="center" if n <= 8 else "right")
    ax.set_xlim(-0.6, n - 0.4)


def _percent_axis(ax: Any, axis: str = "y") -> None:
    fmt = mticker.PercentFormatter(1.0, decimals=0)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _legend(ax: Any, **kwargs: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=15,
                  title_fontsize=15, **kwargs)


def plot_usage_over_time(table: pd.DataFrame) -> Figure:
    """Stacked requests per period by model version (partial periods hatched).

    Args:
        table: The result of :func:`usage_over_time`.
    """
    freq = _freq_of(table)
    totals = _usage_totals(table)
    versions = _versions_of(table)
    colors = version_colors(versions)
    with mpl.rc_context(_RC):
        subtitle = (f"Requests served per {freq} (UTC) by model version; "
                    f"{int(totals['requests'].sum()):,} in total, {int(totals['failed'].sum()):,} failed")
        if not totals["complete"].all():
            subtitle += "; hatched = partial " + freq
        fig, ax = _slide(_usage_finding(table), subtitle)
        if totals["requests"].sum() == 0:
            _no_data(ax, "No requests logged yet")
            return fig
        wide = (table.pivot_table(index="period", columns="model_version", values="requests",
                                  aggfunc="sum", observed=True)
                .reindex(totals["period"]).fillna(0))
        x = np.arange(len(totals))
        bottom = np.zeros(len(totals))
        partial = ~totals["complete"].to_numpy(bool)
        for version in versions:
            if version not in wide.columns:
                continue
            values = wide[version].to_numpy(float)
            bars = ax.bar(x, values, bottom=bottom, width=0.8, color=colors[version],
                          label=str(version), edgecolor="white", linewidth=0.5)
            for bar, is_partial in zip(bars, partial):
                if is_partial:
                    bar.set_hatch("//")
                    bar.set_alpha(0.55)
            bottom += values
        _period_ticks(ax, list(totals["label"]))
        ax.set_ylabel("Requests")
        ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        _legend(ax, title="Model version")
    return fig


def plot_accuracy_over_time(table: pd.DataFrame) -> Figure:
    """Accuracy per period: one line per model version, all versions dashed.

    Args:
        table: The result of :func:`accuracy_over_time`.
    """
    freq = _freq_of(table)
    versions = _versions_of(table)
    colors = version_colors(versions)
    periods = _periods_of(table)
    labels = list(periods["label"]) if periods is not None else \
        list(dict.fromkeys(table.sort_values("period")["label"]))
    pos = {label: i for i, label in enumerate(labels)}
    with mpl.rc_context(_RC):
        unsure = int(table["unsure"].sum())
        subtitle = (f"Share of evaluated predictions judged correct, by {freq} served and model version; "
                    f"{int(table['judged'].sum()):,} judged, {unsure:,} 'unsure' excluded")
        fig, ax = _slide(_accuracy_time_finding(table), subtitle)
        if table["judged"].sum() == 0:
            _no_data(ax, "No evaluated predictions yet")
            return fig
        for version in versions:
            rows = table[(table["model_version"].astype(str) == version) & (table["judged"] > 0)]
            if not len(rows):
                continue
            ax.plot([pos[l] for l in rows["label"]], rows["accuracy"], marker="o", markersize=8,
                    linewidth=2.5, color=colors[version], label=str(version))
        overall = _overall_by_period(table)
        overall = overall[overall["judged"] > 0]
        ax.plot([pos[l] for l in overall["label"]], overall["accuracy"], linestyle="--",
                linewidth=2, color=_NEUTRAL, label="All versions")
        _period_ticks(ax, labels)
        _percent_axis(ax)
        low = float(np.nanmin(table.loc[table["judged"] > 0, "accuracy"]))
        ax.set_ylim(max(0.0, low - 0.1), 1.02)
        ax.set_ylabel("Accuracy")
        _legend(ax, title="Model version")
    return fig


def plot_accuracy_by_version(table: pd.DataFrame) -> Figure:
    """Accuracy per model version with 95% intervals and offline test accuracy.

    Args:
        table: The result of :func:`accuracy_by_version`.
    """
    versions = _versions_of(table)
    colors = version_colors(versions)
    with mpl.rc_context(_RC):
        subtitle = ("Live accuracy of evaluated predictions per model version (95% interval); "
                    "'unsure' excluded")
        if table["test_accuracy"].notna().any():
            subtitle += "; ◆ offline test accuracy"
        fig, ax = _slide(_version_finding(table), subtitle)
        if table["judged"].sum() == 0:
            _no_data(ax, "No evaluated predictions yet")
            return fig
        names = [str(v) for v in table["model_version"]]
        x = np.arange(len(names))
        acc = table["accuracy"].to_numpy(float)
        heights = np.nan_to_num(acc)
        err = np.vstack([np.nan_to_num(acc - table["ci_low"].to_numpy(float)),
                         np.nan_to_num(table["ci_high"].to_numpy(float) - acc)])
        ax.bar(x, heights, width=0.6, color=[colors[n] for n in names], yerr=err,
               error_kw={"ecolor": "#333333", "capsize": 8, "linewidth": 1.5})
        for xi, a, n in zip(x, acc, table["judged"]):
            text = "no evaluations" if n == 0 else f"{_pct(a)}\nn={n:,}"
            inside = n > 0 and a >= 0.15
            ax.text(xi, 0.03 if inside or n == 0 else a + 0.01, text, ha="center", va="bottom",
                    fontsize=15, color="white" if inside else "#333333", fontweight="bold")
        test = table["test_accuracy"].to_numpy(float)
        if np.isfinite(test).any():
            ax.scatter(x, test, marker="D", s=120, color="black", zorder=3, label="Offline test accuracy")
            _legend(ax)
        ax.set_xticks(x)
        ax.set_xticklabels(names)
        ax.set_xlabel("Model version")
        ax.set_ylabel("Accuracy")
        ax.set_ylim(0, 1.08)
        _percent_axis(ax)
    return fig


def plot_accuracy_by_confidence(table: pd.DataFrame) -> Figure:
    """Accuracy per confidence bucket, with each bucket's mean confidence.

    Args:
        table: The result of :func:`accuracy_by_confidence`.
    """
    with mpl.rc_context(_RC):
        subtitle = ("Bars: share judged correct per top-1 confidence bucket; dots: mean confidence "
                    "(a calibrated model's bar reaches its dot)")
        fig, ax = _slide(_confidence_finding(table), subtitle)
        if table["judged"].sum() == 0:
            _no_data(ax, "No evaluated predictions yet")
            return fig
        x = np.arange(len(table))
        acc = table["accuracy"].to_numpy(float)
        ax.bar(x, np.nan_to_num(acc), width=0.7, color=_ACCENT, label="Accuracy")
        ax.scatter(x, table["mean_confidence"], s=110, color="black", zorder=3, label="Mean confidence")
        for xi, a, n in zip(x, acc, table["judged"]):
            ax.text(xi, (0 if np.isnan(a) else a) + 0.02, f"n={n:,}", ha="center", va="bottom",
                    fontsize=13, color="#333333")
        ax.set_xticks(x)
        ax.set_xticklabels(list(table["bucket"]), rotation=0 if len(x) <= 8 else 30)
        ax.set_xlabel("Top-1 confidence")
        ax.set_ylabel("Accuracy")
        ax.set_ylim(0, 1.12)
        _percent_axis(ax)
        _legend(ax)
    return fig


def plot_accuracy_by_class(table: pd.DataFrame, *, top: int = 20, min_judged: int = 5) -> Figure:
    """The least accurate classes as horizontal bars, overall accuracy dashed.

    Args:
        table: The result of :func:`accuracy_by_class`.
        top: Show at most this many classes (the least accurate).
        min_judged: Leave out classes with fewer judged predictions (unless
            none has that many).
    """
    by = table.attrs.get("by", "predicted")
    kind = "predicted" if by == "predicted" else "true"
    with mpl.rc_context(_RC):
        judged = table[table["judged"] > 0]
        pool = judged[judged["judged"] >= min_judged]
        pool = pool if len(pool) else judged
        shown = pool.sort_values(["accuracy", "judged"], ascending=[True, False], kind="stable").head(top)
        subtitle = f"Accuracy by {kind} class"
        if len(pool) > len(shown):
            subtitle += f", the {len(shown)} least accurate of {len(pool)}"
        if len(judged) > len(pool):
            subtitle += f"; classes with < {min_judged} judged left out"
        unknown = table.attrs.get("unknown_true_class", 0)
        if by == "true" and unknown:
            subtitle += f"; {unknown:,} evaluations without a known true class left out"
        fig, ax = _slide(_class_finding(table, min_judged=min_judged), subtitle)
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", color="#dddddd", linewidth=1)
        if not len(shown):
            _no_data(ax, "No evaluated predictions yet")
            return fig
        shown = shown.iloc[::-1]  # worst at the top
        y = np.arange(len(shown))
        ax.barh(y, shown["accuracy"], color=_ACCENT, height=0.7)
        for yi, a, n in zip(y, shown["accuracy"], shown["judged"]):
            inside = a > 0.75
            ax.text(a - 0.01 if inside else a + 0.01, yi, f"{_pct(a)} (n={n:,})", va="center",
                    ha="right" if inside else "left", fontsize=13,
                    color="white" if inside else "#222222")
        overall = judged["correct"].sum() / judged["judged"].sum()
        ax.axvline(overall, color=_NEUTRAL, linestyle="--", linewidth=2,
                   label=f"All classes: {_pct(overall)}")
        ax.set_yticks(y)
        ax.set_yticklabels(list(shown["class"]), fontsize=15 if len(shown) <= 15 else 12)
        ax.set_xlim(0, 1.0)
        _percent_axis(ax, "x")
        ax.set_xlabel("Accuracy")
        _legend(ax)
    return fig


def plot_evaluated_share(table: pd.DataFrame) -> Figure:
    """Share of served predictions evaluated per period, overall dashed.

    Args:
        table: The result of :func:`evaluated_share`.
    """
    freq = _freq_of(table)
    with mpl.rc_context(_RC):
        subtitle = f"Evaluated predictions as a share of those served, by {freq} served"
        fig, ax = _slide(_share_finding(table), subtitle)
        served = table["served"].sum()
        if served == 0:
            _no_data(ax, "No predictions served yet")
            return fig
        x = np.arange(len(table))
        ax.bar(x, table["share"].fillna(0), width=0.8, color=_ACCENT)
        overall = table["evaluated"].sum() / served
        ax.axhline(overall, color=_NEUTRAL, linestyle="--", linewidth=2, label=f"Overall: {_pct(overall)}")
        _period_ticks(ax, list(table["label"]))
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=1))
        ax.set_ylabel("Share evaluated")
        top = max(float(np.nan_to_num(table["share"].max(skipna=True))), overall)
        ax.set_ylim(0, min(1.05, top * 1.25) if top > 0 else 1.0)
        _legend(ax)
    return fig


# --------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------
def _day_text(day: int | None) -> str:
    return "-" if day is None else (_dt.date(1970, 1, 1) + _dt.timedelta(days=int(day))).isoformat()


def _summary_from(data: ReportData, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    usage = data.usage
    requests, failed = int(usage["requests"].sum()), int(usage["failed"].sum())
    served = requests - failed
    ev = data.evaluated
    counts = _empty_counts(pd.DataFrame(index=[0])) if not len(ev) else \
        _verdict_counts(ev.assign(all=0)[["all", "verdict"]], ["all"])
    overall = counts.iloc[0]
    versions_table = tables["accuracy_by_version"]
    latest = versions_table.iloc[-1] if len(versions_table) else None
    rows = [
        ("headline", "Period", f"{_day_text(data.first_day)} to {_day_text(data.last_day)} (UTC)"),
        ("headline", "Requests", f"{requests:,}"),
        ("headline", "Failed requests",
         f"{failed:,} ({_pct(failed / requests)})" if requests else "0"),
        ("headline", "Model versions",
         f"{len(versions_table)} ({', '.join(map(str, versions_table['model_version']))})"
         if len(versions_table) else "0"),
        ("headline", "Evaluated",
         f"{len(ev):,} ({_pct(len(ev) / served)} of served predictions)" if served else "0"),
        ("headline", "Accuracy",
         f"{_pct(overall.accuracy)} of {int(overall.judged):,} judged; {int(overall.unsure):,} unsure excluded"
         if overall.judged else "no judged predictions"),
    ]
    if latest is not None:
        value = (f"{_pct(latest.accuracy)} ({int(latest.judged):,} judged)" if latest.judged
                 else "not evaluated yet")
        rows.append(("headline", f"Latest version {latest.model_version}", value))
    if not data.include_simulated:
        rows.append(("headline", "Simulated traffic", "left out"))
    findings = [
        ("Usage", _usage_finding(tables["usage_over_time"])),
        ("Accuracy over time", _accuracy_time_finding(tables["accuracy_over_time"])),
        ("Accuracy by version", _version_finding(tables["accuracy_by_version"])),
        ("Accuracy by confidence", _confidence_finding(tables["accuracy_by_confidence"])),
        ("Accuracy by predicted class", _class_finding(tables["accuracy_by_predicted_class"])),
        ("Accuracy by true class", _class_finding(tables["accuracy_by_true_class"])),
        ("Share evaluated", _share_finding(tables["evaluated_share"])),
    ]
    rows += [("finding", name, text) for name, text in findings]
    return pd.DataFrame(rows, columns=["section", "metric", "value"]).astype("str")


def summary_table(
    source: Any,
    *,
    freq: str = "week",
    buckets: Sequence[float] | int = DEFAULT_CONFIDENCE_BUCKETS,
    **filters: Any,
) -> pd.DataFrame:
    """Headline numbers and every report's finding, as text.

    Returns:
        DataFrame [section ("headline" or "finding"), metric, value].
    """
    data = _data(source, filters)
    return build_tables(data, freq=freq, buckets=buckets)["summary"]


def plot_summary(table: pd.DataFrame, *, title: str = "Serving report") -> Figure:
    """A one-page summary slide: headline numbers, then the findings.

    Args:
        table: The result of :func:`summary_table`.
        title: Heading of the page.
    """
    head = table[table["section"] == "headline"]
    finds = table[table["section"] == "finding"]
    period = head.loc[head["metric"] == "Period", "value"]
    with mpl.rc_context(_RC):
        fig = _new_figure()
        fig.suptitle(f"{title}: {period.iloc[0]}" if len(period) else title, x=0.04, y=0.95,
                     ha="left", fontsize=_TITLE_SIZE, fontweight="bold")
        # one invisible full-page axes holds the text (a figure without axes
        # would not display in a notebook)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.axis("off")
        y = 0.84
        for _, row in head[head["metric"] != "Period"].iterrows():
            ax.text(0.04, y, row["metric"], fontsize=16, color="#555555", va="top")
            ax.text(0.30, y, textwrap.shorten(row["value"], 70), fontsize=18, fontweight="bold",
                    va="top")
            y -= 0.055
        y -= 0.03
        ax.text(0.04, y, "Findings", fontsize=18, fontweight="bold", va="top")
        y -= 0.06
        for _, row in finds.iterrows():
            ax.text(0.05, y, "• " + textwrap.shorten(row["value"], 110), fontsize=15, va="top")
            y -= 0.05
    return fig


# --------------------------------------------------------------------------
# everything at once
# --------------------------------------------------------------------------
#: Table name -> figure function (the order of the deck).
_FIGURES = {
    "usage_over_time": plot_usage_over_time,
    "accuracy_over_time": plot_accuracy_over_time,
    "accuracy_by_version": plot_accuracy_by_version,
    "accuracy_by_confidence": plot_accuracy_by_confidence,
    "accuracy_by_predicted_class": plot_accuracy_by_class,
    "accuracy_by_true_class": plot_accuracy_by_class,
    "evaluated_share": plot_evaluated_share,
    "summary": plot_summary,
}


def build_tables(
    source: Any,
    *,
    freq: str = "week",
    buckets: Sequence[float] | int = DEFAULT_CONFIDENCE_BUCKETS,
    **filters: Any,
) -> dict[str, pd.DataFrame]:
    """Every report table from one read of the log.

    Returns:
        {name: DataFrame} for usage_over_time, accuracy_over_time,
        accuracy_by_version, accuracy_by_confidence,
        accuracy_by_predicted_class, accuracy_by_true_class,
        evaluated_share and summary.
    """
    data = _data(source, filters)
    tables = {
        "usage_over_time": usage_over_time(data, freq=freq),
        "accuracy_over_time": accuracy_over_time(data, freq=freq),
        "accuracy_by_version": accuracy_by_version(data),
        "accuracy_by_confidence": accuracy_by_confidence(data, buckets=buckets),
        "accuracy_by_predicted_class": accuracy_by_class(data, by="predicted"),
        "accuracy_by_true_class": accuracy_by_class(data, by="true"),
        "evaluated_share": evaluated_share(data, freq=freq),
    }
    tables["summary"] = _summary_from(data, tables)
    return tables


def build_figures(tables: Mapping[str, pd.DataFrame]) -> dict[str, Figure]:
    """A figure for every table of :func:`build_tables` (same names)."""
    return {name: fn(tables[name]) for name, fn in _FIGURES.items() if name in tables}


def _summary_markdown(data: ReportData, tables: Mapping[str, pd.DataFrame], files: Sequence[str]) -> str:
    summary = tables["summary"]
    lines = ["# Serving report", ""]
    lines.append(f"Generated {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} "
                 f"from `{data.log_path}`.")
    lines += ["", "| Metric | Value |", "|---|---|"]
    for _, row in summary[summary["section"] == "headline"].iterrows():
        lines.append(f"| {row['metric']} | {row['value']} |")
    lines += ["", "## Findings", ""]
    for _, row in summary[summary["section"] == "finding"].iterrows():
        lines.append(f"- **{row['metric']}**: {row['value']}")
    lines += ["", "## Files", ""] + [f"- `{name}`" for name in files] + [""]
    return "\n".join(lines)


def export_deck(
    source: Any,
    *,
    out_dir: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "svg", "pdf"),
    freq: str = "week",
    buckets: Sequence[float] | int = DEFAULT_CONFIDENCE_BUCKETS,
    dpi: int = 150,
    **filters: Any,
) -> pd.DataFrame:
    """Write every figure, every table and a one-page summary for a slide deck.

    Args:
        source: Anything :func:`load_report_data` accepts (usually the workspace).
        out_dir: Folder to write into. Default: ``<workspace>/reports/<UTC date>/``
            (for a bare log file: ``reports/<UTC date>/`` beside it). Files
            of the same name are overwritten.
        formats: Figure formats, any of ``"png"``, ``"svg"``, ``"pdf"``.
        freq: Period of the over-time reports.
        buckets: Confidence buckets (see :func:`accuracy_by_confidence`).
        dpi: Resolution of PNG files.
        **filters: ``first_day``, ``last_day``, ``include_simulated``.

    Returns:
        DataFrame [kind ("figure", "table" or "summary"), name, format, path,
        bytes], one row per file written.
    """
    formats = [str(f).lower().lstrip(".") for f in ([formats] if isinstance(formats, str) else formats)]
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise ValueError(
            f"`formats` must be a non-empty subset of ('png', 'svg', 'pdf'). Received: formats={formats!r}"
        )
    data = _data(source, filters)
    tables = build_tables(data, freq=freq, buckets=buckets)
    if out_dir is None:
        out = data.root / "reports" / _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    else:
        out = Path(os.fspath(out_dir)).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, str, str, Path]] = []
    for name, table in tables.items():
        path = out / f"{name}.csv"
        table.to_csv(path, index=False)
        written.append(("table", name, "csv", path))
    figures = build_figures(tables)
    for name, fig in figures.items():
        kind = "summary" if name == "summary" else "figure"
        for i, fmt in enumerate(formats):
            path = out / f"{name}.{fmt}"
            with mpl.rc_context(_RC):
                fig.savefig(path, format=fmt, dpi=dpi, metadata=_metadata(fmt))
            if i == 0:  # the layout is settled by the first save; keep it for the rest
                fig.set_layout_engine("none")
            written.append((kind, name, fmt, path))
    md_path = out / "summary.md"
    names = [p.name for *_, p in written] + [md_path.name]
    md_path.write_text(_summary_markdown(data, tables, names), encoding="utf-8")
    written.append(("summary", "summary", "md", md_path))
    return pd.DataFrame(
        [(k, n, f, str(p), p.stat().st_size) for k, n, f, p in written],
        columns=["kind", "name", "format", "path", "bytes"],
    )


def _metadata(fmt: str) -> dict[str, Any] | None:
    # No creation dates inside the files: the same data gives the same bytes.
    if fmt == "pdf":
        return {"CreationDate": None, "Creator": "imgcls"}
    if fmt == "svg":
        return {"Date": None, "Creator": "imgcls"}
    return None
