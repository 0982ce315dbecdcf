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
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import (
    ROOT,
    child_env,
    load_average,
    machine_info,
    result_path,
    start_benchmark,
    utc_now,
    write_result,
)

import numpy as np

RESULT = result_path("serving_concurrency")
CLIENTS = 8
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ws, run_id: str, group_commit: bool, batch_inference: bool, *, timeout: float = 300.0):
    import httpx

    for _ in range(3):  # a free port can be taken between the check and the bind
        port = free_port()
        env = child_env(TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(ws.root), run_id, str(port),
             "1" if group_commit else "0", "1" if batch_inference else "0"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        err = b""
        if proc.poll() is None:
            proc.kill()
        else:
            err = proc.stderr.read()
        proc.wait(10)
        if b"address already in use" not in err.lower():
            raise RuntimeError(f"The server did not start: {err.decode(errors='replace')[-2000:]}")
    raise RuntimeError("No free port found for the server.")


def load(url: str, images: list[bytes], *, total: int | None, stop: threading.Event | None = None,
         max_per_client: int = 100_000):
    """CLIENTS threads sending requests; returns per-request records.

    With ``total`` the clients share exactly ``total`` requests; otherwise
    each sends until ``stop`` is set or its connection fails.
    """
    import httpx

    lock = threading.Lock()
    issued = [0]
    records: list[dict] = []

    def next_index():
        with lock:
            if total is not None and issued[0] >= total:
                return None
            issued[0] += 1
            return issued[0] - 1

    def client(c: int):
        with httpx.Client(base_url=url, timeout=120) as http:
            for _ in range(max_per_client):
                if stop is not None and stop.is_set():
                    return
                i = next_index()
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = http.post("/predict", files={"file": (f"{i}.png", images[i % len(images)])})
                    body = r.json()
                    rec = {"status": r.status_code, "id": body.get("transaction_id"),
                           "class": body.get("class"), "ms": (time.perf_counter() - t0) * 1000}
                except (httpx.HTTPError, ValueError) as exc:
                    rec = {"status": None, "error": type(exc).__name__,
                           "ms": (time.perf_counter() - t0) * 1000}
                with lock:
                    records.append(rec)
                if rec["status"] is None and total is None:
                    return  # the server is gone

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    return threads, records, t0


def logged(db: Path):
    from imgcls.translog import TransactionLog

    with TransactionLog(db, create=False) as log:
        return log.transactions(columns=["id", "status", "top1_class"]).set_index("id")


def run_mode(ws, run_id: str, images: list[bytes], *, group_commit: bool, batch_inference: bool,
             total: int, kill_after: int) -> dict:
    db = ws.serving_db
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    proc, url = start_server(ws, run_id, group_commit, batch_inference)
    out: dict = {"group_commit": group_commit, "batch_inference": batch_inference}
    try:
        # ---- 1. exactly `total` requests from 8 clients
        threads, records, t0 = load(url, images, total=total)
        for t in threads:
            t.join(600)
        wall = time.perf_counter() - t0
        ok = [r for r in records if r["status"] == 200]
        ids = [r["id"] for r in ok]
        rows = logged(db)
        ms = np.asarray([r["ms"] for r in records])
        out["load"] = {
            "clients": CLIENTS, "requests": total, "answered": len(records), "ok": len(ok),
            "distinct_ids": len(set(ids)), "rows_in_log": int(len(rows)),
            "ids_match_log": set(ids) == set(rows.index),
            "seconds": wall, "requests_per_s": total / wall,
            "latency_ms_p50": float(np.median(ms)), "latency_ms_p95": float(np.percentile(ms, 95)),
        }
        out["load"]["exact"] = bool(
            len(records) == total and len(ok) == total and len(set(ids)) == total
            and len(rows) == total and out["load"]["ids_match_log"])

        # ---- 2. kill -9 under load
        before = len(rows)
        stop = threading.Event()
        threads, records, t0 = load(url, images, total=None, stop=stop)
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
        acked = {r["id"]: r["class"] for r in records if r["status"] == 200}
        rows = logged(db)
        missing = sorted(set(acked) - set(rows.index))
        wrong = [i for i, c in acked.items() if i in rows.index and rows.loc[i, "top1_class"] != c]
        out["kill"] = {
            "acknowledged": len(acked), "failed_requests_at_kill": sum(1 for r in records if r["status"] is None),
            "rows_added": int(len(rows) - before),
            "committed_not_acknowledged": int(len(rows) - before - len(acked)),
            "missing_acknowledged": len(missing), "missing_ids": missing[:20],
            "class_mismatch": len(wrong),
        }
        out["kill"]["all_acknowledged_present"] = not missing and not wrong
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
    write_result(result, RESULT, bench)
    print(json.dumps({k: result[k] for k in (
        "all_exact", "all_acknowledged_survive_kill", "throughput_ratio_vs_direct",
        "p95_latency_ratio_vs_direct")}, indent=2))
    print(f"wrote {RESULT.relative_to(ROOT)}")
    return 0 if result["all_exact"] and result["all_acknowledged_survive_kill"] else 1


if __name__ == "__main__":
    sys.exit(main())
