"""Failed requests by kind, and what retention purged: a table, its finding, the purge note.

Every request is a row of the log, refused ones too (a bad upload, a failed
validation, a refused header, a missing or wrong token, the rate limit, an
overloaded server). :func:`failed_requests` counts them by kind of failure,
endpoint and HTTP status; :func:`_failures_finding` says it in one sentence
(the slide's title and a line of the summary). :func:`_purge_note` says when
the log or the stored inputs were purged, so a report never passes a short
history off as the whole one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from imgcls.reports.data import _data
from imgcls.reports.findings import _pct
from imgcls.reports.rules import simulated_note

__all__ = ["failed_requests"]

_COLUMNS = ["kind", "endpoint", "http_status", "requests", "share_of_failed", "share_of_requests"]


def failed_requests(source: Any, **filters: Any) -> pd.DataFrame:
    """Failed requests by kind of failure, endpoint and HTTP status.

    Args:
        source: A log source: a workspace, workspace folder, ``serving.sqlite``
            path, TransactionLog or :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

    Returns:
        DataFrame [kind (``too_large``, ``not_an_image``, ``validation``,
        ``unauthorized``, ``rate_limited``, ``overloaded``, ...), endpoint,
        http_status (nullable: calls from Python have none), requests,
        share_of_failed, share_of_requests], most frequent first.
        ``attrs``: ``requests`` (all requests of the span), ``failed``.
    """
    data = _data(source, filters)
    fails = data.failures
    total = int(data.usage["requests"].sum())
    if len(fails):
        grouped = (fails.rename(columns={"failure": "kind"})
                   .groupby(["kind", "endpoint", "http_status"], dropna=False, sort=True)["requests"]
                   .sum().reset_index())
    else:
        grouped = pd.DataFrame({"kind": pd.Series([], dtype="str"), "endpoint": pd.Series([], dtype="str"),
                                "http_status": pd.array([], dtype="Int64"),
                                "requests": np.array([], dtype=np.int64)})
    failed = int(grouped["requests"].sum())
    out = grouped.sort_values(["requests", "kind", "endpoint"], ascending=[False, True, True],
                              kind="stable").reset_index(drop=True)
    out["requests"] = out["requests"].astype(np.int64)
    out["http_status"] = out["http_status"].astype("Int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share_of_failed"] = out["requests"] / failed if failed else np.nan
        out["share_of_requests"] = out["requests"] / total if total else np.nan
    out = out[_COLUMNS]
    out.attrs.update(requests=total, failed=failed,
                     simulated=simulated_note(data.simulated_requests, total, "requests"))
    return out


def _failures_finding(table: pd.DataFrame) -> str:
    total, failed = int(table.attrs.get("requests", 0)), int(table.attrs.get("failed", 0))
    if total == 0:
        return "No requests logged yet"
    if failed == 0:
        return f"No request failed ({total:,} requests)"
    by_kind = table.groupby("kind")["requests"].sum().sort_values(ascending=False, kind="stable")
    top, n = by_kind.index[0], int(by_kind.iloc[0])
    text = f"{_pct(failed / total)} of requests failed ({failed:,} of {total:,}); most often {top} ({n:,})"
    return text


def _purge_note(purges: pd.DataFrame) -> str | None:
    """When the log and the stored inputs were last purged (None if never)."""
    if purges is None or not len(purges):
        return None
    parts = []
    for what, label in (("log", "log rows"), ("inputs", "stored inputs")):
        rows = purges[purges["what"] == what]
        if len(rows):
            last = rows.sort_values("id").iloc[-1]
            parts.append(f"{label} served before {pd.Timestamp(last['before']):%Y-%m-%d %H:%M} UTC "
                         f"purged on {pd.Timestamp(last['time']):%Y-%m-%d}")
    return "; ".join(parts) or None
