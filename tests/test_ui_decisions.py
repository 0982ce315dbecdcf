"""Tests for imgcls.ui.decisions: the grid's bookkeeping, without any widget."""

from __future__ import annotations

import os

import pytest
from ui_results import make_workspace, results_for

from imgcls.library import Library
from imgcls.ui import DecisionBook


def test_decision_book_decides_applies_and_undoes(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    res = results_for(ws, 6)
    p = res["path"].tolist()
    book = DecisionBook(Library(ws))
    book.remember(res)
    assert book.decide(p[0], "accept") == {"path": p[0], "action": "label", "label": res["top1_class"][0]}
    assert book.decide(p[1], "label", "unknown")["action"] == "unknown"  # the unknown folder
    book.decide(p[2], "label", "gazelle")
    book.decide(p[3], "skip")
    assert book.n_pending == 4 and book.labels() == {res["top1_class"][0], "gazelle"}
    assert book.counts() == {"label": 2, "unknown": 1, "skip": 1}
    assert book.n_outside(frozenset(p[:2])) == 2
    assert book.decisions["path"].tolist() == p[:4]
    book.decide(p[0], "discard")                # re-deciding moves it to the end
    assert book.decisions["path"].tolist() == [p[1], p[2], p[3], p[0]]
    assert book.clear([p[3], "/never/seen.png"]) == 1 and book.pending_for(p[3]) is None
    with pytest.raises(ValueError, match="not in any results table"):
        book.decide("/never/seen.png", "skip")

    out = book.apply()
    assert book.last_applied is out and book.n_pending == 0 and book.can_undo and book.last_apply_moved
    assert book.applied_for(p[2])["new_path"] == str(ws.library / "gazelle" / os.path.basename(p[2]))
    assert book.summary()["applied"].sum() == 3
    with pytest.raises(ValueError, match="moved by the last apply"):
        book.decide(p[2], "skip")
    restored, n = book.undo()
    assert n == 3 and len(restored) == 3 and all(os.path.exists(q) for q in p[:3])
    assert book.n_pending == 3 and book.applied_for(p[2]) is None
    assert book.clear() == 3 and book.apply().empty
    with pytest.raises(ValueError, match="Nothing to undo"):
        book.undo()
