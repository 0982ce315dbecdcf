"""The labelled library: catalog, counts, flags, duplicates, journaled moves."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from imgcls.core import open_workspace
from imgcls.library import Library, validate_class_name


def _png(path: Path, seed: int, size: int = 32) -> Path:
    """A small picture (coloured ellipses on a plain ground): distinct seeds
    give perceptual hashes far apart, as distinct photos do."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.integers(0, size - 8, 2)
        w, h = rng.integers(6, size // 2 + 4, 2)
        draw.ellipse([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    img.save(path)
    return path


def _tree(ws, spec: dict[str, int]) -> dict[str, list[Path]]:
    out, seed = {}, 0
    for label, n in spec.items():
        out[label] = []
        for i in range(n):
            seed += 1
            out[label].append(_png(ws.library / label / f"{label}_{i}.png", seed))
    return out


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


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
    _tree(ws, {"cat": 5, "dog": 3, "unknown": 4})
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
    files = _tree(ws, {"cat": 3})
    lib = Library(ws)
    first = lib.scan()
    _png(files["cat"][0], seed=999)  # content changes
    os.utime(files["cat"][0], ns=(time.time_ns(), time.time_ns() + 10**9))
    second = lib.scan()
    changed = second.set_index("relpath")["hash"] != first.set_index("relpath")["hash"]
    assert changed.sum() == 1 and changed["cat/cat_0.png"]


def test_flags_follow_content_through_moves(ws):
    files = _tree(ws, {"cat": 3, "dog": 2})
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


def test_exact_and_near_duplicates(ws):
    files = _tree(ws, {"cat": 3, "dog": 2})
    src = files["cat"][0]
    (ws.library / "dog" / "copy.png").write_bytes(src.read_bytes())  # exact, other class
    px = np.asarray(Image.open(files["cat"][1]), dtype=np.int16)
    Image.fromarray(np.clip(px + 5, 0, 255).astype(np.uint8)).save(ws.library / "cat" / "edit.jpg", quality=95)
    dups = Library(ws).duplicates()
    groups = {frozenset(g["relpath"]): g["kind"].iat[0] for _, g in dups.groupby("group")}
    assert groups == {
        frozenset({"cat/cat_0.png", "dog/copy.png"}): "exact",
        frozenset({"cat/cat_1.png", "cat/edit.jpg"}): "near",
    }
    assert set(Library(ws).duplicates(near=False)["relpath"]) == {"cat/cat_0.png", "dog/copy.png"}


@pytest.mark.parametrize(
    "name",
    ["", "  ", "../evil", "a/b", "a\\b", "..", ".hidden", "con", "LPT1", "tab\tname", "x" * 101, "what?"],
)
def test_hostile_class_names_are_refused(ws, name):
    files = _tree(ws, {"cat": 1})
    before = _tree_hashes(ws.root)
    with pytest.raises(ValueError, match="Invalid class name"):
        Library(ws).move(files["cat"][0], name)
    assert _tree_hashes(ws.root) == before


def test_valid_class_names_pass():
    assert validate_class_name(" red fox ") == "red fox"
    assert validate_class_name("Grévy's zebra") == "Grévy's zebra"


def test_move_to_new_class_clash_gets_new_name_and_undo(ws):
    files = _tree(ws, {"cat": 2, "dog": 1})
    clash = ws.library / "dog" / "cat_0.png"
    clash.write_bytes(files["dog"][0].read_bytes())
    lib = Library(ws)
    before = _tree_hashes(ws.library)
    new = lib.move(files["cat"][0], "dog")
    assert new.name == "cat_0-1.png" and new.parent.name == "dog"
    assert clash.read_bytes() == files["dog"][0].read_bytes()  # never overwritten
    new2 = lib.move(files["cat"][1], "lynx")  # new class creates its folder
    assert new2.parent == ws.library / "lynx"
    lib.undo(2)
    assert _tree_hashes(ws.library) == before
    j = lib.journal()
    assert list(j["op"]) == ["move", "move", "undo", "undo"] and j["undone"][:2].all()
    with pytest.raises(ValueError, match="Nothing to undo"):
        lib.undo()


def test_discard_unknown_and_add_then_undo(ws, tmp_path):
    files = _tree(ws, {"cat": 3})
    outside = _png(tmp_path / "elsewhere" / "new cat ü.png", seed=77)
    pool = _png(ws.unlabelled / "b1" / "u1.png", seed=78)
    lib = Library(ws)
    before_lib, before_pool = _tree_hashes(ws.library), _tree_hashes(ws.unlabelled)
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
    assert _tree_hashes(ws.library) == before_lib
    assert _tree_hashes(ws.unlabelled) == before_pool
    assert outside.exists()
    # the undone copy went to the trash, not to oblivion
    assert any(p.name == copied.name for p in ws.trash.iterdir())


def test_apply_is_one_undoable_batch_and_reports_failures(ws):
    files = _tree(ws, {"cat": 3})
    pool = [_png(ws.unlabelled / f"u{i}.png", seed=50 + i) for i in range(3)]
    lib = Library(ws)
    before = _tree_hashes(ws.root)
    decisions = pd.DataFrame({
        "path": [str(pool[0]), str(pool[1]), str(pool[2]), str(files["cat"][0]), "missing.png"],
        "action": ["label", "unknown", "discard", "label", "label"],
        "label": ["zebra", None, None, "../x", "cat"],
    })
    out = lib.apply(decisions)
    assert out["error"].astype(bool).tolist() == [False, False, False, True, True]
    assert (ws.library / "zebra" / "u0.png").exists()
    lib.undo()
    assert _tree_hashes(ws.root) == before | {"journal.jsonl": _tree_hashes(ws.root)["journal.jsonl"]}


def test_move_refuses_files_outside_and_symlinks(ws, tmp_path):
    _tree(ws, {"cat": 1})
    outside = _png(tmp_path / "outside.png", seed=3)
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
    files = _tree(ws, {"cat": 12})
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
