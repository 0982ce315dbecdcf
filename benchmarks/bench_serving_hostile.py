"""Claims: a server under hostile uploads stays up, within memory, fast for valid clients, and
honest (every request, accepted or refused, is exactly one row); big legitimate images are
still served; a promote under load fails no request and every row names the model that answered.

On the sample's default model (mini_inception at 64x64), ``imgcls.serving.serve`` runs as a
subprocess on 127.0.0.1 with its default limits, following the production pointer:

1. idle: after a warm-up, the server's resident memory (RSS) is sampled at rest;
2. unloaded vs hostile, in interleaved rounds: 8 clients send valid sample images, alone
   (unloaded) or while 8 more clients each upload an 8000x8000 16-bit RGBA PNG (a 1.5 MB
   file that decodes to 1.5 GB of working memory) three times; the server's RSS is sampled
   every 10 ms throughout. Claims: peak RSS <= 2x idle RSS; valid p95 <= 3x unloaded p95;
   the server never dies; the log gains exactly one row per request sent;
3. big legitimate images: a 24-megapixel JPEG and a 64-megapixel 8-bit RGB PNG are served
   (200), alone and four of each at once (queued by the decode budget), peak RSS recorded;
4. promote under load: 8 clients keep sending while a second run is promoted
   (``imgcls.evaluation.promote``); the server swaps by itself. Claims: no request fails,
   both models answered, every row names the model (run id and version) that answered.

    python benchmarks/bench_serving_hostile.py [--quick]

Writes benchmarks/results/serving_hostile.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import (
    ROOT,
    load_average,
    machine_info,
    result_path,
    start_benchmark,
    utc_now,
    write_result,
)
from _serving import CLIENTS, start_servers

sys.path.insert(0, str(ROOT / "tests"))
from png_writer import png_bytes  # noqa: E402 - 16-bit RGBA PNGs (Pillow cannot write them)

RESULT = result_path("serving_hostile")
SERVER = ("import sys; from imgcls.serving import serve; "
          "serve(sys.argv[1], port=int(sys.argv[2]), log_level='warning')")


class RssMonitor:
    """Samples a process's resident memory every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self.now()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def now(self) -> int:
        return int(self._proc.memory_info().rss)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.peak = max(self.peak, self.now())
            except Exception:  # noqa: BLE001 - the process died: the caller sees it
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def send(client, data: bytes, name: str) -> dict:
    import httpx

    t0 = time.perf_counter()
    try:
        r = client.post("/predict", files={"file": (name, data, "application/octet-stream")})
        body = r.json()
        return {"status": r.status_code, "id": body.get("transaction_id"), "run_id": body.get("run_id"),
                "version": body.get("model_version"), "kind": body.get("kind"),
                "ms": (time.perf_counter() - t0) * 1000}
    except (httpx.HTTPError, ValueError) as exc:
        return {"status": None, "error": type(exc).__name__, "ms": (time.perf_counter() - t0) * 1000}


def clients(url: str, jobs: list[list[tuple[bytes, str]]]) -> list[list[dict]]:
    """One thread per job list, each on its own keep-alive connection; returns their records."""
    import httpx

    out: list[list[dict]] = [[] for _ in jobs]

    def run(i: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            for data, name in jobs[i]:
                out[i].append(send(c, data, name))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    return out


def rows(ws) -> int:
    from imgcls.translog import TransactionLog

    with TransactionLog(ws, create=False) as log:
        return log.count()


def valid_jobs(images: list[bytes], per_client: int, offset: int = 0) -> list[list[tuple[bytes, str]]]:
    return [[(images[(offset + c * per_client + j) % len(images)], f"{c}-{j}.png") for j in range(per_client)]
            for c in range(CLIENTS)]


def p95(records: list[dict]) -> float:
    return float(np.percentile([r["ms"] for r in records], 95))


def round_trip(ws, url: str, jobs) -> dict:
    before = rows(ws)
    records = [r for client in clients(url, jobs) for r in client]
    added = rows(ws) - before
    return {"records": records, "rows_added": added, "requests": len(records)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds (smoke run)")
    args = parser.parse_args(argv)
    bench = start_benchmark("serving_hostile", argv)
    per_client, rounds, hostile_each = (20, 1, 1) if args.quick else (60, 2, 3)

    from PIL import Image

    from imgcls.evaluation import promote
    from imgcls.library import Library
    from imgcls.models import DEFAULT_MODEL, create_model
    from imgcls.runs import append_promotion, save_run, set_production
    from imgcls.sample import build_sample, sample_truth
    from imgcls.translog import TransactionLog

    print("making the hostile and the big images ...", flush=True)
    rgba16 = png_bytes(8000, 8000, color_type=6, bit_depth=16, seed=1)
    png64 = png_bytes(8000, 8000, color_type=2, bit_depth=8, seed=2)
    photo = np.random.default_rng(0).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)
    photo[:] = photo[:1]  # compressible, still 24 MP to decode
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=85)
    jpg24 = buf.getvalue()
    del photo

    result: dict = {"model": DEFAULT_MODEL, "input_size": [64, 64], "quick": args.quick,
                    "hostile_upload": {"size": "8000x8000 16-bit RGBA PNG", "bytes": len(rgba16)},
                    "big_images": {"jpeg_24mp_bytes": len(jpg24), "png_64mp_8bit_bytes": len(png64)}}
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        ws = build_sample(Path(tmp) / "zoo", image_size=64, pool_size=300)
        classes = Library(ws).classes()
        first = save_run(ws, create_model(DEFAULT_MODEL, len(classes), seed=0), classes=classes)
        second = save_run(ws, create_model(DEFAULT_MODEL, len(classes), seed=1), classes=classes)
        set_production(ws, first.run_id)
        append_promotion(ws, {"time": utc_now(), "run_id": first.run_id, "action": "promote", "accepted": True})
        paths = [p for p in sample_truth(ws)["path"] if p.endswith((".png", ".jpg"))][:200]
        images = [Path(p).read_bytes() for p in paths]
        [(proc, url)] = start_servers(SERVER, [[str(ws.root), "{port}"]])
        try:
            # ---- 1. idle memory after a warm-up
            round_trip(ws, url, valid_jobs(images, 10))
            time.sleep(2)
            idle = RssMonitor(proc.pid).now()
            result["idle_rss_bytes"] = idle

            # ---- 2. unloaded vs hostile, interleaved
            phases = {"unloaded": [], "hostile": []}
            peak = idle
            exact = True
            for r in range(rounds):
                for phase in ("unloaded", "hostile"):
                    jobs = valid_jobs(images, per_client, offset=r * 1000)
                    if phase == "hostile":
                        jobs += [[(rgba16, f"deep-{c}-{k}.png") for k in range(hostile_each)]
                                 for c in range(CLIENTS)]
                    monitor = RssMonitor(proc.pid)
                    out = round_trip(ws, url, jobs)
                    peak = max(peak, monitor.stop())
                    valid = [x for x in out["records"] if x["status"] == 200]
                    refused = [x for x in out["records"] if x["status"] not in (200,)]
                    exact = exact and out["rows_added"] == out["requests"] and all(
                        x["id"] is not None for x in out["records"])
                    phases[phase].append({
                        "requests": out["requests"], "rows_added": out["rows_added"],
                        "valid_ok": len(valid), "refused": len(refused),
                        "refused_statuses": sorted({x["status"] for x in refused}, key=str),
                        "valid_p95_ms": p95([x for x in out["records"] if x["status"] == 200]),
                        "valid_p50_ms": float(np.median([x["ms"] for x in valid])) if valid else None,
                    })
                    print(phase, json.dumps(phases[phase][-1]), flush=True)
            unloaded_p95 = float(np.median([p["valid_p95_ms"] for p in phases["unloaded"]]))
            hostile_p95 = float(np.median([p["valid_p95_ms"] for p in phases["hostile"]]))
            alive = proc.poll() is None
            result["hostile"] = {
                "rounds": phases, "peak_rss_bytes": peak, "peak_over_idle": peak / idle,
                "unloaded_p95_ms": unloaded_p95, "hostile_p95_ms": hostile_p95,
                "p95_ratio": hostile_p95 / unloaded_p95, "server_alive": alive,
                "every_request_one_row": exact,
                "all_hostile_refused_413": all(p["refused_statuses"] == [413] for p in phases["hostile"]),
                "all_valid_ok": all(p["valid_ok"] == CLIENTS * per_client for ps in phases.values() for p in ps),
            }

            # ---- 3. big legitimate images: served, alone and queued
            monitor = RssMonitor(proc.pid)
            alone = round_trip(ws, url, [[(jpg24, "photo.jpg"), (png64, "scan.png")]])
            crowd = round_trip(ws, url, [[(jpg24, f"p{i}.jpg")] for i in range(4)]
                               + [[(png64, f"s{i}.png")] for i in range(4)])
            big_peak = monitor.stop()
            result["big_images"].update({
                "alone_statuses": [x["status"] for x in alone["records"]],
                "alone_ms": [round(x["ms"], 1) for x in alone["records"]],
                "four_each_at_once_statuses": [x["status"] for x in crowd["records"]],
                "four_each_at_once_max_ms": round(max(x["ms"] for x in crowd["records"]), 1),
                "peak_rss_bytes": big_peak, "peak_over_idle": big_peak / idle,
                "rows_exact": alone["rows_added"] == 2 and crowd["rows_added"] == 8,
                "all_served": all(x["status"] == 200 for x in alone["records"] + crowd["records"]),
            })
            print("big", json.dumps({k: v for k, v in result["big_images"].items()}), flush=True)

            # ---- 4. promote while 8 clients send requests
            stop = threading.Event()
            records: list[dict] = []
            lock = threading.Lock()

            def client(c: int) -> None:
                import httpx

                with httpx.Client(base_url=url, timeout=300) as http:
                    j = 0
                    while not stop.is_set():
                        rec = send(http, images[(c * 97 + j) % len(images)], f"{c}-{j}.png")
                        j += 1
                        with lock:
                            records.append(rec)

            before = rows(ws)
            threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
            for t in threads:
                t.start()
            time.sleep(3)
            t_promote = time.monotonic()
            accepted = promote(ws, second, override="benchmark: promote under load").accepted
            gate_s = time.monotonic() - t_promote  # the gate runs here, in this process
            t_pointer = time.monotonic()
            swapped_after = None
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with lock:
                    if any(r.get("run_id") == second.run_id for r in records):
                        swapped_after = time.monotonic() - t_pointer
                        break
                time.sleep(0.05)
            time.sleep(3)
            stop.set()
            for t in threads:
                t.join(300)
            with TransactionLog(ws, create=False) as log:
                table = log.transactions(columns=["id", "run_id", "model_version"]).set_index("id")
            answered_by = {}
            named_right = True
            for r in records:
                if r["status"] == 200:
                    answered_by[r["version"]] = answered_by.get(r["version"], 0) + 1
                    row = table.loc[r["id"]]
                    named_right = named_right and (row["run_id"], row["model_version"]) == (r["run_id"], r["version"])
            result["promote_under_load"] = {
                "requests": len(records), "failed": sum(1 for r in records if r["status"] != 200),
                "accepted": bool(accepted), "gate_s": gate_s,
                "first_answer_by_new_model_after_pointer_s": swapped_after,
                "answered_by_version": answered_by, "rows_added": int(len(table) - before),
                "every_row_names_its_model": bool(named_right),
                "no_request_failed": all(r["status"] == 200 for r in records),
            }
            print("promote", json.dumps(result["promote_under_load"]), flush=True)
            result["server_alive_at_end"] = proc.poll() is None
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    h, b, pr = result["hostile"], result["big_images"], result["promote_under_load"]
    result["claims"] = {
        "peak_rss_within_2x_idle": h["peak_over_idle"] <= 2.0,
        "valid_p95_within_3x_unloaded": h["p95_ratio"] <= 3.0,
        "server_never_died": bool(h["server_alive"] and result["server_alive_at_end"]),
        "every_request_exactly_one_row": bool(h["every_request_one_row"] and b["rows_exact"]
                                               and pr["rows_added"] == pr["requests"]),
        "big_images_served": b["all_served"],
        "promote_no_request_failed": pr["no_request_failed"] and len(pr["answered_by_version"]) == 2,
        "promote_rows_name_their_model": pr["every_row_names_its_model"],
    }
    result["machine"] = machine_info(cpus=os.cpu_count(), load_average=load_average())
    result["when"] = utc_now()
    written = write_result(result, RESULT, bench)  # a --quick run goes to <name>.quick.json
    print(json.dumps(result["claims"], indent=2))
    print(f"wrote {written.relative_to(ROOT)}")
    return 0 if all(result["claims"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
