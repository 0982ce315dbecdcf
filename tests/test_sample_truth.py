"""The sample's hidden labels join any results table by content: relative, absolute, moved files."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from imgcls.bulk import precision_at_thresholds
from imgcls.sample import attach_truth, sample_truth, simulate_labelling


def _results(paths, labels, *, right=True) -> pd.DataFrame:
    """A results table naming ``paths``; first choice right (or always "bear")."""
    n = len(paths)
    return pd.DataFrame({
        "path": [str(p) for p in paths],
        "top1_class": list(labels) if right else ["bear"] * n,
        "top1_score": np.linspace(0.5, 0.99, n),
    })


@pytest.fixture
def truth(zoo_sample):
    t = sample_truth(zoo_sample)
    return t[t["label"] != ""].head(30).reset_index(drop=True)


def test_truth_has_absolute_paths_and_hashes(zoo_sample, truth):
    assert all(os.path.isabs(p) for p in truth["path"])
    assert truth["hash"].str.fullmatch(r"[0-9a-f]{64}").all()
    known = sample_truth(zoo_sample, classes=["zebra"], present_only=True)
    assert set(known["label"]) == {"zebra"} and all(os.path.exists(p) for p in known["path"])


def test_absolute_results_with_absolute_workspace(zoo_sample, truth):
    out = attach_truth(_results(truth["path"], truth["label"]), zoo_sample.root)
    assert out["true_label"].tolist() == truth["label"].tolist()
    assert out.attrs["truth_join"]["by_path"] == len(truth)


def test_relative_paths_either_side(zoo_sample, truth, tmp_path, monkeypatch):
    """The README's path: a notebook in notebooks/ opens ``../<workspace>``; results may hold either form."""
    notebooks = zoo_sample.root.parent / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)
    rel_ws = os.path.join("..", zoo_sample.root.name)
    rel_paths = [os.path.relpath(p, notebooks) for p in truth["path"]]
    assert all(p.startswith("..") for p in rel_paths)
    for ws, paths in ((rel_ws, truth["path"]), (rel_ws, rel_paths), (zoo_sample.root, rel_paths)):
        out = attach_truth(_results(paths, truth["label"]), ws)
        assert out["true_label"].tolist() == truth["label"].tolist(), (ws, paths[0])
    # the truth read through a relative workspace still names absolute paths
    assert all(os.path.isabs(p) for p in sample_truth(rel_ws)["path"])


def test_symlinked_workspace(zoo_sample, truth, tmp_path):
    link = tmp_path / "linked"
    link.symlink_to(zoo_sample.root, target_is_directory=True)
    paths = [str(link / os.path.relpath(p, zoo_sample.root)) for p in truth["path"]]
    out = attach_truth(_results(paths, truth["label"]), zoo_sample.root)
    assert out["true_label"].tolist() == truth["label"].tolist()


def test_moved_images_found_by_content_hash(zoo_sample):
    """An image labelled since has left the pool: its label follows it by content hash."""
    moved = simulate_labelling(zoo_sample, {"zebra": 3, "sheep": 2}, seed=1)
    out = attach_truth(_results(moved["new_path"], moved["label"]), zoo_sample)
    assert out["true_label"].tolist() == moved["label"].tolist()
    assert out.attrs["truth_join"]["by_hash"] == len(moved)
    # a copy under another name anywhere is the same image
    copy = zoo_sample.root / "elsewhere.png"
    shutil.copyfile(moved["new_path"].iloc[0], copy)
    assert attach_truth(_results([copy], ["x"]), zoo_sample)["true_label"].iloc[0] == moved["label"].iloc[0]


def test_results_hash_column_is_used(zoo_sample, truth):
    res = _results(["/nowhere/a.png", "/nowhere/b.png"], truth["label"][:2]).assign(hash=truth["hash"][:2].tolist())
    assert attach_truth(res, zoo_sample)["true_label"].tolist() == truth["label"][:2].tolist()


def test_older_sample_without_hashes(zoo_sample, truth):
    """A truth file written before hashes were kept: files still present are hashed on the fly."""
    csv = zoo_sample.sample_labels_file
    pd.read_csv(csv, dtype=str, keep_default_na=False).drop(columns="hash").to_csv(csv, index=False)
    assert (sample_truth(zoo_sample)["hash"] == "").all()
    elsewhere = zoo_sample.root / "copy.png"
    shutil.copyfile(truth["path"].iloc[0], elsewhere)
    out = attach_truth(_results([truth["path"].iloc[1], elsewhere], truth["label"][[1, 0]]), zoo_sample)
    assert out["true_label"].tolist() == [truth["label"].iloc[1], truth["label"].iloc[0]]


def test_unknown_images_and_bad_files_get_empty_labels(zoo_sample, tmp_path):
    t = sample_truth(zoo_sample)
    bad = t.loc[t["label"] == "", "path"].tolist()
    stranger = tmp_path / "stranger.png"
    stranger.write_bytes(b"not from the pool")
    out = attach_truth(_results([*bad, stranger], ["x"] * (len(bad) + 1)), zoo_sample)
    assert (out["true_label"] == "").all() and out.attrs["truth_join"]["unmatched"] == len(bad) + 1


def test_precision_uses_the_one_join(zoo_sample, truth, monkeypatch):
    monkeypatch.chdir(zoo_sample.root.parent)
    rel = [os.path.relpath(p) for p in truth["path"]]
    right = _results(rel, truth["label"])
    by_ws = precision_at_thresholds(right, zoo_sample.root.name, thresholds=[0.0, 0.9])
    assert by_ws["precision"].tolist() == [1.0, 1.0] and by_ws.attrs["n"] == len(truth)
    by_table = precision_at_thresholds(right, sample_truth(zoo_sample), thresholds=[0.0, 0.9])
    pd.testing.assert_frame_equal(by_ws, by_table)
    attached = attach_truth(_results(rel, truth["label"], right=False), zoo_sample)
    wrong = precision_at_thresholds(attached, thresholds=[0.0])
    assert wrong["precision"].iloc[0] == pytest.approx((truth["label"] == "bear").mean())


def test_errors_say_what_to_pass(zoo_sample, tmp_path):
    with pytest.raises(ValueError, match="workspace"):
        attach_truth(pd.DataFrame({"path": []}))
    with pytest.raises(FileNotFoundError, match="hidden labels"):
        attach_truth(pd.DataFrame({"path": ["a"]}), tmp_path)
    with pytest.raises(ValueError, match="true_label"):
        precision_at_thresholds(_results(["a"], ["bear"]))
