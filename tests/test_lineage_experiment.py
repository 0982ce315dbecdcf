"""Tests for the lineage experiment: the growth plan, the per-generation table, the verdict, the figures,
and the ``--quick`` mode end to end (through the API and the benchmark script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from imgcls import experiments as ex
from imgcls.runs import Run

ROOT = Path(__file__).resolve().parents[1]


# =========================================================================== the plan
def test_lineage_plan_grows_the_library_the_way_a_project_does():
    plan = ex.lineage_plan(**ex.REDUCED_LINEAGE["plan"])
    assert list(plan.columns) == ex.PLAN_COLUMNS
    per_gen = plan.groupby("generation")
    assert list(per_gen["total"].sum()) == [1200, 1560, 1920, 2280, 2640, 3000]
    assert list(per_gen["added"].sum()) == [1200, 360, 360, 360, 360, 360]
    assert list(per_gen["class"].count()) == [6, 7, 7, 8, 8, 9]  # a new class in generations 2, 4, 6
    new = plan[plan["new"] & (plan["generation"] > 1)]
    assert list(new["generation"]) == [2, 4, 6] and set(new["added"]) == {120}
    assert (plan.loc[plan["generation"] == 1, "total"] >= 40).all()
    assert (plan.loc[~plan["new"], "added"] >= 0).all()
    # totals are running sums of what each generation adds
    wide = plan.pivot(index="class", columns="generation", values="added").fillna(0).cumsum(axis=1)
    totals = plan.pivot(index="class", columns="generation", values="total")
    assert (wide == totals.fillna(0)).all().all()
    assert plan.attrs["seed"] == 0 and plan.attrs["cutoff"] == 40
    pd.testing.assert_frame_equal(plan, ex.lineage_plan(**ex.REDUCED_LINEAGE["plan"]))  # deterministic

    quick = ex.lineage_plan(**ex.QUICK_LINEAGE["plan"])
    assert list(quick.groupby("generation")["total"].sum()) == [150, 240, 330]


def test_lineage_plan_refuses_inconsistent_numbers():
    with pytest.raises(ValueError, match="new class"):
        ex.lineage_plan(generations=3, initial_images=300, initial_classes=3, final_images=340,
                        new_classes={2: 1}, new_class_images=100)
    with pytest.raises(ValueError, match="animal-mnist has 10"):
        ex.lineage_plan(generations=3, initial_classes=8, new_classes={2: 2, 3: 1})
    with pytest.raises(ValueError, match="`final_images` must be"):
        ex.lineage_plan(initial_images=1200, final_images=1000)
    with pytest.raises(ValueError, match="more than the 1000 images"):
        ex.lineage_plan(generations=2, initial_classes=2, initial_images=100, final_images=3000)


# =========================================================================== the table
def _rows(hs_epochs, sc_epochs, hs_test, sc_test, *, seeds=(0, 1), cpu=True):
    """Hand-made records: generation 1 shared, then both arms per generation."""
    rows = []
    for s in seeds:
        for g, (he, se, ht, st) in enumerate(zip(hs_epochs, sc_epochs, hs_test, sc_test), start=1):
            for arm, e, t in (("head_swap", he, ht), ("scratch", se, st)):
                rows.append({"generation": g, "arm": arm, "seed": s, "run_id": f"{arm}-{g}-{s}",
                             "method": "scratch" if g == 1 or arm == "scratch" else "head_swap",
                             "shared": g == 1, "n_images": 100 * g + 50, "n_classes": 3,
                             "epochs_trained": e + 10, "best_epoch": e, "test_accuracy": t + 0.01 * s,
                             "benchmark_accuracy": t, "wall_time_s": 2.0 * (e + 10),
                             "cpu_time_s": (e + 10) * 1.5 if cpu else None, "run_path": f"/x/{arm}-{g}-{s}"})
    return rows


def test_lineage_table_columns_and_cumulative_compute():
    rows = _rows([30, 6, 5], [30, 40, 42], [0.8, 0.9, 0.92], [0.8, 0.85, 0.9])
    table = ex.lineage_table(rows[::-1])  # any order in
    assert list(table.columns) == ex.LINEAGE_COLUMNS + ["run_path"]
    hs = table[(table["arm"] == "head_swap") & (table["seed"] == 0)]
    assert list(hs["generation"]) == [1, 2, 3]
    assert list(hs["images_added"]) == [150, 100, 100]
    assert list(hs["cum_epochs"]) == [40, 56, 71]
    assert list(hs["cum_wall_time_s"]) == [80.0, 112.0, 142.0]
    assert list(hs["cum_cpu_time_s"]) == pytest.approx([60.0, 84.0, 106.5])
    sc = table[(table["arm"] == "scratch") & (table["seed"] == 1)]
    assert list(sc["cum_epochs"]) == [40, 90, 142]
    assert sc["cum_cpu_time_s"].iloc[-1] == pytest.approx(1.5 * 142)
    # a missing value stops the running sum there (no silent undercount)
    rows[1]["cpu_time_s"] = None  # scratch, generation 1, seed 0
    t2 = ex.lineage_table(rows)
    sc0 = t2[(t2["arm"] == "scratch") & (t2["seed"] == 0)]
    assert sc0["cum_cpu_time_s"].isna().all()
    with pytest.raises(ValueError, match="more than one row"):
        ex.lineage_table(rows + rows[:1])
    with pytest.raises(ValueError, match="Missing"):
        ex.lineage_table([{"generation": 1, "arm": "scratch"}])


def test_summarize_lineage_means_over_seeds():
    table = ex.lineage_table(_rows([30, 6, 5], [30, 40, 42], [0.8, 0.9, 0.92], [0.8, 0.85, 0.9]))
    summary = ex.summarize_lineage(table)
    assert summary.loc[(3, "head_swap"), ("test_accuracy", "mean")] == pytest.approx(0.925)
    assert summary.loc[(3, "head_swap"), ("test_accuracy", "min")] == pytest.approx(0.92)
    assert summary.loc[(2, "scratch"), ("best_epoch", "mean")] == 40
    assert int(np.ravel(summary.loc[(1, "scratch"), "n_seeds"])[0]) == 2


def test_lineage_verdict_by_hand():
    # generations 4 and 5: head swap 10 vs 40 epochs (0.25), test +1 point; compute well under half
    table = ex.lineage_table(_rows([40, 15, 12, 10, 10], [40, 40, 40, 40, 40],
                                   [0.8, 0.85, 0.9, 0.93, 0.94], [0.8, 0.84, 0.9, 0.92, 0.93]))
    v = ex.lineage_verdict(table)
    assert v["judged_generations"] == [4, 5]
    assert v["speed_ok"] and v["quality_ok"]
    g4 = next(r for r in v["per_generation"] if r["generation"] == 4)
    assert g4["best_epoch_ratio"] == pytest.approx(0.25)
    assert g4["test_diff"] == pytest.approx(0.01)
    # cpu = 1.5 * (epochs + 10): head swap 75 + 37.5 + 33 + 30 + 30 = 205.5; scratch 5 * 75 = 375
    assert v["compute_basis"] == "cpu_time_s"
    assert v["compute_ratio"] == pytest.approx(205.5 / 375)
    assert not v["compute_ok"] and not v["claim_holds"]
    assert "missed: compute" in v["text"] and "Held: speed, test accuracy" in v["text"]
    assert v["pooled"]["best_epoch_ratio"] == pytest.approx(0.25)
    json.dumps(v)  # JSON-able
    # a slower head swap in generation 5 breaks the speed criterion; a looser compute target passes
    table2 = ex.lineage_table(_rows([40, 15, 12, 10, 20], [40, 40, 40, 40, 40],
                                    [0.8, 0.85, 0.9, 0.93, 0.94], [0.8, 0.84, 0.9, 0.92, 0.95]))
    v2 = ex.lineage_verdict(table2, compute_ratio=0.6)
    assert not v2["speed_ok"] and not v2["quality_ok"] and v2["compute_ok"]
    # no CPU times: wall time is the basis
    assert ex.lineage_verdict(ex.lineage_table(_rows([40, 10], [40, 40], [0.8, 0.9], [0.8, 0.9], cpu=False)),
                              from_generation=2)["compute_basis"] == "wall_time_s"
    with pytest.raises(ValueError, match="both arms"):
        ex.lineage_verdict(table[table["arm"] == "scratch"])


def test_lineage_plots_return_slides_with_findings():
    from matplotlib.figure import Figure

    table = ex.lineage_table(_rows([40, 15, 12, 10, 10], [40, 40, 40, 40, 40],
                                   [0.8, 0.85, 0.9, 0.93, 0.94], [0.8, 0.84, 0.9, 0.92, 0.93]))
    epochs = ex.plot_lineage_epochs(table)
    accuracy = ex.plot_lineage_accuracy(table)
    compute = ex.plot_lineage_compute(table)
    for fig in (epochs, accuracy, compute):
        assert isinstance(fig, Figure)
        w, h = fig.get_size_inches()
        assert w / h == pytest.approx(16 / 9, rel=0.01)
    assert epochs.get_suptitle().replace("\n", " ") == (
        "From generation 4 on, head swap plateaus after 10 epochs, from scratch after 40 (0.25x)")
    assert accuracy.get_suptitle().replace("\n", " ").startswith(
        "From generation 4 on, head swap's test accuracy is 1.0 points above from scratch's")
    assert compute.get_suptitle().replace("\n", " ") == (
        "Over 5 generations the head-swap lineage used 55% of the CPU time of training every generation "
        "from scratch")
    subtitle = epochs.axes[0].get_title(loc="left").replace("\n", " ")
    assert "n = 2 seeds x 5 generations" in subtitle
    # the write-up's numbers are drawn as reference lines
    levels = {round(line.get_ydata()[0], 2) for line in epochs.axes[0].get_lines() if line.get_linestyle() == ":"}
    assert {120, 20} <= levels
    levels = {round(line.get_ydata()[0], 2) for line in accuracy.axes[0].get_lines()
              if line.get_linestyle() == ":"}
    assert {0.93, 0.99} <= levels
    assert len(accuracy.axes) == 2 and len(compute.axes) == 2
    with pytest.raises(ValueError, match="lineage_experiment"):
        ex.plot_lineage_epochs(pd.DataFrame({"x": [1]}))


# =========================================================================== --quick end to end
def _check_quick_table(table: pd.DataFrame) -> None:
    assert list(table.columns[:len(ex.LINEAGE_COLUMNS)]) == ex.LINEAGE_COLUMNS
    assert len(table) == 6  # 3 generations x 2 arms x 1 seed
    gen1 = table[table["generation"] == 1]
    assert gen1["shared"].all() and gen1["run_id"].nunique() == 1
    hs = table[table["arm"] == "head_swap"].set_index("generation")
    sc = table[table["arm"] == "scratch"].set_index("generation")
    assert hs.at[2, "parent"] == hs.at[1, "run_id"] and hs.at[3, "parent"] == hs.at[2, "run_id"]
    assert list(hs["method"]) == ["scratch", "head_swap", "head_swap"]
    assert sc.loc[[2, 3], "parent"].isna().all() and (sc["method"] == "scratch").all()
    # the same data in both arms: images, classes and split sizes
    for col in ("n_images", "n_classes", "n_train", "n_val", "n_test", "n_benchmark", "classes_added"):
        assert list(hs[col]) == list(sc[col]), col
    assert list(hs["n_images"]) == [150, 240, 330] and list(hs["n_classes"]) == [3, 4, 4]
    assert hs.at[2, "classes_added"] != "" and hs.at[3, "classes_added"] == ""
    assert (table["epochs_trained"] <= 2).all() and (table["cpu_time_s"] > 0).all()
    assert np.allclose(hs["cum_cpu_time_s"], hs["cpu_time_s"].cumsum())


@pytest.mark.slow  # trains 5 small models
def test_quick_lineage_experiment_through_the_api(tmp_path):
    table = ex.lineage_experiment(tmp_path / "ws", **ex.QUICK_LINEAGE)
    _check_quick_table(table)
    # each generation's runs trained on the same catalog snapshot
    for g in (2, 3):
        rows = table[table["generation"] == g]
        snaps = [Run(p).splits.sort_values("hash")[["hash", "label", "split"]].reset_index(drop=True)
                 for p in rows["run_path"]]
        pd.testing.assert_frame_equal(snaps[0], snaps[1])
    # the benchmark set is fixed: a later generation keeps every earlier benchmark image
    bench = {g: set(Run(p).splits.query("split == 'benchmark'")["hash"])
             for g, p in table[table["arm"] == "scratch"].set_index("generation")["run_path"].items()}
    assert bench[1] <= bench[2] <= bench[3] and bench[1] < bench[2]
    for plot in (ex.plot_lineage_epochs, ex.plot_lineage_accuracy, ex.plot_lineage_compute):
        assert plot(table).get_suptitle()
    with pytest.raises(ValueError, match="already holds images"):
        ex.lineage_experiment(tmp_path / "ws", **ex.QUICK_LINEAGE)


@pytest.mark.slow  # trains 5 small models in a subprocess
def test_bench_lineage_quick_flag(tmp_path):
    out = tmp_path / "lineage.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_lineage.py"), "--quick",
                           "--workspace", str(tmp_path / "ws"), "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["quick"] and data["configuration"] == "quick"
    assert {"verdict", "summary", "plan", "runs", "learning_curves", "figures", "provenance"} <= set(data)
    assert all(Path(p).is_file() for p in data["figures"].values())
    read = ex.read_lineage_benchmark(out)
    _check_quick_table(read["table"])
    assert read["verdict"]["judged_generations"] == []  # 3 generations: nothing from generation 4 on to judge
    assert not read["verdict"]["claim_holds"]
    assert ex.lineage_verdict(read["table"])["text"] == data["verdict"]["text"]
    assert ex.plot_lineage_epochs(read["table"]).get_suptitle()
