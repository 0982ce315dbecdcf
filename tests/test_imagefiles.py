"""Tests for imgcls.core.imagefiles: walking folders and hashing files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from imgcls.core import ImageError, file_hash, iter_image_files

RED, BLUE = (255, 0, 0), (0, 0, 255)


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------
# iter_image_files
# --------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path, write_image):
    root = tmp_path / "lib"
    for name in [
        "a.jpg",
        "B.PNG",
        "c.Jpeg",
        "zebra/z1.gif",
        "zebra/deeper/z2.webp",
        "zebra/deeper/z3.TIFF",
        "cat/c1.bmp",
        ".hidden.jpg",
        ".hidden-dir/x.png",
        "zebra/.thumbs/t.jpg",
        "fake.jpg/inside.png",  # a folder named like an image is walked as a folder
        "elsewhere-inside/real.png",
    ]:
        write_image(f"lib/{name}", format="PNG")
    (root / "notes.txt").write_text("not an image")
    (root / "noext").write_bytes(b"")
    (root / "empty.jpg").write_bytes(b"")  # an image by name; reading it is read_image's job
    outside = write_image("outside/secret.png")
    (root / "link-out.jpg").symlink_to(outside)
    (root / "link-in.png").symlink_to(root / "a.jpg")
    (root / "link-dangling.jpg").symlink_to(root / "gone.jpg")
    (root / "link-dir-out").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "link-dir-in").symlink_to(root / "zebra", target_is_directory=True)
    (root / "link-dir.jpg").symlink_to(root / "cat", target_is_directory=True)
    if os.name == "posix":
        os.mkfifo(root / "pipe.png")
    return root


def test_iter_image_files_walks_sorted_and_safely(tree):
    found = iter_image_files(tree)

    assert isinstance(found, Iterator)
    assert [p.relative_to(tree).as_posix() for p in found] == [
        "B.PNG",
        "a.jpg",
        "c.Jpeg",
        "cat/c1.bmp",
        "elsewhere-inside/real.png",
        "empty.jpg",
        "fake.jpg/inside.png",
        "link-in.png",
        "zebra/deeper/z2.webp",
        "zebra/deeper/z3.TIFF",
        "zebra/z1.gif",
    ]
    paths = list(iter_image_files(tree))
    assert paths == sorted(paths)
    assert all(p.is_relative_to(tree) for p in paths)


def test_iter_image_files_not_recursive(tree):
    names = [p.name for p in iter_image_files(tree, recursive=False)]

    assert names == ["B.PNG", "a.jpg", "c.Jpeg", "empty.jpg", "link-in.png"]


def test_iter_image_files_accepts_str_and_relative_paths(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)

    assert [str(p) for p in iter_image_files("lib/cat")] == ["lib/cat/c1.bmp"]


def test_iter_image_files_from_a_symlinked_root(tree, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(tree / "zebra", target_is_directory=True)

    assert [p.name for p in iter_image_files(alias)] == ["z2.webp", "z3.TIFF", "z1.gif"]


def test_iter_image_files_is_lazy(tree):
    found = iter_image_files(tree)
    first = next(found)
    (tree / "a.jpg").unlink()  # the walk continues over a changing folder
    rest = list(found)

    assert first.name == "B.PNG"
    assert "zebra" in {p.parent.name for p in rest}


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_iter_image_files_requires_a_folder(tmp_path, write_image, kind):
    folder = tmp_path / "nope" if kind == "missing" else write_image("a.png")

    with pytest.raises(ValueError, match="folder"):
        list(iter_image_files(folder))


# --------------------------------------------------------------------------
# file_hash
# --------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20])
@pytest.mark.parametrize("size", [0, 1, 100, 70_000])
def test_file_hash_is_sha256_of_the_bytes(tmp_path, chunk_size, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = write_bytes(tmp_path / "f.bin", data)

    assert file_hash(path, chunk_size=chunk_size) == hashlib.sha256(data).hexdigest()


def test_file_hash_follows_content_not_name(tmp_path, write_image):
    a = write_image("a.png", color=RED)
    b = tmp_path / "copy of a.PNG"
    b.write_bytes(a.read_bytes())
    c = write_image("c.png", color=BLUE)

    assert file_hash(a) == file_hash(str(b)) != file_hash(c)
    assert len(file_hash(a)) == 64


def test_file_hash_errors(tmp_path):
    (tmp_path / "dir.jpg").mkdir()
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone")

    for path, kind in [
        (tmp_path / "missing.jpg", "missing"),
        (tmp_path / "dir.jpg", "directory"),
        (tmp_path / "dangling.jpg", "dangling_symlink"),
    ]:
        with pytest.raises(ImageError) as caught:
            file_hash(path)
        assert caught.value.kind == kind
    with pytest.raises(ValueError, match="chunk_size"):
        file_hash(tmp_path / "missing.jpg", chunk_size=0)
