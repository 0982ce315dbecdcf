"""Claim: temperature scaling, fitted on a run's validation split only, cuts the
expected calibration error (ECE) of its confidence by at least half on at least
1,000 labelled images it never saw.

Two libraries, each trained through the public API (the temperature is fitted
by :func:`imgcls.training.train` itself at the end of training, on the run's
validation split, and stored as ``config.json["calibration"]``):

1. **zoo sample**: ``imgcls.sample.build_sample`` (pool of 3,000), the default
   model (``mini_inception``, 64x64) trained from scratch (``--epochs``,
   default 20, patience 5); measured on the pool images whose hidden true
   class (``imgcls.sample.sample_truth``) is one the model knows.
2. **digits**: scikit-learn's ``load_digits`` (1,797 8x8 images) rendered as
   32x32 PNGs; 40% of each class go into the library (one folder per digit),
   the other 60% into ``unlabelled/`` with their labels kept aside; a small
   ``simple_cnn`` (32x32) is trained on the library and measured on the
   held-out 60%.

For each: the raw probabilities (``imgcls.evaluation.predict_scores(...,
raw=True)``) and the calibrated ones (the run's temperature through
``imgcls.core.scores.calibrate``) are scored with
``imgcls.core.calibration.calibration_error`` (the package's buckets, what
``imgcls evaluate`` prints, and the usual 15 equal-width buckets) and
``negative_log_likelihood``. The run's own test split is reported beside (small n).

Usage::

    python benchmarks/bench_calibration.py [--quick] [--epochs 20] [--only sample|digits]

Writes ``benchmarks/results/calibration.json`` (``--quick`` writes only where ``--out`` says).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import load_average, machine_info, result_path, start_benchmark, write_result

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from imgcls.core import open_workspace  # noqa: E402
from imgcls.core.calibration import calibration_error, negative_log_likelihood  # noqa: E402
from imgcls.evaluation import (  # noqa: E402
    calibration_table,
    plot_calibration,
    predict_scores,
    split_rows,
)
from imgcls.sample import build_sample, sample_truth  # noqa: E402
from imgcls.training import train  # noqa: E402

RESULT = result_path("calibration")
TARGET_REDUCTION = 0.5
ECE_BINS = {"package_buckets": None, "equal_width_15": 15}


def measure(run, rows: pd.DataFrame, name: str) -> dict:
    """ECE and NLL of ``run`` on labelled ``rows`` [path, label], before and after its temperature."""
    kept, raw, skipped = predict_scores(run, rows, raw=True)
    index = {c: i for i, c in enumerate(run.classes)}
    y = kept["label"].map(index).to_numpy().astype(int)
    t = run.temperature
    out: dict = {"images": name, "n": int(len(y)), "n_unreadable": int(len(skipped)),
                 "accuracy": float(np.mean(raw.argmax(axis=1) == y)), "temperature": t,
                 "nll_before": negative_log_likelihood(raw, y),
                 "nll_after": negative_log_likelihood(raw, y, temperature=t)}
    for key, bins in ECE_BINS.items():
        kw = {} if bins is None else {"bins": bins}
        before = calibration_error(raw, y, **kw)
        after = calibration_error(raw, y, temperature=t, **kw)
        out[f"ece_{key}"] = {"before": before, "after": after,
                             "reduction": (1 - after / before) if before > 0 else None}
    labels = kept["label"].to_numpy()
    from imgcls.core.scores import calibrate

    fig = plot_calibration(calibration_table(labels, calibrate(raw, t), run.classes),
                           before=calibration_table(labels, raw, run.classes))
    out["finding"] = fig.get_suptitle().replace("\n", " ")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


def run_info(run, seconds: float) -> dict:
    hist = run.history
    return {"run_id": run.run_id, "model": run.model_name, "classes": run.classes, "train_s": round(seconds, 1),
            "epochs_trained": int(len(hist)), "calibration": run.calibration,
            "best_val_accuracy": float(hist["val_accuracy"].max()) if "val_accuracy" in hist else None,
            "n_splits": run.splits["split"].value_counts().to_dict()}


def verdict(block: dict) -> dict:
    held = block["held_out"]
    reductions = [held[f"ece_{k}"]["reduction"] for k in ECE_BINS]
    block["meets_target"] = bool(held["n"] >= 1000 and all(r is not None and r >= TARGET_REDUCTION
                                                            for r in reductions))
    return block


def sample_block(root: Path, *, epochs: int, patience: int, pool: int) -> dict:
    t0 = time.perf_counter()
    ws = build_sample(root / "sample", pool_size=pool)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = train(ws, max_epochs=epochs, patience=patience, seed=0, verbose=0)
    info = run_info(run, time.perf_counter() - t0)
    print(f"sample: trained {run.run_id} in {info['train_s']} s; calibration {run.calibration}", flush=True)
    truth = sample_truth(ws)
    known = truth[truth["label"].isin(run.classes)][["path", "label"]].reset_index(drop=True)
    return verdict({"library": "zoo sample", "sample_build_s": round(build_s, 1), "run": info,
                    "held_out": measure(run, known, "sample pool, classes the model knows"),
                    "test_split": measure(run, split_rows(run, "test"), "the run's test split")})


def digits_block(root: Path, *, epochs: int, patience: int, share: float = 0.4) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    ws = open_workspace(root / "digits", create=True)
    rng = np.random.default_rng(0)
    held: list[tuple[str, str]] = []
    for i, (img, target) in enumerate(zip(digits.images, digits.target)):
        label = f"digit_{int(target)}"
        pixels = (np.asarray(img) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        picture = Image.fromarray(pixels, "L").resize((32, 32), Image.BILINEAR).convert("RGB")
        if rng.random() < share:
            folder = ws.library / label
        else:
            folder = ws.unlabelled / label
            held.append((str(folder / f"{i:04d}.png"), label))
        folder.mkdir(parents=True, exist_ok=True)
        picture.save(folder / f"{i:04d}.png")
    t0 = time.perf_counter()
    run = train(ws, model="simple_cnn", image_size=32, max_epochs=epochs, patience=patience, seed=0, verbose=0)
    info = run_info(run, time.perf_counter() - t0)
    print(f"digits: trained {run.run_id} in {info['train_s']} s; calibration {run.calibration}", flush=True)
    rows = pd.DataFrame(held, columns=["path", "label"])
    rows = rows[rows["label"].isin(run.classes)].reset_index(drop=True)
    return verdict({"library": "scikit-learn digits (8x8 rendered at 32x32)", "n_images": int(len(digits.images)),
                    "n_library": int(len(digits.images) - len(held)), "run": info,
                    "held_out": measure(run, rows, "held-out digits (60% of each class)"),
                    "test_split": measure(run, split_rows(run, "test"), "the run's test split")})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pool of 300, 2 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="max epochs of the sample run (default 20)")
    parser.add_argument("--digits-epochs", type=int, default=None, help="max epochs of the digits run (default 30)")
    parser.add_argument("--patience", type=int, default=5, help="early-stopping patience (default 5)")
    parser.add_argument("--pool", type=int, default=None, help="sample pool size (default 3000)")
    parser.add_argument("--only", choices=["sample", "digits"], default=None, help="measure one library only")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args(argv)
    bench = start_benchmark("calibration", argv)
    epochs = args.epochs or (2 if args.quick else 20)
    digits_epochs = args.digits_epochs or (2 if args.quick else 30)
    pool = args.pool or (300 if args.quick else 3000)
    out = args.out or (None if args.quick else RESULT)
    result: dict = {
        "claim": "temperature scaling fitted on the validation split cuts expected calibration error by "
                 f">= {TARGET_REDUCTION:.0%} on >= 1,000 held-out labelled images",
        "machine": machine_info(load_avg_start=load_average()),
        "quick": bool(args.quick),
        "ece_buckets": {"package_buckets": "(0, .5, .6, .7, .8, .9, 1): what imgcls evaluate reports",
                        "equal_width_15": "15 equal-width buckets (Guo et al. 2017)"},
        "libraries": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench_calibration_") as tmpdir:
        if args.only in (None, "sample"):
            result["libraries"].append(sample_block(Path(tmpdir), epochs=epochs, patience=args.patience,
                                                    pool=pool))
        if args.only in (None, "digits"):
            result["libraries"].append(digits_block(Path(tmpdir), epochs=digits_epochs, patience=args.patience))
    result["meets_target"] = bool(result["libraries"]) and all(b["meets_target"] for b in result["libraries"])
    result["machine"]["load_avg_end"] = load_average()
    for b in result["libraries"]:
        h = b["held_out"]
        print(f"{b['library']}: n={h['n']}, T={h['temperature']}, "
              + ", ".join(f"ECE[{k}] {h[f'ece_{k}']['before']:.3f} -> {h[f'ece_{k}']['after']:.3f}"
                          for k in ECE_BINS)
              + f", NLL {h['nll_before']:.3f} -> {h['nll_after']:.3f}; {h['finding']}")
    if out is not None:
        write_result(result, out, bench, default=str)
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
