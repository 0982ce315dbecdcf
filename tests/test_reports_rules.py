"""The report rules (imgcls.reports.rules, drawn by imgcls.core.slides): partial and small
periods never in a headline, lines broken where there is no data, every headline with n,
simulated traffic flagged on the slides.

The log here is the overclaim of issue 14 in small: week 1 partial and strong in count,
weeks 2 and 4 complete, week 3 empty, week 5 complete but with 2 judged predictions,
week 6 partial with 2 judged -- all served by one version, a second version seen only
in week 5 from a handful.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reports_log import report_workspace, title

from imgcls import reports
from imgcls.core import open_workspace
from imgcls.core.slides import MUTED, SIMULATED_GID, fade_weak
from imgcls.reports.rules import (
    MIN_JUDGED,
    check_min_judged,
    headline_rows,
    mark_reliable,
    n_text,
    reliable,
    simulated_note,
    too_few,
    with_gaps,
)
from imgcls.translog import TransactionLog

# Monday 2025-03-03 starts 2025-W10; the span runs Wed W10 .. Tue W15 (W10 and W15 partial).
_DAYS = {  # day -> (version, correct, wrong, simulated)
    "2025-03-05": ("v1", 20, 10, False),   # W10 (partial) 30 judged at 66.7%
    "2025-03-11": ("v1", 18, 6, False),    # W11 24 judged at 75.0%
    # W12: nothing at all
    "2025-03-25": ("v1", 27, 3, False),    # W13 30 judged at 90.0%
    "2025-04-01": ("v2", 0, 2, True),      # W14 2 judged at 0.0% (v2, simulated)
    "2025-04-08": ("v1", 2, 0, False),     # W15 (partial) 2 judged at 100.0%
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = open_workspace(tmp_path_factory.mktemp("rules") / "ws")
    with TransactionLog(ws) as log:
        for day, (version, correct, wrong, simulated) in _DAYS.items():
            for i, verdict in enumerate(["correct"] * correct + ["wrong"] * wrong):
                tid = log.log_transaction(f"run-{version}", {"zebra": 0.9, "lion": 0.1}, model_version=version,
                                          time=f"{day}T{8 + i // 60:02d}:{i % 60:02d}Z", simulated=simulated)
                log.log_evaluation(tid, verdict, reviewer="ana", time=f"{day}T20:00Z", simulated=simulated)
    return ws


def _lines(fig) -> dict:
    return {line.get_label(): line for line in fig.axes[0].get_lines()}


def test_partial_and_small_periods_never_in_a_headline(ws):
    table = reports.accuracy_over_time(ws)
    assert table.attrs["min_judged"] == MIN_JUDGED
    # Of the five periods with data, only W11 and W13 are complete with 20+ judged.
    fig = reports.plot_accuracy_over_time(table)
    assert title(fig) == ("Accuracy rose from 75.0% in 2025-W11 (n=24 judged) "
                          "to 90.0% in 2025-W13 (n=30 judged)")
    for weak in ("W10", "W14", "W15", "100.0%", "66.7%"):
        assert weak not in title(fig)
    # the summary states the same
    summary = reports.summary_table(ws)
    assert title(fig) in summary["value"].tolist()
    # A stricter threshold leaves one strong week; stricter still, none -- and then nothing is claimed.
    one = reports.accuracy_over_time(ws, min_judged=25)
    assert title(reports.plot_accuracy_over_time(one)) == \
        "Accuracy was 90.0% in 2025-W13 (n=30 judged), the only complete week with 25+ judged"
    none = reports.accuracy_over_time(ws, min_judged=31)
    assert title(reports.plot_accuracy_over_time(none)) == \
        "Too few judged predictions for a trend: 88 in all (76.1% correct); no complete week has 31+"
    with pytest.raises(ValueError, match="`min_judged` must be an int >= 1"):
        reports.accuracy_over_time(ws, min_judged=0)


def test_small_versions_and_buckets_never_in_a_headline(ws):
    versions = reports.accuracy_by_version(ws)
    # v2 (2 judged, all wrong) is never compared with v1; the headline is about v1 alone
    assert title(reports.plot_accuracy_by_version(versions)) == "v1 is 77.9% accurate (n=86 judged predictions)"
    bars = reports.plot_accuracy_by_version(versions).axes[0].patches
    to_hex = lambda c: "#%02x%02x%02x" % tuple(round(255 * x) for x in c[:3])  # noqa: E731
    assert to_hex(bars[1].get_facecolor()) == MUTED and to_hex(bars[0].get_facecolor()) != MUTED
    classes = reports.accuracy_by_class(ws, min_judged=100)
    assert title(reports.plot_accuracy_by_class(classes)) == \
        "Too few judged predictions for accuracy by predicted class: 88 in all; no predicted class has 100+"
    faded = reports.plot_accuracy_by_class(classes).axes[0].patches
    assert {to_hex(b.get_facecolor()) for b in faded} == {MUTED}


def test_gaps_break_lines_and_weak_points_are_not_joined(ws):
    table = reports.accuracy_over_time(ws)
    fig = reports.plot_accuracy_over_time(table)
    lines = _lines(fig)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["2025-W10", "2025-W11", "2025-W12", "2025-W13", "2025-W14", "2025-W15"]
    v1 = np.asarray(lines["v1"].get_ydata(), dtype=float)
    # the line: W11 and W13 only; NaN in the empty W12 (no line across it) and at weak W10, W15
    assert len(v1) == 6 and np.isnan(v1[[0, 2, 4, 5]]).all()
    assert v1[1] == pytest.approx(0.75) and v1[3] == pytest.approx(0.9)
    # a version seen only from a handful is never a line: its line holds no number at all
    assert np.isnan(np.asarray(lines["v2"].get_ydata(), dtype=float)).all()
    overall = np.asarray(lines["All versions"].get_ydata(), dtype=float)
    assert np.isnan(overall[2]) and np.isfinite(overall[[1, 3]]).all()
    # the weak points are there, faded, as markers no line joins
    faded = [l for l in fig.axes[0].get_lines() if l.get_color() == MUTED]
    assert faded and all(l.get_linestyle() == "None" for l in faded)
    weak_values = sorted(float(v) for l in faded for v in l.get_ydata() if np.isfinite(v))
    assert weak_values == pytest.approx(sorted([20 / 30, 1.0, 0.0, 0.0, 20 / 30, 1.0]))


def test_simulated_traffic_is_flagged_on_the_slides(ws, tmp_path_factory):
    tables = reports.build_tables(ws)
    figures = reports.build_figures(tables)
    flagged = {name for name, fig in figures.items() if any(t.get_gid() == SIMULATED_GID for t in fig.texts)}
    assert flagged == set(figures)       # every slide counts the 2 simulated requests or evaluations
    flag = next(t for t in figures["usage_over_time"].texts if t.get_gid() == SIMULATED_GID)
    assert " ".join(flag.get_text().split()) == "Simulated: 2 of 88 requests are demo traffic"
    head = tables["summary"].set_index("metric")["value"]
    assert head["Simulated traffic"] == "2 of 88 requests are demo traffic (flagged on the slides)"
    # without demo traffic, no flag
    real = reports.build_figures(reports.build_tables(ws, include_simulated=False))
    assert not any(t.get_gid() == SIMULATED_GID for fig in real.values() for t in fig.texts)
    # the shared small log has one simulated request: flagged too
    small = report_workspace(tmp_path_factory)
    usage = reports.plot_usage_over_time(reports.usage_over_time(small))
    assert any(t.get_gid() == SIMULATED_GID for t in usage.texts)


def test_every_headline_states_n(ws, tmp_path_factory):
    # the summary's findings are the slide titles (tests/test_reports_figures.py); no figures needed here
    for source in (ws, report_workspace(tmp_path_factory)):
        for min_judged in (1, 2, MIN_JUDGED):
            summary = reports.summary_table(source, min_judged=min_judged)
            for name, text in summary.loc[summary.section == "finding", ["metric", "value"]].itertuples(index=False):
                assert any(ch.isdigit() for ch in text.replace("2025", "")), (name, text)
                assert ("n=" in text or " of " in text or " in all" in text or "requests" in text), (name, text)


def test_the_rules_api():
    assert reliable([25, 3, np.nan, 20], complete=[True, True, True, False]).tolist() == [True, False, False, False]
    assert reliable([5, 1], min_n=2).tolist() == [True, False]
    table = pd.DataFrame({"judged": [30, 4, 40], "complete": [True, True, False]})
    table.attrs["min_judged"] = 5
    assert mark_reliable(table)["reliable"].tolist() == [True, False, False]
    assert headline_rows(table)["judged"].tolist() == [30]
    assert headline_rows(table, complete=None)["judged"].tolist() == [30, 40]
    assert headline_rows(table, complete=None, min_n=3)["judged"].tolist() == [30, 4, 40]
    gaps = with_gaps([0, 3], [0.5, 0.7], 5)
    assert np.isnan(gaps[[1, 2, 4]]).all() and gaps[0] == 0.5 and gaps[3] == 0.7
    assert n_text(1234) == "n=1,234 judged" and n_text(12, "images") == "n=12 images"
    assert too_few("a trend", 14, min_n=20, per="complete week") == \
        "Too few judged predictions for a trend: 14 in all; no complete week has 20+"
    assert simulated_note(0, 10) is None
    assert simulated_note(10, 10) == "Simulated: all 10 requests are demo traffic"
    assert simulated_note(3, 1000, "evaluations") == "Simulated: 3 of 1,000 evaluations are demo traffic"
    assert fade_weak("#111111", [True, False]) == ["#111111", MUTED]
    assert check_min_judged(3) == 3
    with pytest.raises(ValueError, match="min_judged"):
        check_min_judged(True)
