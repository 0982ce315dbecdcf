"""The top-level ``imgcls`` package: its version and its lazy entry points.

(That ``import imgcls`` loads no TensorFlow, Keras or pyplot is checked in a
fresh interpreter by tests/test_layers.py.)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

import imgcls

ROOT = Path(__file__).resolve().parents[1]

#: Every lazy entry point and the package that owns it.
ENTRY_POINTS = {
    "Workspace": "imgcls.core",
    "open_workspace": "imgcls.core",
    "Library": "imgcls.library",
    "build_sample": "imgcls.sample",
    "load_run": "imgcls.runs",
    "list_runs": "imgcls.runs",
    "create_model": "imgcls.models",
    "train": "imgcls.training",
    "next_generation": "imgcls.training",
    "evaluate": "imgcls.evaluation",
    "promote": "imgcls.evaluation",
    "identify": "imgcls.bulk",
    "TransactionLog": "imgcls.translog",
    "ReviewGrid": "imgcls.ui",
    "Predictor": "imgcls.serving",
    "serve": "imgcls.serving",
    "export_deck": "imgcls.reports",
}


def test_version_is_the_distributions():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert imgcls.__version__ == importlib.metadata.version("imgcls") == pyproject


def test_all_lists_the_version_and_every_entry_point():
    assert set(imgcls.__all__) == {"__version__", *ENTRY_POINTS}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_entry_point_resolves_to_the_owning_packages_object(name):
    owner = importlib.import_module(ENTRY_POINTS[name])
    assert getattr(imgcls, name) is getattr(owner, name)
    assert name in owner.__all__, f"{name} is not in {owner.__name__}.__all__"


def test_dir_lists_entry_points_before_they_load():
    listed = dir(imgcls)
    assert set(ENTRY_POINTS) <= set(listed) and "__version__" in listed
    assert "_importlib" not in listed and "_ENTRY_POINTS" not in listed


def test_unknown_attribute_says_where_to_look():
    with pytest.raises(AttributeError, match="no attribute 'assign_splits'.*from imgcls.library import"):
        imgcls.assign_splits  # noqa: B018
    assert not hasattr(imgcls, "no_such_thing")
