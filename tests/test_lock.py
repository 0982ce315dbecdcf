"""The workspace lock: one writer at a time, reentrant in a process, never stale, readers free."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from imgcls.core import open_workspace
from imgcls.core.lock import LOCK_FILE, WorkspaceLock, WorkspaceLockedError, lock_holder
from imgcls.library import Library
from library_images import png, tree

ROOT = Path(__file__).resolve().parents[1]

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from imgcls.core.lock import WorkspaceLock
    with WorkspaceLock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


@pytest.fixture
def ws(tmp_path):
    return open_workspace(tmp_path / "ws")


def hold_in_subprocess(root: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root), str(seconds)], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == b"held"
    return proc


def test_lock_file_at_the_root_is_reentrant_and_cleared(ws):
    assert ws.lock_file == ws.root / LOCK_FILE and ws.lock_file.exists()  # made with the workspace
    lock = WorkspaceLock(ws.root)
    with lock:
        with WorkspaceLock(ws.root):  # reentrant within a process (no self-deadlock)
            assert lock.depth == 2
        holder = lock_holder(ws.root)
        assert holder["pid"] == str(os.getpid()) and holder["command"] and holder["since"]
    assert lock.depth == 0 and not lock.held
    assert ws.lock_file.exists() and ws.lock_file.read_bytes() == b""  # never deleted; no holder named


def test_second_process_waits_then_times_out_naming_the_holder(ws):
    proc = hold_in_subprocess(ws.root, 30)
    try:
        lock = WorkspaceLock(ws.root)
        assert lock.acquire(blocking=False) is False
        t0 = time.monotonic()
        with pytest.raises(WorkspaceLockedError) as caught:
            lock.acquire(timeout=0.5)
        assert 0.4 < time.monotonic() - t0 < 10
        message = str(caught.value)
        assert f"process {proc.pid}" in message and "WorkspaceLock" in message  # pid and its command line
        assert caught.value.holder["pid"] == str(proc.pid)
        lib = Library(ws, lock_timeout=0.3)  # opening does not wait (and does no recovery)
        files = tree(ws, {"cat": 1})
        with pytest.raises(WorkspaceLockedError):
            lib.move(files["cat"][0], "dog")
        assert files["cat"][0].exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_never_leaves_a_stale_lock(ws):
    proc = hold_in_subprocess(ws.root, 60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with WorkspaceLock(ws.root, timeout=5):  # the OS released it with the process
        pass


def test_a_writer_waits_for_the_holder_and_then_proceeds(ws):
    files = tree(ws, {"cat": 2})
    proc = hold_in_subprocess(ws.root, 1.5)
    try:
        t0 = time.monotonic()
        new = Library(ws, lock_timeout=30).move(files["cat"][0], "dog")
        assert time.monotonic() - t0 > 0.5 and new.exists()
    finally:
        proc.wait(timeout=30)


def test_another_thread_waits_like_another_process(ws):
    lock = WorkspaceLock(ws.root)
    order = []
    lock.acquire()

    def other():
        with WorkspaceLock(ws.root, timeout=10):
            order.append("other")

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.3)
    order.append("first")
    lock.release()
    t.join(10)
    assert order == ["first", "other"]
    with pytest.raises(WorkspaceLockedError, match="another thread"):
        done = threading.Event()

        def hold():
            with WorkspaceLock(ws.root):
                done.set()
                time.sleep(1.0)

        h = threading.Thread(target=hold)
        h.start()
        done.wait(5)
        try:
            WorkspaceLock(ws.root).acquire(timeout=0.2)
        finally:
            h.join()


def test_opening_never_recovers_a_move_another_process_has_in_flight(ws):
    """A journaled move between link and unlink while its writer holds the lock is live, not crashed."""
    src = png(ws.library / "cat" / "a.png", seed=1)
    (ws.library / "dog").mkdir()
    dst = ws.library / "dog" / "a.png"
    os.link(src, dst)
    base = {"id": "op1", "batch": "b1", "op": "move", "src": "library/cat/a.png", "folder": "library/dog",
            "hash": "x", "label": "dog", "undoes": None}
    with open(ws.journal, "a") as fh:
        fh.write(json.dumps({**base, "state": "begin"}) + "\n")
    proc = hold_in_subprocess(ws.root, 30)
    try:
        lib = Library(ws)
        assert lib.recovered_ == [] and dst.exists() and src.exists()  # left to its live writer
    finally:
        proc.kill()
        proc.wait()
    lib = Library(ws)  # the writer is gone: now it is a crash, rolled back
    assert [e["state"] for e in lib.recovered_] == ["aborted"]
    assert src.exists() and not dst.exists()
