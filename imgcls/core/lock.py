"""The workspace lock: any number of readers, one writer at a time (like git's ``index.lock``).

Every change to a workspace's library (moves, batches, adds, undo, crash
recovery, flags, benchmark changes, class renames and merges, format
upgrades) happens while its process holds an exclusive OS file lock
(``fcntl.flock``) on ``<workspace>/imgcls.lock``. Reading (scans, counts, the
journal view) takes no lock. The lock file sits at the workspace root, not in
``.imgcls/`` (which is documented as safe to delete), and is never deleted;
the lock itself lives in the kernel, so a process that dies (even by SIGKILL)
releases it and no stale lock is ever left behind.

* A writer that finds the lock taken waits for it, up to a timeout (default
  :data:`DEFAULT_LOCK_TIMEOUT` seconds, or ``$IMGCLS_LOCK_TIMEOUT``), then
  raises :class:`WorkspaceLockedError` naming the holder's pid and command
  line, which every holder writes into the lock file once it has the lock
  (and clears when it lets go).
* The lock is reentrant within a process: one registry per process, keyed by
  the workspace's real path, with a ``threading.RLock`` in front of the OS
  lock. (Two ``flock`` calls on two open file descriptions of the same file
  in one process would otherwise deadlock.) Another thread of the same
  process waits like another process does.
* ``$IMGCLS_UNSAFE_NO_LOCK=1`` turns the lock off. It exists only to measure
  what the lock costs and to show that the multi-process race test fails
  without it; never set it otherwise.

POSIX only, as the project is. This module imports only the standard library.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from imgcls.core.checks import check_number
from imgcls.core.clock import isoformat

__all__ = [
    "LOCK_FILE",
    "DEFAULT_LOCK_TIMEOUT",
    "WorkspaceLock",
    "WorkspaceLockedError",
    "workspace_lock",
    "lock_holder",
    "locking_disabled",
]

#: Name of the lock file at the workspace root.
LOCK_FILE = "imgcls.lock"
#: Seconds a writer waits for the lock before giving up.
DEFAULT_LOCK_TIMEOUT = 60.0
_TIMEOUT_ENV = "IMGCLS_LOCK_TIMEOUT"
_DISABLE_ENV = "IMGCLS_UNSAFE_NO_LOCK"
_MAX_HOLDER_TEXT = 300


class WorkspaceLockedError(TimeoutError):
    """Another process (or thread) held the workspace lock longer than the timeout.

    Attributes:
        holder: What the holder wrote into the lock file (``pid``,
            ``command``, ``since``), or ``{}`` if unknown.
    """

    def __init__(self, message: str, holder: dict | None = None) -> None:
        super().__init__(message)
        self.holder = dict(holder or {})

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def locking_disabled() -> bool:
    """True if ``$IMGCLS_UNSAFE_NO_LOCK`` switches the lock off (measurements only)."""
    return os.environ.get(_DISABLE_ENV, "") not in ("", "0")


def default_timeout() -> float:
    """The wait for a busy lock: ``$IMGCLS_LOCK_TIMEOUT`` seconds if set, else :data:`DEFAULT_LOCK_TIMEOUT`."""
    text = os.environ.get(_TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT
    return value if value >= 0 else DEFAULT_LOCK_TIMEOUT


class _Entry:
    """The per-process state of one workspace's lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rlock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_ENTRIES: dict[str, _Entry] = {}
_GUARD = threading.Lock()


def _entry(path: str) -> _Entry:
    with _GUARD:
        entry = _ENTRIES.get(path)
        if entry is None:
            entry = _ENTRIES[path] = _Entry(path)
        return entry


def _open_lock_file(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)


def _wait_flock(fd: int, timeout: float) -> bool:
    """Block in ``flock`` on a helper thread for at most ``timeout`` seconds.

    A blocked ``flock`` is woken by the kernel as soon as the holder lets go,
    which polling would miss when the holder takes the lock again at once.
    If the wait times out, the helper keeps waiting and, when it finally gets
    the lock, releases it and closes ``fd`` itself (the caller must not).
    """
    import fcntl

    done = threading.Event()
    guard = threading.Lock()
    state = {"ok": False, "abandoned": False, "error": None}

    def worker() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            with guard:
                state["error"] = err
                abandoned = state["abandoned"]
            if abandoned:
                os.close(fd)
            done.set()
            return
        with guard:
            if not state["abandoned"]:
                state["ok"] = True
                done.set()
                return
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    threading.Thread(target=worker, name="imgcls-lock-wait", daemon=True).start()
    done.wait(timeout)
    with guard:
        if state["ok"]:
            return True
        if state["error"] is not None:
            raise state["error"]
        state["abandoned"] = True
    return False


def _flock(path: str, *, blocking: bool, timeout: float) -> int | None:
    """Open the lock file and take the OS lock: the fd, or None if busy."""
    import fcntl

    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        pass
    except BaseException:
        os.close(fd)
        raise
    if not blocking or timeout <= 0:
        os.close(fd)
        return None
    try:
        got = _wait_flock(fd, timeout)
    except BaseException:
        os.close(fd)
        raise
    return fd if got else None  # on a timeout the helper thread owns (and closes) fd


def _command_line() -> str:
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            parts = [p.decode("utf-8", "replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        parts = [sys.executable, *sys.argv]
    text = " ".join(parts)
    return text if len(text) <= _MAX_HOLDER_TEXT else text[: _MAX_HOLDER_TEXT - 3] + "..."


def _write_holder(fd: int) -> None:
    info = {"pid": os.getpid(), "command": _command_line(), "since": isoformat(timespec="seconds")}
    data = (json.dumps(info, ensure_ascii=True) + "\n").encode("ascii")
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)


def lock_holder(root: str | os.PathLike) -> dict:
    """What the current holder of a workspace's lock wrote: ``{pid, command, since}`` ({} if none).

    Args:
        root: The workspace folder.
    """
    path = Path(os.fspath(root)) / LOCK_FILE
    try:
        with open(path, "rb") as fh:
            text = fh.read(4096).decode("utf-8", "replace").strip()
    except OSError:
        return {}
    try:
        info = json.loads(text.splitlines()[0]) if text else {}
    except (ValueError, IndexError):
        return {}
    if not isinstance(info, dict):
        return {}
    return {k: str(info[k])[:_MAX_HOLDER_TEXT] for k in ("pid", "command", "since") if k in info}


class WorkspaceLock:
    """The exclusive lock of one workspace; reentrant within a process.

    Args:
        root: The workspace folder (it must exist).
        timeout: Seconds to wait for a busy lock (default: ``$IMGCLS_LOCK_TIMEOUT``
            or :data:`DEFAULT_LOCK_TIMEOUT`).

    Example:
        >>> with WorkspaceLock(ws.root):
        ...     ...   # change the library: no other writer runs meanwhile
    """

    def __init__(self, root: str | os.PathLike, *, timeout: float | None = None) -> None:
        self.root = Path(os.fspath(root))
        self.timeout = check_number(timeout, "timeout", low=0, allow_none=True,
                                    fix="pass the seconds to wait for a busy workspace lock")
        self.path = os.path.join(os.path.realpath(self.root), LOCK_FILE)
        self._noop_depth = 0

    @property
    def held(self) -> bool:
        """Whether this process holds the lock (in any thread)."""
        return _entry(self.path).depth > 0 or self._noop_depth > 0

    @property
    def depth(self) -> int:
        """How many nested acquisitions of this process hold the lock (0: not held)."""
        return _entry(self.path).depth

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock.

        Args:
            blocking: Wait for a busy lock (else return False at once).
            timeout: Seconds to wait (default: the lock's timeout).

        Returns:
            True when the lock is held; False only when ``blocking`` is False and it is busy.

        Raises:
            WorkspaceLockedError: ``blocking`` and the lock stayed busy for ``timeout`` seconds.
        """
        if locking_disabled():
            self._noop_depth += 1
            return True
        wait = self.timeout if timeout is None else check_number(timeout, "timeout", low=0)
        wait = default_timeout() if wait is None else wait
        entry = _entry(self.path)
        start = time.monotonic()
        if not entry.rlock.acquire(blocking, wait if blocking else -1):
            if not blocking:
                return False
            raise self._locked_error(wait, same_process=True)
        if entry.depth > 0:
            entry.depth += 1
            return True
        try:
            remaining = max(0.0, wait - (time.monotonic() - start)) if blocking else 0.0
            fd = _flock(entry.path, blocking=blocking, timeout=remaining)
        except BaseException:
            entry.rlock.release()
            raise
        if fd is None:
            entry.rlock.release()
            if not blocking:
                return False
            raise self._locked_error(wait, same_process=False)
        entry.fd, entry.depth = fd, 1
        _write_holder(fd)
        return True

    def release(self) -> None:
        """Let go of one level of the lock (the OS lock when the outermost level ends)."""
        if self._noop_depth:
            self._noop_depth -= 1
            return
        entry = _entry(self.path)
        if entry.depth <= 0:
            raise RuntimeError(f"The workspace lock {self.path!r} is not held.")
        entry.depth -= 1
        if entry.depth == 0:
            import fcntl

            fd, entry.fd = entry.fd, None
            try:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)  # no holder any more: the file says so
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        entry.rlock.release()

    def __enter__(self) -> "WorkspaceLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _locked_error(self, wait: float, *, same_process: bool) -> WorkspaceLockedError:
        holder = lock_holder(self.root)
        if same_process:
            who = f"another thread of this process (pid {os.getpid()})"
        elif holder.get("pid"):
            who = f"process {holder['pid']} ({holder.get('command', '?')!r}, holding it since {holder.get('since', '?')})"
        else:
            who = "another process"
        return WorkspaceLockedError(
            f"The workspace {str(self.root)!r} is being changed by {who}; waited {wait:g} s for its "
            f"lock ({LOCK_FILE}). Let that finish and try again, stop it, or wait longer "
            f"(Library(..., lock_timeout=SECONDS) or ${_TIMEOUT_ENV}). The lock is released by the "
            "operating system when the holder exits, so it is never stale.",
            holder,
        )


@contextlib.contextmanager
def workspace_lock(root: str | os.PathLike, *, timeout: float | None = None) -> Iterator[WorkspaceLock]:
    """Hold a workspace's lock for the ``with`` block (see :class:`WorkspaceLock`).

    Args:
        root: The workspace folder.
        timeout: Seconds to wait for a busy lock.

    Raises:
        WorkspaceLockedError: The lock stayed busy for ``timeout`` seconds.
    """
    lock = WorkspaceLock(root, timeout=timeout)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
