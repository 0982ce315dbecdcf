"""Serving processes and client load for the serving benchmarks, written once.

``bench_serving_concurrency.py``, ``bench_serving_hostile.py`` and
``bench_postgres_log.py`` start ``imgcls.serving.serve`` in child processes
on free loopback ports and drive them with threads of HTTP clients::

    from _serving import load, start_servers

    CODE = "import sys; from imgcls.serving import serve; serve(sys.argv[1], port=int(sys.argv[2]))"
    [(proc, url)] = start_servers(CODE, [[str(ws.root), "{port}"]])
    threads, records, t0 = load([url], images, total=2000)   # 8 clients share 2,000 requests
    for t in threads:
        t.join()

Import ``_common`` first (it sets the environment every benchmark runs in).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from _common import child_env

__all__ = ["CLIENTS", "free_port", "kill_summary", "load", "load_summary", "logged", "start_servers"]

#: Client threads of :func:`load` (the serving benchmarks' "8 clients").
CLIENTS = 8


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (another process may still take it before the server binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(procs) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def start_servers(code: str, arg_lists: Sequence[Sequence[str]], *, timeout: float = 300.0,
                  attempts: int = 3) -> list[tuple[subprocess.Popen, str]]:
    """Start one ``python -c code *args`` per entry of ``arg_lists``, together; return them once all answer.

    Each argument list may hold ``"{port}"``, replaced by a free port. TensorFlow's
    start-up logging is silenced in the children, their stdout dropped, stderr
    kept for the error message. A server that lost its port to another process
    between the check and the bind ("address already in use") is started again
    on a new one, up to ``attempts`` times.

    Returns:
        ``[(process, "http://127.0.0.1:PORT")]`` in the order of ``arg_lists``.

    Raises:
        RuntimeError: A server exited or did not answer ``/health`` within
            ``timeout`` seconds (every started server is killed first); the
            message ends with its stderr.
    """
    env = child_env(TF_CPP_MIN_LOG_LEVEL="3")
    started: list[tuple[subprocess.Popen, str]] = []

    def spawn(args: Sequence[str]) -> tuple[subprocess.Popen, str]:
        port = free_port()
        argv = [a.replace("{port}", str(port)) for a in args]
        proc = subprocess.Popen([sys.executable, "-c", code, *argv], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return proc, f"http://127.0.0.1:{port}"

    try:
        started = [spawn(args) for args in arg_lists]
        deadline = time.monotonic() + timeout
        for k, args in enumerate(arg_lists):
            tries = 1
            while not _healthy(started[k][1]):
                proc = started[k][0]
                if proc.poll() is not None:
                    err = proc.stderr.read()
                    if b"address already in use" in err.lower() and tries < attempts:
                        started[k] = spawn(args)
                        tries += 1
                        continue
                    raise RuntimeError(f"A server did not start: {err.decode(errors='replace')[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"A server did not answer /health within {timeout:.0f} s.")
                time.sleep(0.25)
        return started
    except BaseException:
        _stop(started)
        raise


def load(urls: Sequence[str], images: Sequence[bytes], *, total: int | None,
         stop: threading.Event | None = None, clients: int = CLIENTS, max_per_client: int = 100_000):
    """``clients`` threads posting images to ``/predict``; client ``c`` talks to ``urls[c % len(urls)]``.

    With ``total`` the clients share exactly ``total`` requests (image ``i`` is
    ``images[i % len(images)]``); otherwise each sends until ``stop`` is set or
    its server stops answering.

    Returns:
        ``(threads, records, t0)``: the started threads (join them), the list
        they append to (one dict per request: ``status`` (None when the
        connection failed), ``id`` (the transaction id), ``class``, ``server``
        (index into ``urls``), ``ms``; ``error`` on failure) and the
        ``perf_counter`` time they started.
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
        server = c % len(urls)
        with httpx.Client(base_url=urls[server], timeout=120) as http:
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
                    rec = {"status": r.status_code, "id": body.get("transaction_id"), "class": body.get("class"),
                           "server": server, "ms": (time.perf_counter() - t0) * 1000}
                except (httpx.HTTPError, ValueError) as exc:
                    rec = {"status": None, "error": type(exc).__name__, "server": server,
                           "ms": (time.perf_counter() - t0) * 1000}
                with lock:
                    records.append(rec)
                if rec["status"] is None and total is None:
                    return  # its server is gone

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    return threads, records, t0


def logged(where):
    """The transactions of the log at ``where`` (a SQLite file or database URL), indexed by id."""
    from imgcls.translog import TransactionLog

    with TransactionLog(where, create=False) as log:
        return log.transactions(columns=["id", "status", "top1_class"]).set_index("id")


def load_summary(records: list[dict], rows, *, total: int, wall: float, clients: int = CLIENTS) -> dict:
    """What :func:`load` with ``total`` requests left: answers, distinct ids, log rows; ``exact`` when all match."""
    import numpy as np

    ok = [r for r in records if r["status"] == 200]
    ids = [r["id"] for r in ok]
    ms = np.asarray([r["ms"] for r in records])
    out = {
        "clients": clients, "requests": total, "answered": len(records),
        "ok": len(ok), "distinct_ids": len(set(ids)), "rows_in_log": int(len(rows)),
        "ids_match_log": set(ids) == set(rows.index),
        "seconds": wall, "requests_per_s": total / wall,
        "latency_ms_p50": float(np.median(ms)), "latency_ms_p95": float(np.percentile(ms, 95)),
    }
    out["exact"] = bool(len(records) == total and len(ok) == total and len(set(ids)) == total
                        and len(rows) == total and out["ids_match_log"])
    return out


def kill_summary(records: list[dict], rows, *, rows_before: int) -> dict:
    """After a ``kill -9`` under load: is every acknowledged id in the log, with the class the client was told?"""
    acked = {r["id"]: r["class"] for r in records if r["status"] == 200}
    missing = sorted(set(acked) - set(rows.index))
    wrong = [i for i, c in acked.items() if i in rows.index and rows.loc[i, "top1_class"] != c]
    return {
        "acknowledged": len(acked), "failed_requests_at_kill": sum(1 for r in records if r["status"] is None),
        "rows_added": int(len(rows) - rows_before),
        "committed_not_acknowledged": int(len(rows) - rows_before - len(acked)),
        "missing_acknowledged": len(missing), "missing_ids": missing[:20], "class_mismatch": len(wrong),
        "all_acknowledged_present": not missing and not wrong,
    }
