"""Tests for imgcls.ui: the review grid, driven through its own controls
(button clicks, setting a tile's class box) on real files in a tmp workspace."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from ui_results import make_workspace, results_for, snapshot

from imgcls.library import Library
from imgcls.ui import ReviewGrid


@pytest.fixture
def ws(tmp_path):
    """A small workspace: 4 classes x 3 images, 60 pool images in nested folders."""
    return make_workspace(tmp_path / "ws")


def test_tile_controls_record_decisions(ws):
    res = results_for(ws)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    t = grid.tiles
    assert [x.path for x in t] == res["path"].iloc[:12].tolist()
    assert "imgcls-tile" in t[0].box._dom_classes
    assert "imgcls-accept" in t[0].accept_button._dom_classes
    assert "imgcls-label-input" in t[0].label_input._dom_classes
    assert "imgcls-apply" in grid.apply_button._dom_classes
    assert res["top1_class"].iat[0] in t[0].prediction.value and res["top2_class"].iat[0] in t[0].prediction.value

    t[0].accept_button.click()
    t[1].second_button.click()
    t[2].label_input.value = "gazelle"          # a new class name
    t[3].label_input.value = res["top3_class"].iat[3]  # an existing one
    t[4].unknown_button.click()
    t[5].discard_button.click()
    t[6].skip_button.click()
    t[7].label_input.value = "unknown"          # typed "unknown" means the unknown folder

    d = grid.decisions.set_index("path")
    p = res["path"]
    assert d.loc[p[0], ["action", "label"]].tolist() == ["label", res["top1_class"][0]]
    assert d.loc[p[1], ["action", "label"]].tolist() == ["label", res["top2_class"][1]]
    assert d.loc[p[2], ["action", "label"]].tolist() == ["label", "gazelle"]
    assert d.loc[p[3], ["action", "label"]].tolist() == ["label", res["top3_class"][3]]
    assert d.loc[p[4], "action"] == "unknown" and d.loc[p[4], "label"] is None
    assert d.loc[p[5], "action"] == "discard"
    assert d.loc[p[6], "action"] == "skip"
    assert d.loc[p[7], "action"] == "unknown"
    assert grid.n_pending == 8
    assert "8 pending" in grid.pending_label.value and "1 discard" in grid.pending_label.value
    assert "gazelle" in grid.class_names and "gazelle" in t[9].label_input.options  # offered everywhere now
    assert "imgcls-state-label" in t[0].box._dom_classes and "imgcls-state-discard" in t[5].box._dom_classes
    assert "gazelle" in t[2].status.value

    # Changing one's mind replaces the decision; clear forgets it.
    t[5].accept_button.click()
    assert grid.decisions.set_index("path").loc[p[5], "action"] == "label"
    assert grid.clear(p[6]) == 1 and grid.n_pending == 7 and t[6].status.value == ""


def test_invalid_class_name_shows_an_error_not_an_exception(ws):
    res = results_for(ws, 12)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    tile = grid.tiles[0]
    tile.label_input.value = "../../etc"        # must not raise
    assert "Invalid class name" in tile.error.value and "'..'" in tile.error.value.replace("&#x27;", "'")
    assert grid.n_pending == 0
    tile.label_input.value = "a/b"
    assert "path separator" in tile.error.value
    tile.label_input.value = "zebra"            # a valid one clears the error
    assert tile.error.value == "" and grid.n_pending == 1
    with pytest.raises(ValueError, match="Invalid class name"):
        grid.decide(res["path"][1], "label", ".hidden")
    with pytest.raises(ValueError, match="`action` must be one of"):
        grid.decide(res["path"][1], "delete")
    with pytest.raises(ValueError, match="`label` is required"):
        grid.decide(res["path"][1], "label")
    with pytest.raises(ValueError, match="not in any results table"):
        grid.decide(ws.root / "nowhere.png", "skip")
    with pytest.raises(ValueError, match="needs columns"):
        grid.set_results(res.drop(columns=["top1_score"]))


def test_decisions_survive_filter_and_page_changes(ws):
    res = results_for(ws)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    assert grid.n_pages == 5 and "page 1 of 5" in grid.page_label.value
    grid.tiles[0].accept_button.click()
    grid.next_button.click()
    assert grid.page == 1 and grid.tiles[0].path == res["path"][12]
    grid.tiles[0].discard_button.click()
    grid.tiles[1].label_input.value = "gazelle"
    grid.prev_button.click()
    assert "imgcls-state-label" in grid.tiles[0].box._dom_classes  # still shown as decided
    before = grid.decisions

    # Another filter: a subset that holds one decided image and others.
    subset = res.iloc[[13, 30, 31, 40]]
    grid.set_results(subset)
    assert grid.n_pages == 1 and len(grid.visible_tiles) == 4
    assert "imgcls-state-unused" in grid.tiles[4].box._dom_classes
    pd.testing.assert_frame_equal(grid.decisions, before)
    assert "gazelle" in grid.tiles[0].status.value
    assert "from other views" in grid.pending_label.value
    grid.tiles[1].skip_button.click()

    # Back to the full table: everything decided is still there.
    grid.set_results(res, page=1)
    d = grid.decisions.set_index("path")
    assert len(d) == 4
    assert d.loc[res["path"][0], "action"] == "label"
    assert d.loc[res["path"][12], "action"] == "discard"
    assert d.loc[res["path"][30], "action"] == "skip"
    assert "imgcls-state-discard" in grid.tiles[0].box._dom_classes

    # Page size changes keep them too, and keep the first image in view.
    grid.page_size_control.value = 24
    assert len(grid.tiles) == 24 and grid.page == 0 and grid.n_pages == 3
    assert len(grid.decisions) == 4


def test_page_level_controls(ws):
    res = results_for(ws, 30)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    grid.tiles[0].label_input.value = "gazelle"
    grid.accept_page_button.click()             # the rest of the page; gazelle stays
    d = grid.decisions.set_index("path")
    assert len(d) == 12 and d.loc[res["path"][0], "label"] == "gazelle"
    assert (d["label"].iloc[1:] == res["top1_class"].iloc[1:12].to_numpy()).all()
    grid.next_button.click()
    grid.discard_page_button.click()
    assert (grid.decisions["action"] == "discard").sum() == 12
    grid.clear_page_button.click()
    assert grid.n_pending == 12
    grid.show_page(2)
    assert len(grid.visible_tiles) == 6
    assert grid.decide_page("skip") == 6


def test_apply_then_undo_restores_the_workspace_exactly(ws):
    res = results_for(ws)
    lib = Library(ws)
    grid = ReviewGrid(res, lib, page_size=12)
    before = snapshot(ws)
    counts_before = lib.counts()
    p = res["path"]

    grid.tiles[0].accept_button.click()
    grid.tiles[1].label_input.value = "gazelle"
    grid.tiles[2].unknown_button.click()
    grid.tiles[3].discard_button.click()
    grid.tiles[4].skip_button.click()
    grid.next_button.click()
    grid.tiles[0].label_input.value = "gazelle"
    grid.set_results(res.iloc[40:50])           # apply from another view: all decisions go
    grid.apply_button.click()

    out = grid.last_applied
    assert len(out) == 6 and (out["error"] == "").all()
    new = dict(zip(out["path"], out["new_path"]))
    assert new[p[0]] == str(ws.library / res["top1_class"][0] / Path(p[0]).name)
    assert new[p[1]] == str(ws.library / "gazelle" / Path(p[1]).name)
    assert new[p[12]] == str(ws.library / "gazelle" / Path(p[12]).name)
    assert new[p[2]] == str(ws.unknown / Path(p[2]).name)
    assert new[p[3]] == str(ws.trash / Path(p[3]).name)
    assert new[p[4]] is None and os.path.exists(p[4])  # skipped: not moved
    for old, moved in new.items():
        if moved:
            assert os.path.exists(moved) and not os.path.exists(old)
    assert grid.n_pending == 0 and "0 pending" in grid.pending_label.value
    summary = grid.summary()
    assert summary.set_index(["action", "label"]).loc[("label", "gazelle"), "applied"] == 2
    assert summary["applied"].sum() == 6 and summary["errors"].sum() == 0
    assert "Applied 6 decisions" in grid.summary_html.value
    journal = lib.journal()
    assert journal["batch"].nunique() == 1 and len(journal) == 5  # one batch, skips journal nothing
    assert lib.counts().set_index("label").loc["gazelle", "n"] == 2

    grid.undo_button.click()
    assert snapshot(ws) == before
    pd.testing.assert_frame_equal(Library(ws).counts(), counts_before)
    assert grid.n_pending == 6                  # the decisions are pending again
    assert "Undone" in grid.summary_html.value

    # Apply again after the undo, then undo twice: the second has nothing left.
    grid.apply()
    grid.undo()
    assert snapshot(ws) == before
    with pytest.raises(ValueError, match="Nothing to undo"):
        grid.undo()
    grid.undo_button.click()                    # the button shows it instead of raising
    assert "Nothing to undo" in grid.summary_html.value


def test_tiles_of_applied_images_are_locked(ws):
    res = results_for(ws, 12)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    grid.tiles[0].label_input.value = "gazelle"
    grid.apply()
    tile = grid.tiles[0]
    assert tile.accept_button.disabled and tile.label_input.disabled
    assert "applied" in tile.status.value and "imgcls-state-applied" in tile.box._dom_classes
    with pytest.raises(ValueError, match="moved by the last apply"):
        grid.decide(res["path"][0], "skip")
    grid.undo()
    assert not tile.accept_button.disabled and "gazelle" in tile.status.value


def test_failed_rows_stay_pending_with_their_error(ws):
    res = results_for(ws, 12)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    grid.tiles[0].accept_button.click()
    grid.tiles[1].accept_button.click()
    os.unlink(res["path"][1])                   # gone meanwhile
    out = grid.apply()
    assert out.set_index("path").loc[res["path"][1], "error"] != ""
    assert grid.n_pending == 1 and grid.decisions["error"].iat[0] != ""
    assert grid.summary()["errors"].sum() == 1 and "failed" in grid.summary_html.value
    assert os.path.exists(ws.library / res["top1_class"][0] / Path(res["path"][0]).name)


def test_undo_refuses_when_the_library_changed_since(ws):
    res = results_for(ws, 12)
    lib = Library(ws)
    grid = ReviewGrid(res, lib, page_size=12)
    grid.tiles[0].discard_button.click()
    grid.apply()
    lib.move(ws.library / "cat" / "cat_0.png", "dog")   # a newer operation
    with pytest.raises(ValueError, match="changed after this grid's last apply"):
        grid.undo()
    assert (ws.library / "dog" / "cat_0.png").exists()
    lib.undo()
    grid.undo()
    assert os.path.exists(res["path"][0])


def test_nothing_to_apply(ws):
    empty = ReviewGrid(results_for(ws, 0), Library(ws), page_size=12)   # an empty filter result
    assert empty.visible_tiles == [] and empty.n_pages == 1 and empty.apply().empty
    grid = ReviewGrid(results_for(ws, 5), Library(ws), page_size=12)
    assert grid.apply_button.disabled
    assert grid.apply().empty and "Nothing to apply" in grid.summary_html.value
    grid.tiles[0].skip_button.click()
    grid.apply()                                # skips only: nothing moves, nothing to undo in the library
    assert Library(ws).journal().empty and grid.n_pending == 0
    grid.undo()
    assert grid.n_pending == 1


def test_thousands_of_rows_cost_one_page(ws):
    res = results_for(ws)
    big = pd.concat([res] + [res.assign(path=res["path"].str.replace(".png", f"-{i}.png", regex=False),
                                        hash="")
                             for i in range(80)], ignore_index=True)  # 4860 rows, most files never shown
    grid = ReviewGrid(res.iloc[:48], Library(ws), page_size=48)   # warm the cache
    start = time.perf_counter()
    grid.set_results(big)
    assert time.perf_counter() - start < 1.0
    assert grid.n_pages == -(-len(big) // 48) and grid.thumbnails.misses == 48
    assert grid.last_render_seconds < 0.5
    grid.decide(big["path"].iat[-1], "skip")    # a path of the last page is known
    assert grid.n_pending == 1


def test_grid_displays_as_a_widget(ws):
    grid = ReviewGrid(results_for(ws, 5), Library(ws), page_size=12)
    bundle = grid._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "5 images" in grid.title.value and "ReviewGrid(5 images" in repr(grid)
    grid.close()
