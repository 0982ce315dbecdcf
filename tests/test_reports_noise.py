"""The label-noise slide: read from the run folder a label-issue scan wrote, finding as title,
n stated, a class with a handful of images never headlines; the deck adds it (no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
from reports_log import report_workspace, title

from imgcls import reports
from imgcls.cleaning import NOISE_COLUMNS, write_label_noise
from imgcls.core import open_workspace

ROWS = [  # label, n, flagged, estimated_issues, noise_rate: "tiny" is noisiest but has 4 images
    ("tiny", 4, 2, 2, 0.5),
    ("horse", 120, 9, 12, 0.10),
    ("zebra", 80, 2, 2, 0.025),
    ("lion", 200, 0, 0, 0.0),
]


def noise_rows() -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["label", "n", "flagged", "estimated_issues", "noise_rate"])
    return df.assign(inverse_noise_rate=df["noise_rate"] / 2, label_quality=1 - df["noise_rate"])[NOISE_COLUMNS]


def add_run(ws, run_id: str) -> None:
    run = ws.runs / run_id
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "mini_inception", "created": "2025-01-10T00:00:00+00:00"}))
    (run / "classes.json").write_text(json.dumps(["horse", "lion", "tiny", "zebra"]))


def test_noise_report_finding_never_headlines_a_tiny_class(tmp_path):
    ws = open_workspace(tmp_path / "ws", create=True)
    assert reports.label_noise_report(ws) is None
    add_run(ws, "g1")
    write_label_noise(ws.runs / "g1", noise_rows(), {"method": "linear-head", "n": 404, "embeddings_run": "g1"})
    table = reports.label_noise_report(ws)
    assert table.attrs["run_id"] == "g1" and table.attrs["method"] == "linear-head"
    assert table["label"].tolist()[0] == "tiny" and table["small"].tolist() == [True, False, False, False]
    found = reports.noise_findings(table)
    assert found["headline"] == "'horse' has the noisiest labels: about 10% of its 120 images may be filed wrongly"
    assert found["n"] == 404 and found["estimated"] == 16
    assert "n = 404 labelled images in 4 classes" in found["subtitle"] and "16 estimated wrong" in found["subtitle"]
    fig = reports.plot_label_noise(table)
    assert title(fig) == found["headline"]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == "tiny" and set(labels) == {"tiny", "horse", "zebra", "lion"}  # noisiest on top
    quiet = noise_rows().assign(noise_rate=0.0, estimated_issues=0, flagged=0)
    write_label_noise(ws.runs / "g1", quiet, {"method": "linear-head"})
    assert reports.noise_findings(reports.label_noise_report(ws))["headline"].startswith("No class shows label noise")


def test_the_deck_adds_the_noise_slide_when_a_scan_was_stored(tmp_path_factory):
    ws = report_workspace(tmp_path_factory)
    files = reports.export_deck(ws, formats=("svg",), out_dir=ws.reports / "before")
    assert "label_noise" not in set(files["name"])
    write_label_noise(ws.runs / "run-b", noise_rows(), {"method": "linear-head"})
    files = reports.export_deck(ws, formats=("svg",), out_dir=ws.reports / "after")
    noise = files[files["name"] == "label_noise"]
    assert set(noise["format"]) == {"csv", "svg"}
    assert pd.read_csv(ws.reports / "after" / "label_noise.csv")["label"].tolist()[1] == "horse"
    md = (ws.reports / "after" / "summary.md").read_text()
    assert "## Label noise" in md and "'horse' has the noisiest labels" in md


def test_the_noise_report_needs_no_tensorflow():
    code = ("import sys, imgcls.reports as r; r.label_noise_report('/nonexistent'); "
            "print([m for m in ('tensorflow', 'keras', 'cleanlab', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
