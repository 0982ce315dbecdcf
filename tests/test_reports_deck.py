"""Tests for imgcls.reports.deck: the exported files open, and an empty log still reports."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from PIL import Image
from reports_log import FINDINGS, report_workspace, title

from imgcls import reports as reports
from imgcls.core import open_workspace
from imgcls.translog import TransactionLog


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return report_workspace(tmp_path_factory)


def test_export_deck_writes_files_that_open(ws):
    files = reports.export_deck(ws)
    folder = ws.reports / pd.Timestamp.now(tz="UTC").date().isoformat()
    assert set(files["path"].map(lambda p: str(p.rsplit("/", 1)[0]))) == {str(folder)}
    names = set(files["name"])
    # one run on disk: the "model generations" tables, but no generation slides (one generation)
    assert names == set(FINDINGS) | {"summary", "generation_tree", "generations", "generation_cost"}
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
