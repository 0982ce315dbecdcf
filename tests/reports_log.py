"""A transaction log small enough to count on paper, shared by the report tests (not a test module).

Weeks are ISO weeks (Monday first): 2025-01-06 starts 2025-W02.

    id  served            version  top-1 (score)     status  latest verdict
     1  Mon 01-06 09:00   v1       zebra   0.95      ok      correct
     2  Mon 01-06 10:00   v1       lion    0.55      ok      wrong (true: tiger)
     3  Wed 01-08 12:00   v1       zebra   0.85      ok      -
     4  Wed 01-08 13:00   v1       -                 failed  -
     5  Mon 01-13 09:00   v1       lion    0.65      ok      unsure
     6  Tue 01-14 10:00   v2       zebra   0.97      ok      correct
     7  Wed 01-15 11:00   v2       lion    0.92      ok      correct (was wrong)
     8  Wed 01-15 12:00   v2       gazelle 0.45      ok      wrong (true: antelope)
     9  Fri 01-17 08:00   v2       lion    0.88      ok      -
    10  Mon 01-20 09:00   v2       zebra   0.99      ok      correct
    11  Tue 01-21 09:00   v2       lion    0.75      ok      wrong (true: zebra)
    12  Wed 01-22 09:00   v2       zebra   0.91      ok      correct     (simulated)
    13  Wed 01-22 10:00   v2       -                 failed  -

The span is 2025-01-06 .. 2025-01-22, so W02 and W03 are complete and W04 is
not (it ends on Sunday 01-26).

:func:`report_workspace` builds it in a new workspace (with run metadata of
``run-b`` as plain JSON); ``FINDINGS`` is what the titles of its weekly
figures say.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from imgcls.core import open_workspace
from imgcls.translog import TransactionLog

TRANSACTIONS = [
    ("2025-01-06T09:00", "v1", "run-a", "zebra", 0.95, False),
    ("2025-01-06T10:00", "v1", "run-a", "lion", 0.55, False),
    ("2025-01-08T12:00", "v1", "run-a", "zebra", 0.85, False),
    ("2025-01-08T13:00", "v1", "run-a", None, None, False),
    ("2025-01-13T09:00", "v1", "run-a", "lion", 0.65, False),
    ("2025-01-14T10:00", "v2", "run-b", "zebra", 0.97, False),
    ("2025-01-15T11:00", "v2", "run-b", "lion", 0.92, False),
    ("2025-01-15T12:00", "v2", "run-b", "gazelle", 0.45, False),
    ("2025-01-17T08:00", "v2", "run-b", "lion", 0.88, False),
    ("2025-01-20T09:00", "v2", "run-b", "zebra", 0.99, False),
    ("2025-01-21T09:00", "v2", "run-b", "lion", 0.75, False),
    ("2025-01-22T09:00", "v2", "run-b", "zebra", 0.91, True),
    ("2025-01-22T10:00", "v2", "run-b", None, None, False),
]
EVALUATIONS = [  # transaction id, verdict, true class, time, simulated
    (1, "correct", None, "2025-01-07", False),
    (2, "wrong", "tiger", "2025-01-07", False),
    (5, "unsure", None, "2025-01-14", False),
    (6, "correct", None, "2025-01-15", False),
    (7, "wrong", None, "2025-01-16", False),
    (7, "correct", None, "2025-01-17", False),  # a second look: the latest verdict counts
    (8, "wrong", "antelope", "2025-01-16", False),
    (10, "correct", None, "2025-01-21", False),
    (11, "wrong", "zebra", "2025-01-22", False),
    (12, "correct", None, "2025-01-23", True),
]
W02, W03, W04 = (pd.Timestamp(d, tz="UTC") for d in ("2025-01-06", "2025-01-13", "2025-01-20"))


def build_log(ws) -> None:
    """Write the log above (and run-b's metadata) into workspace ``ws``."""
    records = []
    for time, version, run, cls, score, simulated in TRANSACTIONS:
        rec = {"run_id": run, "model_version": version, "time": time + "Z", "simulated": simulated,
               "latency_ms": 10.0}
        if cls is None:
            rec.update(status="failed", error="unreadable image")
        else:
            rec["top_k"] = {cls: score, "other": round((1 - score) / 2, 3)}
        records.append(rec)
    with TransactionLog(ws) as log:
        assert log.log_transactions(records) == list(range(1, 14))
        for tid, verdict, true, time, simulated in EVALUATIONS:
            log.log_evaluation(tid, verdict, reviewer="ana", true_class=true, time=time,
                               simulated=simulated)
    # run metadata, as plain JSON (what imgcls.runs writes)
    run_b = ws.runs / "run-b"
    run_b.mkdir(parents=True)
    (run_b / "config.json").write_text(json.dumps({"model": "mini_inception", "created": "2025-01-10T00:00:00+00:00"}))
    (run_b / "classes.json").write_text(json.dumps(["gazelle", "lion", "zebra"]))
    (run_b / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.9}}))


def report_workspace(tmp_path_factory):
    """A new workspace holding the log above."""
    ws = open_workspace(tmp_path_factory.mktemp("reports") / "ws")
    build_log(ws)
    return ws


def records(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Rows of ``df[columns]`` as plain tuples (floats rounded to 4 places, NaN as None)."""
    out = []
    for row in df[columns].itertuples(index=False):
        out.append(tuple(None if (isinstance(v, float) and math.isnan(v)) else
                         (round(v, 4) if isinstance(v, float) else (str(v) if not isinstance(v, (int, np.integer, bool, np.bool_, pd.Timestamp)) else v))
                         for v in row))
    return out


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval, worked out independently of imgcls."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# What the titles of its weekly figures say under the default rules (imgcls.reports.rules):
# no group has MIN_JUDGED (20) judged predictions, so no accuracy slide claims anything.
FINDINGS = {
    "usage_over_time": "Weekly requests grew 25% from 2025-W02 to 2025-W03 (4 to 5 requests)",  # W04 is partial
    "accuracy_over_time": "Too few judged predictions for a trend: 8 in all (62.5% correct); "
                          "no complete week has 20+",
    "accuracy_by_version": "Too few judged predictions for comparing model versions: 8 in all; no version has 20+",
    "accuracy_by_confidence": "Too few judged predictions for accuracy by confidence: 8 in all; "
                              "no confidence bucket has 20+",
    "accuracy_by_predicted_class": "Too few judged predictions for accuracy by predicted class: 8 in all; "
                                   "no predicted class has 20+",
    "accuracy_by_true_class": "Too few judged predictions for accuracy by true class: 8 in all; "
                              "no true class has 20+",
    # partial W04 (1 of 1) is left out of the range
    "evaluated_share": "81.8% of served predictions were evaluated (9 of 11); weekly 66.7% to 80.0% in complete weeks",
    # rows 4 and 13 failed, logged before failures had a kind: "error"
    "failed_requests": "15.4% of requests failed (2 of 13); most often error (2)",
}

# The same with min_judged=2: groups with 2+ judged predictions (in complete weeks) are claimed.
FINDINGS_MIN2 = {
    **FINDINGS,
    # W04 (3 judged, 66.7%) is partial: never in a headline
    "accuracy_over_time": "Accuracy rose from 50.0% in 2025-W02 (n=2 judged) to 66.7% in 2025-W03 (n=3 judged)",
    # 95% intervals [9%, 91%] and [30%, 90%] overlap: the title says so
    "accuracy_by_version": "v2 is 16.7 points more accurate than v1 (66.7% of 6 vs 50.0% of 2 judged), "
                           "within the margin of error",
    # the 0.00-0.50 bucket (1 judged) is too small to claim
    "accuracy_by_confidence": "Accuracy does not rise with confidence: 100.0% at 0.90–0.95 (n=2 judged) vs "
                              "100.0% at 0.95–1.00 (n=3 judged)",
    "accuracy_by_predicted_class": "Weakest predicted class: lion at 33.3% (n=3 judged); "
                                   "best: zebra at 100.0% (n=4 judged)",
    "accuracy_by_true_class": "True class zebra is 80.0% accurate (n=5 judged)",  # the only one with >= 2 judged
}


def title(fig) -> str:
    """A figure's title on one line."""
    return fig.get_suptitle().replace("\n", " ")

