"""Tests for imgcls.bulk.filters on a hand-made results table (no model)."""

from __future__ import annotations

import pandas as pd
import pytest
from bulk_runs import names, results_table

from imgcls import bulk


def test_low_count_classes():
    counts = pd.DataFrame({"label": ["antelope", "cow", "zebra"], "n": [90, 38, 36],
                           "staged": [0, 0, 36], "meets_cutoff": [True, False, False]})
    out = bulk.low_count_classes(results_table(), counts, below=40)
    assert names(out) == ["g", "d", "f", "c"]  # zebra (36) first, then cow (38); confident first
    assert out["class_count"].tolist() == [36, 36, 38, 38]
    assert names(bulk.low_count_classes(results_table(), {"antelope": 90, "cow": 38}, below=37)) == ["g", "d"]
    with pytest.raises(ValueError, match="below"):
        bulk.low_count_classes(results_table(), counts, below=0)


def test_staged_classes_from_counts_and_catalog():
    counts = pd.DataFrame({"label": ["antelope", "cow", "zebra"], "n": [10, 10, 10], "staged": [0, 4, 10]})
    assert names(bulk.staged_classes(results_table(), counts)) == ["g", "d"]
    assert names(bulk.staged_classes(results_table(), counts, min_share=0.4)) == ["g", "d", "f", "c"]
    catalog = pd.DataFrame({
        "path": [f"/lib/x{i}.png" for i in range(6)],
        "label": ["cow", "cow", "cow", "zebra", "zebra", "antelope"],
        "readable": [True, True, False, True, True, True],
        "staged": [True, False, True, True, True, False],
    })
    out = bulk.staged_classes(results_table(), catalog, min_share=0.5)  # cow: 1 of 2 readable staged
    assert set(out["top1_class"]) == {"cow", "zebra"}
    assert out.groupby("top1_class")["staged_share"].first().to_dict() == {"cow": 0.5, "zebra": 1.0}
    with pytest.raises(ValueError, match="min_share"):
        bulk.staged_classes(results_table(), counts, min_share=2)


def test_look_alike_shows_second_choice():
    out = bulk.look_alike(results_table(), "antelope", min_score=0.3, max_score=0.7)
    assert names(out) == ["e", "a"]  # least confident first
    assert out["top2_class"].tolist() == ["cow", "zebra"]
    assert names(bulk.look_alike(results_table(), ["antelope", "cow"], min_score=0.3, max_score=0.7)) == \
        ["e", "c", "a", "f"]
    with pytest.raises(ValueError, match="min_score"):
        bulk.look_alike(results_table(), "cow", min_score=0.8, max_score=0.2)


def test_in_unknown_by_path_and_hash():
    catalog = pd.DataFrame({"path": ["/lib/unknown/f.png", "/lib/unknown/other.png", "/lib/cow/x.png"],
                            "label": ["unknown", "unknown", "cow"], "hash": ["h5", "h3", "h1"]})
    assert names(bulk.in_unknown(results_table(), catalog)) == ["f", "d"]  # cow first, then zebra


def test_lowest_scores_and_sort_by():
    t = results_table()
    assert names(bulk.lowest_scores(t, n=3)) == ["e", "c", "a"]
    assert names(bulk.lowest_scores(t, max_score=0.6)) == ["e", "c", "a"]
    assert len(bulk.lowest_scores(t)) == len(t)
    assert names(bulk.sort_by(t, "score"))[:2] == ["g", "b"]
    assert names(bulk.sort_by(t, "score", ascending=True))[:2] == ["e", "c"]
    assert names(bulk.sort_by(t, "entropy"))[:2] == ["c", "e"]  # most uncertain first
    assert names(bulk.sort_by(t, "margin"))[:2] == ["c", "e"]
    assert names(bulk.sort_by(t, "class")) == ["b", "a", "e", "f", "c", "g", "d"]
    with pytest.raises(ValueError, match="key"):
        bulk.sort_by(t, "confidence")
    with pytest.raises(ValueError, match="top1_score"):
        bulk.lowest_scores(t.drop(columns="top1_score"))


def test_filters_combine():
    t = results_table()
    out = bulk.sort_by(bulk.look_alike(bulk.lowest_scores(t, max_score=0.9), ["antelope", "cow"]), "margin")
    assert names(out) == ["c", "e", "a", "f"]
    assert list(out.index) == list(range(len(out)))
    assert t.equals(results_table())  # inputs are never modified


def test_each_filter_names_its_view_for_the_grid_title():
    t = results_table()
    counts = pd.DataFrame({"label": ["antelope", "cow", "zebra"], "n": [90, 38, 36], "staged": [0, 0, 36]})
    assert bulk.low_count_classes(t, counts, below=40).attrs["filter"] == (
        "Low count: predicted as a class with fewer than 40 library images (2 classes), smallest class first")
    assert bulk.staged_classes(t, counts).attrs["filter"].startswith(
        "Staged: predicted as a class whose library images are at least 50% staged")
    assert bulk.look_alike(t, ["antelope", "cow"], min_score=0.3, max_score=0.7).attrs["filter"] == (
        "Look-alike: predicted antelope or cow at a score of 0.30-0.70, least confident first")
    catalog = pd.DataFrame({"path": ["/lib/unknown/f.png"], "label": ["unknown"], "hash": ["h5"]})
    assert bulk.in_unknown(t, catalog).attrs["filter"].startswith("Unknown: images in library/unknown/")
    assert bulk.lowest_scores(t, n=3).attrs["filter"] == "The 3 lowest first-choice scores"
    assert bulk.lowest_scores(t, max_score=0.6).attrs["filter"] == "Lowest first-choice scores first (at most 0.60)"
    assert bulk.sort_by(t, "margin").attrs["filter"] == f"All {len(t)} results, sorted by margin (most uncertain first)"
    assert bulk.sort_by(t, "score").attrs["filter"].endswith("sorted by score (most certain first)")
    # a chain names every step, in order; the input table is left alone
    chained = bulk.sort_by(bulk.look_alike(t, "antelope", min_score=0.3, max_score=0.7), "entropy")
    assert chained.attrs["filter"] == ("Look-alike: predicted antelope at a score of 0.30-0.70, least confident first; "
                                       "sorted by entropy (most uncertain first)")
    assert "filter" not in t.attrs
    named = bulk.filter_results(t, "lowest", n=2)
    assert len(named) == 2 and named.attrs["filter"] == "The 2 lowest first-choice scores"
