"""Tests for imgcls.reports.figures (and the findings their titles state)."""

from __future__ import annotations

import pytest
from reports_log import FINDINGS, FINDINGS_MIN2, report_workspace, title

from imgcls import reports as reports
from imgcls.core.slides import SLIDE_SIZE, version_colors


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return report_workspace(tmp_path_factory)


@pytest.fixture(scope="module")
def data(ws):
    return reports.load_report_data(ws)


@pytest.mark.parametrize("min_judged, findings", [(None, FINDINGS), (2, FINDINGS_MIN2)])
def test_titles_state_the_findings(ws, data, min_judged, findings):
    tables = reports.build_tables(data, **({"min_judged": min_judged} if min_judged else {}))
    figures = reports.build_figures(tables)
    assert set(figures) == set(findings) | {"summary"}
    for name, finding in findings.items():
        assert title(figures[name]) == finding, name
        assert tuple(figures[name].get_size_inches()) == SLIDE_SIZE
    summary = tables["summary"]
    assert summary.loc[summary.section == "finding", "value"].tolist() == list(findings.values())


def test_other_phrasings_follow_the_data(ws, data):
    daily = reports.plot_usage_over_time(reports.usage_over_time(data, freq="day"))
    assert title(daily) == ("Daily requests held steady at about 2 from 2025-01-06 to 2025-01-22 "
                            "(2 to 2 requests)")
    clear = reports.accuracy_by_version(data, min_judged=2)
    clear[["accuracy", "ci_low", "ci_high"]] = [[0.5, 0.4, 0.6], [0.9, 0.85, 0.95]]
    assert title(reports.plot_accuracy_by_version(clear)) == \
        "v2 is 40.0 points more accurate than v1 (90.0% of 6 vs 50.0% of 2 judged)"
    one = reports.accuracy_by_version(data, min_judged=3)   # v1 has 2 judged: only v2 is claimed
    assert title(reports.plot_accuracy_by_version(one)) == "v2 is 66.7% accurate (n=6 judged predictions)"
    shrink = reports.usage_over_time(ws, first_day="2025-01-13", last_day="2025-01-26")
    assert title(reports.plot_usage_over_time(shrink)) == \
        "Weekly requests fell 20% from 2025-W03 to 2025-W04 (5 to 4 requests)"
    partial = reports.usage_over_time(ws, first_day="2025-01-08", last_day="2025-01-15")  # two partial weeks
    assert title(reports.plot_usage_over_time(partial)) == \
        "6 requests from 2025-W02 to 2025-W03; too few complete weeks for a trend"


def test_version_colours_are_the_same_in_every_figure(data):
    colors = version_colors(data.versions)
    assert colors == version_colors(["v1", "v2"]) and colors["v1"] != colors["v2"]
    assert version_colors(["v1", "v2", "v3"])["v2"] == colors["v2"]  # new versions append
    assert reports.version_order(["v10", "v2", "v1"]) == ["v1", "v2", "v10"]
    tables = reports.build_tables(data, min_judged=2)   # both versions strong: drawn in their colours
    usage_fig = reports.plot_usage_over_time(tables["usage_over_time"])
    version_fig = reports.plot_accuracy_by_version(tables["accuracy_by_version"])
    time_fig = reports.plot_accuracy_over_time(tables["accuracy_over_time"])
    to_hex = lambda c: "#%02x%02x%02x" % tuple(round(255 * x) for x in c[:3])  # noqa: E731
    usage_colours = {to_hex(p.get_facecolor()) for p in usage_fig.axes[0].patches}
    assert usage_colours == {colors["v1"], colors["v2"]}
    bars = version_fig.axes[0].patches
    assert [to_hex(b.get_facecolor()) for b in bars] == [colors["v1"], colors["v2"]]
    lines = {l.get_label(): l.get_color() for l in time_fig.axes[0].get_lines()}
    assert lines["v1"] == colors["v1"] and lines["v2"] == colors["v2"]
    # a table without v1 still colours v2 as v2 (the version order travels with the table)
    only_v2 = reports.accuracy_by_version(data, min_judged=2).iloc[[1]]
    bar = reports.plot_accuracy_by_version(only_v2).axes[0].patches[0]
    assert to_hex(bar.get_facecolor()) == colors["v2"]
