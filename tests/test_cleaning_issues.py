"""imgcls.cleaning: out-of-sample probabilities, cleanlab's ranking, the noise table.

The first tests use hand-made features and probabilities (no TensorFlow);
then a library with four pictures filed under a wrong colour is scanned with
a real model (:mod:`cleaning_library`), and the flipped labels must come first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imgcls.cleaning import (
    ISSUE_COLUMNS,
    LABEL_ISSUES_FILE,
    LABEL_NOISE_FILE,
    NOISE_COLUMNS,
    find_label_issues,
    group_folds,
    label_issue_table,
    library_embeddings,
    linear_head_probs,
    noise_table,
    read_label_noise,
)

FLIPS = {"red_03": "green", "blue_05": "yellow", "yellow_11": "red", "green_07": "blue"}


def blobs(n_per_class=30, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (3, dim))
    y = np.repeat(np.arange(3), n_per_class)
    x = centres[y] + rng.normal(0, 1, (len(y), dim))
    return x, np.array(["a", "b", "c"])[y]


# --------------------------------------------------------------------------- folds and the head
def test_group_folds_keep_a_group_in_one_fold_and_spread_classes():
    labels = np.repeat(["a", "b"], 20)
    groups = np.array([f"g{i // 2}" for i in range(40)])  # pairs of duplicates
    fold = group_folds(labels, groups, folds=5, seed=1)
    assert set(fold) == set(range(5))
    for g in set(groups):
        assert len(set(fold[groups == g])) == 1
    for k in range(5):
        assert set(labels[fold == k]) == {"a", "b"}
    with pytest.raises(ValueError, match="folds"):
        group_folds(labels, groups, folds=1)
    with pytest.raises(ValueError, match="duplicate groups"):
        group_folds(labels[:6], groups[:6], folds=5)


def test_linear_head_probs_are_out_of_sample_and_find_flipped_labels():
    x, y = blobs()
    noisy = y.copy()
    noisy[[3, 40, 77]] = ["b", "c", "a"]
    probs, classes = linear_head_probs(x, noisy, folds=5, seed=0)
    assert classes == ["a", "b", "c"]
    assert probs.shape == (90, 3) and np.allclose(probs.sum(axis=1), 1)
    given = np.array([classes.index(v) for v in noisy])
    assert set(np.argsort(probs[np.arange(90), given])[:3]) == {3, 40, 77}
    with pytest.raises(ValueError, match="one row per label"):
        linear_head_probs(x[:5], noisy)
    with pytest.raises(ValueError, match="C"):
        linear_head_probs(x, noisy, C=0)


def test_label_issue_table_ranks_suggests_and_flags():
    rows = pd.DataFrame({"path": ["p0", "p1", "p2", "p3", "p4", "p5"],
                         "label": ["a", "a", "a", "b", "b", "b"]})
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.05, 0.95], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    issues = label_issue_table(rows, probs, ["a", "b"])
    assert list(issues.columns) == ISSUE_COLUMNS
    assert issues["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    top = issues.iloc[0]
    assert top["path"] == "p2" and top["given_label"] == "a" and bool(top["is_issue"])
    assert top["suggested_label"] == "b" and top["suggested_prob"] == pytest.approx(0.95)
    assert top["label_quality"] == pytest.approx(0.05)
    assert (issues.loc[~issues["is_issue"], "suggested_label"] == "").all()
    assert issues.attrs["n_issues"] == int(issues["is_issue"].sum())
    with pytest.raises(ValueError, match="not in `classes`"):
        label_issue_table(rows, probs, ["a", "c"])
    with pytest.raises(ValueError, match="shape"):
        label_issue_table(rows, probs[:, :1], ["a", "b"])
    with pytest.raises(ValueError, match="score_method"):
        label_issue_table(rows, probs, ["a", "b"], score_method="loss")


def test_noise_table_estimates_each_class():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 40)
    probs = np.full((120, 3), 0.05)
    probs[np.arange(120), np.repeat([0, 1, 2], 40)] = 0.9
    probs[:8] = [0.05, 0.9, 0.05]  # 8 of class a look like b
    probs += rng.uniform(0, 0.01, probs.shape)
    probs /= probs.sum(axis=1, keepdims=True)
    table = noise_table(y, probs, ["a", "b", "c"], flagged=np.arange(120) < 8)
    assert list(table.columns) == NOISE_COLUMNS
    first = table.iloc[0]
    assert first["label"] == "a" and first["n"] == 40 and first["flagged"] == 8
    assert 0.1 <= first["noise_rate"] <= 0.25  # 8 of 40 are b's: cleanlab's estimate, near 0.2
    assert table.set_index("label").loc["c", "noise_rate"] == pytest.approx(0.0, abs=0.03)


# --------------------------------------------------------------------------- a library, a real model
@pytest.fixture(scope="module")
def noisy_library(tmp_path_factory):
    """The colour library (4 x 20 pictures, 4 filed under a wrong colour), runs g1 and g2 (parent g1)."""
    from cleaning_library import colour_library, save_colour_run

    ws, _ = colour_library(tmp_path_factory.mktemp("noisy") / "ws", flips=FLIPS)
    for i in range(3):  # a class with a handful of pictures: left out of the ranking
        from cleaning_library import picture

        picture(ws.library / "grey" / f"grey_{i}.png", (128, 128, 128), 900 + i)
    save_colour_run(ws, "g1")
    save_colour_run(ws, "g2", parent="g1")
    return ws


def test_flipped_labels_are_found_in_a_library(noisy_library):
    issues = find_label_issues(noisy_library, "g2", folds=4, prefer_parent=True)
    flipped = {f"{FLIPS[s]}/{s}.png" for s in FLIPS}
    assert set(issues["relpath"].head(len(flipped))) == flipped
    flagged = issues[issues["is_issue"]]
    assert set(flagged["relpath"]) <= flipped and len(flagged) >= 2
    for row in flagged.itertuples():  # the suggestion is the picture's true colour
        assert row.suggested_label == row.relpath.split("/")[1].split("_")[0]
    assert issues.attrs["excluded_classes"] == {"grey": 3}
    assert "grey" not in set(issues["given_label"])
    assert issues.attrs["embeddings_run"] == "g1" and issues.attrs["embeddings_source"] == "parent"
    assert issues.attrs["method"] == "linear-head" and issues.attrs["run_id"] == "g2"


def test_the_noise_table_is_stored_in_the_run_folder(noisy_library):
    issues = find_label_issues(noisy_library, "g2", folds=4)
    run_dir = noisy_library.runs / "g2"
    assert issues.attrs["noise_file"] == str(run_dir / LABEL_NOISE_FILE)
    assert (run_dir / LABEL_ISSUES_FILE).is_file()
    noise = read_label_noise("g2", workspace=noisy_library)
    assert list(noise.columns) == NOISE_COLUMNS
    assert noise["n"].sum() == len(issues) == 80
    assert noise["flagged"].sum() == issues["is_issue"].sum()
    assert noise.attrs["embeddings_run"] == "g2" and noise.attrs["embeddings_source"] == "own"
    assert noise.attrs["n"] == 80 and noise.attrs["method"] == "linear-head"
    assert read_label_noise("g1", workspace=noisy_library) is None
    find_label_issues(noisy_library, "g1", folds=4, save=False)
    assert not (noisy_library.runs / "g1" / LABEL_NOISE_FILE).exists()


def test_given_embeddings_are_reused_and_options_checked(noisy_library):
    emb = library_embeddings(noisy_library, "g2")
    issues = find_label_issues(noisy_library, "g2", embeddings=emb, folds=4, save=False, min_images=2)
    assert "grey" in set(issues["given_label"])
    with pytest.raises(ValueError, match="method"):
        find_label_issues(noisy_library, "g2", method="magic")
    with pytest.raises(ValueError, match="embeddings"):
        find_label_issues(noisy_library, "g2", embeddings="g1")


def test_in_sample_probabilities_for_comparison(noisy_library):
    issues = find_label_issues(noisy_library, "g2", method="in-sample", save=False)
    assert len(issues) == 80 and issues.attrs["embeddings_run"] is None
    flipped = {f"{FLIPS[s]}/{s}.png" for s in FLIPS}
    assert flipped <= set(issues["relpath"].head(12))


@pytest.mark.slow
def test_kfold_training_gives_out_of_sample_probabilities(tmp_path):
    from cleaning_library import colour_library

    from imgcls.models import create_model
    from imgcls.runs import save_run

    ws, _ = colour_library(tmp_path / "ws", per_class=10, flips={"red_03": "green"})
    save_run(ws, create_model("simple_cnn", 4, input_shape=(32, 32, 3)), classes=["blue", "green", "red", "yellow"],
             run_id="cnn", config={"model": "simple_cnn", "augmentation": None})
    issues = find_label_issues(ws, "cnn", method="kfold-train", folds=2, max_epochs=1, patience=1, save=False,
                               min_images=5)
    assert len(issues) == 40 and issues["label_quality"].between(0, 1).all()
    assert [p.name for p in ws.runs.iterdir()] == ["cnn"]  # the fold runs never land in the workspace
