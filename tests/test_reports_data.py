"""Tests for imgcls.reports.data: reading the log once, run metadata, no TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from reports_log import report_workspace

from imgcls import reports as reports
from imgcls.core import open_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return report_workspace(tmp_path_factory)


@pytest.fixture(scope="module")
def data(ws):
    return reports.load_report_data(ws)


def test_report_data(data):
    assert data.versions == ("v1", "v2")
    assert data.version_runs == {"v1": "run-a", "v2": "run-b"}
    assert (data.first_day, data.last_day) == (20094, 20110)  # 2025-01-06 .. 2025-01-22
    assert len(data.evaluated) == 9  # 10 evaluations of 9 transactions
    assert reports.load_report_data(data) is data
    with pytest.raises(ValueError, match="fixed when ReportData is loaded"):
        reports.usage_over_time(data, first_day="2025-01-13")



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
