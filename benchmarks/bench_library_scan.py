"""Claim: scanning the library is linear and streaming, and a rescan of an
unchanged library reuses cached hashes and is at least 10x faster.

Builds libraries of N small images (default 2,000 and 20,000, 64x64 PNG/JPEG
pictures in 20 class folders), then, each in a fresh subprocess:

* first scan: wall time and peak RSS growth over the process's baseline;
* rescan of the unchanged library (cache hit for every file): wall time.

Memory claim: the growth in peak RSS from N=2,000 to N=20,000 stays within the
growth of the catalog DataFrame itself (plus a fixed allowance), i.e. no
per-image buffer is kept beyond the catalog.

Run: python benchmarks/bench_library_scan.py [--quick]
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


def scan_in_subprocess(ws: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ws)], capture_output=True, text=True, check=True,
                         env=child_env())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="200 and 2,000 images")
    args = ap.parse_args()
    bench = start_benchmark("library_scan")
    sizes = (200, 2000) if args.quick else (2000, 20000)
    results = {}
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
        "machine": machine_info(cpus=os.cpu_count()),
        "quick": args.quick,
    }
    write_result(summary, RESULTS, bench)
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()
