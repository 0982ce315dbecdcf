"""Class names: hostile folder names are refused before anything moves."""

from __future__ import annotations

import json
import warnings

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


# --- safe and unambiguous names (issue 11) ------------------------------------------------
EMOJI = "\U0001F98A"  # 4 bytes in UTF-8


def test_a_name_over_255_bytes_is_refused_before_the_journal_is_touched(ws):
    files = tree(ws, {"cat": 1})
    name = EMOJI * 100  # 100 characters, 400 bytes: used to fail with a raw OSError and lock everyone out
    with pytest.raises(ValueError, match="255 bytes"):
        Library(ws).move(files["cat"][0], name)
    assert not ws.journal.exists() or "begin" not in ws.journal.read_text()
    Library(ws).scan()  # the next open works
    just_fits = EMOJI * 63 + "abc"  # 66 characters, exactly 255 bytes
    assert len(just_fits.encode()) == 255
    new = Library(ws).move(files["cat"][0], just_fits)
    assert new.parent.name == just_fits and new.exists()
    with pytest.raises(ValueError, match="255 bytes"):
        validate_class_name(just_fits + "d")


def test_a_failed_link_is_journaled_as_aborted_and_never_blocks_the_next_open(ws):
    long_name = "x" * 250 + ".png"  # a clash makes the free name x...-1.png: 256 bytes, refused by the OS
    from library_images import png

    src = png(ws.library / "cat" / long_name, seed=1)
    png(ws.library / "dog" / long_name, seed=2)
    with pytest.raises(OSError):
        Library(ws).move(src, "dog")
    states = [json.loads(line)["state"] for line in ws.journal.read_text().splitlines()]
    assert states == ["begin", "aborted"] and src.exists()
    lib = Library(ws)
    assert lib.recovered_ == [] and len(lib.scan()) == 2


@pytest.mark.parametrize("name, why", [
    ("zero\u200bwidth", "invisible format"),
    ("evil\u202egnp.exe", "invisible format"),
    ("line\u2028sep", "line separator"),
    ("para\u2029sep", "paragraph separator"),
    ("c1\x85control", "control"),
    ("UNKNOWN", "case variant of 'unknown'"),
    ("Unknown", "case variant of 'unknown'"),
    ("trash", "reserved"),
    ("TRASH", "reserved"),
])
def test_invisible_and_reserved_names_are_refused(name, why):
    with pytest.raises(ValueError, match="Invalid class name") as caught:
        validate_class_name(name)
    assert why in str(caught.value)


def test_names_are_nfc_and_unknown_itself_is_the_unknown_folder():
    assert validate_class_name("cafe\u0301") == "caf\u00e9"
    assert validate_class_name(" unknown ") == "unknown"


def test_a_new_name_that_looks_like_an_existing_class_is_refused_naming_it(ws):
    files = tree(ws, {"Cat": 2, "dog": 1})
    lib = Library(ws)
    with pytest.raises(ValueError, match="looks the same as the existing class 'Cat'"):
        lib.move(files["dog"][0], "cat")
    with pytest.raises(ValueError, match="'Cat'"):
        lib.move(files["dog"][0], "CAT")
    assert lib.move(files["dog"][0], "Cat").parent.name == "Cat"  # the existing name itself is fine


def test_unicode_forms_of_one_name_are_one_class(ws):
    decomposed = "cafe\u0301"
    files = tree(ws, {decomposed: 1, "dog": 1})
    # a folder made elsewhere in the decomposed form: the composed spelling goes into it
    new = Library(ws).move(files["dog"][0], "caf\u00e9")
    assert new.parent.name == decomposed
    assert validate_class_name("caf\u00e9", existing=[decomposed]) == decomposed


def test_scan_warns_about_look_alike_classes_until_they_are_merged(ws):
    files = tree(ws, {"Cat": 2, "cat": 3, "dog": 1})
    lib = Library(ws)
    with pytest.warns(UserWarning, match="look alike"):
        cat = lib.scan()
    assert cat.attrs["look_alike_classes"] == [["Cat", "cat"]]
    before = tree_hashes(ws.library)
    moved = lib.merge_class("Cat", into="cat")
    assert len(moved) == 2 and not (ws.library / "Cat").exists()
    assert len(list((ws.library / "cat").iterdir())) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lib.scan().attrs["look_alike_classes"] == []
    lib.undo()  # one step undoes the whole merge
    assert tree_hashes(ws.library) == before
    assert files["Cat"][0].exists()


def test_rename_class_is_one_undoable_batch(ws):
    files = tree(ws, {"CAT": 3, "dog": 1})
    lib = Library(ws)
    lib.set_flags(files["CAT"][0], staged=True)
    before = tree_hashes(ws.library)
    lib.rename_class("CAT", "cat")  # a case-only rename is allowed
    assert not (ws.library / "CAT").exists() and len(list((ws.library / "cat").iterdir())) == 3
    assert lib.scan().set_index("relpath").loc["cat/CAT_0.png", "staged"]  # flags follow the content
    with pytest.raises(ValueError, match="existing class"):
        lib.rename_class("cat", "dog")
    with pytest.raises(ValueError, match="existing class folder"):
        lib.rename_class("lynx", "felis")
    lib.undo()
    assert tree_hashes(ws.library) == before and not (ws.library / "cat").exists()
