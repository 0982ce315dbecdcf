"""Tests for imgcls.reports.tables: every table against values worked out by hand (see reports_log)."""

from __future__ import annotations

import numpy as np
import pytest
from reports_log import W02, W03, W04, records, report_workspace, wilson

from imgcls import reports as reports


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return report_workspace(tmp_path_factory)


@pytest.fixture(scope="module")
def data(ws):
    return reports.load_report_data(ws)


def test_usage_over_time_weekly(data):
    table = reports.usage_over_time(data, freq="week")
    assert list(table.columns) == ["period", "label", "model_version", "requests", "ok", "failed", "complete"]
    assert records(table, ["period", "label", "model_version", "requests", "ok", "failed", "complete"]) == [
        (W02, "2025-W02", "v1", 4, 3, 1, True),
        (W03, "2025-W03", "v1", 1, 1, 0, True),
        (W03, "2025-W03", "v2", 4, 4, 0, True),
        (W04, "2025-W04", "v2", 4, 3, 1, False),
    ]
    assert list(table["model_version"].cat.categories) == ["v1", "v2"]


def test_usage_over_time_day_month_and_filters(ws, data):
    daily = reports.usage_over_time(data, freq="D")
    assert records(daily, ["label", "model_version", "requests"]) == [
        ("2025-01-06", "v1", 2), ("2025-01-08", "v1", 2), ("2025-01-13", "v1", 1),
        ("2025-01-14", "v2", 1), ("2025-01-15", "v2", 2), ("2025-01-17", "v2", 1),
        ("2025-01-20", "v2", 1), ("2025-01-21", "v2", 1), ("2025-01-22", "v2", 2),
    ]
    assert daily["complete"].all()
    monthly = reports.usage_over_time(data, freq="month")
    assert records(monthly, ["label", "model_version", "requests", "failed", "complete"]) == [
        ("2025-01", "v1", 5, 1, False), ("2025-01", "v2", 8, 1, False)]
    real = reports.usage_over_time(ws, include_simulated=False)
    assert real["requests"].tolist() == [4, 1, 4, 3]
    one_week = reports.usage_over_time(ws, first_day="2025-01-13", last_day="2025-01-19")
    assert records(one_week, ["label", "model_version", "requests", "complete"]) == [
        ("2025-W03", "v1", 1, True), ("2025-W03", "v2", 4, True)]
    with pytest.raises(ValueError, match="`freq` must be one of"):
        reports.usage_over_time(data, freq="hour")
    with pytest.raises(ValueError, match="`first_day` must not be after `last_day`"):
        reports.load_report_data(ws, first_day="2025-02-01", last_day="2025-01-01")


def test_accuracy_over_time(data):
    table = reports.accuracy_over_time(data)
    cols = ["label", "model_version", "evaluated", "judged", "correct", "wrong", "unsure", "accuracy", "complete"]
    assert records(table, cols) == [
        ("2025-W02", "v1", 2, 2, 1, 1, 0, 0.5, True),
        ("2025-W03", "v1", 1, 0, 0, 0, 1, None, True),  # unsure only: no accuracy, still counted
        ("2025-W03", "v2", 3, 3, 2, 1, 0, round(2 / 3, 4), True),
        ("2025-W04", "v2", 3, 3, 2, 1, 0, round(2 / 3, 4), False),
    ]
    low, high = wilson(1, 2)
    assert table.loc[0, "ci_low"] == pytest.approx(low) and table.loc[0, "ci_high"] == pytest.approx(high)
    assert np.isnan(table.loc[1, "ci_low"])


def test_accuracy_by_version(data):
    table = reports.accuracy_by_version(data)
    cols = ["model_version", "run_id", "model", "requests", "served", "evaluated", "judged", "correct",
            "wrong", "unsure", "accuracy", "share_evaluated", "test_accuracy"]
    assert records(table, cols) == [
        ("v1", "run-a", None, 5, 4, 3, 2, 1, 1, 1, 0.5, 0.75, None),
        ("v2", "run-b", "mini_inception", 8, 7, 6, 6, 4, 2, 0, round(4 / 6, 4), round(6 / 7, 4), 0.9),
    ]
    low, high = wilson(4, 6)
    assert table.loc[1, "ci_low"] == pytest.approx(low) and table.loc[1, "ci_high"] == pytest.approx(high)


def test_accuracy_by_confidence(data):
    table = reports.accuracy_by_confidence(data)
    cols = ["bucket", "evaluated", "judged", "correct", "wrong", "unsure", "accuracy", "mean_confidence"]
    assert records(table, cols) == [
        ("0.00–0.50", 1, 1, 0, 1, 0, 0.0, 0.45),    # 8
        ("0.50–0.60", 1, 1, 0, 1, 0, 0.0, 0.55),    # 2
        ("0.60–0.70", 1, 0, 0, 0, 1, None, 0.65),   # 5 (unsure)
        ("0.70–0.80", 1, 1, 0, 1, 0, 0.0, 0.75),    # 11
        ("0.80–0.90", 0, 0, 0, 0, 0, None, None),   # 3 and 9 were never evaluated
        ("0.90–0.95", 2, 2, 2, 0, 0, 1.0, 0.915),   # 7, 12
        ("0.95–1.00", 3, 3, 3, 0, 0, 1.0, 0.97),    # 1, 6, 10
    ]
    halves = reports.accuracy_by_confidence(data, buckets=2)
    assert records(halves, ["bucket", "judged", "correct", "unsure"]) == [
        ("0.00–0.50", 1, 0, 0), ("0.50–1.00", 7, 5, 1)]
    top_only = reports.accuracy_by_confidence(data, buckets=[0.9, 1.0])
    assert top_only["judged"].tolist() == [5] and top_only.attrs["excluded"] == 4
    for bad in ([0.5, 0.2], [0, 2], [0.3], "high", 0):
        with pytest.raises(ValueError, match="`buckets`"):
            reports.accuracy_by_confidence(data, buckets=bad)


def test_accuracy_by_class(data):
    predicted = reports.accuracy_by_class(data)
    cols = ["class", "evaluated", "judged", "correct", "wrong", "unsure", "accuracy"]
    assert records(predicted, cols) == [
        ("gazelle", 1, 1, 0, 1, 0, 0.0),
        ("lion", 4, 3, 1, 2, 1, round(1 / 3, 4)),
        ("zebra", 4, 4, 4, 0, 0, 1.0),
    ]
    true = reports.accuracy_by_class(data, by="true")
    # correct -> the predicted class; wrong with a true class -> that class;
    # transaction 5 (unsure, no true class) has no known true class
    assert records(true, cols) == [
        ("antelope", 1, 1, 0, 1, 0, 0.0),
        ("tiger", 1, 1, 0, 1, 0, 0.0),
        ("zebra", 5, 5, 4, 1, 0, 0.8),
        ("lion", 1, 1, 1, 0, 0, 1.0),
    ]
    assert true.attrs["unknown_true_class"] == 1
    with pytest.raises(ValueError, match="`by` must be 'predicted' or 'true'"):
        reports.accuracy_by_class(data, by="guess")


def test_evaluated_share(data, ws):
    table = reports.evaluated_share(data)
    assert records(table, ["label", "served", "evaluated", "share", "complete"]) == [
        ("2025-W02", 3, 2, round(2 / 3, 4), True),
        ("2025-W03", 5, 4, 0.8, True),
        ("2025-W04", 3, 3, 1.0, False),
    ]
    real = reports.evaluated_share(ws, include_simulated=False)
    assert real["served"].tolist() == [3, 5, 2] and real["evaluated"].tolist() == [2, 4, 2]


def test_summary_table(data):
    summary = reports.summary_table(data)
    head = dict(zip(summary.loc[summary.section == "headline", "metric"],
                    summary.loc[summary.section == "headline", "value"]))
    assert head == {
        "Period": "2025-01-06 to 2025-01-22 (UTC)",
        "Requests": "13",
        "Failed requests": "2 (15.4%)",
        "Model versions": "2 (v1, v2)",
        "Evaluated": "9 (81.8% of served predictions)",
        "Accuracy": "62.5% of 8 judged (current verdicts); 1 unsure excluded",
        "Latest version v2": "66.7% (6 judged); too few to compare",   # < MIN_JUDGED
        "Simulated traffic": "1 of 13 requests are demo traffic (flagged on the slides)",
    }
