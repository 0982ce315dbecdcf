"""The labelled library: catalog, counts, cutoff and hash-keyed flags."""

from __future__ import annotations

import os
import time

import pytest

from imgcls.core import open_workspace
from imgcls.library import Library
from library_images import png, tree


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


def test_workspace_layout_is_created(ws):
    for folder in (ws.library, ws.unknown, ws.unlabelled, ws.trash, ws.runs, ws.bulk, ws.reports):
        assert folder.is_dir()
    assert ws.journal.name == "journal.jsonl" and ws.serving_db.name == "serving.sqlite"


@pytest.mark.parametrize("cutoff", [0, -1, 2.5, "40", True])
def test_workspace_rejects_bad_cutoff(tmp_path, cutoff):
    with pytest.raises(ValueError, match="cutoff"):
        open_workspace(tmp_path, cutoff=cutoff)


def test_scan_catalog_counts_and_cutoff(ws):
    tree(ws, {"cat": 5, "dog": 3, "unknown": 4})
    (ws.library / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    (ws.library / "cat" / "notes.txt").write_text("not an image")  # ignored: not an image name
    lib = Library(ws)
    cat = lib.scan()
    assert len(cat) == 13
    assert set(cat["label"]) == {"cat", "dog", "unknown"}
    broken = cat[cat["relpath"] == "cat/broken.png"].iloc[0]
    assert not broken["readable"] and broken["error"]
    ok = cat[cat["readable"]]
    assert (ok["width"] == 32).all() and ok["hash"].str.len().eq(64).all()
    counts = lib.counts(cutoff=4).set_index("label")
    assert counts.loc["cat", "n"] == 5 and counts.loc["cat", "unreadable"] == 1
    assert counts.loc["dog", "short_by"] == 1
    assert not counts.loc["unknown", "meets_cutoff"]  # never trains, whatever its count
    assert lib.classes(cutoff=4) == ["cat"]
    assert lib.classes(cutoff=3) == ["cat", "dog"]
    with pytest.raises(ValueError, match="cutoff"):
        lib.classes(cutoff=0)


def test_rescan_reuses_cache_and_sees_changes(ws):
    files = tree(ws, {"cat": 3})
    lib = Library(ws)
    first = lib.scan()
    png(files["cat"][0], seed=999)  # content changes
    os.utime(files["cat"][0], ns=(time.time_ns(), time.time_ns() + 10**9))
    second = lib.scan()
    changed = second.set_index("relpath")["hash"] != first.set_index("relpath")["hash"]
    assert changed.sum() == 1 and changed["cat/cat_0.png"]


def test_flags_follow_content_through_moves(ws):
    files = tree(ws, {"cat": 3, "dog": 2})
    lib = Library(ws)
    lib.set_flags(files["cat"][0], staged=True, turns=1)
    lib.set_flags([files["cat"][1]], benchmark=True)
    new = lib.move(files["cat"][0], "lynx")
    row = lib.scan().set_index("relpath").loc[f"lynx/{new.name}"]
    assert row["staged"] and row["turns"] == 1 and not row["benchmark"]
    assert lib.catalog.set_index("relpath").loc["cat/cat_1.png", "benchmark"]
    with pytest.raises(ValueError, match="turns"):
        lib.set_flags(files["dog"][0], turns=5)
    with pytest.raises(ValueError, match="neither an image file nor a content hash"):
        lib.set_flags("no/such/file.png", staged=True)
