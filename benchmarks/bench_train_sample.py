"""Claim: on the zoo sample, the default model trains from scratch to a plateau
on a 2-core CPU in minutes, and its test accuracy is far above the majority-class
baseline measured on the same test split.

Builds the sample workspace (imgcls.sample.build_sample, 64x64 images; the
unlabelled pool is left out because training never reads it) in a temporary
folder, trains DEFAULT_MODEL from scratch with train()'s defaults (early
stopping on val accuracy, patience 10, max 150 epochs) and reports test
accuracy, benchmark-set accuracy, epochs to plateau, epochs trained and wall
time, beside the majority-class baseline on the same splits (the ratio).

The machine load average is recorded: on a shared machine, wall times are only
comparable between runs with similar load.

Run: python benchmarks/bench_train_sample.py [--quick]
  --quick: at most 4 epochs with patience 2 (smoke test, numbers not meaningful).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info, result_path, start_benchmark, write_result

RESULTS = result_path("train_sample")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="at most 4 epochs, patience 2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = ap.parse_args(argv)
    bench = start_benchmark("train_sample", argv)

    from imgcls.models import DEFAULT_MODEL
    from imgcls.sample import build_sample
    from imgcls.training import DEFAULT_MAX_EPOCHS, DEFAULT_PATIENCE, train

    load_before = os.getloadavg()
    max_epochs = 4 if args.quick else DEFAULT_MAX_EPOCHS
    patience = 2 if args.quick else DEFAULT_PATIENCE
    with tempfile.TemporaryDirectory(prefix="bench_train_sample_") as tmp:
        t0 = time.perf_counter()
        ws = build_sample(Path(tmp) / "zoo", pool_size=0, seed=args.seed)
        build_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        run = train(ws, model=DEFAULT_MODEL, seed=args.seed, max_epochs=max_epochs, patience=patience,
                    verbose=args.verbose)
        train_wall = time.perf_counter() - t0

        # Read everything now: the workspace is deleted with the temporary folder.
        m, cfg, classes = run.metrics, dict(run.config), list(run.classes)
        splits = run.splits
        train_labels = splits[splits["split"] == "train"]["label"]
        majority = train_labels.value_counts().idxmax()
        baseline = {}
        for split in ("test", "benchmark"):
            labels = splits[(splits["split"] == split) & splits["label"].isin(classes)]["label"]
            baseline[split] = float((labels == majority).mean()) if len(labels) else None
        hist = run.history
        load_after = os.getloadavg()

    def ratio(a, b):
        return None if a is None or not b else a / b

    result = {
        "claim": "default model trains from scratch to a plateau on CPU in minutes, far above the majority baseline",
        "quick": args.quick,
        "model": cfg["model"],
        "input_shape": cfg["input_shape"],
        "classes": classes,
        "images_per_split": m["data"],
        "settings": {k: cfg[k] for k in ("seed", "batch_size", "max_epochs", "patience", "min_delta",
                                                 "monitor", "cutoff")}
        | {"learning_rate": cfg["optimizer"]["learning_rate"], "augmentation": cfg["augmentation"]},
        "test_accuracy": m["test"]["accuracy"],
        "test_top_k_accuracy": m["test"]["top_k_accuracy"],
        "test_n": m["test"]["n"],
        "benchmark_accuracy": m["benchmark"]["accuracy"],
        "benchmark_n": m["benchmark"]["n"],
        "best_val_accuracy": m["training"]["best_val_accuracy"],
        "epochs_to_plateau": m["training"]["epochs_to_plateau"],
        "epochs_trained": m["training"]["epochs_trained"],
        "stopped_early": m["training"]["stopped_early"],
        "wall_time_s": train_wall,
        "train_wall_time_in_metrics_s": m["training"]["wall_time_s"],
        "mean_epoch_time_s": m["training"]["mean_epoch_time_s"],
        "first_epoch_time_s": float(hist["epoch_time_s"].iloc[0]),
        "median_epoch_time_s": float(hist["epoch_time_s"].median()),
        "build_sample_s": build_s,
        "majority_class": majority,
        "majority_baseline_test_accuracy": baseline["test"],
        "majority_baseline_benchmark_accuracy": baseline["benchmark"],
        "test_accuracy_over_baseline": ratio(m["test"]["accuracy"], baseline["test"]),
        "benchmark_accuracy_over_baseline": ratio(m["benchmark"]["accuracy"], baseline["benchmark"]),
        "history": {
            "epoch": hist["epoch"].tolist(),
            "val_accuracy": [round(float(v), 4) for v in hist["val_accuracy"]],
            "accuracy": [round(float(v), 4) for v in hist["accuracy"]],
            "epoch_time_s": [round(float(v), 3) for v in hist["epoch_time_s"]],
        },
        "machine": machine_info(
            cpus=os.cpu_count(),
            loadavg_before=[round(v, 2) for v in load_before],
            loadavg_after=[round(v, 2) for v in load_after],
        ),
        "versions": cfg["versions"],
    }
    write_result(result, args.output, bench)
    print(json.dumps({k: v for k, v in result.items() if k not in ("history", "classes", "versions")}, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
