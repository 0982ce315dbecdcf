"""Head swap vs from scratch: the experiment behind the write-up's fine-tuning claim.

The claim: a model whose output layer is swapped for a fresh one and trained
further (:func:`imgcls.training.next_generation`) reaches the from-scratch
run's best validation accuracy in far fewer epochs, without losing accuracy.

* :func:`headswap_experiment` measures it on the zoo sample: generation 2
  trained by head swap and from scratch on exactly the same data and splits,
  over several seeds;
* :func:`summarize_headswap`, :func:`headswap_verdict` and
  :func:`headswap_speed_table` turn its table into numbers;
  :func:`imgcls.experiments.plot_learning_curves` into a slide;
* :func:`read_headswap_benchmark` reads the committed results of
  ``benchmarks/headswap_vs_scratch.py`` into the same shapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.library import Library, assign_splits, choose_benchmark
from imgcls.runs import Run
from imgcls.sample import build_sample, simulate_labelling
from imgcls.training import class_changes, next_generation, train

__all__ = [
    "DEFAULT_LABELLING",
    "headswap_experiment",
    "summarize_headswap",
    "headswap_verdict",
    "headswap_speed_table",
    "read_headswap_benchmark",
]

#: The labelling round of the headline experiment: a new class (zebra, 60
#: images) and 20 more images for the two classes just under the cutoff.
DEFAULT_LABELLING = {"zebra": 60, "sheep": 20, "giraffe": 20}


def _epochs_to_reach(history: pd.DataFrame, target: float | None, metric: str = "val_accuracy") -> float:
    """First (1-based) epoch whose ``metric`` reaches ``target`` (NaN if never)."""
    if target is None or metric not in history or not len(history):
        return float("nan")
    hit = history.loc[history[metric] >= target - 1e-9, "epoch"]
    return float(hit.min()) if len(hit) else float("nan")


def _run_row(run: Run, *, arm: str, seed: int, generation: int) -> dict:
    m = run.metrics
    t, te, be = m.get("training", {}), m.get("test", {}), m.get("benchmark", {})
    return {
        "arm": arm, "seed": seed, "generation": generation, "run_id": run.run_id, "run_path": str(run.path),
        "parent": run.parent, "n_classes": run.num_classes,
        "epochs_trained": t.get("epochs_trained"), "best_epoch": t.get("best_epoch"),
        "wall_time_s": t.get("wall_time_s"), "mean_epoch_time_s": t.get("mean_epoch_time_s"),
        "best_val_accuracy": t.get("best_val_accuracy"),
        "test_accuracy": te.get("accuracy"), "test_n": te.get("n"),
        "benchmark_accuracy": be.get("accuracy"), "benchmark_n": be.get("n"),
    }


def headswap_experiment(
    workspace: str | os.PathLike,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    model: str = "mini_inception",
    image_size: int = 64,
    max_epochs: int | None = None,
    patience: int | None = None,
    labelling: Mapping[str, int] | None = None,
    pool_size: int = 1000,
    batch_size: int = 32,
    cache: bool | str = "auto",
    verbose: int = 0,
    log: Any = None,
) -> pd.DataFrame:
    """Head swap vs from scratch for the zoo sample's second generation.

    1. Build the zoo sample in ``workspace`` (an empty or missing folder).
    2. For each seed, train generation 1 from scratch on the classes over the
       cutoff.
    3. A labelling round grows the library (:func:`imgcls.sample.simulate_labelling`
       with ``labelling``: by default a new class, zebra, with 60 images and
       20 more for sheep and giraffe so they make the cutoff); benchmark images
       are chosen for the new class.
    4. For each seed, train generation 2 twice on exactly the same catalog,
       classes and splits, with the same model, seed, optimiser and stopping
       rule: by head swap from that seed's generation 1
       (:func:`imgcls.training.next_generation`) and from scratch. The arm that goes first
       alternates with the seed, so a slow spell of a shared CPU does not
       always hit the same arm.

    Args:
        workspace: Folder for the sample workspace (created).
        seeds: One repetition per seed.
        model: Registry name of the model.
        image_size: Sample image side and model input size.
        max_epochs: Upper bound on epochs (``train``'s default when None).
        patience: Early-stopping patience (``train``'s default when None).
        labelling: Class -> images moved from the pool into the library.
        pool_size: Unlabelled pool of the sample (must hold the labelling).
        batch_size: Training batch size.
        cache: Keep decoded images in memory (faster epochs): ``"auto"``
            (default, when they fit), ``True`` or ``False`` (see ``train``).
        verbose: Passed to ``train``.
        log: Optional callable taking one string (progress messages).

    Returns:
        One row per trained run: [arm ("generation0", "head_swap",
        "scratch"), seed, generation, run_id, run_path, parent, n_classes,
        epochs_trained, best_epoch, wall_time_s, mean_epoch_time_s,
        best_val_accuracy, test_accuracy, test_n, benchmark_accuracy,
        benchmark_n, epochs_to_scratch_best] where ``epochs_to_scratch_best``
        is, for both generation-1 arms, the first epoch whose validation
        accuracy reaches the from-scratch run's best (same seed; for the
        from-scratch arm it is its best epoch). ``attrs["workspace"]`` is the
        workspace root.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` must be distinct ints >= 0, at least one. Received: seeds={seeds!r}")
    labelling = dict(DEFAULT_LABELLING if labelling is None else labelling)
    say = log if callable(log) else (lambda _msg: None)
    root = Path(os.fspath(workspace)).expanduser()
    say(f"building the zoo sample in {root}")
    ws = build_sample(root, image_size=image_size, pool_size=pool_size, seed=0)
    common = dict(model=model, image_size=image_size, max_epochs=max_epochs, patience=patience,
                  batch_size=batch_size, cache=cache, verbose=verbose)

    rows: list[dict] = []
    gen0: dict[int, Run] = {}
    cat0 = assign_splits(Library(ws).scan())
    for s in seeds:
        say(f"generation 1, seed {s}: training from scratch")
        gen0[s] = train(ws, seed=s, catalog=cat0, **common)
        rows.append(_run_row(gen0[s], arm="generation0", seed=s, generation=0))
        say(f"  -> {_short(rows[-1])}")

    say(f"labelling round: {labelling}")
    simulate_labelling(ws, labelling, seed=0)
    lib = Library(ws)
    choose_benchmark(lib)  # the same share rule every training uses (only classes without one)
    cat1 = assign_splits(lib.scan())

    for i, s in enumerate(seeds):
        order = ("head_swap", "scratch") if i % 2 == 0 else ("scratch", "head_swap")
        runs: dict[str, Run] = {}
        for arm in order:
            say(f"generation 2, seed {s}: {arm}")
            if arm == "head_swap":
                runs[arm] = next_generation(ws, gen0[s], seed=s, catalog=cat1, max_epochs=max_epochs,
                                            patience=patience, batch_size=batch_size, cache=cache,
                                            verbose=verbose)
            else:
                classes = class_changes(ws, gen0[s], catalog=cat1).attrs["classes"]
                runs[arm] = train(ws, seed=s, catalog=cat1, classes=classes, **common)
        target = runs["scratch"].metrics.get("training", {}).get("best_val_accuracy")
        for arm in ("head_swap", "scratch"):
            row = _run_row(runs[arm], arm=arm, seed=s, generation=1)
            row["epochs_to_scratch_best"] = _epochs_to_reach(runs[arm].history, target)
            rows.append(row)
            say(f"  -> {_short(row)}")
    df = pd.DataFrame(rows)
    df.attrs["workspace"] = str(ws.root)
    return df


def _short(row: Mapping[str, Any]) -> str:
    def pct(v):
        return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}%"

    return (f"{row['arm']} seed {row['seed']}: {row['epochs_trained']} epochs (best {row['best_epoch']}), "
            f"{row['wall_time_s']:.0f} s, val {pct(row['best_val_accuracy'])}, test {pct(row['test_accuracy'])}, "
            f"benchmark {pct(row['benchmark_accuracy'])}")


_SUMMARY_METRICS = ("epochs_trained", "best_epoch", "epochs_to_scratch_best", "wall_time_s",
                    "best_val_accuracy", "test_accuracy", "benchmark_accuracy")


def summarize_headswap(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, min and max of each metric per arm.

    Args:
        results: The table from :func:`headswap_experiment`.

    Returns:
        DataFrame indexed by arm with columns ``(metric, statistic)``
        (``statistic`` in mean, std, min, max) and ``n_seeds``.
    """
    if not isinstance(results, pd.DataFrame) or "arm" not in results:
        raise ValueError("`results` must be the DataFrame returned by headswap_experiment().")
    metrics = [m for m in _SUMMARY_METRICS if m in results]
    data = results[["arm", *metrics]].copy()
    data[metrics] = data[metrics].apply(pd.to_numeric, errors="coerce")
    out = data.groupby("arm", sort=False)[metrics].agg(["mean", "std", "min", "max"])
    out["n_seeds"] = results.groupby("arm", sort=False)["seed"].nunique()
    return out


def headswap_verdict(results: pd.DataFrame, *, epoch_ratio: float = 1 / 3,
                     max_test_drop: float = 0.005) -> dict[str, Any]:
    """Does the head swap meet the write-up's claim on this data?

    Two criteria, on means over seeds:

    * speed: the head-swap run reaches the from-scratch run's best
      validation accuracy within ``epoch_ratio`` of the epochs the
      from-scratch run needed to reach it (its best epoch);
    * quality: its test accuracy is lower than the from-scratch run's by at
      most ``max_test_drop`` (0.005 = half a point).

    Args:
        results: The table from :func:`headswap_experiment`.
        epoch_ratio: Required ratio of epochs (head swap / from scratch).
        max_test_drop: Largest allowed drop in test accuracy.

    Returns:
        A JSON-able dict: per-seed ratios, the mean numbers, ``speed_ok``,
        ``quality_ok``, ``claim_holds`` and a one-paragraph ``text``.
        A head-swap run that never reached the target counts as
        ``max_epochs`` epochs (its ``epochs_trained``) for the ratio.
    """
    if not isinstance(results, pd.DataFrame) or "arm" not in results:
        raise ValueError("`results` must be the DataFrame returned by headswap_experiment().")
    hs = results[results["arm"] == "head_swap"].set_index("seed")
    sc = results[results["arm"] == "scratch"].set_index("seed")
    seeds = sorted(set(hs.index) & set(sc.index))
    if not seeds:
        raise ValueError("`results` has no seed with both a head_swap and a scratch run.")
    per_seed = []
    for s in seeds:
        reach = hs.at[s, "epochs_to_scratch_best"]
        reached = bool(pd.notna(reach))
        reach_val = float(reach) if reached else float(hs.at[s, "epochs_trained"])
        scratch_epochs = float(sc.at[s, "best_epoch"])
        per_seed.append({
            "seed": int(s),
            "head_swap_epochs_to_target": reach_val,
            "reached": reached,
            "scratch_epochs_to_best": scratch_epochs,
            "epoch_ratio": reach_val / scratch_epochs if scratch_epochs else float("nan"),
            "head_swap_test": float(hs.at[s, "test_accuracy"]),
            "scratch_test": float(sc.at[s, "test_accuracy"]),
            "test_diff": float(hs.at[s, "test_accuracy"]) - float(sc.at[s, "test_accuracy"]),
            "head_swap_wall_s": float(hs.at[s, "wall_time_s"]),
            "scratch_wall_s": float(sc.at[s, "wall_time_s"]),
        })
    ps = pd.DataFrame(per_seed)
    mean_reach = float(ps["head_swap_epochs_to_target"].mean())
    mean_scratch = float(ps["scratch_epochs_to_best"].mean())
    ratio = mean_reach / mean_scratch if mean_scratch else float("nan")
    test_diff = float(ps["test_diff"].mean())
    speed_ok = bool(ratio <= epoch_ratio + 1e-9 and ps["reached"].all())
    quality_ok = bool(test_diff >= -max_test_drop - 1e-9)
    text = (
        f"Over {len(seeds)} seed(s), the head-swap run reached the from-scratch run's best validation "
        f"accuracy after {mean_reach:.1f} epochs on average, against {mean_scratch:.1f} epochs for the "
        f"from-scratch run to reach it (ratio {ratio:.2f}; target <= {epoch_ratio:.2f})"
        + ("" if ps["reached"].all() else f"; it never reached it in {int((~ps['reached']).sum())} seed(s)")
        + f". Test accuracy: head swap {ps['head_swap_test'].mean():.1%} vs scratch "
        f"{ps['scratch_test'].mean():.1%} ({test_diff * 100:+.1f} points; allowed drop "
        f"{max_test_drop * 100:.1f}). Wall time: {ps['head_swap_wall_s'].mean():.0f} s vs "
        f"{ps['scratch_wall_s'].mean():.0f} s. "
        + ("The claim holds on this data." if speed_ok and quality_ok else
           "The claim does not fully hold on this data: "
           + ", ".join(x for x, ok in (("speed", speed_ok), ("test accuracy", quality_ok)) if not ok)
           + " criterion missed.")
    )
    return {
        "seeds": [int(s) for s in seeds],
        "per_seed": ps.to_dict("records"),
        "mean_head_swap_epochs_to_target": mean_reach,
        "mean_scratch_epochs_to_best": mean_scratch,
        "epoch_ratio": ratio,
        "epoch_ratio_target": epoch_ratio,
        "mean_test_diff": test_diff,
        "max_test_drop": max_test_drop,
        "speed_ok": speed_ok,
        "quality_ok": quality_ok,
        "claim_holds": bool(speed_ok and quality_ok),
        "text": text,
    }


def _curves(results: Any) -> tuple[pd.DataFrame, dict[tuple[str, int], pd.DataFrame]]:
    """(results table, {(arm, seed): history}) from an experiment table or a read benchmark."""
    if isinstance(results, pd.DataFrame):
        if not {"arm", "seed", "run_path"} <= set(results.columns):
            raise ValueError("`results` must be the table from headswap_experiment() or "
                             "the dict from read_headswap_benchmark().")
        hist = {(r["arm"], int(r["seed"])): Run(r["run_path"]).history
                for _, r in results.iterrows() if r["arm"] in ("head_swap", "scratch")}
        return results, hist
    if isinstance(results, Mapping) and {"runs", "curves"} <= set(results):
        hist = {}
        for label, h in results["curves"].items():
            arm, _, seed = str(label).partition("/seed")
            if arm in ("head_swap", "scratch") and seed.isdigit():
                hist[(arm, int(seed))] = h
        return results["runs"], hist
    raise ValueError("`results` must be the table from headswap_experiment() or the dict from "
                     "read_headswap_benchmark().")


def headswap_speed_table(
    results: Any,
    *,
    fractions: Sequence[float] = (0.9, 0.95, 1.0),
    at_epochs: Sequence[int] = (1, 3, 5, 10),
) -> pd.DataFrame:
    """Speed of the two generation-1 arms, less hostage to one lucky epoch.

    "Epochs to reach the from-scratch best" compares against a maximum over
    many noisy validation epochs; with a small validation set one lucky epoch
    sets a target the other arm may never hit. This table adds milder
    targets and the accuracy each arm has after a fixed number of epochs.

    Args:
        results: The :func:`headswap_experiment` table or the dict from
            :func:`read_headswap_benchmark`.
        fractions: Targets as fractions of the from-scratch run's best
            validation accuracy (same seed).
        at_epochs: Epochs at which to read each arm's validation accuracy.

    Returns:
        One row per seed and arm: ``reach_<pct>`` = first epoch whose
        validation accuracy reaches ``pct``% of the from-scratch best (NaN if
        never), ``val_at_<n>`` = validation accuracy after epoch ``n`` (NaN
        if the run stopped earlier), and ``best_val_accuracy``.
    """
    table, hist = _curves(results)
    seeds = sorted({s for _, s in hist})
    rows = []
    for s in seeds:
        if ("scratch", s) not in hist or ("head_swap", s) not in hist:
            continue
        best = float(hist[("scratch", s)]["val_accuracy"].max())
        for arm in ("head_swap", "scratch"):
            h = hist[(arm, s)]
            row: dict[str, Any] = {"seed": s, "arm": arm, "best_val_accuracy": float(h["val_accuracy"].max())}
            for f in fractions:
                row[f"reach_{round(f * 100)}"] = _epochs_to_reach(h, f * best)
            by_epoch = h.set_index("epoch")["val_accuracy"]
            for n in at_epochs:
                row[f"val_at_{n}"] = float(by_epoch.get(n, np.nan))
            rows.append(row)
    return pd.DataFrame(rows)


def read_headswap_benchmark(path: str | os.PathLike) -> dict[str, Any]:
    """Read the JSON written by ``benchmarks/headswap_vs_scratch.py``.

    So a notebook can show the committed headline numbers without re-running
    the experiment.

    Args:
        path: The results file (``benchmarks/results/headswap_vs_scratch.json``).

    Returns:
        ``{"runs": DataFrame (the :func:`headswap_experiment` table without
        run paths; works with :func:`summarize_headswap` and
        :func:`headswap_verdict`), "verdict": dict, "ratios": dict,
        "settings": dict, "curves": {"<arm>/seed<n>": history DataFrame}
        (for :func:`imgcls.experiments.plot_learning_curves`), "total_time_s": float}``.
    """
    import json

    p = Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise ValueError(
            f"No benchmark results at {str(p)!r}. Run `python benchmarks/headswap_vs_scratch.py` "
            "(or pass the path of its JSON output)."
        )
    data = json.loads(p.read_text(encoding="utf-8"))
    runs = pd.DataFrame(data.get("runs", []))
    curves = {
        label: pd.DataFrame({k: v for k, v in c.items() if v is not None})
        for label, c in (data.get("learning_curves") or {}).items()
        if not label.startswith("generation0")
    }
    return {"runs": runs, "verdict": data.get("verdict", {}), "ratios": data.get("ratios", {}),
            "settings": data.get("settings", {}), "curves": curves,
            "total_time_s": data.get("total_time_s")}
