"""Tests for imgcls.library.decisions: the one decisions CSV, checked before anything moves,
applied in one undoable batch; and the review grid's export of it (grid -> CSV -> apply -> undo)."""

from __future__ import annotations

import pandas as pd
import pytest

from imgcls.library import (
    DECISION_COLUMNS,
    DecisionsError,
    Library,
    apply_decisions,
    check_decisions,
    read_decisions,
)
from ui_results import make_workspace, results_for, snapshot


@pytest.fixture()
def ws(tmp_path):
    return make_workspace(tmp_path / "ws")


def pool(ws):
    return sorted(ws.unlabelled.rglob("*.png"))


def write_csv(path, rows, columns=("path", "action", "label", "reason")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def test_read_checks_and_normalises(ws, tmp_path):
    p = pool(ws)
    rel = p[1].relative_to(ws.root).as_posix()
    csv = write_csv(tmp_path / "d.csv", [
        (str(p[0]), "label", " zebra ", "stripes"),
        (rel, " Discard", "", ""),
        (str(p[2]), "label", "unknown", ""),
        (str(p[3]), "skip", "cow", "not sure"),
    ])
    d = read_decisions(csv, workspace=ws)
    assert list(d.columns) == DECISION_COLUMNS
    assert d["action"].tolist() == ["label", "discard", "unknown", "skip"]
    assert d["label"].tolist() == ["zebra", None, None, None]
    assert d["path"].tolist() == [str(p[i]) for i in range(4)]  # workspace-relative resolved
    assert d["reason"].tolist() == ["stripes", "", "", "not sure"]
    # Without a workspace: the schema only; extra columns are kept after the schema's.
    extra = pd.DataFrame({"path": ["x.png"], "action": ["label"], "label": ["cow"], "top1_score": [0.9]})
    assert list(check_decisions(extra).columns) == [*DECISION_COLUMNS, "top1_score"]


def test_bad_rows_refuse_the_whole_file_and_move_nothing(ws, tmp_path):
    p = pool(ws)
    before = snapshot(ws)
    csv = write_csv(tmp_path / "bad.csv", [
        (str(p[0]), "label", "zebra", ""),          # fine
        (str(p[1]), "rename", "", ""),              # unknown action
        (str(p[2]), "label", "", ""),               # no label
        (str(p[3]), "label", "../escape", ""),      # invalid class name
        ("", "discard", "", ""),                    # no path
        (str(tmp_path / "gone.png"), "discard", "", ""),  # no image there
        (str(p[0]), "discard", "", ""),             # decided twice
    ])
    with pytest.raises(DecisionsError) as info:
        apply_decisions(ws, csv)
    problems = info.value.problems
    assert problems["row"].tolist() == [3, 4, 5, 6, 7, 8]  # CSV lines (header = line 1)
    message = str(info.value)
    assert "nothing was moved" in message and "line 3: action 'rename'" in message
    assert "needs the class" in message and "Invalid class name" in message and "line 8" in message
    assert snapshot(ws) == before
    assert not ws.journal.exists() or Library(ws).journal().empty
    with pytest.raises(ValueError, match="missing \\['action'\\]"):
        check_decisions(pd.DataFrame({"path": ["a"]}))
    outside = write_csv(tmp_path / "outside.csv", [(str(csv), "label", "cow", "")])
    with pytest.raises(DecisionsError, match="not in the workspace"):
        read_decisions(outside, workspace=ws)
    with pytest.raises(FileNotFoundError):
        read_decisions(tmp_path / "none.csv")


def test_apply_is_one_batch_undone_by_one_undo(ws, tmp_path):
    p = pool(ws)
    before = snapshot(ws)
    csv = write_csv(tmp_path / "d.csv", [
        (str(p[0]), "label", "zebra", "a new class"),
        (str(p[1]), "label", "cow", ""),
        (str(p[2]), "unknown", "", ""),
        (str(p[3]), "discard", "", "blurred"),
        (str(p[4]), "skip", "", ""),
    ])
    done = apply_decisions(ws, csv)
    assert done["error"].tolist() == [""] * 5 and done.attrs["batch"]
    assert done["new_path"].iloc[4] is None and p[4].exists()
    assert (ws.library / "zebra" / p[0].name).exists() and (ws.library / "cow" / p[1].name).exists()
    assert (ws.unknown / p[2].name).exists() and (ws.trash / p[3].name).exists()
    assert done["reason"].tolist()[0] == "a new class"
    lib = Library(ws)
    assert set(lib.journal()["batch"]) == {done.attrs["batch"]}
    lib.undo(1)
    assert snapshot(ws) == before
    # A skip-only file moves nothing and makes no batch.
    only_skip = apply_decisions(ws, pd.DataFrame({"path": [str(p[0])], "action": ["skip"]}))
    assert only_skip.attrs["batch"] is None


def test_grid_decisions_round_trip_through_csv(ws, tmp_path):
    pytest.importorskip("ipywidgets")
    from imgcls.ui import ReviewGrid

    before = snapshot(ws)
    results = results_for(ws, 12)
    grid = ReviewGrid(results, Library(ws), page_size=12)
    paths = results["path"].tolist()
    grid.decide(paths[0], "accept")
    grid.decide(paths[1], "label", "gazelle")
    grid.decide(paths[2], "unknown")
    grid.decide(paths[3], "discard")
    grid.decide(paths[4], "skip")
    table = grid.decisions_table()
    assert list(table.columns) == DECISION_COLUMNS
    assert table["action"].tolist() == ["label", "label", "unknown", "discard", "skip"]
    assert table["label"].tolist() == [results["top1_class"].iloc[0], "gazelle", None, None, None]
    assert table["reason"].str.startswith("review grid; first choice").all()
    csv = tmp_path / "grid.csv"
    table.to_csv(csv, index=False)
    assert snapshot(ws) == before  # exporting moves nothing

    done = apply_decisions(ws, csv)
    assert not done["error"].astype(bool).any()
    assert (ws.library / "gazelle").is_dir() and (ws.trash / paths[3].rsplit("/", 1)[1]).exists()
    Library(ws).undo(1)
    assert snapshot(ws) == before
