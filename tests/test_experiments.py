"""Tests for imgcls.experiments: the bake-off, and the head-swap experiment's bookkeeping and figures."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls import experiments as ex
from imgcls.core import open_workspace
from imgcls.training import train

COLOURS = {"blue": (40, 40, 210), "green": (40, 200, 40), "red": (210, 40, 40)}


@pytest.fixture(scope="module")
def trained_ws(tmp_path_factory):
    """3 colour classes x 20 noisy PNGs of 32x32 pixels and a 1-epoch simple_cnn run."""
    ws = open_workspace(tmp_path_factory.mktemp("experiments") / "ws", cutoff=10)
    rng = np.random.default_rng(0)
    for label, colour in COLOURS.items():
        folder = ws.library / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(20):
            pixels = np.asarray(colour)[None, None] + rng.normal(0, 25, (32, 32, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{label}_{i:02d}.png")
    run = train(ws, model="simple_cnn", image_size=32, max_epochs=1, seed=0, verbose=0)
    return ws, run.run_id


# =========================================================================== bake-off
@pytest.mark.slow  # trains models
def test_bakeoff_table_and_plot(trained_ws):
    ws, _ = trained_ws
    table = ex.bakeoff(ws, ["simple_cnn"], epochs=1, image_size=32, batch_size=16, timing_seconds=0.05,
                       augmentation=False, verbose=0)
    assert list(table.columns) == ex.BAKEOFF_COLUMNS
    row = table.iloc[0]
    assert row["model"] == "simple_cnn" and row["input_size"] == "32x32" and row["params"] > 0
    assert 0 <= row["val_accuracy"] <= 1 and row["mean_epoch_time_s"] > 0
    assert row["images_per_s_batch32"] > 0 and row["images_per_s_batch1"] > 0
    assert table.attrs["n_train"] > 0 and table.attrs["n_val"] > 0
    assert table.attrs["classes"] == ["blue", "green", "red"]
    fig = ex.plot_bakeoff(table)
    assert len(fig.axes) == 3
    assert fig.get_suptitle().startswith("simple_cnn: ")  # one model: its accuracy and speed
    w, h = fig.get_size_inches()
    assert w / h == pytest.approx(16 / 9, rel=0.01)
    with pytest.raises(ValueError, match="Unknown model name"):
        ex.bakeoff(ws, ["nope"])


def test_plot_bakeoff_states_the_most_accurate_and_the_fastest():
    table = pd.DataFrame({"model": ["a", "b"], "epochs": [3, 3], "val_accuracy": [0.81, 0.6],
                          "images_per_s_batch1": [100.0, 2400.0], "images_per_s_batch32": [900.0, 9000.0],
                          "mean_epoch_time_s": [4.0, 1.0]})
    title = ex.plot_bakeoff(table).get_suptitle().replace("\n", " ")
    assert title == "a is the most accurate at 81%, b the fastest at 2,400 images/s"
    with pytest.raises(ValueError, match="non-empty table"):
        ex.plot_bakeoff(table.iloc[:0])


# =========================================================================== head swap vs scratch
def _fake_results():
    rows = []
    for seed, (hs_reach, sc_best, hs_test, sc_test) in enumerate([(4, 15, 0.90, 0.90), (5, 12, 0.88, 0.89)]):
        rows.append({"arm": "generation0", "seed": seed, "best_epoch": 20, "epochs_trained": 30,
                     "wall_time_s": 100.0, "best_val_accuracy": 0.9, "test_accuracy": 0.9,
                     "benchmark_accuracy": 0.9, "epochs_to_scratch_best": np.nan})
        rows.append({"arm": "head_swap", "seed": seed, "best_epoch": 8, "epochs_trained": 18,
                     "wall_time_s": 50.0, "best_val_accuracy": 0.93, "test_accuracy": hs_test,
                     "benchmark_accuracy": 0.9, "epochs_to_scratch_best": hs_reach})
        rows.append({"arm": "scratch", "seed": seed, "best_epoch": sc_best, "epochs_trained": sc_best + 10,
                     "wall_time_s": 120.0, "best_val_accuracy": 0.91, "test_accuracy": sc_test,
                     "benchmark_accuracy": 0.9, "epochs_to_scratch_best": sc_best})
    return pd.DataFrame(rows)


def test_headswap_verdict_by_hand():
    v = ex.headswap_verdict(_fake_results())
    assert v["mean_head_swap_epochs_to_target"] == pytest.approx(4.5)
    assert v["mean_scratch_epochs_to_best"] == pytest.approx(13.5)
    assert v["epoch_ratio"] == pytest.approx(1 / 3)
    assert v["mean_test_diff"] == pytest.approx(-0.005)
    assert v["speed_ok"] and v["quality_ok"] and v["claim_holds"]
    strict = ex.headswap_verdict(_fake_results(), max_test_drop=0.004)
    assert not strict["quality_ok"] and "test accuracy criterion missed" in strict["text"]
    never = _fake_results()
    never.loc[never["arm"] == "head_swap", "epochs_to_scratch_best"] = np.nan
    assert not ex.headswap_verdict(never)["speed_ok"]


def test_summarize_headswap():
    s = ex.summarize_headswap(_fake_results())
    assert s.loc["scratch", ("best_epoch", "mean")] == pytest.approx(13.5)
    assert s.loc["scratch", ("best_epoch", "std")] == pytest.approx(np.std([15, 12], ddof=1))
    assert s.loc["head_swap", ("test_accuracy", "min")] == pytest.approx(0.88)
    assert s.loc["head_swap", "n_seeds"].item() == 2


@pytest.mark.slow  # trains models
def test_plot_learning_curves(trained_ws):
    ws, run_id = trained_ws
    fig = ex.plot_learning_curves({"parent": run_id}, workspace=ws)
    w, h = fig.get_size_inches()
    assert w / h == pytest.approx(16 / 9, rel=0.01)
    assert fig.axes[0].get_legend_handles_labels()[1] == ["parent"]


def test_read_headswap_benchmark_feeds_the_summaries(tmp_path):
    import json

    res = _fake_results()
    val = {"head_swap": [0.85, 0.9, 0.88], "scratch": [0.5, 0.8, 0.9], "generation0": [0.4, 0.5, 0.6]}
    curves = {f"{r.arm}/seed{r.seed}": {"epoch": [1, 2, 3], "val_accuracy": val[r.arm], "accuracy": None}
              for r in res.itertuples()}
    path = tmp_path / "headswap_vs_scratch.json"
    path.write_text(json.dumps({"runs": res.to_dict("records"), "verdict": {"claim_holds": True},
                                "learning_curves": curves, "total_time_s": 12.0}, default=float))
    bench = ex.read_headswap_benchmark(path)
    assert ex.headswap_verdict(bench["runs"])["epoch_ratio"] == pytest.approx(1 / 3)
    assert sorted(bench["curves"]) == ["head_swap/seed0", "head_swap/seed1", "scratch/seed0", "scratch/seed1"]
    fig = ex.plot_learning_curves(bench)
    assert fig.get_suptitle().replace("\n", " ") == "Head swap reaches the from-scratch best in 4 epochs instead of 14"
    speed = ex.headswap_speed_table(bench, fractions=(0.9, 1.0), at_epochs=(1, 5)).set_index(["seed", "arm"])
    # Target: the scratch best, 0.9 (90% of it: 0.81).
    assert speed.loc[(0, "head_swap"), ["reach_90", "reach_100", "val_at_1"]].tolist() == [1, 2, 0.85]
    assert speed.loc[(1, "scratch"), ["reach_90", "reach_100", "val_at_1"]].tolist() == [3, 3, 0.5]
    assert speed["val_at_5"].isna().all()
    with pytest.raises(ValueError, match="No benchmark results"):
        ex.read_headswap_benchmark(tmp_path / "missing.json")
