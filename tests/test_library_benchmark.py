"""The fixed benchmark set: chosen before the first training with a floor per class, only ever extended."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls import library as L
from imgcls.core import open_workspace
from imgcls.library import assign_splits


def _add(ws, label, n, rng, *, dup_of_first=0, prefix=""):
    folder = ws.library / label
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        px = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(px).resize((32, 32), Image.NEAREST).save(folder / f"{prefix}{label}_{i:03d}.png")
    first = (folder / f"{label}_000.png").read_bytes()
    for j in range(dup_of_first):
        (folder / f"copy{j}_{label}_000.png").write_bytes(first)


@pytest.fixture
def ws(tmp_path):
    ws = open_workspace(tmp_path / "ws", cutoff=10)
    rng = np.random.default_rng(0)
    _add(ws, "ant", 37, rng, dup_of_first=3)  # 40 images, one group of 4 exact duplicates
    _add(ws, "bee", 12, rng)
    _add(ws, "cod", 2, rng)
    return ws


def benchmark_counts(ws) -> pd.Series:
    table = L.benchmark_table(L.Library(ws).scan())
    return table.set_index("label")["benchmark"]


@pytest.mark.parametrize("n,expected", [(0, 0), (2, 0), (3, 1), (12, 4), (30, 10), (40, 10), (90, 10),
                                        (101, 11), (200, 20)])
def test_benchmark_size_has_a_floor_and_a_ceiling(n, expected):
    assert L.benchmark_size(n) == expected


def test_benchmark_size_options():
    assert L.benchmark_size(100, share=0.2) == 20 and L.benchmark_size(100, minimum=0, share=0.05) == 5
    assert L.benchmark_size(12, max_share=0.5) == 6
    with pytest.raises(ValueError, match="share"):
        L.benchmark_size(10, share=0)
    with pytest.raises(ValueError, match="minimum"):
        L.benchmark_size(10, minimum=-1)


def test_choose_benchmark_default_rule_keeps_duplicates_together(ws):
    lib = L.Library(ws)
    chosen = L.choose_benchmark(lib)
    added = chosen.attrs["added"]
    assert set(added) == {"ant", "bee"} and added["bee"] == 4  # 12 images: a third; cod (2) gets none
    assert 10 <= added["ant"] <= 13  # 10%, floor 10, whole groups, never more than a third
    cat = assign_splits(lib.scan())
    per_group = cat.groupby("group")["split"].agg(lambda s: set(s) == {"benchmark"} or "benchmark" not in set(s))
    assert per_group.all()  # a duplicate group is in the benchmark whole or not at all
    counts = benchmark_counts(ws)
    assert counts["ant"] == added["ant"] and counts["bee"] == 4 and counts["cod"] == 0
    flags = lib.flags()
    assert flags["benchmark"].sum() == len(chosen)


def test_choose_benchmark_never_redraws(ws):
    lib = L.Library(ws)
    first = set(L.choose_benchmark(lib)["hash"])
    rng = np.random.default_rng(1)
    _add(ws, "ant", 60, rng, prefix="new_")  # the class grows: its benchmark stays as it is
    _add(ws, "dab", 30, rng)  # a new class gets its own
    lib.scan()
    second = L.choose_benchmark(lib)
    assert first < set(second["hash"]) and second.attrs["added"] == {"dab": 10}
    assert L.choose_benchmark(lib, salt="another").attrs["added"] == {}


def test_ensure_benchmark_extends_only_the_classes_asked_for(ws):
    cat = L.Library(ws).scan()
    with_splits = assign_splits(cat)
    out = L.ensure_benchmark(ws, ["ant"], catalog=with_splits)
    assert out is not with_splits
    assert set(out.loc[out["benchmark"], "label"]) == {"ant"}
    moved = out["split"] != with_splits["split"]
    assert (out.loc[moved, "split"] == "benchmark").all() and moved.sum() == out["benchmark"].sum()
    assert (out.loc[~moved, "split"] == with_splits.loc[~moved, "split"]).all()  # other splits kept
    assert L.ensure_benchmark(ws, ["ant"], catalog=out) is out  # nothing to add: the same object
    fresh = L.ensure_benchmark(ws, ["ant", "bee"])  # no catalog: a fresh scan with the flags
    assert set(fresh.loc[fresh["benchmark"], "label"]) == {"ant", "bee"}
    assert L.Library(ws).flags()["benchmark"].sum() == fresh["benchmark"].sum()


def test_prepare_training_data_fixes_the_benchmark_before_training(ws):
    from imgcls.training import prepare_training_data

    assert not ws.flags_file.exists()
    snapshot, classes, cutoff = prepare_training_data(ws)
    assert classes == ["ant", "bee"] and cutoff == 10  # bee: 12 images, its 4 benchmark ones still count
    sizes = snapshot.groupby(["label", "split"]).size()
    assert sizes["bee"]["benchmark"] == 4 and sizes["ant"]["benchmark"] >= 10
    assert not (snapshot["benchmark"] & (snapshot["split"] != "benchmark")).any()
    again, _, _ = prepare_training_data(ws)
    pd.testing.assert_series_equal(again.set_index("hash")["split"].sort_index(),
                                   snapshot.set_index("hash")["split"].sort_index())


@pytest.mark.slow  # trains two tiny models
def test_first_train_fixes_the_benchmark_and_later_runs_only_extend(tmp_path):
    from imgcls.training import train

    ws = open_workspace(tmp_path / "ws", cutoff=10)
    rng = np.random.default_rng(3)
    _add(ws, "ant", 30, rng)
    _add(ws, "bee", 30, rng)
    fast = dict(model="simple_cnn", image_size=32, batch_size=16, max_epochs=1, verbose=0)
    first = train(ws, **fast)
    bench = first.splits[first.splits["split"] == "benchmark"]
    assert len(bench) == 20 and first.metrics["benchmark"]["n"] == 20
    chosen = set(bench["hash"])
    _add(ws, "cod", 30, rng)
    second = train(ws, **fast)
    later = second.splits[second.splits["split"] == "benchmark"]
    assert chosen <= set(later["hash"]) and set(later["label"]) == {"ant", "bee", "cod"}
    assert len(later) == 30 and not set(second.splits.loc[second.splits["split"] == "train", "hash"]) & chosen


def test_the_zoo_sample_adopts_the_same_floor(zoo_sample_template):
    table = L.benchmark_table(L.Library(zoo_sample_template).scan()).set_index("label")
    assert (table["benchmark"] == 10).all() and len(table) == 9  # sheep (38) and giraffe (36) included
