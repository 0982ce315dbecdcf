"""Tests for imgcls.bulk.precision on a hand-made results table (no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bulk_runs import results_table

from imgcls import bulk


def test_precision_at_thresholds():
    t = results_table()
    truth = pd.DataFrame({
        "path": t["path"],
        "label": ["zebra", "antelope", "cow", "zebra", "", "cow", "antelope"],  # e has no label
    })
    out = bulk.precision_at_thresholds(t, truth, thresholds=[0.0, 0.5, 0.9])
    assert list(out.columns) == ["threshold", "n_accepted", "share", "n_correct", "precision"]
    assert out["n_accepted"].tolist() == [6, 5, 2]
    assert out["n_correct"].tolist() == [4, 3, 1]
    np.testing.assert_allclose(out["precision"], [4 / 6, 3 / 5, 1 / 2])
    np.testing.assert_allclose(out["share"], [1.0, 5 / 6, 2 / 6])
    by_rel = bulk.precision_at_thresholds(t, truth.assign(relpath=t["relpath"]).drop(columns="path"),
                                          thresholds=[0.0, 0.5, 0.9])
    pd.testing.assert_frame_equal(by_rel, out)
    assert np.isnan(bulk.precision_at_thresholds(t, truth, thresholds=[1.0])["precision"].iloc[0])
