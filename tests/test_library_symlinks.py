"""Symbolic links: never written through, never followed out of the tree, always listed with a reason;
and no message or table ever carries bytes read from a file."""

from __future__ import annotations

import warnings

import pytest

from imgcls.core import ImageError, open_workspace, read_image
from imgcls.core.sniff import looks_like
from imgcls.library import Library
from library_images import png, tree, tree_hashes

SECRET = b"root:x:0:0:root:/root:/bin/bash\nsecret-token-1234\n"


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


def test_a_symlinked_class_folder_is_refused_for_writing_and_not_scanned(ws, tmp_path):
    files = tree(ws, {"cat": 2})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    png(elsewhere / "x.png", seed=9)
    (ws.library / "lynx").symlink_to(elsewhere, target_is_directory=True)
    lib = Library(ws)
    before = tree_hashes(tmp_path)
    with pytest.raises(ValueError, match="symbolic link"):
        lib.move(files["cat"][0], "lynx")
    assert tree_hashes(tmp_path) == before and files["cat"][0].exists()
    with pytest.warns(UserWarning, match="symbolic links"):
        cat = lib.scan()  # reading goes on
    assert cat.attrs["linked_folders"] == ["lynx"] and set(cat["label"]) == {"cat"}
    with pytest.raises(ValueError, match="symbolic link"):
        lib.merge_class("cat", into="lynx")


@pytest.mark.parametrize("folder", ["trash", "unknown", "library"])
def test_a_symlinked_trash_unknown_or_library_is_refused_for_writing(ws, tmp_path, folder):
    files = tree(ws, {"cat": 2})
    real = {"trash": ws.trash, "unknown": ws.unknown, "library": ws.library}[folder]
    moved = tmp_path / f"real-{folder}"
    real.rename(moved)
    real.symlink_to(moved, target_is_directory=True)
    lib = Library(ws)
    src = ws.library / "cat" / files["cat"][0].name
    before = tree_hashes(tmp_path)
    with pytest.raises(ValueError, match="symbolic link"):
        {"trash": lambda: lib.discard(src), "unknown": lambda: lib.to_unknown(src),
         "library": lambda: lib.move(src, "dog")}[folder]()
    assert tree_hashes(tmp_path) == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(lib.scan()) >= 1  # scanning still works


def test_symlinked_files_are_listed_with_the_reason_and_never_followed(ws, tmp_path):
    tree(ws, {"cat": 1})
    secret = tmp_path / "passwd"
    secret.write_bytes(SECRET)
    (ws.library / "cat" / "leak.jpg").symlink_to(secret)
    (ws.library / "cat" / "gone.png").symlink_to(tmp_path / "nothing-here.png")
    inside = ws.library / "cat" / "alias.png"
    inside.symlink_to(ws.library / "cat" / "cat_0.png")
    cat = Library(ws).scan().set_index("relpath")
    leak, gone = cat.loc["cat/leak.jpg"], cat.loc["cat/gone.png"]
    assert not leak["readable"] and leak["error"].startswith("symbolic link leaving the folder")
    assert not gone["readable"] and gone["error"].startswith("dangling link")
    assert leak["hash"] == "" and leak["bytes"] == 0  # not even hashed
    assert cat.loc["cat/alias.png", "readable"]  # a link inside the library is an image like any other
    text = cat.to_csv()
    assert "secret-token" not in text and "root:x" not in text


def test_a_file_that_is_not_an_image_is_described_not_quoted(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(SECRET)
    with pytest.raises(ImageError) as caught:
        read_image(bad)
    assert "text file" in caught.value.reason and "secret" not in str(caught.value)
    html = tmp_path / "page.png"
    html.write_bytes(b"<!DOCTYPE html><html><body>token=abc123</body></html>")
    with pytest.raises(ImageError) as caught:
        read_image(html)
    assert "HTML" in caught.value.reason and "abc123" not in str(caught.value)
    zipped = tmp_path / "archive.png"
    zipped.write_bytes(b"PK\x03\x04" + bytes(range(200)) * 3)
    with pytest.raises(ImageError) as caught:
        read_image(zipped)
    assert "ZIP archive" in caught.value.reason and "50 4b" not in caught.value.reason


@pytest.mark.parametrize("head, kind", [
    (b"\x7fELF\x02\x01\x01", "ELF executable"),
    (b"%PDF-1.4", "PDF"),
    (bytes([0x13, 0x37, 0xca, 0xfe, 0x00, 0xff] * 20), "unknown binary data"),
    (b"hello there\n", "text file"),
])
def test_looks_like_names_the_kind_only(head, kind):
    assert kind in looks_like(head)
