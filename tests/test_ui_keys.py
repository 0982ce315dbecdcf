"""The review grid for a person: keyboard shortcuts, a scripted reviewer that never
overwrites a person's decisions, the title naming the view, paging at top and bottom.

Keys are pressed the way the browser sends them (a custom message from the
grid's key listener widget to the kernel) or with ``grid.keys.press``; the
browser side (keys stopped before JupyterLab) is tested in tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_results import make_workspace, results_for, snapshot

from imgcls.bulk import look_alike, lowest_scores
from imgcls.library import Library
from imgcls.ui import KEYMAP, ReviewGrid
from imgcls.ui.tile import TILE_CSS


@pytest.fixture
def ws(tmp_path):
    return make_workspace(tmp_path / "ws")


def _send(grid, **content):
    """Deliver a message as the front end does (comm message -> on_msg callbacks)."""
    grid.keys.listener._handle_custom_msg(content, [])


def _current(grid):
    return [i for i, t in enumerate(grid.tiles) if "imgcls-current" in t.box._dom_classes]


def test_keys_decide_the_current_tile_and_move_on(ws):
    res = results_for(ws, 30)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    p = res["path"]
    assert _current(grid) == [0] and grid.keys.listener.current == 0
    _send(grid, key="1")                     # first choice
    _send(grid, key="2")                     # second choice
    _send(grid, key="u")
    _send(grid, key="d")
    _send(grid, key="s")
    assert _current(grid) == [5]
    _send(grid, key="ArrowLeft")             # back to tile 4 and change one's mind
    _send(grid, key="a")
    d = grid.decisions.set_index("path")
    assert d.loc[p[0], ["action", "label"]].tolist() == ["label", res["top1_class"][0]]
    assert d.loc[p[1], ["action", "label"]].tolist() == ["label", res["top2_class"][1]]
    assert d.loc[p[2], "action"] == "unknown" and d.loc[p[3], "action"] == "discard"
    assert d.loc[p[4], ["action", "label"]].tolist() == ["label", res["top1_class"][4]]
    assert grid.n_pending == 5 and _current(grid) == [5]
    _send(grid, key="ArrowLeft")
    _send(grid, key="c")                     # clear tile 4
    assert grid.n_pending == 4 and p[4] not in set(grid.decisions["path"])
    assert grid.keys.press("q") is None and grid.keys.press("Enter") is None  # unbound: nothing
    assert grid.n_pending == 4
    assert set(KEYMAP.values()) >= {"accept", "second", "unknown", "discard", "skip", "next_tile",
                                    "prev_tile", "next_page", "prev_page", "apply", "undo"}
    assert grid.keys.listener.bound_keys == list(KEYMAP)


def test_keys_turn_pages_and_clip_the_cursor(ws):
    res = results_for(ws, 30)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    for _ in range(20):
        grid.keys.press("ArrowRight")
    assert _current(grid) == [11]            # stays on the last tile of the page
    grid.keys.press("n")
    assert grid.page == 1 and _current(grid) == [0]
    grid.keys.press("PageDown")
    assert grid.page == 2 and len(grid.visible_tiles) == 6
    for _ in range(10):
        grid.keys.press("j")
    assert _current(grid) == [5]             # the short last page has 6 tiles
    grid.keys.press("n")                     # no page after the last
    assert grid.page == 2
    grid.keys.press("p")
    assert grid.page == 1 and "page 2 of 3" in grid.pager_bottom.label.value


def test_click_on_a_tile_makes_it_current_and_a_decision_moves_on(ws):
    res = results_for(ws, 12)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    _send(grid, tile=7)                      # the browser reports a click on tile 7
    assert _current(grid) == [7]
    grid.keys.press("d")
    assert grid.decisions["path"].tolist() == [res["path"][7]] and _current(grid) == [8]
    grid.tiles[3].skip_button.click()        # a click decides tile 3; the next one becomes current
    assert _current(grid) == [4]


def test_a_key_on_a_tile_without_second_choice_shows_an_error(ws):
    res = results_for(ws, 12)
    res.loc[0, "top2_class"] = None
    grid = ReviewGrid(res, Library(ws), page_size=12)
    assert grid.keys.press("2") == "second"
    assert "no second choice" in grid.tiles[0].error.value
    assert grid.n_pending == 0 and _current(grid) == [0]  # stays on the tile to fix it


def test_apply_and_undo_by_keyboard(ws):
    res = results_for(ws, 12)
    lib = Library(ws)
    before = snapshot(ws)
    grid = ReviewGrid(res, lib, page_size=12)
    for key in ("1", "2", "d"):
        grid.keys.press(key)
    grid.keys.press("A")                     # Shift+A
    assert "Applied 3 decisions" in grid.summary_html.value
    moved = grid.last_applied.set_index("path")
    assert all(Path(moved.at[p, "new_path"]).exists() and not Path(p).exists() for p in res["path"][:3])
    assert Path(moved.at[res["path"][0], "new_path"]).parent == ws.library / res["top1_class"][0]
    assert Path(moved.at[res["path"][1], "new_path"]).parent == ws.library / res["top2_class"][1]
    assert Path(moved.at[res["path"][2], "new_path"]).is_relative_to(ws.trash)
    grid.keys.press("Z")                     # Shift+Z
    assert "Undone" in grid.summary_html.value and snapshot(ws) == before
    grid.keys.press("Z")                     # nothing left to undo: an error on the grid, no exception
    assert "Nothing to undo" in grid.summary_html.value


def test_scripted_reviewer_never_overwrites_a_person(ws):
    res = results_for(ws, 24)
    lib = Library(ws)
    p = res["path"]
    person = ReviewGrid(res, lib, page_size=12, title="look-alikes")
    person.tiles[0].discard_button.click()
    person.tiles[1].label_input.value = "gazelle"
    # decide_with on the person's own grid leaves their decisions alone ...
    n = person.decide_with(lambda row: "skip")
    assert n == 10
    d = person.decisions.set_index("path")
    assert d.loc[p[0], "action"] == "discard" and d.loc[p[1], "label"] == "gazelle"
    # ... and running it again changes nothing.
    assert person.decide_with(lambda row: "accept", scope="all") == 12  # only page 2 was undecided
    assert person.decisions.set_index("path").loc[p[2], "action"] == "skip"
    # decide(..., overwrite=False) returns the decision already taken.
    kept = person.decide(p[0], "accept", overwrite=False)
    assert kept["action"] == "discard" and person.decisions.set_index("path").loc[p[0], "action"] == "discard"
    # A separate grid over the same results: its own decisions, none of the person's touched.
    bot = ReviewGrid(res, lib, page_size=12, title="scripted reviewer")
    truth = dict(zip(p, res["top2_class"]))
    assert bot.decide_with(lambda row: ("label", truth[row["path"]]), scope="all") == 24
    assert bot.decide_with(lambda row: "discard", scope="all") == 0
    assert person.decisions.set_index("path").loc[p[1], "label"] == "gazelle"
    assert (bot.decisions["label"] == res["top2_class"].to_numpy()).all()
    assert bot.decide_with(lambda row: None) == 0
    with pytest.raises(ValueError, match="`scope` must be 'page' or 'all'"):
        bot.decide_with(lambda row: "skip", scope="everything")


def test_title_names_the_view_and_paging_is_at_top_and_bottom(ws):
    res = results_for(ws, 30)
    grid = ReviewGrid(res, Library(ws), page_size=12, title="Look-alikes of horse")
    assert "Look-alikes of horse" in grid.title.value and "30 images" in grid.title.value
    low = res.nsmallest(8, "top1_score")
    low.attrs["filter"] = "lowest_scores(n=8)"
    grid.set_results(low)
    assert "lowest_scores(n=8)" in grid.title.value and "8 images" in grid.title.value
    grid.set_results(res, title="<b>all</b>")
    assert "&lt;b&gt;all&lt;/b&gt;" in grid.title.value            # escaped
    grid.set_results(lowest_scores(res, n=8))                          # a filter names its own view
    assert "The 8 lowest first-choice scores" in grid.title.value
    grid.set_results(look_alike(res, sorted(set(res["top1_class"])), min_score=0.0, max_score=1.0))
    assert "Look-alike: predicted " in grid.title.value and "least confident first" in grid.title.value
    grid.set_results(res.head(20))
    assert "All 20 results (no filter)" in grid.title.value
    assert "imgcls-next-bottom" in grid.pager_bottom.next_button._dom_classes
    grid.pager_bottom.next_button.click()
    assert grid.page == 1
    assert grid.page_label.value == grid.pager_bottom.label.value == "page 2 of 2"
    assert grid.pager_bottom.next_button.disabled and not grid.pager_bottom.prev_button.disabled
    grid.pager_bottom.prev_button.click()
    assert grid.page == 0 and grid.prev_button.disabled


def test_first_and_second_choice_buttons_look_different(ws):
    res = results_for(ws, 12)
    grid = ReviewGrid(res, Library(ws), page_size=12)
    tile = grid.tiles[0]
    assert tile.accept_button.description == res["top1_class"][0] and tile.accept_button.icon == "check"
    assert tile.second_button.description == f"or {res['top2_class'][0]}" and tile.second_button.icon == ""
    assert ".imgcls-accept {" in TILE_CSS and ".imgcls-second {" in TILE_CSS
    assert "dashed" in TILE_CSS.split(".imgcls-second {")[1].split("}")[0]
