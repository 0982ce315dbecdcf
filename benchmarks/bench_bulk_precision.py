"""Claim (measured, no fixed target): how far bulk-identification scores can be
trusted — precision of the accepted predictions at several confidence
thresholds, on the zoo sample's unlabelled pool against its hidden true labels.

Steps, all through the public API:

1. ``imgcls.sample.build_sample`` (library of 9 folders + unknown/, pool of
   3,000 images with 2 bad files);
2. ``imgcls.training.train`` the default model (``mini_inception``, 64x64)
   from scratch, briefly (``--epochs``, default 20, patience 5);
3. ``imgcls.bulk.identify`` the pool with that run;
4. ``imgcls.bulk.precision_at_thresholds`` against
   ``imgcls.sample.sample_truth``, for all pool images and for those whose
   true class the model was trained on (the pool also holds classes under the
   cutoff or only in unknown/, which no prediction can get right).

Usage::

    python benchmarks/bench_bulk_precision.py [--quick] [--epochs 20]

Writes ``benchmarks/results/bulk_precision.json`` (``--quick`` writes only
where ``--out`` says).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import load_average, machine_info, result_path, start_benchmark, write_result

import pandas as pd  # noqa: E402

from imgcls import bulk as bulk  # noqa: E402
from imgcls.sample import build_sample, sample_truth  # noqa: E402
from imgcls.training import train  # noqa: E402

RESULT = result_path("bulk_precision")
THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pool of 300, 2 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="max epochs (default 20)")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--pool", type=int, default=None, help="pool size (default 3000)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args(argv)
    bench = start_benchmark("bulk_precision", argv)
    epochs = args.epochs or (2 if args.quick else 20)
    pool = args.pool or (300 if args.quick else 3000)
    out = args.out or (None if args.quick else RESULT)

    result: dict = {
        "claim": "precision of accepted bulk predictions at confidence thresholds (zoo sample pool)",
        "machine": machine_info(load_avg_start=load_average()),
        "quick": bool(args.quick),
    }
    with tempfile.TemporaryDirectory(prefix="bench_bulk_prec_") as tmpdir:
        t0 = time.perf_counter()
        ws = build_sample(Path(tmpdir) / "sample", pool_size=pool)
        result["sample_build_s"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        run = train(ws, max_epochs=epochs, patience=args.patience, seed=0, verbose=0)
        result["train_s"] = round(time.perf_counter() - t0, 1)
        hist = run.history
        result["run"] = {
            "run_id": run.run_id,
            "model": run.model_name,
            "classes": run.classes,
            "epochs_trained": int(len(hist)),
            "max_epochs": epochs,
            "best_val_accuracy": float(hist["val_accuracy"].max()) if "val_accuracy" in hist else None,
            "metrics": run.metrics,
        }
        print(f"trained {run.run_id}: {len(hist)} epochs in {result['train_s']} s, classes {run.classes}",
              flush=True)

        t0 = time.perf_counter()
        results = bulk.identify(ws, run=run, progress=False)
        seconds = time.perf_counter() - t0
        errors = bulk.load_errors(results.attrs["results_path"])
        truth = sample_truth(ws)
        known = truth[truth["label"].isin(run.classes)]
        table_all = bulk.precision_at_thresholds(results, truth, thresholds=THRESHOLDS)
        table_known = bulk.precision_at_thresholds(results, known, thresholds=THRESHOLDS)
        labelled = truth[truth["label"] != ""]
        result["identify"] = {
            "n_images": int(len(results)),
            "n_errors": int(len(errors)),
            "errors": errors[["relpath", "reason"]].to_dict(orient="records"),
            "seconds": round(seconds, 2),
            "images_per_s": len(results) / seconds,
        }
        result["pool_true_classes"] = labelled["label"].value_counts().sort_index().to_dict()
        result["precision_all"] = table_all.to_dict(orient="records")
        result["precision_known_classes"] = table_known.to_dict(orient="records")
        # What the filters see on this pool (for the write-up's uses).
        result["top1_class_counts"] = results["top1_class"].value_counts().sort_index().to_dict()
        merged = results.merge(truth[["path", "label"]], on="path", how="left")
        unnamed = merged[~merged["label"].isin(run.classes) & (merged["label"] != "")]
        result["predicted_for_untrained_true_classes"] = {
            str(k): v for k, v in
            unnamed.groupby("label")["top1_class"].agg(lambda s: s.value_counts().head(3).to_dict()).items()
        }
    result["machine"]["load_avg_end"] = load_average()
    with pd.option_context("display.width", 120):
        print("all pool images with a true label:")
        print(table_all.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("pool images of classes the model was trained on:")
        print(table_known.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if out is not None:
        write_result(result, out, bench, default=str)
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
