"""Deterministic, duplicate-aware splits and the fixed benchmark set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls.core import open_workspace
from imgcls.library import (
    Library,
    assign_splits,
    choose_benchmark,
    split_sizes,
    training_rows,
)


def _catalog(n: int, *, offset: int = 0) -> pd.DataFrame:
    hashes = [f"{i + offset:064x}" for i in range(n)]
    return pd.DataFrame({
        "path": [f"/lib/c{i % 3}/{i}.png" for i in range(n)],
        "label": [f"c{i % 3}" for i in range(n)],
        "hash": hashes,
        "group": hashes,
        "readable": True,
        "benchmark": False,
    })


def test_fractions_are_respected_and_deterministic():
    cat = _catalog(3000)
    a = assign_splits(cat, fractions=(0.7, 0.2, 0.1))
    b = assign_splits(cat.sample(frac=1.0, random_state=1), fractions=(0.7, 0.2, 0.1))
    share = a["split"].value_counts(normalize=True)
    assert abs(share["train"] - 0.7) < 0.03 and abs(share["val"] - 0.2) < 0.03 and abs(share["test"] - 0.1) < 0.03
    assert a.set_index("hash")["split"].equals(b.set_index("hash")["split"].loc[a["hash"]])
    assert not assign_splits(cat, salt="other")["split"].equals(a["split"])


def test_split_is_stable_as_the_library_grows_and_files_move():
    cat = _catalog(500)
    before = assign_splits(cat).set_index("hash")["split"]
    grown = pd.concat([cat, _catalog(300, offset=10_000)])
    grown["path"] = grown["path"].str.replace("/lib/", "/moved/")
    grown["label"] = "renamed"
    after = assign_splits(grown).set_index("hash")["split"]
    assert after.loc[before.index].equals(before)


def test_duplicates_share_a_split_and_benchmark_is_never_trained_on():
    cat = _catalog(400)
    cat.loc[1:40, "group"] = cat.loc[0, "hash"]  # one big near-duplicate group
    cat.loc[100:104, "benchmark"] = True
    cat.loc[105, "group"] = cat.loc[100, "hash"]  # a duplicate of a benchmark image
    out = assign_splits(cat)
    assert out.loc[0:40, "split"].nunique() == 1
    assert (out.loc[100:105, "split"] == "benchmark").all()
    assert (out["split"] == "benchmark").sum() == 6


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.9, 0.2, 0.1), (0, 0.5, 0.5), (1.2, -0.1, -0.1), "abc"])
def test_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        assign_splits(_catalog(10), fractions=fractions)


def test_training_rows_and_sizes():
    cat = _catalog(30)
    cat.loc[0, "readable"] = False
    rows = training_rows(cat, ["c0", "c1"])
    assert set(rows["label"]) == {"c0", "c1"} and 0 not in rows.index
    with pytest.raises(ValueError, match="unknown"):
        training_rows(cat, ["c0", "unknown"])
    sizes = split_sizes(assign_splits(cat), ["c0", "c1"])
    assert sizes.loc["total", "total"] == len(rows)


def test_choose_benchmark_once_and_only_extends(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    rng = np.random.default_rng(0)
    for label, n in {"cat": 12, "dog": 9}.items():
        (ws.library / label).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((32, 32), Image.NEAREST).save(
                ws.library / label / f"{i}.png")
    lib = Library(ws)
    first = set(choose_benchmark(lib, per_class=3)["hash"])
    assert len(first) == 6
    (ws.library / "fox").mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((32, 32), Image.NEAREST).save(
            ws.library / "fox" / f"{i}.png")
    lib.scan()
    second = choose_benchmark(lib, per_class=3)
    assert first <= set(second["hash"]) and len(second) == 9
    assert set(second["label"]) == {"cat", "dog", "fox"}
    with pytest.raises(ValueError, match="per_class"):
        choose_benchmark(lib, per_class=0)
