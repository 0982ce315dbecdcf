"""Claims: under 8 concurrent clients every request is answered and logged exactly
once, and a server killed with SIGKILL under load has logged every transaction
it acknowledged.

For each server variant, side by side in one run (direct: each request runs
the model and commits its own row; group commit: a writer thread commits the
rows of all waiting requests together; batch inference: one inference thread
runs the model on the images of all waiting requests together; and both), on
the sample's default model (mini_inception at 64x64, freshly initialised:
throughput does not depend on the weights):

1. start ``imgcls.serving.serve`` as a subprocess on 127.0.0.1 (free port) with
   an empty transaction log;
2. 8 client threads (keep-alive connections) send 2,000 requests in all (real
   sample images); every answer must be 200 with a distinct transaction id,
   and the log must hold exactly 2,000 transactions, those ids;
3. the 8 clients keep sending and record every acknowledged transaction id;
   after a while the server gets ``kill -9``; the log is reopened and every
   acknowledged id must be in it (with the class the client was told).

    python benchmarks/bench_serving_concurrency.py [--quick]

Writes benchmarks/results/serving_concurrency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import (
    ROOT,
    load_average,
    machine_info,
    result_path,
    start_benchmark,
    utc_now,
    write_result,
)
from _serving import CLIENTS, kill_summary, load, load_summary, logged, start_servers

RESULT = result_path("serving_concurrency")
#: name -> (group_commit, batch_inference): the server variants compared.
MODES = {
    "direct": (False, False),
    "group_commit": (True, False),
    "batch_inference": (False, True),
    "batch_inference+group_commit": (True, True),
}

SERVER = (
    "import sys; from imgcls.serving import serve; "
    "serve(sys.argv[1], run=sys.argv[2], port=int(sys.argv[3]), group_commit=sys.argv[4] == '1', "
    "batch_inference=sys.argv[5] == '1', log_level='warning')"
)


def start_server(ws, run_id: str, group_commit: bool, batch_inference: bool, *, timeout: float = 300.0):
    [(proc, url)] = start_servers(SERVER, [[str(ws.root), run_id, "{port}", "1" if group_commit else "0",
                                            "1" if batch_inference else "0"]], timeout=timeout)
    return proc, url


def run_mode(ws, run_id: str, images: list[bytes], *, group_commit: bool, batch_inference: bool,
             total: int, kill_after: int) -> dict:
    db = ws.serving_db
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    proc, url = start_server(ws, run_id, group_commit, batch_inference)
    out: dict = {"group_commit": group_commit, "batch_inference": batch_inference}
    try:
        # ---- 1. exactly `total` requests from 8 clients
        threads, records, t0 = load([url], images, total=total)
        for t in threads:
            t.join(600)
        wall = time.perf_counter() - t0
        rows = logged(db)
        out["load"] = load_summary(records, rows, total=total, wall=wall)

        # ---- 2. kill -9 under load
        before = len(rows)
        stop = threading.Event()
        threads, records, t0 = load([url], images, total=None, stop=stop)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if sum(1 for r in list(records) if r["status"] == 200) >= kill_after:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        stop.set()
        for t in threads:
            t.join(180)
        out["kill"] = kill_summary(records, logged(db), rows_before=before)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 requests, kill after 50 (smoke run)")
    args = parser.parse_args(argv)
    bench = start_benchmark("serving_concurrency", argv)
    total, kill_after = (200, 50) if args.quick else (2000, 500)

    from imgcls.library import Library
    from imgcls.models import DEFAULT_MODEL, create_model
    from imgcls.runs import save_run
    from imgcls.sample import build_sample, sample_truth

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        ws = build_sample(Path(tmp) / "zoo", image_size=64, pool_size=300)
        classes = Library(ws).classes()
        run = save_run(ws, create_model(DEFAULT_MODEL, len(classes), seed=0), classes=classes)
        paths = [p for p in sample_truth(ws)["path"] if p.endswith((".png", ".jpg"))][:200]
        images = [Path(p).read_bytes() for p in paths]
        modes = {}
        for name, (group_commit, batch_inference) in MODES.items():
            modes[name] = run_mode(ws, run.run_id, images, group_commit=group_commit,
                                   batch_inference=batch_inference, total=total, kill_after=kill_after)
            print(name, json.dumps(modes[name], indent=1), flush=True)

    base = modes["direct"]["load"]
    result = {
        "claims": [
            f"{CLIENTS} concurrent clients, {total} requests: every request answered, the log holds exactly {total}",
            "a server killed with SIGKILL under load has every acknowledged transaction in its log",
        ],
        "model": DEFAULT_MODEL, "input_size": [64, 64], "quick": args.quick,
        "modes": modes,
        "throughput_ratio_vs_direct": {
            name: m["load"]["requests_per_s"] / base["requests_per_s"] for name, m in modes.items()},
        "p95_latency_ratio_vs_direct": {
            name: m["load"]["latency_ms_p95"] / base["latency_ms_p95"] for name, m in modes.items()},
        "all_exact": all(m["load"]["exact"] for m in modes.values()),
        "all_acknowledged_survive_kill": all(m["kill"]["all_acknowledged_present"] for m in modes.values()),
        "machine": machine_info(cpus=os.cpu_count(), load_average=load_average()),
        "when": utc_now(),
    }
    written = write_result(result, RESULT, bench)  # a --quick run goes to <name>.quick.json
    print(json.dumps({k: result[k] for k in (
        "all_exact", "all_acknowledged_survive_kill", "throughput_ratio_vs_direct",
        "p95_latency_ratio_vs_direct")}, indent=2))
    print(f"wrote {written.relative_to(ROOT)}")
    return 0 if result["all_exact"] and result["all_acknowledged_survive_kill"] else 1


if __name__ == "__main__":
    sys.exit(main())
