"""imgcls.cleaning.neighbours: nearest neighbours, cross-class duplicates, class outliers.

Most tests use hand-made embeddings (NumPy only); the last ones run a real
model over a library where the same picture sits in two class folders.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls.cleaning import (
    DUPLICATE_COLUMNS,
    NEIGHBOUR_COLUMNS,
    OUTLIER_COLUMNS,
    Embeddings,
    class_outliers,
    cross_class_duplicates,
    library_embeddings,
    nearest_neighbours,
    unit_vectors,
)


def clusters(per_class=12, dim=16, seed=0, spread=0.3):
    """Three well separated classes plus two unknown images; paths p000.. in order."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, dim))
    feats, labels = [], []
    for c, name in enumerate(["ant", "bee", "cow"]):
        feats.append(centres[c] + rng.normal(0, spread, (per_class, dim)))
        labels += [name] * per_class
    feats.append(centres[0] + rng.normal(0, spread, (2, dim)))
    labels += ["unknown"] * 2
    x = np.concatenate(feats).astype(np.float32)
    rows = pd.DataFrame({"path": [f"p{i:03d}" for i in range(len(x))], "label": labels})
    return rows, x


def test_unit_vectors_are_centred_and_of_length_one():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [2.0, 3.0]], np.float32)
    u = unit_vectors(x)
    assert np.allclose(np.linalg.norm(u[:2], axis=1), 1.0)
    assert np.allclose(u[2], 0.0)  # the mean itself: similar to nothing
    with pytest.raises(ValueError, match="2-D"):
        unit_vectors(np.zeros(3))


def test_embeddings_checks_shape_and_fills_columns():
    rows, x = clusters()
    emb = Embeddings(rows, x)
    assert list(emb.rows.columns[:6]) == ["path", "relpath", "label", "hash", "group", "turns"]
    assert (emb.rows["group"] == emb.rows["path"]).all()  # no group: every image its own
    assert emb.dim == 16 and len(emb) == len(rows)
    assert len(emb.labelled()) == len(rows) - 2
    with pytest.raises(ValueError, match="one row per row"):
        Embeddings(rows, x[:-1])
    with pytest.raises(ValueError, match="one boolean per row"):
        emb.subset([True])


def test_cross_class_duplicates_pairs_look_alikes_in_different_classes_only():
    rows, x = clusters()
    x[20] = x[3] + 0.001  # a bee that looks exactly like ant p003
    pairs = cross_class_duplicates(Embeddings(rows, x), threshold=0.99)
    assert list(pairs.columns) == DUPLICATE_COLUMNS
    found = {(a, b) for a, b in zip(pairs["path_a"], pairs["path_b"])}
    assert ("p003", "p020") in found
    assert (pairs["label_a"] != pairs["label_b"]).all()  # same-class look-alikes are not reported
    assert pairs.loc[pairs["path_b"] == "p020", "similarity"].iloc[0] > 0.99


def test_cross_class_duplicates_reports_library_duplicate_groups_and_unknown_optionally():
    rows, x = clusters()
    rows["group"] = rows["path"]
    rows.loc[[5, 30], "group"] = "g-dup"  # perceptual duplicates, ant and cow, looking unalike
    emb = Embeddings(rows, x)
    pairs = cross_class_duplicates(emb, threshold=0.999)
    row = pairs[(pairs["path_a"] == "p005") & (pairs["path_b"] == "p030")]
    assert len(row) == 1 and bool(row["same_group"].iloc[0])
    assert bool(pairs["same_group"].iloc[0])  # duplicate-group pairs first
    # unknown images near ant p000..: reported only with include_unknown
    with_unknown = cross_class_duplicates(emb, threshold=0.5)
    assert (with_unknown["label_b"].eq("unknown") | with_unknown["label_a"].eq("unknown")).any()
    without = cross_class_duplicates(emb, threshold=0.5, include_unknown=False)
    assert not (without["label_b"].eq("unknown") | without["label_a"].eq("unknown")).any()
    with pytest.raises(ValueError, match="threshold"):
        cross_class_duplicates(emb, threshold=0)


def test_class_outliers_flags_an_image_unlike_its_class():
    rows, x = clusters()
    x[15] = -x[15] * 3  # a bee unlike every bee
    out = class_outliers(Embeddings(rows, x))
    assert list(out.columns) == OUTLIER_COLUMNS
    assert out["path"].iloc[0] == "p015" and bool(out["is_outlier"].iloc[0])
    assert out["is_outlier"].sum() == 1  # a tight class's ordinary members are not outliers
    assert out["outlier_score"].iloc[1] < 0.2
    assert "unknown" not in set(out["label"])  # unknown has no class to be unlike
    assert (out["class_n"] == 12).all()
    assert out["nearest_path"].notna().all()
    assert 0 < out.attrs["between_class_distance"] <= 2


def test_class_outliers_never_flags_a_class_under_min_images():
    rows, x = clusters(per_class=4)
    x[1] = -x[1] * 3
    out = class_outliers(Embeddings(rows, x), min_images=5)
    assert not out["is_outlier"].any()
    with pytest.raises(ValueError, match="neighbours"):
        class_outliers(Embeddings(rows, x), neighbours=0)


def test_nearest_neighbours_skips_the_own_group_and_unknown():
    rows, x = clusters()
    rows["group"] = rows["path"]
    rows.loc[[0, 1], "group"] = "copies"
    nn = nearest_neighbours(Embeddings(rows, x), top_k=3, paths=["p000"])
    assert list(nn.columns) == NEIGHBOUR_COLUMNS
    assert nn["rank"].tolist() == [1, 2, 3]
    assert "p001" not in set(nn["neighbour_path"])  # its own copy is not a neighbour
    assert (nn["neighbour_label"] == "ant").all()
    assert nn["similarity"].is_monotonic_decreasing
    every = nearest_neighbours(Embeddings(rows, x), top_k=2)
    assert len(every) == 2 * len(rows)
    assert "unknown" not in set(every["neighbour_label"])


# --------------------------------------------------------------------------- with a real model
@pytest.fixture(scope="module")
def twin_library(tmp_path_factory):
    """The colour library with one picture copied into another class and one saved again, darker."""
    from cleaning_library import colour_library, save_colour_run

    ws, _ = colour_library(tmp_path_factory.mktemp("twins") / "ws", per_class=8)
    shutil.copy2(ws.library / "red" / "red_02.png", ws.library / "green" / "copy_of_red_02.png")
    px = np.asarray(Image.open(ws.library / "blue" / "blue_04.png")).astype(int)
    Image.fromarray(np.clip(px - 3, 0, 255).astype(np.uint8)).save(ws.library / "yellow" / "near_blue_04.png")
    save_colour_run(ws, "g1")
    return ws


def test_duplicates_in_different_classes_are_found_in_a_library(twin_library):
    emb = library_embeddings(twin_library, "g1")
    pairs = cross_class_duplicates(emb, threshold=0.999999)
    found = {(r.relpath_a, r.relpath_b): r for r in pairs.itertuples()}
    exact = found[("green/copy_of_red_02.png", "red/red_02.png")]
    assert exact.same_group and exact.similarity == pytest.approx(1.0, abs=1e-5)
    near = found[("blue/blue_04.png", "yellow/near_blue_04.png")]
    assert near.same_group and near.label_a == "blue" and near.label_b == "yellow"
