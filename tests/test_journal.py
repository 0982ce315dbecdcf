"""Journaled label moves: never overwriting, never deleting, undoable, crash-safe."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from imgcls.core import open_workspace
from imgcls.library import Journal, Library
from library_images import png, tree, tree_hashes


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


def test_move_to_new_class_clash_gets_new_name_and_undo(ws):
    files = tree(ws, {"cat": 2, "dog": 1})
    clash = ws.library / "dog" / "cat_0.png"
    clash.write_bytes(files["dog"][0].read_bytes())
    lib = Library(ws)
    before = tree_hashes(ws.library)
    new = lib.move(files["cat"][0], "dog")
    assert new.name == "cat_0-1.png" and new.parent.name == "dog"
    assert clash.read_bytes() == files["dog"][0].read_bytes()  # never overwritten
    new2 = lib.move(files["cat"][1], "lynx")  # new class creates its folder
    assert new2.parent == ws.library / "lynx"
    lib.undo(2)
    assert tree_hashes(ws.library) == before
    j = lib.journal()
    assert list(j["op"]) == ["move", "move", "undo", "undo"] and j["undone"][:2].all()
    with pytest.raises(ValueError, match="Nothing to undo"):
        lib.undo()


def test_discard_unknown_and_add_then_undo(ws, tmp_path):
    files = tree(ws, {"cat": 3})
    outside = png(tmp_path / "elsewhere" / "new cat ü.png", seed=77)
    pool = png(ws.unlabelled / "b1" / "u1.png", seed=78)
    lib = Library(ws)
    before_lib, before_pool = tree_hashes(ws.library), tree_hashes(ws.unlabelled)
    trashed = lib.discard(files["cat"][0])
    assert trashed.parent == ws.trash and trashed.exists() and not files["cat"][0].exists()
    unk = lib.to_unknown(files["cat"][1])
    assert unk.parent == ws.unknown
    copied = lib.add(outside, "cat")[0]
    assert copied.exists() and outside.exists()  # outside files are copied
    moved = lib.add(pool, "cat", move=True)[0]
    assert moved.exists() and not pool.exists()
    with pytest.raises(ValueError, match="outside"):
        lib.add(outside, "cat", move=True)
    junk = tmp_path / "junk.png"
    junk.write_text("<html></html>")
    with pytest.raises(ValueError, match="Only readable images"):
        lib.add(junk, "cat")
    lib.undo(4)
    assert tree_hashes(ws.library) == before_lib
    assert tree_hashes(ws.unlabelled) == before_pool
    assert outside.exists()
    # the undone copy went to the trash, not to oblivion
    assert any(p.name == copied.name for p in ws.trash.iterdir())


def test_apply_is_one_undoable_batch_and_reports_failures(ws):
    files = tree(ws, {"cat": 3})
    pool = [png(ws.unlabelled / f"u{i}.png", seed=50 + i) for i in range(3)]
    lib = Library(ws)
    before = tree_hashes(ws.root)
    decisions = pd.DataFrame({
        "path": [str(pool[0]), str(pool[1]), str(pool[2]), str(files["cat"][0]), "missing.png"],
        "action": ["label", "unknown", "discard", "label", "label"],
        "label": ["zebra", None, None, "../x", "cat"],
    })
    out = lib.apply(decisions)
    assert out["error"].astype(bool).tolist() == [False, False, False, True, True]
    assert (ws.library / "zebra" / "u0.png").exists()
    lib.undo()
    assert tree_hashes(ws.root) == before | {"journal.jsonl": tree_hashes(ws.root)["journal.jsonl"]}


def test_move_refuses_files_outside_and_symlinks(ws, tmp_path):
    tree(ws, {"cat": 1})
    outside = png(tmp_path / "outside.png", seed=3)
    lib = Library(ws)
    with pytest.raises(ValueError, match="outside"):
        lib.move(outside, "cat")
    link = ws.library / "cat" / "link.png"
    link.symlink_to(outside)
    with pytest.raises(ValueError, match="regular"):
        lib.move(link, "dog")
    with pytest.raises(FileNotFoundError):
        lib.move(ws.library / "cat" / "nope.png", "dog")


_MOVER = textwrap.dedent(
    """
    import sys
    from imgcls.library import Library
    lib = Library(sys.argv[1])
    paths = sorted(p for p in (lib.workspace.library / "cat").iterdir())
    print("ready", flush=True)
    i = 0
    while True:
        for p in sorted((lib.workspace.library / "cat").iterdir()):
            lib.move(p, "dog")
        for p in sorted((lib.workspace.library / "dog").iterdir()):
            lib.move(p, "cat")
    """
)


@pytest.mark.parametrize("delay", [0.15, 0.4, 0.9])
def test_move_killed_half_way_loses_nothing(ws, delay):
    """SIGKILL a process in the middle of many moves: after recovery every
    image exists exactly once, in the old or the new place."""
    files = tree(ws, {"cat": 12})
    hashes = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in files["cat"])
    proc = subprocess.Popen([sys.executable, "-c", _MOVER, str(ws.root)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    lib = Library(ws)  # recovery runs on open
    after = sorted(
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in ws.library.rglob("*") if p.is_file()
    )
    assert after == hashes
    j = lib.journal()
    assert len(j) > 0 and j["dst"].notna().all()


def test_a_torn_last_line_never_swallows_the_next_entry(ws):
    files = tree(ws, {"cat": 2})
    lib = Library(ws)
    lib.move(files["cat"][0], "dog")
    with open(ws.journal, "a") as fh:
        fh.write('{"id": "torn", "state": "beg')  # a crash mid-append
    lib = Library(ws)
    lib.move(files["cat"][1], "dog")
    assert list(lib.journal()["op"]) == ["move", "move"]
    assert not Journal(ws).needs_recovery()
