"""Exact and near duplicates of the library."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imgcls.core import open_workspace
from imgcls.library import Library
from library_images import tree


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


def test_exact_and_near_duplicates(ws):
    files = tree(ws, {"cat": 3, "dog": 2})
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
