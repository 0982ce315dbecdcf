"""The embedded zoo sample workspace."""

from __future__ import annotations

import pytest
from conftest import ZOO_SAMPLE, copy_workspace

from imgcls.library import Library
from imgcls.sample import (
    SAMPLE_COUNTS,
    build_sample,
    sample_truth,
    simulate_labelling,
)


@pytest.fixture(scope="module")
def sample(zoo_sample_template, tmp_path_factory):
    return copy_workspace(zoo_sample_template, tmp_path_factory.mktemp("zoo") / "ws")


def test_sample_tells_the_write_ups_story(sample):
    lib = Library(sample)
    counts = lib.counts().set_index("label")
    over = [c for c in counts.index if counts.loc[c, "meets_cutoff"]]
    assert len(over) >= 6
    under = counts[(counts["n"] >= 35) & (counts["n"] <= 39)].index.tolist()
    assert {"sheep", "giraffe"} <= set(under)
    assert "zebra" not in counts.index and counts.loc["unknown", "n"] > 0
    cat = lib.catalog
    staged = cat[cat["staged"]]
    assert set(staged["label"]) == {"elephant"} and len(staged) == SAMPLE_COUNTS["elephant"]
    assert (cat["turns"] == 1).sum() == 3
    assert (~cat["readable"]).sum() == 1
    assert len(lib.duplicates()) >= 8
    assert cat["benchmark"].sum() >= 5 * 9
    assert {p.suffix for p in sample.library.rglob("*.*")} >= {".png", ".jpg"}


def test_pool_and_hidden_truth(sample):
    truth = sample_truth(sample)
    assert len(truth) == ZOO_SAMPLE["pool_size"] + 2  # the pool plus its two unreadable files
    assert set(truth["label"]) - {""} <= {"bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"}
    assert all((sample.unlabelled / r).exists() for r in truth["relpath"])
    assert len({p.parent for p in sample.unlabelled.rglob("*.png")}) >= 1


def test_build_refuses_a_folder_with_images_but_reuses_a_sample(sample, tmp_path):
    with pytest.raises(ValueError, match="already holds images"):
        build_sample(sample.root)
    assert build_sample(sample.root, overwrite=True).root == sample.root


def test_simulate_labelling_moves_pool_images_into_the_library(tmp_path):
    ws = build_sample(tmp_path / "ws", image_size=32, pool_size=300, seed=2)
    moved = simulate_labelling(ws, {"zebra": 5})
    assert len(moved) == 5
    assert Library(ws).counts().set_index("label").loc["zebra", "n"] == 5
    with pytest.raises(ValueError, match="left in the pool"):
        simulate_labelling(ws, {"zebra": 10_000})
