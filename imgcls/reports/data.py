"""What the reports read: the transaction log, once, and the runs' plain JSON metadata.

Every report function takes a log ``source`` as its first argument, one of:

* a :class:`~imgcls.core.Workspace` or a workspace folder (its ``serving.sqlite``);
* a ``serving.sqlite`` path;
* an open :class:`~imgcls.translog.TransactionLog` (left open);
* a :class:`ReportData` from :func:`load_report_data` (used as is: pass it to
  several reports to read the log once).

and optional filters ``first_day``, ``last_day`` and ``include_simulated``
(see :func:`load_report_data`; with a :class:`ReportData` they were fixed when
it was loaded). A missing log is an error and is never created.

Speed: usage comes from an index-only ``GROUP BY`` in SQLite, failed
requests from a partial index over the failed rows; only evaluated
transactions (a few percent of the log) are read into pandas, and only the
columns the reports need.

Verdicts: one per evaluated transaction, its *current* verdict (the last one
the log received; earlier verdicts stay in the log's history).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from imgcls.core.fileio import read_json
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.reports.periods import _day_number, _day_start, _days_of
from imgcls.translog import TransactionLog

__all__ = ["ReportData", "load_report_data", "run_metadata", "version_order"]


@dataclass(frozen=True)
class ReportData:
    """What the reports need from a log, read once.

    Attributes:
        usage: Requests per UTC day and version: day (int, days since
            1970-01-01), model_version, requests, ok, failed.
        evaluated: One row per evaluated transaction (its current verdict,
            the last one the log received): transaction_id, day (int),
            model_version, run_id, top1_class, top1_score, verdict, true_class,
            simulated (bool: demo traffic).
        versions: Every model version in the log, in first-seen order (the
            order, and so the colours, of every figure).
        version_runs: {model_version: run id that first served it}.
        runs: Run metadata of the runs in the log (see :func:`run_metadata`).
        first_day, last_day: The report's span as day numbers (None when the
            log is empty).
        include_simulated: Whether demo traffic is included.
        log_path: The SQLite file read.
        root: The workspace folder (reports go to ``root/reports``).
        failures: Failed requests per UTC day (int), endpoint, failure kind
            and HTTP status (nullable): day, endpoint, failure, http_status, requests.
        purges: Every retention purge of the log (see
            :meth:`~imgcls.translog.TransactionLog.purges`): id, time, before,
            what ("log" or "inputs"), transactions, evaluations, inputs.
        simulated_requests: Requests in ``usage`` that are simulated (demo
            traffic, the log's ``simulated`` flag); slides counting them say so.
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
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["day", "endpoint", "failure", "http_status", "requests"]))
    purges: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["id", "time", "before", "what", "transactions", "evaluations", "inputs"]))
    simulated_requests: int = 0


def _open_log(source: Any) -> tuple[TransactionLog, bool, Path]:
    """(log, opened_here, workspace root) for a Workspace, folder, file or log."""
    if isinstance(source, TransactionLog):  # a PostgreSQL log has no folder: run metadata from the cwd
        return source, False, source.path.parent if source.path is not None else Path.cwd()
    if isinstance(source, Workspace):
        return TransactionLog(source, create=False), True, source.root
    if isinstance(source, (str, os.PathLike)):
        log = TransactionLog(source, create=False)
        return log, True, log.path.parent if log.path is not None else Path.cwd()
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

    Raises:
        ValueError: Filters given with a :class:`ReportData`, ``first_day``
            after ``last_day``, or a ``source`` of another type.
        FileNotFoundError: There is no log (it is not created).
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
        since = None if fd is None else _day_start(fd)
        until = None if ld is None else _day_start(ld + 1)
        ev = log.evaluated_transactions(
            since=since, until=until, include_simulated=include_simulated,
            columns=["transaction_id", "time", "model_version", "run_id", "top1_class",
                     "top1_score", "verdict", "true_class", "simulated"],
        )
        simulated = 0
        if include_simulated:  # index-only: the demo's share of the requests, to flag slides with
            real = log.usage_by_day(first_day=first_day, last_day=last_day, include_simulated=False)
            simulated = int(usage["requests"].sum()) - int(real["requests"].sum())
        known = log.model_versions()
        failures = log.failures_by_day(first_day=first_day, last_day=last_day,
                                       include_simulated=include_simulated)
        purges = log.purges()
        log_path = log.path if log.path is not None else log.url
    finally:
        if owned:
            log.close()
    usage = usage.assign(day=_days_of(usage["day"]))
    failures = failures.assign(day=_days_of(failures["day"]))
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
        failures=failures, purges=purges, simulated_requests=simulated,
    )


def _data(source: Any, filters: Mapping[str, Any]) -> ReportData:
    """:func:`load_report_data` of a report function's ``source`` and ``**filters``."""
    return load_report_data(source, **filters)


def _read_json(path: Path) -> Any:
    """The JSON in ``path``; None when it is missing, unreadable or not JSON."""
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _section_accuracy(metrics: Mapping[str, Any], name: str) -> float:
    """``metrics[name]["accuracy"]`` of a run's metrics.json (NaN when it is not a number)."""
    section = metrics.get(name)
    value = section.get("accuracy") if isinstance(section, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else math.nan


def run_metadata(workspace: Workspace | str | os.PathLike, *,
                 run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Metadata of runs from their plain JSON files and the promotions log (no TensorFlow).

    Args:
        workspace: A workspace (or its folder); runs are read from
            ``<workspace>/runs``. A missing folder reads as no runs.
        run_ids: Only these runs (default: every folder in ``runs/``).
            Missing runs get a row of NaN.

    Returns:
        DataFrame [run_id, model, created, generation, n_classes,
        test_accuracy, benchmark_accuracy, override]; ``override`` is the
        reason a run was promoted by override despite failed gate checks
        (None for a run promoted on its merits or never promoted).
    """
    runs_dir = as_workspace(workspace, must_exist=False).runs
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
        rows.append({
            "run_id": run_id,
            "model": config.get("model"),
            "created": config.get("created"),
            "generation": config.get("generation"),
            "n_classes": len(classes) if isinstance(classes, list) else math.nan,
            "test_accuracy": _section_accuracy(metrics, "test"),
            "benchmark_accuracy": _section_accuracy(metrics, "benchmark"),
        })
    df = pd.DataFrame(rows, columns=["run_id", "model", "created", "generation", "n_classes",
                                     "test_accuracy", "benchmark_accuracy"])
    df["created"] = pd.to_datetime(df["created"], utc=True, errors="coerce")
    overrides = _overrides(runs_dir.parent)
    df["override"] = pd.Series([overrides.get(r) for r in df["run_id"]], index=df.index, dtype=object)
    return df


def _overrides(root: Path) -> dict[str, str]:
    """{run_id: reason} of the runs promoted by override (``runs/promotions.jsonl``; {} when none)."""
    from imgcls.runs import promotion_log

    if not (root / "runs").is_dir():
        return {}
    try:
        log = promotion_log(root)
    except (OSError, ValueError):
        return {}
    if not len(log) or "override" not in log:
        return {}
    forced = log[log["accepted"] & log["override"].notna()]
    return {str(r): str(o) for r, o in zip(forced["run_id"], forced["override"])}


def _natural_key(text: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower())
                 for p in re.split(r"(\d+)", str(text)) if p)


def version_order(versions: Iterable[str]) -> list[str]:
    """Versions in natural order ("v2" before "v10").

    Reports order versions by first use in the log; this order is for
    versions the log has no first-seen time for.

    Args:
        versions: Version labels (duplicates are dropped).

    Returns:
        The distinct labels, sorted.
    """
    return sorted({str(v) for v in versions}, key=_natural_key)
