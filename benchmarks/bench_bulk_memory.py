"""Claim: bulk identification streams; its memory stays flat as the job grows.

The peak resident memory of a fresh Python process that runs
:func:`imgcls.bulk.identify` over 20,000 image files must be within 10% of the
peak for 2,000 files (``peak(20k) <= 1.10 x peak(2k)``).

Files: the zoo sample's unlabelled pool (``imgcls.sample.build_sample``,
64x64 PNG/JPEG files) — 2,000 files, and the same 2,000 copied ten times into
ten batch folders for 20,000. Model: the sample's default ``mini_inception``
(64x64, random weights, saved as a real run), batch 64, default chunk size.

Each measurement is its own subprocess (imports, model load, identify, read
the table back) and reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
(the kernel's peak RSS), plus the RSS after the model is loaded and the peak
seen by a psutil sampler thread every 20 ms. Sizes alternate
(2k, 20k, 20k, 2k, ...). For scale, holding 20,000 decoded 64x64 images would
take 246 MB as uint8 (983 MB as float32).

Usage::

    python benchmarks/bench_bulk_memory.py [--quick] [--repeats 2]

Writes ``benchmarks/results/bulk_memory.json`` (``--quick`` writes only where
``--out`` says).
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

RESULT = result_path("bulk_memory")
TARGET = 1.10

CHILD = textwrap.dedent("""
    import json, os, resource, sys, threading, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import psutil
    from imgcls import bulk as bulk
    from imgcls.runs import load_run

    folder, run_path, out = sys.argv[1:4]
    proc = psutil.Process()
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    run = load_run(run_path)
    run.model  # load before measuring the baseline
    rss_model = proc.memory_info().rss
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    workspace = run.path.parent.parent  # the run's own workspace (<workspace>/runs/<run_id>/)
    df = bulk.identify(workspace, folder, run=run, out=out, batch_size=64, progress=False, resume=False)
    seconds = time.perf_counter() - t0
    stop.set()
    t.join()
    print("RESULT " + json.dumps({
        "n_rows": len(df),
        "n_errors": df.attrs["n_errors"],
        "seconds": seconds,
        "rss_after_model_load_mb": rss_model / 2**20,
        "peak_rss_sampled_mb": peak[0] / 2**20,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
""")


def measure(folder: Path, run_path: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(run_path), str(out)],
        capture_output=True, text=True, env=child_env(), check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"measurement failed ({proc.returncode}): {proc.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(lines[-1][len("RESULT "):])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 vs 2,000 files, 1 repeat")
    parser.add_argument("--n", type=int, default=None, help="small job (default 2000); the big one is 10x")
    parser.add_argument("--repeats", type=int, default=None, help="measurements per size (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args(argv)
    bench = start_benchmark("bulk_memory", argv)
    n = args.n or (200 if args.quick else 2000)
    repeats = args.repeats or (1 if args.quick else 2)
    out = args.out or (None if args.quick else RESULT)

    from imgcls.core import iter_image_files
    from imgcls.models import create_model
    from imgcls.runs import save_run
    from imgcls.sample import ZOO_CLASSES, build_sample

    result: dict = {
        "claim": "peak RSS of identify over 10x the files stays within 10% (20,000 vs 2,000 files)",
        "machine": machine_info(load_avg_start=load_average()),
        "quick": bool(args.quick),
    }
    with tempfile.TemporaryDirectory(prefix="bench_bulk_mem_") as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        ws = build_sample(tmp / "sample", pool_size=n)
        files = [p for p in iter_image_files(ws.unlabelled) if not p.name.startswith(("broken_", "not_an"))][:n]
        small, big = tmp / "small", tmp / "big"
        for p in files:
            dst = small / p.parent.name / p.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dst)
        for copy in range(10):
            for p in files:
                dst = big / f"copy_{copy:02d}" / p.parent.name / p.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dst)
        result["prepare_s"] = round(time.perf_counter() - t0, 1)
        classes = [c for c in ZOO_CLASSES if c != "zebra"]
        run = save_run(ws, create_model("mini_inception", len(classes), seed=0), classes=classes,
                       run_id="bench-memory", config={"model": "mini_inception"})
        sizes = {"small": (small, n), "big": (big, 10 * n)}
        raw: dict[str, list[dict]] = {"small": [], "big": []}
        for r in range(repeats):
            order = ["small", "big"] if r % 2 == 0 else ["big", "small"]
            for name in order:
                folder, count = sizes[name]
                m = measure(folder, run.path, tmp / f"out-{name}.parquet")
                if m["n_rows"] != count:
                    raise RuntimeError(f"expected {count} rows, got {m['n_rows']}")
                raw[name].append(m)
                print(f"  {count:6d} files: peak RSS {m['ru_maxrss_mb']:7.1f} MB "
                      f"(after model load {m['rss_after_model_load_mb']:.1f} MB), "
                      f"{m['seconds']:.1f} s, {count / m['seconds']:.0f} img/s", flush=True)
    peak = {k: float(statistics.median(m["ru_maxrss_mb"] for m in v)) for k, v in raw.items()}
    growth = {k: float(statistics.median(m["ru_maxrss_mb"] - m["rss_after_model_load_mb"] for m in v))
              for k, v in raw.items()}
    ratio = peak["big"] / peak["small"]
    result.update({
        "n_small": n,
        "n_big": 10 * n,
        "raw": raw,
        "median_peak_rss_mb": peak,
        "median_growth_after_model_load_mb": growth,
        "uint8_images_if_all_held_mb": 10 * n * 64 * 64 * 3 / 2**20,
        "ratio_peak_big_vs_small": ratio,
        "ratio_per_repeat": [b["ru_maxrss_mb"] / s["ru_maxrss_mb"] for s, b in zip(raw["small"], raw["big"])],
        "target": TARGET,
        "passed": ratio <= TARGET,
    })
    result["machine"]["load_avg_end"] = load_average()
    print(f"peak RSS {10 * n} files {peak['big']:.1f} MB vs {n} files {peak['small']:.1f} MB -> "
          f"{ratio:.3f}x (target <= {TARGET}x)")
    if out is not None:
        write_result(result, out, bench)
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
