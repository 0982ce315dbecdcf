"""Tests for imgcls.reports: every table against values worked out by hand.

The log below is small enough to count on paper. Weeks are ISO weeks
(Monday first): 2025-01-06 starts 2025-W02.

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
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls import reports as reports
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


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = open_workspace(tmp_path_factory.mktemp("reports") / "ws")
    build_log(ws)
    return ws


@pytest.fixture(scope="module")
def data(ws):
    return reports.load_report_data(ws)


def records(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    out = []
    for row in df[columns].itertuples(index=False):
        out.append(tuple(None if (isinstance(v, float) and math.isnan(v)) else
                         (round(v, 4) if isinstance(v, float) else (str(v) if not isinstance(v, (int, np.integer, bool, np.bool_, pd.Timestamp)) else v))
                         for v in row))
    return out


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# --- tables ------------------------------------------------------------------
def test_report_data(data):
    assert data.versions == ("v1", "v2")
    assert data.version_runs == {"v1": "run-a", "v2": "run-b"}
    assert (data.first_day, data.last_day) == (20094, 20110)  # 2025-01-06 .. 2025-01-22
    assert len(data.evaluated) == 9  # 10 evaluations of 9 transactions
    assert reports.load_report_data(data) is data
    with pytest.raises(ValueError, match="fixed when ReportData is loaded"):
        reports.usage_over_time(data, first_day="2025-01-13")


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
        "Accuracy": "62.5% of 8 judged; 1 unsure excluded",
        "Latest version v2": "66.7% (6 judged)",
    }


# --- figures -----------------------------------------------------------------
FINDINGS = {
    "usage_over_time": "Weekly requests grew 25% from 2025-W02 to 2025-W03",  # W04 is partial
    "accuracy_over_time": "Accuracy rose from 50.0% in 2025-W02 to 66.7% in 2025-W04",
    # 95% intervals [9%, 91%] and [30%, 90%] overlap: the title says so
    "accuracy_by_version": "v2 is 16.7 points more accurate than v1 (66.7% vs 50.0%), within the margin of error",
    "accuracy_by_confidence": "Accuracy rises with confidence: 0.0% at 0.00–0.50 vs 100.0% at 0.95–1.00",
    "accuracy_by_predicted_class": "Weakest predicted class: gazelle at 0.0% (1 judged); best: zebra at 100.0%",
    "accuracy_by_true_class": "True class zebra is 80.0% accurate (5 judged)",  # the only one with >= 5 judged
    "evaluated_share": "81.8% of served predictions were evaluated (9 of 11); weekly 66.7% to 100.0%",
}


def title(fig) -> str:
    return fig.get_suptitle().replace("\n", " ")


def test_titles_state_the_findings(ws, data):
    tables = reports.build_tables(data)
    figures = reports.build_figures(tables)
    assert set(figures) == set(FINDINGS) | {"summary"}
    for name, finding in FINDINGS.items():
        assert title(figures[name]) == finding, name
        assert tuple(figures[name].get_size_inches()) == reports.SLIDE_SIZE
    summary = tables["summary"]
    assert summary.loc[summary.section == "finding", "value"].tolist() == list(FINDINGS.values())
    # other phrasings follow the data
    daily = reports.plot_usage_over_time(reports.usage_over_time(data, freq="day"))
    assert title(daily) == "Daily requests held steady at about 2 from 2025-01-06 to 2025-01-22"
    clear = reports.accuracy_by_version(data)
    clear[["accuracy", "ci_low", "ci_high"]] = [[0.5, 0.4, 0.6], [0.9, 0.85, 0.95]]
    assert title(reports.plot_accuracy_by_version(clear)) == \
        "v2 is 40.0 points more accurate than v1 (90.0% vs 50.0%)"
    shrink = reports.usage_over_time(ws, first_day="2025-01-13", last_day="2025-01-26")
    assert title(reports.plot_usage_over_time(shrink)) == "Weekly requests fell 20% from 2025-W03 to 2025-W04"


def test_version_colours_are_the_same_in_every_figure(data):
    colors = reports.version_colors(data.versions)
    assert colors == reports.version_colors(["v1", "v2"]) and colors["v1"] != colors["v2"]
    assert reports.version_colors(["v1", "v2", "v3"])["v2"] == colors["v2"]  # new versions append
    assert reports.version_order(["v10", "v2", "v1"]) == ["v1", "v2", "v10"]
    tables = reports.build_tables(data)
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
    only_v2 = reports.accuracy_by_version(data).iloc[[1]]
    bar = reports.plot_accuracy_by_version(only_v2).axes[0].patches[0]
    assert to_hex(bar.get_facecolor()) == colors["v2"]


def test_export_deck_writes_files_that_open(ws):
    files = reports.export_deck(ws)
    folder = ws.reports / pd.Timestamp.now(tz="UTC").date().isoformat()
    assert set(files["path"].map(lambda p: str(p.rsplit("/", 1)[0]))) == {str(folder)}
    names = set(files["name"])
    assert names == set(FINDINGS) | {"summary"}
    for name in FINDINGS:
        for fmt in ("png", "svg", "pdf"):
            assert (folder / f"{name}.{fmt}").is_file()
    for path in files["path"]:
        data = open(path, "rb").read()
        assert len(data) > 0
        if path.endswith(".png"):
            with Image.open(io.BytesIO(data)) as im:
                im.verify()
            with Image.open(path) as im:
                w, h = im.size
                assert abs(w / h - 16 / 9) < 0.01 and w >= 1600
        elif path.endswith(".pdf"):
            assert data.startswith(b"%PDF") and b"%%EOF" in data[-64:]
        elif path.endswith(".svg"):
            assert ET.fromstring(data).tag.endswith("svg")
    # tables round-trip through CSV
    usage = pd.read_csv(folder / "usage_over_time.csv")
    assert usage["requests"].tolist() == [4, 1, 4, 4]
    md = (folder / "summary.md").read_text()
    for finding in FINDINGS.values():
        assert finding in md
    assert "| Requests | 13 |" in md
    assert {"summary.md", "summary.pdf", "summary.png"} <= set(p.rsplit("/", 1)[1] for p in files["path"])


def test_export_deck_options_and_errors(ws, tmp_path):
    files = reports.export_deck(ws.serving_db, out_dir=tmp_path / "deck", formats="svg",
                                freq="month", include_simulated=False)
    assert set(files["format"]) == {"csv", "svg", "md"}
    share = pd.read_csv(tmp_path / "deck" / "evaluated_share.csv")
    assert share[["label", "served", "evaluated"]].values.tolist() == [["2025-01", 10, 8]]
    with pytest.raises(ValueError, match="`formats` must be a non-empty subset"):
        reports.export_deck(ws, out_dir=tmp_path / "x", formats=("jpg",))


def test_empty_log_still_reports(tmp_path):
    ws = open_workspace(tmp_path / "empty")
    TransactionLog(ws).close()
    tables = reports.build_tables(ws)
    assert all(len(tables[name]) == 0 for name in ("usage_over_time", "accuracy_over_time",
                                                   "accuracy_by_version", "evaluated_share"))
    assert tables["accuracy_by_confidence"]["judged"].sum() == 0
    figures = reports.build_figures(tables)
    assert title(figures["usage_over_time"]) == "No requests logged yet"
    assert title(figures["accuracy_by_version"]) == "No evaluated predictions yet"
    files = reports.export_deck(ws, formats=("svg",))
    assert (files["bytes"] > 0).all()


def test_missing_log_is_not_created(tmp_path):
    ws = open_workspace(tmp_path / "nolog")
    with pytest.raises(FileNotFoundError, match="No transaction log"):
        reports.build_tables(ws)
    assert not ws.serving_db.exists()


def test_run_metadata_reads_plain_json(ws):
    meta = reports.run_metadata(ws)
    assert meta["run_id"].tolist() == ["run-b"]
    row = meta.iloc[0]
    assert (row["model"], row["n_classes"], row["test_accuracy"]) == ("mini_inception", 3, 0.9)
    assert np.isnan(row["benchmark_accuracy"])
    missing = reports.run_metadata(ws, run_ids=["run-a"])
    assert missing["model"].isna().all()


def test_no_tensorflow_or_pyplot_imported():
    code = ("import sys, imgcls.translog, imgcls.reports; "
            "bad = [m for m in ('tensorflow', 'keras', 'matplotlib.pyplot', 'imgcls.runs') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
