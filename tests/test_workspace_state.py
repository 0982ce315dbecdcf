"""workspace_state: where a workspace stands, read once, said in sentences (what the notebooks branch on)."""

from __future__ import annotations

import os

from imgcls.library import Library
from imgcls.training import WorkspaceState, workspace_state


def test_fresh_sample(zoo_sample, monkeypatch):
    monkeypatch.chdir(zoo_sample.root.parent)
    state = workspace_state(zoo_sample.root.name)  # a relative path, as a notebook gives it
    assert isinstance(state, WorkspaceState)
    assert os.path.isabs(state.root) and state.is_sample
    assert state.classes == Library(zoo_sample).classes() and "zebra" not in state.classes
    assert state.benchmark_fixed and state.benchmark_images > 0  # the sample fixes it when it is built
    assert not state.has_production and state.production_generation is None
    assert state.next_generation == 1  # generations count from 1 (the first, from scratch), as runs record them
    assert state.runs == 0 and state.kept_runs == [] and state.new_classes == []
    text = state.describe()
    assert "the zoo sample" in text and "no production model yet" in text and "benchmark set fixed" in text
    assert str(state) == text


def test_cutoff_changes_the_classes(zoo_sample):
    low = workspace_state(zoo_sample, cutoff=35)
    assert {"sheep", "giraffe"} <= set(low.classes) and low.cutoff == 35
    assert "sheep" not in workspace_state(zoo_sample).classes
