"""Claim: bulk identification on Apache Beam gives the local table, at >= 0.7x its speed, in flat memory.

Three measurements on the zoo sample (``imgcls.sample.build_sample``, 64x64
images) with the sample's default model (``mini_inception``, random weights
with seed 0, saved as a real run), each engine in a fresh subprocess (peak
memory is per process; the parent never imports TensorFlow):

1. **Same table.** :func:`imgcls.bulk.identify` and
   :func:`imgcls.bulk.identify_beam` (Beam's in-process ``FnApiRunner``, 2
   workers, multi-threading: no download, no service) over the sample's
   unlabelled pool (``--n`` images plus its two bad files). Claim: the same
   rows (by path), the same top-k classes, every score within 1e-6, the same
   errors with the same reasons.
2. **Throughput**, side by side: both engines over the same ``--n`` good
   files (default 2,000), alternating, ``--repeats`` times, each from the
   run id (model load and tracing included in both), and once each over
   10x the files. Claim: Beam images/s >= 0.7 x local images/s (median over
   the repeats on ``--n`` files, and on 10x the files).
3. **Memory**: peak RSS (``ru_maxrss`` of the subprocess) over 10x the
   files vs ``--n`` files, per engine. Claim: Beam's peak grows by at most
   10% (the 10x folder is the ``--n`` files copied ten times).

Usage::

    python benchmarks/bench_beam.py [--quick] [--n 2000] [--repeats 3]

Writes ``benchmarks/results/beam.json`` (``--quick`` only where ``--out`` says).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import child_env, load_average, machine_info, result_path, start_benchmark, write_result

RESULT = result_path("beam")
SPEED_TARGET = 0.7
MEMORY_TARGET = 1.10
SCORE_TOLERANCE = 1e-6

CHILD = textwrap.dedent("""
    import json, os, resource, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from imgcls import bulk

    engine, workspace, folder, run_id, out = sys.argv[1:6]
    t0 = time.perf_counter()
    if engine == "beam":
        df = bulk.identify_beam(workspace, folder, run=run_id, out=out, batch_size=64, overwrite=True)
    else:
        df = bulk.identify(workspace, folder, run=run_id, out=out, batch_size=64, progress=False, resume=False)
    seconds = time.perf_counter() - t0
    print("RESULT " + json.dumps({
        "engine": engine,
        "n_rows": len(df),
        "n_errors": df.attrs["n_errors"],
        "seconds": seconds,
        "images_per_s": len(df) / seconds,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
""")


def measure(engine: str, workspace: Path, folder: Path, run_id: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, engine, str(workspace), str(folder), run_id, str(out)],
        capture_output=True, text=True, env=child_env(), check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{engine} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def compare(local_out: Path, beam_out: Path) -> dict:
    """Row-by-row comparison of two results folders (by path)."""
    import numpy as np

    from imgcls.bulk import load_errors, load_results

    a = load_results(local_out).sort_values("path").reset_index(drop=True)
    b = load_results(beam_out).sort_values("path").reset_index(drop=True)
    same_rows = a["path"].tolist() == b["path"].tolist()
    k = sum(1 for c in a.columns if c.endswith("_class"))
    classes = [f"top{i}_class" for i in range(1, k + 1)]
    scores = [c for c in a.columns if c.endswith("_score")] + ["entropy", "margin"]
    class_mismatch = int((a[classes].to_numpy() != b[classes].to_numpy()).any(axis=1).sum()) if same_rows else -1
    diff = float(np.abs(a[scores].to_numpy() - b[scores].to_numpy()).max()) if same_rows else float("nan")
    ea = load_errors(local_out).sort_values("path").reset_index(drop=True)
    eb = load_errors(beam_out).sort_values("path").reset_index(drop=True)
    same_errors = ea[["path", "reason", "hash"]].equals(eb[["path", "reason", "hash"]])
    same_other = all(a[c].tolist() == b[c].tolist() for c in ("relpath", "hash", "model", "run_id")) if same_rows \
        else False
    return {
        "n_rows_local": len(a), "n_rows_beam": len(b), "same_rows": same_rows,
        "rows_with_other_top_k_classes": class_mismatch, "max_abs_score_diff": diff,
        "same_relpath_hash_model_run": same_other,
        "n_errors_local": len(ea), "n_errors_beam": len(eb), "same_errors_and_reasons": same_errors,
        "passed": bool(same_rows and class_mismatch == 0 and diff <= SCORE_TOLERANCE and same_errors
                       and same_other),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images, 1 repeat")
    parser.add_argument("--n", type=int, default=None, help="images of the small job (default 2000)")
    parser.add_argument("--repeats", type=int, default=None, help="side-by-side repeats (default 3)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args(argv)
    bench = start_benchmark("beam", argv)
    n = args.n or (200 if args.quick else 2000)
    repeats = args.repeats or (1 if args.quick else 3)
    out = args.out or (None if args.quick else RESULT)

    from imgcls.core import iter_image_files
    from imgcls.sample import ZOO_CLASSES, build_sample

    result: dict = {
        "claim": "Beam (FnApiRunner, 2 workers) gives the local identify table (same rows and top-k classes, "
                 f"scores within {SCORE_TOLERANCE}), >= {SPEED_TARGET}x its images/s, and a peak RSS over 10x "
                 f"the images within {MEMORY_TARGET}x",
        "machine": machine_info(load_avg_start=load_average()),
        "quick": bool(args.quick),
        "runner": "FnApiRunner --direct_num_workers=2 --direct_running_mode=multi_threading",
    }
    with tempfile.TemporaryDirectory(prefix="bench_beam_") as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        ws = build_sample(tmp / "sample", pool_size=n)
        files = [p for p in iter_image_files(ws.unlabelled) if not p.name.startswith(("broken_", "not_an"))][:n]
        small, big = tmp / "small", tmp / "big"
        for copy in range(10):
            for p in files:
                for folder in ([small, big] if copy == 0 else [big]):
                    dst = folder / (f"copy_{copy:02d}" if folder is big else "") / p.parent.name / p.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, dst)
        # The run is saved by a child (TensorFlow stays out of this process).
        subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from imgcls.models import create_model
            from imgcls.runs import save_run
            classes = {[c for c in ZOO_CLASSES if c != "zebra"]!r}
            save_run({str(ws.root)!r}, create_model("mini_inception", len(classes), seed=0), classes=classes,
                     run_id="bench-beam", config={{"model": "mini_inception"}})
        """)], check=True, env=child_env(TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True)
        result["prepare_s"] = round(time.perf_counter() - t0, 1)
        run_id = "bench-beam"

        # 1. The same table on the sample pool (bad files included).
        m_local = measure("local", ws.root, ws.unlabelled, run_id, tmp / "pool-local.parquet")
        m_beam = measure("beam", ws.root, ws.unlabelled, run_id, tmp / "pool-beam.parquet")
        parity = compare(tmp / "pool-local.parquet", tmp / "pool-beam.parquet")
        result["parity"] = {**parity, "pool": f"{n} sample images + the sample's 2 bad files",
                            "runs": [m_local, m_beam]}
        print(f"parity: {parity}", flush=True)

        # 2 + 3. Side by side on n files (alternating), then once each on 10x the files.
        raw: dict[str, list[dict]] = {"local": [], "beam": []}
        for r in range(repeats):
            for engine in (["local", "beam"] if r % 2 == 0 else ["beam", "local"]):
                m = measure(engine, ws.root, small, run_id, tmp / f"small-{engine}.parquet")
                if m["n_rows"] != n:
                    raise RuntimeError(f"{engine}: expected {n} rows, got {m['n_rows']}")
                raw[engine].append(m)
                print(f"  {engine:5s} {n:6d} images: {m['seconds']:6.1f} s {m['images_per_s']:6.0f} img/s "
                      f"peak {m['ru_maxrss_mb']:.0f} MB", flush=True)
        big_runs = {}
        for engine in ("beam", "local"):
            m = measure(engine, ws.root, big, run_id, tmp / f"big-{engine}.parquet")
            if m["n_rows"] != 10 * n:
                raise RuntimeError(f"{engine}: expected {10 * n} rows, got {m['n_rows']}")
            big_runs[engine] = m
            print(f"  {engine:5s} {10 * n:6d} images: {m['seconds']:6.1f} s {m['images_per_s']:6.0f} img/s "
                  f"peak {m['ru_maxrss_mb']:.0f} MB", flush=True)

    rate = {e: float(statistics.median(m["images_per_s"] for m in v)) for e, v in raw.items()}
    speed_small = rate["beam"] / rate["local"]
    speed_big = big_runs["beam"]["images_per_s"] / big_runs["local"]["images_per_s"]
    peak_small = {e: float(statistics.median(m["ru_maxrss_mb"] for m in v)) for e, v in raw.items()}
    memory = {e: big_runs[e]["ru_maxrss_mb"] / peak_small[e] for e in raw}
    result.update({
        "n_small": n,
        "n_big": 10 * n,
        "repeats": repeats,
        "raw_small": raw,
        "raw_big": big_runs,
        "median_images_per_s_small": rate,
        "ratio_beam_vs_local_images_per_s_small": speed_small,
        "ratio_per_repeat": [b["images_per_s"] / a["images_per_s"] for a, b in zip(raw["local"], raw["beam"])],
        "ratio_beam_vs_local_images_per_s_big": speed_big,
        "median_peak_rss_mb_small": peak_small,
        "peak_rss_mb_big": {e: big_runs[e]["ru_maxrss_mb"] for e in big_runs},
        "ratio_peak_rss_big_vs_small": memory,
        "targets": {"speed": SPEED_TARGET, "memory": MEMORY_TARGET, "score_tolerance": SCORE_TOLERANCE},
        "passed": {
            "same_table": parity["passed"],
            "speed": speed_small >= SPEED_TARGET and speed_big >= SPEED_TARGET,
            "memory_flat": memory["beam"] <= MEMORY_TARGET,
        },
    })
    result["machine"]["load_avg_end"] = load_average()
    print(f"Beam vs local images/s: {speed_small:.2f}x ({n}), {speed_big:.2f}x ({10 * n}); "
          f"peak RSS {10 * n} vs {n}: beam {memory['beam']:.3f}x, local {memory['local']:.3f}x")
    if out is not None:
        write_result(result, out, bench)
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
