"""Claim: with the openvino runtime, bulk identification is >= 2x faster end to end and serving p50 >= 1.5x lower.

End to end through the product's own entry points, the runtime switch being
the only difference:

* **Bulk**: :func:`imgcls.bulk.identify` over the sample's pool (decoding,
  calibration, top-k, Parquet parts: everything), ``runtime="keras"`` against
  ``runtime="openvino"`` (the run's int8 export, throughput mode). Wall time of
  the whole call, loading the model included.
* **Serving**: :class:`imgcls.serving.Predictor` (logging to SQLite on), one
  request at a time with the image's bytes, as an HTTP upload is handled;
  wall time of each ``predict`` call; p50 and p90. The openvino predictor runs
  the int8 export in latency mode with a static batch of one.

Two models:

1. **Inception-v4 at 299** (the write-up's model; the claim is judged here), on
   the zoo sample built at 299 px (decode cost of real-size images), its weights
   random (speed does not depend on them; agreement is measured on trained models
   by ``bench_runtime.py``); exported int8 with :func:`imgcls.export.export_run`
   (``force=True``: random weights have near-tied outputs, so its parity report
   is recorded, not required).
2. **The sample's default model** (``mini_inception`` at 64 px, trained briefly)
   on the whole 3,000-image pool: context, where the model is so small that
   decoding dominates; top-1 agreement of the two bulk tables is recorded.

Rounds are interleaved (keras, openvino, keras, openvino, ...) so load from
other processes hits both alike; each measurement records the 1-minute load
average and the CPU other processes used meanwhile (cores). Ratios are the
median over rounds of keras time / openvino time measured in the same round.

Usage::

    python benchmarks/bench_runtime_e2e.py [--quick] [--rounds 2] [--pool-images 400]
        [--requests 40] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine_info, result_path, start_benchmark, write_result
from bench_runtime import _cpu_counters, cpu_support

RESULT = result_path("runtime_e2e")
TARGET_BULK = 2.0
TARGET_P50 = 1.5
RUNTIMES = ("keras", "openvino")


def _timed(fn) -> tuple[float, dict]:
    busy0, own0 = _cpu_counters()
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    busy1, own1 = _cpu_counters()
    other = max(((busy1 - busy0) - (own1 - own0)) / elapsed, 0.0)
    return elapsed, {"other_cores": round(other, 2), "load1": round(os.getloadavg()[0], 2), "out": out}


def _split_run(ws, model_name: str, size: int, run_id: str):
    """A run of ``model_name`` at ``size`` with random weights and the library's splits."""
    from imgcls.core import UNKNOWN_CLASS
    from imgcls.library import Library, assign_splits
    from imgcls.models import create_model
    from imgcls.runs import save_run

    snap = assign_splits(Library(ws).scan())
    classes = sorted(set(snap.loc[snap["split"] == "train", "label"]) - {UNKNOWN_CLASS})
    snap = snap[snap["label"].isin(classes)]
    model = create_model(model_name, len(classes), input_shape=(size, size, 3), seed=0)
    return save_run(ws, model, classes=classes, splits=snap, run_id=run_id,
                    config={"model": model_name, "input_shape": [size, size, 3]})


def _export_unchecked(ws, run) -> dict:
    """int8 export of a random-weights run without a parity pass (its near-tied outputs make parity
    meaningless): converted, quantised on 100 of its training images, written where export_run would."""
    import shutil

    from imgcls.core.fileio import write_json
    from imgcls.export import calibration_images, quantize_int8, save_openvino, to_openvino
    from imgcls.runtimes import EXPORT_FILE, MODEL_XML, export_dir

    t0 = time.perf_counter()
    folder = export_dir(run, "int8")
    ov_model = to_openvino(run.model, folder.parent / "float" / MODEL_XML)
    images, hashes = calibration_images(ws, run, 100)
    save_openvino(quantize_int8(ov_model, images, fast=True), folder / MODEL_XML)  # random weights: speed only
    shutil.rmtree(folder.parent / "float", ignore_errors=True)
    write_json(folder / EXPORT_FILE, {"run_id": run.run_id, "runtime": "openvino", "precision": "int8",
                                      "inference_precision": "f32", "input_shape": list(run.input_shape),
                                      "classes": list(run.classes), "calibration": {"n": len(hashes)},
                                      "note": "benchmark: random weights, no parity check"})
    return {"precision": "int8", "parity": "not measured (random weights)",
            "export_s": round(time.perf_counter() - t0, 1)}


def _load_seconds(run) -> dict:
    """Seconds to load each runtime once (part of every bulk call's wall time)."""
    from imgcls.runs import load_run
    from imgcls.runtimes import load_runtime

    out = {}
    for rt in RUNTIMES:
        t0 = time.perf_counter()
        load_runtime(load_run(run.path), rt, mode="throughput").close()
        out[rt] = round(time.perf_counter() - t0, 2)
    return out


def _export(ws, run) -> dict:
    from imgcls.export import export_run

    t0 = time.perf_counter()
    record = export_run(ws, run, precision="int8", calibration_images=100, force=True)
    return {"precision": "int8", "accepted_without_force": not record["forced"], "reasons": record["reasons"],
            "parity_test_and_benchmark": record["parity"]["overall"], "export_s": round(time.perf_counter() - t0, 1)}


def bulk(ws, run, paths: list[str], root: Path, rounds: int) -> dict:
    from imgcls.bulk import identify

    per = {rt: [] for rt in RUNTIMES}
    tables = {}
    load_s = _load_seconds(run)
    for r in range(rounds):
        for rt in RUNTIMES:
            out = root / f"bulk-{run.run_id}-{rt}.parquet"
            seconds, m = _timed(lambda: identify(ws, paths, run=run.run_id, out=out, runtime=rt, progress=False,
                                                 resume=False))
            tables[rt] = m.pop("out")
            per[rt].append({"seconds": round(seconds, 2), "images_per_s": round(len(paths) / seconds, 2), **m})
            print(f"  bulk round {r + 1} {rt:8s} {len(paths)} images in {seconds:6.1f} s "
                  f"({len(paths) / seconds:6.1f} img/s), load {m['load1']}, others {m['other_cores']} cores", flush=True)
    ratios = [k["seconds"] / o["seconds"] for k, o in zip(per["keras"], per["openvino"])]
    net = [(k["seconds"] - load_s["keras"]) / max(o["seconds"] - load_s["openvino"], 1e-6)
           for k, o in zip(per["keras"], per["openvino"])]
    k, o = (tables[rt].set_index("path").sort_index() for rt in RUNTIMES)
    agreement = float((k["top1_class"] == o.loc[k.index, "top1_class"]).mean())
    return {"images": len(paths), "rounds": per, "speedup_rounds": [round(x, 3) for x in ratios],
            "speedup_median": round(statistics.median(ratios), 3),
            "model_load_s": load_s, "speedup_excluding_model_load_rounds": [round(x, 3) for x in net],
            "runtime_recorded": {rt: tables[rt].attrs.get("runtime") for rt in RUNTIMES},
            "top1_agreement_keras_vs_openvino": round(agreement, 4)}


def serving(ws, run, paths: list[str], root: Path, rounds: int) -> dict:
    import numpy as np

    from imgcls.serving import Predictor, RejectedImage
    from imgcls.translog import TransactionLog

    log = TransactionLog(root / f"serving-{run.run_id}.sqlite")
    predictors = {rt: Predictor(ws, run=run.run_id, runtime=rt, log=log) for rt in RUNTIMES}
    payloads = []
    for p in paths:  # the pool's bad files are refused (and logged): requests are the good images
        try:
            predictors["keras"].predict(Path(p).read_bytes())
            payloads.append(Path(p).read_bytes())
        except RejectedImage:
            pass
    per: dict[str, list] = {rt: [] for rt in RUNTIMES}
    p50s: dict[str, list] = {rt: [] for rt in RUNTIMES}
    loads = []
    try:
        for p in predictors.values():  # first requests allocate
            for data in payloads[:3]:
                p.predict(data)
        for r in range(rounds):
            for rt, p in predictors.items():
                walls = []

                def go():
                    for data in payloads:
                        t0 = time.perf_counter()
                        p.predict(data)
                        walls.append((time.perf_counter() - t0) * 1000)
                _, m = _timed(go)
                m.pop("out")
                loads.append({"runtime": rt, "round": r + 1, **m})
                per[rt] += walls
                p50s[rt].append(float(np.percentile(walls, 50)))
                print(f"  serving round {r + 1} {rt:8s} p50 {p50s[rt][-1]:7.1f} ms, load {m['load1']}", flush=True)
        info = {rt: p.info()["runtime_label"] for rt, p in predictors.items()}
    finally:
        for p in predictors.values():
            p.close()
        logged = log.transactions(columns=["runtime"])["runtime"].value_counts().to_dict()
        log.close()
    ratios = [k / o for k, o in zip(p50s["keras"], p50s["openvino"])]
    return {"requests_per_round": len(payloads), "rounds": rounds,
            "latency_ms": {rt: {"p50": round(float(np.percentile(v, 50)), 2), "p90": round(float(np.percentile(v, 90)), 2),
                                "p50_rounds": [round(x, 2) for x in p50s[rt]]} for rt, v in per.items()},
            "p50_ratio_rounds": [round(x, 3) for x in ratios], "p50_ratio_median": round(statistics.median(ratios), 3),
            "measurements": loads, "runtime_served": info, "rows_logged_by_runtime": logged}


def sample_part(*, quick: bool, requests: int, rounds: int) -> dict:
    """The sample's default model, trained briefly, on the whole pool (context)."""
    from imgcls.sample import build_sample
    from imgcls.training import train

    with tempfile.TemporaryDirectory(prefix="bench-runtime-e2e-") as tmp:
        root = Path(tmp)
        ws = build_sample(root / "zoo", image_size=64, pool_size=300 if quick else 3000, seed=0)
        t0 = time.perf_counter()
        run = train(ws, max_epochs=2 if quick else 4, patience=4, seed=0, verbose=0)
        train_s = round(time.perf_counter() - t0, 1)
        print(f"sample default model: trained {run.run_id} in {train_s} s", flush=True)
        export = _export(ws, run)
        pool = sorted(str(p) for p in ws.unlabelled.rglob("*") if p.is_file())
        return {
            "what": "the sample's default model (mini_inception at 64 px, trained briefly) on the sample pool: "
                    "context; decoding dominates so small a model",
            "run": {"run_id": run.run_id, "model": run.model_name, "train_s": train_s},
            "export": export,
            "bulk": bulk(ws, run, pool, root, rounds),
            "serving": serving(ws, run, pool[:12 if quick else requests], root, rounds),
        }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round; no file unless --out")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--pool-images", type=int, default=400,
                        help="pool images identified with Inception-v4 at 299 (default 400)")
    parser.add_argument("--requests", type=int, default=40, help="serving requests per runtime and round (default 40)")
    parser.add_argument("--skip-sample", action="store_true",
                        help="only Inception-v4 (skip the sample's default model, the context part)")
    parser.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/runtime_e2e.json)")
    args = parser.parse_args(argv)
    bench = start_benchmark("runtime_e2e", argv)
    out = args.out if (args.out or args.quick) else RESULT
    rounds = 1 if args.quick else args.rounds
    support = cpu_support()
    result: dict = {
        "claim": f"openvino runtime (int8): bulk identification >= {TARGET_BULK}x keras end to end (decode included); "
                 f"serving p50 latency >= {TARGET_P50}x lower",
        "quick": args.quick,
        "machine": machine_info(cpu_support=support),
        "judged": support["int8_vnni"],
    }
    from imgcls.sample import build_sample

    with tempfile.TemporaryDirectory(prefix="bench-runtime-e2e-") as tmp:
        root = Path(tmp)
        size = 96 if args.quick else 299
        n_pool = 60 if args.quick else args.pool_images
        ws = build_sample(root / "iv4", image_size=size, pool_size=n_pool, seed=0)
        run = _split_run(ws, "inception_v4", size, "iv4")
        export = _export_unchecked(ws, run)
        print(f"inception_v4 @{size}: exported int8 in {export['export_s']} s", flush=True)
        pool = sorted(str(p) for p in ws.unlabelled.rglob("*") if p.is_file())
        requests = pool[:12 if args.quick else args.requests]
        result["inception_v4"] = {
            "what": f"Inception-v4 at {size} (random weights), zoo sample built at {size} px",
            "export": export,
            "bulk": bulk(ws, run, pool, root, rounds),
            "serving": serving(ws, run, requests, root, rounds),
        }
    result["sample_default_model"] = ("skipped (--skip-sample)" if args.skip_sample
                                      else sample_part(quick=args.quick, requests=args.requests, rounds=rounds))
    iv4 = result["inception_v4"]
    result["verdict"] = {"bulk_inception_v4": iv4["bulk"]["speedup_median"] >= TARGET_BULK,
                         "serving_p50_inception_v4": iv4["serving"]["p50_ratio_median"] >= TARGET_P50}
    result["passed"] = all(result["verdict"].values()) if result["judged"] else None
    write_result(result, out, bench)
    print(f"verdict {result['verdict']} -> {out}")
    return result


if __name__ == "__main__":
    main()
