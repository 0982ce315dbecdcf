"""imgcls.translog under concurrency: threads share one log, and acknowledged rows survive SIGKILL.

On both engines (conftest ``log_url``); several processes writing one PostgreSQL log at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from imgcls.translog import TransactionLog


@pytest.fixture
def ws(log_url):
    return log_url


def test_threads_share_one_log_and_a_second_connection(ws):
    shared = TransactionLog(ws)
    other = TransactionLog(ws)  # another connection, as another process would have
    per_thread, errors, ids = 150, [], []
    lock = threading.Lock()

    def work(log, k):
        try:
            for i in range(per_thread):
                if i % 10 == 0:
                    got = log.log_transactions([{"run_id": "run-a", "top_k": {"a": 0.5}}] * 3)
                else:
                    got = [log.log_transaction("run-a", {"a": 0.5}, source=f"t{k}")]
                with lock:
                    ids.extend(got)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(shared if k < 6 else other, k)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    shared.close()
    other.close()
    assert not errors
    expected = 8 * (per_thread + 2 * (per_thread // 10))
    assert len(ids) == len(set(ids)) == expected
    with TransactionLog(ws) as log:
        assert log.count() == expected
        assert sorted(log.transactions(columns=["id"])["id"]) == sorted(ids)


WRITER = r"""
import sys
from imgcls.translog import TransactionLog
log = TransactionLog(sys.argv[1])
i = 0
while True:
    tid = log.log_transaction("run-a", {"zebra": 0.9}, source=f"n{i}")
    print(tid, flush=True)  # acknowledged to the "client" only after the commit
    i += 1
"""


def test_acknowledged_transactions_survive_sigkill(log_url):
    path = log_url
    TransactionLog(path).close()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.append(int(line))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(acknowledged) >= 300
    with TransactionLog(path) as log:
        stored = set(log.transactions(columns=["id"])["id"])
    assert set(acknowledged) <= stored


@pytest.mark.postgres
def test_several_processes_write_one_postgresql_log(postgres_server):
    """Three processes write one PostgreSQL log at once; one is killed; every acknowledged id is there."""
    url = postgres_server.new_database()
    TransactionLog(url).close()  # created once; the writers find it current
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    acknowledged: list[list[int]] = [[] for _ in procs]

    def read(k):
        for line in procs[k].stdout:
            acknowledged[k].append(int(line))

    readers = [threading.Thread(target=read, args=(k,), daemon=True) for k in range(3)]
    for th in readers:
        th.start()
    try:
        deadline = time.monotonic() + 90
        while min(len(a) for a in acknowledged) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        procs[0].send_signal(signal.SIGKILL)  # mid-load: the others keep writing
        time.sleep(0.3)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        for th in readers:
            th.join(timeout=10)
    ids = [i for a in acknowledged for i in a]
    assert min(len(a) for a in acknowledged) >= 200
    assert len(ids) == len(set(ids))  # no id handed out twice across processes
    with TransactionLog(url, create=False) as log:
        stored = set(log.transactions(columns=["id"])["id"])
        assert log.migrations()["version"].is_unique
    assert set(ids) <= stored
