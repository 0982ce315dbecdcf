"""Class names: hostile folder names are refused before anything moves."""

from __future__ import annotations

import pytest

from imgcls.core import open_workspace
from imgcls.library import Library, validate_class_name
from library_images import tree, tree_hashes


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


@pytest.mark.parametrize(
    "name",
    ["", "  ", "../evil", "a/b", "a\\b", "..", ".hidden", "con", "LPT1", "tab\tname", "x" * 101, "what?"],
)
def test_hostile_class_names_are_refused(ws, name):
    files = tree(ws, {"cat": 1})
    before = tree_hashes(ws.root)
    with pytest.raises(ValueError, match="Invalid class name"):
        Library(ws).move(files["cat"][0], name)
    assert tree_hashes(ws.root) == before


def test_valid_class_names_pass():
    assert validate_class_name(" red fox ") == "red fox"
    assert validate_class_name("Grévy's zebra") == "Grévy's zebra"
