"""The report tables: usage and accuracy of the served models, as DataFrames.

::

    usage_over_time        requests per day / week / month and model version
    accuracy_over_time     accuracy of evaluated predictions per period and version
    accuracy_by_version    accuracy per model version (with offline test accuracy)
    accuracy_by_confidence accuracy per top-1 confidence bucket (calibration-like)
    accuracy_by_class      accuracy per predicted class, or per true class where known
    evaluated_share        share of served predictions that were evaluated
    failed_requests        failed requests by kind, endpoint and status
    summary_table          the headline numbers and every finding

Every function takes a log ``source`` and the filters ``first_day``,
``last_day``, ``include_simulated`` (see :mod:`imgcls.reports.data`);
:func:`build_tables` makes them all from one read of the log.

Definitions used throughout:

* Times are UTC; periods are as in :mod:`imgcls.reports.periods`.
* Usage counts every request (``ok`` and ``failed``); accuracy and the
  evaluated share count served predictions (``ok``).
* A prediction's *period* is when it was served, not when it was judged.
* One verdict per transaction: its *current* verdict, the last one the log
  received (by the server's clock, never a client-supplied time); earlier
  verdicts stay in the log's history and are not counted.
* Failed requests (refused uploads, validation, auth, rate limit, overload)
  are counted by kind in :func:`~imgcls.reports.failed_requests`; a purge of
  the log or of the stored inputs is stated in the summary.
* accuracy = correct / (correct + wrong); ``unsure`` verdicts are excluded
  and counted (see :mod:`imgcls.reports.counts`).
* The rules of :mod:`imgcls.reports.rules`: every table keeps its
  ``min_judged`` (groups with fewer judged predictions, and partial periods,
  are never used in a headline) and, when its data includes demo traffic, a
  ``simulated`` note in ``attrs`` that its slide shows.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.reports.counts import (
    _COUNT_COLUMNS,
    _add_accuracy,
    _empty_counts,
    _verdict_counts,
)
from imgcls.reports.data import ReportData, _data
from imgcls.reports.failures import _failures_finding, _purge_note, failed_requests
from imgcls.reports.findings import (
    _accuracy_time_finding,
    _class_finding,
    _confidence_finding,
    _pct,
    _share_finding,
    _usage_finding,
    _version_finding,
)
from imgcls.reports.periods import (
    _day_text,
    _freq,
    _period_start,
    _periods,
    _periods_attr,
)
from imgcls.reports.rules import MIN_JUDGED, check_min_judged, simulated_note

__all__ = [
    "DEFAULT_CONFIDENCE_BUCKETS",
    "usage_over_time",
    "accuracy_over_time",
    "accuracy_by_version",
    "accuracy_by_confidence",
    "accuracy_by_class",
    "evaluated_share",
    "summary_table",
    "build_tables",
]

#: Bucket edges for :func:`accuracy_by_confidence` (the last bucket includes 1.0).
DEFAULT_CONFIDENCE_BUCKETS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def _stamp(out: pd.DataFrame, data: ReportData, *, requests: bool = False,
           min_judged: int | None = None) -> pd.DataFrame:
    """Keep the report rules with a table: its ``min_judged`` and its simulated-traffic note."""
    if min_judged is not None:
        out.attrs["min_judged"] = check_min_judged(min_judged)
    if requests:
        note = simulated_note(data.simulated_requests, int(data.usage["requests"].sum()), "requests")
    else:
        ev = data.evaluated
        sim = int(ev["simulated"].astype(bool).sum()) if "simulated" in ev else 0
        note = simulated_note(sim, len(ev), "evaluated predictions")
    out.attrs["simulated"] = note
    return out


def _categorical_versions(values: pd.Series, versions: Sequence[str]) -> pd.Categorical:
    """Version labels as a categorical in the log's first-seen order."""
    return pd.Categorical(values.astype(str), categories=list(versions), ordered=True)


def usage_over_time(source: Any, *, freq: str = "week", **filters: Any) -> pd.DataFrame:
    """Requests per period and model version.

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        freq: Period length: ``"day"``, ``"week"`` or ``"month"``.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

    Returns:
        DataFrame [period (UTC start), label, model_version (categorical in
        first-seen order), requests, ok, failed, complete], one row per period
        and version with requests; ordered by period then version.
    """
    freq = _freq(freq)
    data = _data(source, filters)
    usage = data.usage
    periods = _periods(data.first_day, data.last_day, freq)
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
    out.attrs.update(freq=freq, periods=_periods_attr(periods), purged=_purge_note(data.purges))
    return _stamp(out.reset_index(drop=True), data, requests=True)


def accuracy_over_time(source: Any, *, freq: str = "week", min_judged: int = MIN_JUDGED,
                       **filters: Any) -> pd.DataFrame:
    """Accuracy of evaluated predictions per period (when served) and model version.

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        freq: Period length: ``"day"``, ``"week"`` or ``"month"``.
        min_judged: Fewest judged predictions a period needs to be claimed
            (see :mod:`imgcls.reports.rules`); kept in ``attrs``.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

    Returns:
        DataFrame [period, label, model_version, evaluated, judged, correct,
        wrong, unsure, accuracy, ci_low, ci_high, complete]; accuracy =
        correct / judged, unsure excluded (and counted).
    """
    freq = _freq(freq)
    data = _data(source, filters)
    ev = data.evaluated
    periods = _periods(data.first_day, data.last_day, freq)
    keyed = pd.DataFrame({
        "start": _period_start(ev["day"].to_numpy(), freq),
        "model_version": _categorical_versions(ev["model_version"], data.versions),
        "verdict": ev["verdict"].to_numpy(),
    })
    counts = _verdict_counts(keyed, ["start", "model_version"])
    out = counts.merge(periods, on="start", how="left")
    out = out[["period", "label", "model_version", *_COUNT_COLUMNS, "complete"]]
    out.attrs.update(freq=freq, periods=_periods_attr(periods))
    return _stamp(out.reset_index(drop=True), data, min_judged=min_judged)


def accuracy_by_version(source: Any, *, min_judged: int = MIN_JUDGED, **filters: Any) -> pd.DataFrame:
    """Accuracy per model version, beside its traffic and its offline test accuracy.

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        min_judged: Fewest judged predictions a version needs to be claimed.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

    Returns:
        DataFrame [model_version (categorical, first-seen order), run_id,
        model, requests, served, evaluated, judged, correct, wrong, unsure,
        accuracy, ci_low, ci_high, share_evaluated, test_accuracy, override];
        one row per version with traffic or evaluations in the span.
        ``test_accuracy`` comes from the run's ``metrics.json`` (NaN when
        unknown); ``override`` is the reason the run was promoted by override
        despite failed deploy-gate checks (None when it passed them).
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
    for col in ("model", "test_accuracy", "override"):
        out[col] = [runs[col].get(r) if runs is not None and r in runs.index and col in runs else None
                    for r in out["run_id"]]
    out["test_accuracy"] = pd.to_numeric(out["test_accuracy"], errors="coerce").astype(float)
    out["model_version"] = _categorical_versions(out["model_version"], versions)
    out = out[["model_version", "run_id", "model", "requests", "served", *_COUNT_COLUMNS,
               "share_evaluated", "test_accuracy", "override"]]
    return _stamp(out, data, min_judged=min_judged)


def _check_buckets(buckets: Any) -> np.ndarray:
    """Bucket edges of ``buckets`` (edges, or a number of equal buckets)."""
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
    source: Any, *, buckets: Sequence[float] | int = DEFAULT_CONFIDENCE_BUCKETS, min_judged: int = MIN_JUDGED,
    **filters: Any,
) -> pd.DataFrame:
    """Accuracy per bucket of top-1 confidence (calibration-like).

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        buckets: Increasing edges in [0, 1]; bucket i is [edge i, edge i+1),
            the last one includes its upper edge. An int n means n equal
            buckets. Scores outside the edges are left out.
        min_judged: Fewest judged predictions a bucket needs to be claimed.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

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
    out = out[["bucket", "low", "high", *_COUNT_COLUMNS, "mean_confidence"]]
    out.attrs["excluded"] = int((~keep).sum())
    return _stamp(out, data, min_judged=min_judged)


def accuracy_by_class(source: Any, *, by: str = "predicted", min_judged: int = MIN_JUDGED,
                      **filters: Any) -> pd.DataFrame:
    """Accuracy per class.

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        by: ``"predicted"``: per predicted (top-1) class, i.e. how often the
            model is right when it says this class. ``"true"``: per true
            class, i.e. how often this class is recognised; the true class is
            the evaluation's ``true_class``, or the prediction when the
            verdict is ``correct``. Evaluations whose true class is unknown
            are left out and counted in ``attrs["unknown_true_class"]``.
        min_judged: Fewest judged predictions a class needs to be claimed.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

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
    return _stamp(out, data, min_judged=min_judged)


def evaluated_share(source: Any, *, freq: str = "week", **filters: Any) -> pd.DataFrame:
    """Share of served predictions (status ok) that were evaluated, per period.

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        freq: Period length: ``"day"``, ``"week"`` or ``"month"``.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

    Returns:
        DataFrame [period, label, served, evaluated, share, complete], every
        period of the span (periods without traffic have share NaN). The
        overall share is ``evaluated.sum() / served.sum()``.
    """
    freq = _freq(freq)
    data = _data(source, filters)
    periods = _periods(data.first_day, data.last_day, freq)
    served = (data.usage.assign(start=_period_start(data.usage["day"].to_numpy(), freq))
              .groupby("start")["ok"].sum())
    evaluated = pd.Series(_period_start(data.evaluated["day"].to_numpy(), freq)).value_counts()
    out = periods.copy()
    out["served"] = served.reindex(out["start"], fill_value=0).to_numpy(np.int64)
    out["evaluated"] = evaluated.reindex(out["start"], fill_value=0).to_numpy(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share"] = np.where(out["served"] > 0, out["evaluated"] / out["served"].clip(lower=1), np.nan)
    out = out[["period", "label", "served", "evaluated", "share", "complete"]]
    out.attrs["freq"] = freq
    return _stamp(out, data, requests=True)



def _summary_from(data: ReportData, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The summary table: headline numbers of ``data``, then the finding of every table."""
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
         f"{_pct(overall.accuracy)} of {int(overall.judged):,} judged (current verdicts); "
         f"{int(overall.unsure):,} unsure excluded"
         if overall.judged else "no judged predictions"),
    ]
    purged = _purge_note(data.purges)
    if purged:
        rows.append(("headline", "Purged", purged))
    if latest is not None:
        value = (f"{_pct(latest.accuracy)} ({int(latest.judged):,} judged)" if latest.judged
                 else "not evaluated yet")
        if 0 < latest.judged < versions_table.attrs.get("min_judged", MIN_JUDGED):
            value += "; too few to compare"
        rows.append(("headline", f"Latest version {latest.model_version}", value))
    if not data.include_simulated:
        rows.append(("headline", "Simulated traffic", "left out"))
    elif data.simulated_requests:
        rows.append(("headline", "Simulated traffic",
                     f"{data.simulated_requests:,} of {requests:,} requests are demo traffic (flagged on the slides)"))
    findings = [
        ("Usage", _usage_finding(tables["usage_over_time"])),
        ("Accuracy over time", _accuracy_time_finding(tables["accuracy_over_time"])),
        ("Accuracy by version", _version_finding(tables["accuracy_by_version"])),
        ("Accuracy by confidence", _confidence_finding(tables["accuracy_by_confidence"])),
        ("Accuracy by predicted class", _class_finding(tables["accuracy_by_predicted_class"])),
        ("Accuracy by true class", _class_finding(tables["accuracy_by_true_class"])),
        ("Share evaluated", _share_finding(tables["evaluated_share"])),
        ("Failed requests", _failures_finding(tables["failed_requests"])),
    ]
    rows += [("finding", name, text) for name, text in findings]
    return _stamp(pd.DataFrame(rows, columns=["section", "metric", "value"]).astype("str"), data, requests=True)


def summary_table(
    source: Any,
    *,
    freq: str = "week",
    buckets: Sequence[float] | int = DEFAULT_CONFIDENCE_BUCKETS,
    min_judged: int = MIN_JUDGED,
    **filters: Any,
) -> pd.DataFrame:
    """Headline numbers and every report's finding, as text.

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        freq: Period length: ``"day"``, ``"week"`` or ``"month"``.
        buckets: Confidence buckets (see :func:`accuracy_by_confidence`).
        min_judged: Fewest judged predictions a group needs to be claimed.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

    Returns:
        DataFrame [section ("headline" or "finding"), metric, value].
    """
    data = _data(source, filters)
    return build_tables(data, freq=freq, buckets=buckets, min_judged=min_judged)["summary"]



def build_tables(
    source: Any,
    *,
    freq: str = "week",
    buckets: Sequence[float] | int = DEFAULT_CONFIDENCE_BUCKETS,
    min_judged: int = MIN_JUDGED,
    **filters: Any,
) -> dict[str, pd.DataFrame]:
    """Every report table from one read of the log.

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        freq: Period length: ``"day"``, ``"week"`` or ``"month"``.
        buckets: Confidence buckets (see :func:`accuracy_by_confidence`).
        min_judged: Fewest judged predictions a group (period, version,
            bucket, class) needs before a headline uses it (see
            :mod:`imgcls.reports.rules`).
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

    Returns:
        {name: DataFrame} for usage_over_time, accuracy_over_time,
        accuracy_by_version, accuracy_by_confidence,
        accuracy_by_predicted_class, accuracy_by_true_class,
        evaluated_share, failed_requests and summary.
    """
    data = _data(source, filters)
    tables = {
        "usage_over_time": usage_over_time(data, freq=freq),
        "accuracy_over_time": accuracy_over_time(data, freq=freq, min_judged=min_judged),
        "accuracy_by_version": accuracy_by_version(data, min_judged=min_judged),
        "accuracy_by_confidence": accuracy_by_confidence(data, buckets=buckets, min_judged=min_judged),
        "accuracy_by_predicted_class": accuracy_by_class(data, by="predicted", min_judged=min_judged),
        "accuracy_by_true_class": accuracy_by_class(data, by="true", min_judged=min_judged),
        "evaluated_share": evaluated_share(data, freq=freq),
        "failed_requests": failed_requests(data),
    }
    tables["summary"] = _summary_from(data, tables)
    return tables


