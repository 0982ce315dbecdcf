"""Claims: several serving processes write ONE PostgreSQL log, exactly once per request, and
every acknowledged transaction survives ``kill -9`` of a serving process; logging on
PostgreSQL costs about what logging on SQLite costs (both reported side by side).

On a real PostgreSQL server started for the run (``tests/postgres_server.py``: Debian's
binaries, 127.0.0.1, default durable settings: ``fsync=on``, ``synchronous_commit=on``),
on the sample's default model (mini_inception at 64x64, freshly initialised: speed does
not depend on the weights):

1. three ``imgcls.serving.serve(..., log_url=postgresql://...)`` processes on free ports,
   one empty log; 8 client threads (keep-alive; client c talks to server c mod 3) send
   2,000 requests in all: every answer must be 200 with a distinct id, and the log must
   hold exactly 2,000 rows, those ids;
2. the clients keep sending; after 500 more acknowledged requests one server gets
   ``kill -9``; the others go on for 2 s; every acknowledged id must be in the log with
   the class the client was told;
3. logging overhead, in one process, side by side (helpers of
   ``bench_logging_overhead.py``): ``Predictor(log=None)`` vs SQLite logs (the default
   ``synchronous=NORMAL``, and ``FULL``: one fsync per commit) vs PostgreSQL logs (the
   default ``synchronous_commit=on``: one WAL fsync per commit, and a database set to
   ``synchronous_commit=off``), interleaved in alternating blocks; the cost of logging is
   the median of (wall time - the predictor's own latency) with a log minus without, as
   a share of a prediction; plus the bare ``log_transaction`` call. The disk's own fsync
   time is measured beside them: the durable variants (SQLite FULL, PostgreSQL on) pay it.

    python benchmarks/bench_postgres_log.py [--quick]

Writes benchmarks/results/postgres_log.json.
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
from _serving import CLIENTS, kill_summary, load, load_summary, logged, start_servers
from bench_logging_overhead import interleaved, paired_overhead, stats, tail_ms

sys.path.insert(0, str(ROOT / "tests"))
from postgres_server import PostgresServer

RESULT = result_path("postgres_log")
SERVERS = 3
SERVER = (
    "import sys; from imgcls.serving import serve; "
    "serve(sys.argv[1], run=sys.argv[2], port=int(sys.argv[3]), log_url=sys.argv[4], log_level='warning')"
)


def several_servers(ws, run_id: str, images: list[bytes], log_url: str, *, total: int, kill_after: int) -> dict:
    from imgcls.translog import TransactionLog

    TransactionLog(log_url).close()  # an empty, current log
    procs = start_servers(SERVER, [[str(ws.root), run_id, "{port}", log_url]] * SERVERS, timeout=600)
    urls = [u for _, u in procs]
    out: dict = {"servers": SERVERS, "clients": CLIENTS}
    try:
        threads, records, t0 = load(urls, images, total=total)
        for t in threads:
            t.join(900)
        wall = time.perf_counter() - t0
        rows = logged(log_url)
        out["load"] = load_summary(records, rows, total=total, wall=wall)
        out["load"]["per_server_ok"] = [sum(1 for r in records if r["status"] == 200 and r["server"] == k)
                                        for k in range(SERVERS)]

        before = len(rows)
        stop = threading.Event()
        threads, records, t0 = load(urls, images, total=None, stop=stop)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and sum(1 for r in list(records) if r["status"] == 200) < kill_after:
            time.sleep(0.01)
        victim = procs[0][0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(30)
        killed_at = len(records)
        time.sleep(2.0)  # the other servers keep answering
        stop.set()
        for t in threads:
            t.join(300)
        out["kill"] = {
            "killed_server": 0, "requests_when_killed": killed_at,
            "acknowledged_by_survivors_after_kill": sum(
                1 for r in records[killed_at:] if r["status"] == 200 and r["server"] != 0),
            **kill_summary(records, logged(log_url), rows_before=before),
        }
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    return out


def fsync_ms(folder: Path, n: int = 50) -> dict:
    """The disk's fsync time for an 8 KiB append (what a durable commit waits for)."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 8192)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return stats(times)


def overhead(ws, run, images: list[bytes], pg, tmp: Path, *, rounds: int, block: int) -> dict:
    """Logging cost on SQLite and on PostgreSQL, side by side in one process."""
    import psycopg

    from imgcls.serving import Predictor
    from imgcls.translog import TransactionLog

    async_url = pg.new_database("overhead_async")
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("ALTER DATABASE overhead_async SET synchronous_commit = off")
    logs = {"sqlite": TransactionLog(tmp / "normal.sqlite"),
            "sqlite_full": TransactionLog(tmp / "full.sqlite", synchronous="FULL"),
            "postgresql": TransactionLog(pg.new_database("overhead")),
            "postgresql_async_commit": TransactionLog(async_url)}
    plain = Predictor(ws, run=run, log=None)
    preds = {"without_log": plain,
             **{f"with_{k}": Predictor(ws, run=run, log=log) for k, log in logs.items()}}
    for p in preds.values():
        for data in images[:20]:
            p.predict(data)
    times, results = interleaved({k: p.predict for k, p in preds.items()}, images, rounds=rounds, block=block)
    tails = {k: tail_ms(times[k], results[k]) for k in times}
    base_ms = float(np.median(times["without_log"]))
    out: dict = {"requests_per_variant": rounds * block, "predict": {k: stats(v) for k, v in times.items()},
                 "after_prediction": {k: stats(v) for k, v in tails.items()}}
    rec = dict(run_id=run.run_id, model_version="bench", top_k=[{"class": c, "score": 0.2} for c in run.classes[:3]],
               image_hash="0" * 64, latency_ms=5.0, source="bench")
    for engine, log in logs.items():
        cost = float(np.median(tails[f"with_{engine}"]) - np.median(tails["without_log"]))
        bare = []
        for _ in range(rounds * block):
            t0 = time.perf_counter()
            log.log_transaction(**rec)
            bare.append((time.perf_counter() - t0) * 1000)
        out[engine] = {"logging_cost_ms": cost, "logging_cost_share": cost / base_ms,
                       "overhead_paired": paired_overhead(times, f"with_{engine}", "without_log", block),
                       "log_transaction_alone": stats(bare)}
    bare = {e: out[e]["log_transaction_alone"]["median_ms"] for e in logs}
    out["log_transaction_median_ms"] = bare
    out["postgresql_vs_sqlite_full_log_transaction_median"] = bare["postgresql"] / bare["sqlite_full"]
    out["postgresql_async_vs_sqlite_log_transaction_median"] = bare["postgresql_async_commit"] / bare["sqlite"]
    out["disk_fsync"] = fsync_ms(tmp)
    for p in preds.values():
        p.close()
    for log in logs.values():
        log.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 requests, kill after 50 (smoke run)")
    args = parser.parse_args(argv)
    bench = start_benchmark("postgres_log", argv)
    total, kill_after, rounds, block = (200, 50, 20, 3) if args.quick else (2000, 500, 150, 5)
    load_start = load_average()

    from imgcls.library import Library
    from imgcls.models import DEFAULT_MODEL, create_model
    from imgcls.runs import save_run
    from imgcls.sample import build_sample, sample_truth

    with tempfile.TemporaryDirectory(prefix="bench-pglog-") as tmp, PostgresServer(max_connections=100) as pg:
        ws = build_sample(Path(tmp) / "zoo", image_size=64, pool_size=300)
        classes = Library(ws).classes()
        run = save_run(ws, create_model(DEFAULT_MODEL, len(classes), seed=0), classes=classes)
        paths = [p for p in sample_truth(ws)["path"] if p.endswith((".png", ".jpg"))][:200]
        images = [Path(p).read_bytes() for p in paths]
        several = several_servers(ws, run.run_id, images, pg.new_database("several"), total=total,
                                  kill_after=kill_after)
        print(json.dumps(several, indent=1), flush=True)
        cost = overhead(ws, run, images, pg, Path(tmp), rounds=rounds, block=block)
        print(json.dumps(cost, indent=1), flush=True)
        server = {"version": pg.bindir.parent.name, "fsync": pg.fsync, "synchronous_commit": "on",
                  "host": "127.0.0.1 (same machine)"}

    result = {
        "claims": [
            f"{SERVERS} serving processes x {CLIENTS} clients x {total} requests on one PostgreSQL log: "
            f"exactly {total} rows, those ids",
            "after SIGKILL of one serving process mid-load, every acknowledged id is in the log",
            "logging cost per request on PostgreSQL, reported beside SQLite (side by side, one process)",
        ],
        "model": DEFAULT_MODEL, "input_size": [64, 64], "quick": args.quick, "postgresql": server,
        "several_servers": several,
        "logging_overhead": cost,
        "exact": several["load"]["exact"],
        "all_acknowledged_survive_kill": several["kill"]["all_acknowledged_present"],
        "machine": machine_info(cpus=os.cpu_count(), load_average_start=load_start, load_average=load_average()),
        "when": utc_now(),
    }
    written = write_result(result, RESULT, bench)  # a --quick run goes to <name>.quick.json
    print(json.dumps({k: result[k] for k in ("exact", "all_acknowledged_survive_kill")}, indent=2))
    print("logging cost share: " + ", ".join(
        f"{e} {cost[e]['logging_cost_share']:.3%} ({cost[e]['logging_cost_ms']:.2f} ms; bare write "
        f"{cost[e]['log_transaction_alone']['median_ms']:.3f} ms)"
        for e in ("sqlite", "sqlite_full", "postgresql", "postgresql_async_commit")))
    print(f"disk fsync {cost['disk_fsync']['median_ms']:.2f} ms")
    print(f"wrote {written.relative_to(ROOT)}")
    return 0 if result["exact"] and result["all_acknowledged_survive_kill"] else 1


if __name__ == "__main__":
    sys.exit(main())
