"""Accuracy split by runtime: what ran the model of each evaluated prediction (no TensorFlow).

Every logged transaction records its runtime since log version 4
(``"keras-f32"``, ``"openvino-int8"``, ...; see :mod:`imgcls.runtimes`), so
a manager can see whether the faster runtime costs accuracy in production.
Rows logged before that show ``"unrecorded"``.

Unlike the other report tables, this one asks the log for a column the
evaluations do not carry a copy of, so it joins the transactions table; it
reads the log itself rather than :class:`~imgcls.reports.ReportData`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from imgcls.reports.counts import _COUNT_COLUMNS, _verdict_counts
from imgcls.reports.data import ReportData, _open_log
from imgcls.reports.periods import _day_number, _day_start

__all__ = ["UNRECORDED_RUNTIME", "accuracy_by_runtime"]

#: The runtime shown for transactions logged before the log recorded it.
UNRECORDED_RUNTIME = "unrecorded"


def accuracy_by_runtime(
    source: Any,
    *,
    first_day: Any = None,
    last_day: Any = None,
    include_simulated: bool = True,
) -> pd.DataFrame:
    """Accuracy of the evaluated predictions per model version and runtime.

    Args:
        source: A workspace, workspace folder, log path, open
            :class:`~imgcls.translog.TransactionLog` (left open) or a
            :class:`~imgcls.reports.ReportData` (its log and filters are used).
        first_day, last_day: The span of serving days (inclusive), as in
            :func:`~imgcls.reports.load_report_data`.
        include_simulated: False leaves out demo traffic and demo evaluations.

    Returns:
        DataFrame [model_version, runtime, evaluated, judged, correct, wrong,
        unsure, accuracy, ci_low, ci_high], one row per version and runtime
        with evaluations (current verdicts), sorted by version then runtime.
    """
    if isinstance(source, ReportData):
        if first_day is not None or last_day is not None:
            raise ValueError("Filters are fixed when ReportData is loaded; pass them to load_report_data(...).")
        fd, ld = source.first_day, source.last_day  # day numbers already
        include_simulated = source.include_simulated
        source = source.log_path
    else:
        fd, ld = _day_number(first_day, "first_day"), _day_number(last_day, "last_day")
    log, owned, _ = _open_log(source)
    try:
        ev = log.evaluated_transactions(
            since=None if fd is None else _day_start(fd), until=None if ld is None else _day_start(ld + 1),
            include_simulated=include_simulated, columns=["model_version", "runtime", "verdict"])
    finally:
        if owned:
            log.close()
    columns = ["model_version", "runtime", *_COUNT_COLUMNS]
    if not len(ev):
        return pd.DataFrame(columns=columns)
    ev = ev.assign(runtime=ev["runtime"].fillna(UNRECORDED_RUNTIME).astype(str),
                   model_version=ev["model_version"].astype(str))
    return _verdict_counts(ev, ["model_version", "runtime"])[columns].reset_index(drop=True)
