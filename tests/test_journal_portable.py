"""A portable journal and a versioned workspace: undo and recovery from any folder and in a copy,
old journals migrated on open, a workspace from a newer imgcls refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from imgcls.core import open_workspace
from imgcls.core.upgrade import (
    FORMAT_FILE,
    FORMAT_VERSION,
    WorkspaceFormatError,
    register_upgrade,
    upgrade_steps,
    workspace_format,
)
from imgcls.core.upgrade_journal import JOURNAL_BACKUP
from imgcls.library import Library
from library_images import png, tree, tree_hashes


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


def journal_lines(ws) -> list[dict]:
    return [json.loads(line) for line in ws.journal.read_text().splitlines() if line.strip()]


def test_paths_are_stored_relative_whatever_form_the_workspace_was_opened_in(ws, monkeypatch):
    tree(ws, {"cat": 2})
    monkeypatch.chdir(ws.root.parent)
    lib = Library("ws")  # a relative path, as the demo opens its workspace
    lib.move("ws/library/cat/cat_0.png", "lynx")
    lib.move(ws.library / "cat" / "cat_1.png", "lynx")  # an absolute one
    for e in journal_lines(ws):
        assert e["src"].startswith("library/cat/") and e["folder"] == "library/lynx"
        assert e.get("dst") in (None, "library/lynx/cat_0.png", "library/lynx/cat_1.png")
    table = lib.journal()
    assert table["dst"].tolist() == ["ws/library/lynx/cat_0.png", "ws/library/lynx/cat_1.png"]


def test_undo_from_another_directory(ws, tmp_path, monkeypatch):
    files = tree(ws, {"cat": 2})
    before = tree_hashes(ws.library)
    monkeypatch.chdir(ws.root.parent)
    Library("ws").move("ws/library/cat/cat_0.png", "lynx")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    Library(ws.root).undo()  # used to say "is gone"
    assert tree_hashes(ws.library) == before and files["cat"][0].exists()


def test_undo_on_a_copied_workspace_touches_only_the_copy(ws, tmp_path):
    tree(ws, {"cat": 2})
    Library(ws).move(ws.library / "cat" / "cat_0.png", "lynx")
    copy = tmp_path / "copy"
    shutil.copytree(ws.root, copy)
    original = tree_hashes(ws.root)
    restored = Library(copy).undo()
    assert restored == [copy / "library" / "cat" / "cat_0.png"] and restored[0].exists()
    assert not (copy / "library" / "lynx" / "cat_0.png").exists()
    assert tree_hashes(ws.root) == original  # the original workspace is untouched


def test_a_crash_between_link_and_unlink_is_recovered_in_a_copy_from_another_directory(
        ws, tmp_path, monkeypatch):
    src = png(ws.library / "cat" / "a.png", seed=1)
    (ws.library / "dog").mkdir()
    os.link(src, ws.library / "dog" / "a.png")  # both names: the crash came before the unlink
    from imgcls.core import file_hash

    base = {"id": "op1", "batch": "b1", "op": "move", "src": "library/cat/a.png", "folder": "library/dog",
            "hash": file_hash(src), "label": "dog", "undoes": None}
    with open(ws.journal, "a") as fh:
        fh.write(json.dumps({**base, "state": "begin", "keep_source": False}) + "\n")
        fh.write(json.dumps({**base, "state": "linked", "dst": "library/dog/a.png"}) + "\n")
    copy = tmp_path / "copy"
    shutil.copytree(ws.root, copy)  # the two names become two files with the same bytes
    monkeypatch.chdir(tmp_path)
    lib = Library(copy)
    assert [e["state"] for e in lib.recovered_] == ["done"]
    assert not (copy / "library" / "cat" / "a.png").exists() and (copy / "library" / "dog" / "a.png").exists()
    assert (ws.library / "cat" / "a.png").exists()  # the original is not touched


def _old_workspace(tmp_path: Path) -> tuple[Path, list]:
    """A workspace written before format 1: paths absolute from another place, and cwd-relative."""
    root = tmp_path / "old"
    png(root / "library" / "cat" / "a.png", seed=1)
    png(root / "library" / "lynx" / "b.png", seed=2)
    png(root / "library" / "lynx" / "c.png", seed=3)
    outside = png(tmp_path / "downloads" / "d.png", seed=4)
    png(root / "library" / "cat" / "d.png", seed=4)
    gone = "/somewhere/else/zoo"  # where the workspace was when these were written (it was copied)
    old = [
        {"id": "1", "batch": "b1", "op": "move", "src": f"{gone}/library/cat/b.png",
         "folder": f"{gone}/library/lynx", "label": "lynx", "state": "done", "dst": f"{gone}/library/lynx/b.png"},
        {"id": "2", "batch": "b2", "op": "move", "src": "demo-workspace/library/cat/c.png",
         "folder": "demo-workspace/library/lynx", "label": "lynx", "state": "done",
         "dst": "demo-workspace/library/lynx/c.png"},
        {"id": "3", "batch": "b3", "op": "add", "src": str(outside), "folder": f"{gone}/library/cat",
         "label": "cat", "keep_source": True, "state": "done", "dst": f"{gone}/library/cat/d.png"},
    ]
    root.mkdir(exist_ok=True)
    (root / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in old))
    return root, old


def test_an_old_journal_is_migrated_on_open_and_undo_works(tmp_path, monkeypatch):
    root, old = _old_workspace(tmp_path)
    monkeypatch.chdir(tmp_path / "downloads")  # never interpreted against the current folder
    assert workspace_format(root) == 0
    lib = Library(root)
    assert lib.upgraded_ and workspace_format(root) == FORMAT_VERSION
    new = {e["id"]: e for e in journal_lines(lib.workspace)}
    assert new["1"]["src"] == "library/cat/b.png" and new["1"]["dst"] == "library/lynx/b.png"
    assert new["2"]["folder"] == "library/lynx" and new["2"]["dst"] == "library/lynx/c.png"
    assert new["3"]["src"] == old[2]["src"] and new["3"]["dst"] == "library/cat/d.png"  # outside stays
    assert (root / JOURNAL_BACKUP).read_text() == "".join(json.dumps(e) + "\n" for e in old)
    lib.undo(3)
    assert (root / "library" / "cat" / "b.png").exists() and (root / "library" / "cat" / "c.png").exists()
    assert any(p.name == "d.png" for p in (root / "trash").iterdir())  # the added copy went to trash
    assert (tmp_path / "downloads" / "d.png").exists()
    fmt = json.loads((root / FORMAT_FILE).read_text())
    assert fmt["format"] == FORMAT_VERSION and fmt["upgrades"][0]["format"] == 1


def test_a_newer_or_damaged_workspace_is_refused(ws):
    ws.format_file.write_text(json.dumps({"format": FORMAT_VERSION + 1}))
    for opener in (lambda: open_workspace(ws.root, create=False), lambda: Library(ws.root)):
        with pytest.raises(WorkspaceFormatError, match="newer"):
            opener()
    ws.format_file.write_text("[1, 2]")
    with pytest.raises(WorkspaceFormatError, match="damaged"):
        Library(ws.root)


def test_a_new_workspace_is_stamped_and_the_upgrade_registry_is_ordered(ws):
    assert json.loads(ws.format_file.read_text())["format"] == FORMAT_VERSION
    assert [s.version for s in upgrade_steps()] == list(range(1, FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="registered already"):
        register_upgrade(1, "another step 1")(lambda workspace: "")
