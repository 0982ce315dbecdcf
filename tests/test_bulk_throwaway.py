"""Tests for imgcls.bulk.throwaway: the throw-away run's candidates for classes under the cutoff."""

from __future__ import annotations

import os

import numpy as np
from bulk_runs import colour_run, solid, write_images

from imgcls import bulk
from imgcls.core import open_workspace


def test_throwaway_candidates_target_only_classes_under_the_cutoff(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    run = colour_run(ws)
    for cls, n in {"antelope": 42, "cow": 40, "zebra": 36}.items():  # only zebra is under 40
        write_images(ws.library / cls, n, seed=len(cls), nested=False, size=16)
    pool = tmp_path / "pool"
    blue = [solid(pool / f"blue_{i}.png", (40, 90 + 10 * i, 230)) for i in range(4)]      # zebra first
    green = [solid(pool / "b" / f"green_{i}.png", (30, 220, 120 + 20 * i)) for i in range(3)]  # cow, then zebra
    others = [solid(pool / f"red_{i}.png", (230, 120, 40)) for i in range(3)]               # antelope, then cow
    others.append(solid(pool / "greenish_red.png", (150, 230, 20)))                        # cow, then antelope
    (pool / "b" / "not_an_image.jpg").write_text("<html>404</html>")

    cands = bulk.throwaway_candidates(ws, run, source=pool, batch_size=4, progress=False)
    assert cands.attrs["targets"] == ["zebra"] and cands.attrs["n_identified"] == 11
    assert (cands["candidate"] == "zebra").all()
    firsts, seconds = cands[cands["choice"] == 1], cands[cands["choice"] == 2]
    assert sorted(firsts["path"]) == sorted(map(str, blue)) and (firsts["top1_class"] == "zebra").all()
    assert sorted(seconds["path"]) == sorted(map(str, green))
    assert (seconds["top1_class"] == "cow").all() and (seconds["top2_class"] == "zebra").all()
    np.testing.assert_array_equal(firsts["candidate_score"], firsts["top1_score"])
    np.testing.assert_array_equal(seconds["candidate_score"], seconds["top2_score"])
    assert cands["choice"].tolist() == [1] * 4 + [2] * 3  # first choices first, each best score first
    assert firsts["candidate_score"].is_monotonic_decreasing and seconds["candidate_score"].is_monotonic_decreasing
    assert not set(map(str, others)) & set(cands["path"])
    assert len(bulk.load_errors(cands.attrs["results_path"])) == 1  # the bad file is reported

    # A candidate filed since (e.g. by an earlier review) is not offered again,
    # and nothing is identified twice.
    filed = ws.library / "zebra" / "filed.png"
    os.rename(blue[0], filed)
    again = bulk.throwaway_candidates(ws, run, source=pool, batch_size=4, progress=False)
    assert str(blue[0]) not in set(again["path"]) and len(again) == 6 and again.attrs["n_identified"] == 10
    assert len(bulk.load_results(again.attrs["results_path"])) == 11

    # With the usual cutoff lowered to 30 every class makes it: no targets, no candidates.
    none = bulk.throwaway_candidates(ws, run, source=pool, cutoff=30, progress=False)
    assert none.attrs["targets"] == [] and len(none) == 0
