"""Claim: scanning the library is linear and streaming, and a rescan of an
unchanged library reuses cached hashes and is at least 10x faster.

Builds libraries of N small images (default 2,000 and 20,000, 64x64 PNG/JPEG
pictures in 20 class folders), then, each in a fresh subprocess:

* first scan: wall time and peak RSS growth over the process's baseline;
* rescan of the unchanged library (cache hit for every file): wall time.

Memory claim: the growth in peak RSS from N=2,000 to N=20,000 stays within the
growth of the catalog DataFrame itself (plus a fixed allowance), i.e. no
per-image buffer is kept beyond the catalog.

Lock claim (issue 11): opening the library and rescanning the unchanged
largest library is no more than 10% slower with the workspace lock and the
format check in place than without. Measured side by side, interleaved, in
fresh subprocesses: this tree with the lock (``lock``), this tree with the lock
switched off (``IMGCLS_UNSAFE_NO_LOCK=1``, ``no_lock``) and, with
``--baseline-rev REV``, the package as it was at commit REV (``baseline``,
e.g. the commit before the lock).

Run: python benchmarks/bench_library_scan.py [--quick] [--lock-only] [--baseline-rev REV]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import child_env, machine_info, result_path, start_benchmark, write_result

import numpy as np
from PIL import Image, ImageDraw

RESULTS = result_path("library_scan")

CHILD = r"""
import json, resource, sys, time, gc
import psutil
from imgcls.library import Library
proc = psutil.Process()
base = proc.memory_info().rss
lib = Library(sys.argv[1])
t0 = time.perf_counter(); cat = lib.scan(); t1 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = {"n": len(cat), "seconds": t1 - t0, "base_rss": base, "peak_rss": peak,
       "catalog_bytes": int(cat.memory_usage(deep=True).sum()), "readable": int(cat["readable"].sum())}
print(json.dumps(out))
"""


def make_library(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / "library" / f"class_{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.new("RGB", (64, 64), tuple(int(v) for v in rng.integers(0, 256, 3)))
        d = ImageDraw.Draw(img)
        for _ in range(3):
            x, y = rng.integers(0, 56, 2)
            w, h = rng.integers(6, 36, 2)
            d.ellipse([int(x), int(y), int(x + w), int(y + h)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        if i % 5 == 0:
            img.save(folder / f"img_{i:06d}.jpg", quality=90)
        else:
            img.save(folder / f"img_{i:06d}.png")


OPEN_RESCAN = r"""
import json, sys, time
from imgcls.library import Library
t0 = time.perf_counter(); lib = Library(sys.argv[1]); t1 = time.perf_counter()
cat = lib.scan(); t2 = time.perf_counter()
print(json.dumps({"open": t1 - t0, "rescan": t2 - t1, "total": t2 - t0, "n": len(cat)}))
"""


def baseline_tree(rev: str, dest: Path) -> Path:
    """The imgcls package as it was at git commit ``rev``, extracted under ``dest``."""
    from _common import ROOT

    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "imgcls"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def lock_overhead(ws: Path, *, rounds: int, baseline: Path | None) -> dict:
    """Open + rescan of the unchanged library, with and without the lock (and the baseline), interleaved."""
    variants = {"lock": child_env(IMGCLS_UNSAFE_NO_LOCK="0"), "no_lock": child_env(IMGCLS_UNSAFE_NO_LOCK="1")}
    if baseline is not None:
        variants["baseline"] = {**child_env(), "PYTHONPATH": str(baseline)}
    times: dict[str, list[dict]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, env in variants.items():
            out = subprocess.run([sys.executable, "-c", OPEN_RESCAN, str(ws)], capture_output=True, text=True,
                                 check=True, env=env)
            times[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: {m: float(np.median([t[m] for t in v])) for m in ("open", "rescan", "total")}
           for k, v in times.items()}
    result = {"rounds": rounds, "median_seconds": med, "runs": times,
              "slowdown_vs_no_lock": med["lock"]["total"] / med["no_lock"]["total"] - 1}
    if baseline is not None:
        result["slowdown_vs_baseline"] = med["lock"]["total"] / med["baseline"]["total"] - 1
    worst = max(v for k, v in result.items() if k.startswith("slowdown_"))
    result["target_met"] = worst <= 0.10
    return result


def scan_in_subprocess(ws: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ws)], capture_output=True, text=True, check=True,
                         env=child_env())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="200 and 2,000 images")
    ap.add_argument("--lock-only", action="store_true",
                    help="only the lock claim on the largest library (writes library_lock_overhead.json)")
    ap.add_argument("--baseline-rev", default=None,
                    help="also time the package as it was at this git commit (e.g. the one before the lock)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the lock claim (default %(default)s)")
    args = ap.parse_args()
    if args.lock_only:
        bench = start_benchmark("library_lock_overhead")
        n = 2000 if args.quick else 20000
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp) / f"ws{n}"
            make_library(ws, n)
            first = scan_in_subprocess(ws)
            baseline = baseline_tree(args.baseline_rev, Path(tmp) / "baseline") if args.baseline_rev else None
            overhead = lock_overhead(ws, rounds=args.rounds, baseline=baseline)
        summary = {"claim": "open + rescan of an unchanged library is <= 10% slower with the workspace lock",
                   "images": n, "first_scan_seconds": first["seconds"], "baseline_rev": args.baseline_rev,
                   **overhead, "machine": machine_info(cpus=os.cpu_count()), "quick": args.quick}
        write_result(summary, result_path("library_lock_overhead"), bench)
        print(json.dumps({k: v for k, v in summary.items() if k not in ("runs", "machine")}, indent=2))
        return
    bench = start_benchmark("library_scan")
    sizes = (200, 2000) if args.quick else (2000, 20000)
    results = {}
    overhead = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            ws = Path(tmp) / f"ws{n}"
            t0 = time.perf_counter()
            make_library(ws, n)
            gen = time.perf_counter() - t0
            first = scan_in_subprocess(ws)
            rescans = [scan_in_subprocess(ws) for _ in range(3)]
            rescan = min(r["seconds"] for r in rescans)
            results[n] = {
                "generate_seconds": gen,
                "first_scan_seconds": first["seconds"],
                "rescan_seconds": rescan,
                "rescan_speedup": first["seconds"] / rescan,
                "peak_rss_growth_bytes": first["peak_rss"] - first["base_rss"],
                "catalog_bytes": first["catalog_bytes"],
                "images": first["n"],
            }
            print(n, json.dumps(results[n]))
            if n == sizes[-1]:
                baseline = baseline_tree(args.baseline_rev, Path(tmp) / "baseline") if args.baseline_rev else None
                overhead = lock_overhead(ws, rounds=args.rounds, baseline=baseline)
    small, large = (results[n] for n in sizes)
    rss_growth = large["peak_rss_growth_bytes"] - small["peak_rss_growth_bytes"]
    catalog_growth = large["catalog_bytes"] - small["catalog_bytes"]
    summary = {
        "claim": "scan streams (memory grows only with the catalog) and a rescan is >= 10x faster",
        "sizes": list(sizes),
        "results": results,
        "rescan_speedup_at_largest": large["rescan_speedup"],
        "per_image_seconds": {n: results[n]["first_scan_seconds"] / n for n in sizes},
        "linearity_ratio": (large["first_scan_seconds"] / small["first_scan_seconds"]) / (sizes[1] / sizes[0]),
        "peak_rss_growth_between_sizes_bytes": rss_growth,
        "catalog_growth_between_sizes_bytes": catalog_growth,
        "rss_growth_per_catalog_byte": rss_growth / max(catalog_growth, 1),
        "rescan_target_met": large["rescan_speedup"] >= 10,
        "lock_overhead": overhead,
        "machine": machine_info(cpus=os.cpu_count()),
        "quick": args.quick,
    }
    write_result(summary, RESULTS, bench)
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()
