"""Live reload: a server that follows the production pointer.

:class:`ProductionFollower` polls ``runs/production.json`` (its size and
modification time every ``interval`` seconds, its content only when they
change). When the pointer names another run (``imgcls promote`` accepted a
candidate, or ``imgcls rollback`` restored the previous one) it loads that
run in its own thread (the model, its warm-up call) and then has the
predictor swap to it atomically (:meth:`~imgcls.serving.Predictor.reload`):
requests already in flight finish on the old model and their rows name the
old model; requests that start after the swap use the new one. A run that
fails to load is reported (``last_error``, the ``imgcls.serving`` logger) and
the old model keeps serving; the pointer is tried again when it changes.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from imgcls.runs import production_run_id

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.serving.predictor import Predictor

__all__ = ["ProductionFollower"]

_log = logging.getLogger("imgcls.serving")


class ProductionFollower:
    """A daemon thread that reloads a predictor when ``runs/production.json`` changes.

    Args:
        predictor: The predictor to keep on the production run.
        interval: Seconds between two looks at the pointer's size and mtime.

    Attributes:
        reloads: Swaps done so far.
        last_error: The last load failure (text), or None.
    """

    def __init__(self, predictor: "Predictor", *, interval: float = 1.0) -> None:
        self._predictor = predictor
        self._interval = float(interval)
        self._path = predictor.workspace.production_file
        self._seen: Any = self._signature()
        self._stop = threading.Event()
        self.reloads = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="imgcls-follow-production",
                                        daemon=True)
        self._thread.start()

    def _signature(self) -> Any:
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            sig = self._signature()
            if sig == self._seen:
                continue
            self._seen = sig
            self.check()

    def check(self) -> bool:
        """Look at the pointer now; reload when it names another run. Returns True on a swap."""
        try:
            run_id = production_run_id(self._predictor.workspace)
        except ValueError as exc:  # a damaged pointer: keep serving, say why
            self.last_error = str(exc)
            _log.warning("production pointer unreadable, still serving %s: %s",
                         self._predictor.run_id, exc)
            return False
        if run_id is None or run_id == self._predictor.run_id:
            return False
        try:
            swapped = self._predictor.reload(run_id)
        except Exception as exc:  # noqa: BLE001 - the old model keeps serving
            self.last_error = f"{type(exc).__name__}: {exc}"
            _log.error("could not load production run %s, still serving %s: %s",
                       run_id, self._predictor.run_id, self.last_error)
            return False
        if swapped:
            self.reloads += 1
            self.last_error = None
            _log.info("now serving %s (%s)", run_id, self._predictor.model_version)
        return swapped

    def close(self, timeout: float = 5.0) -> None:
        """Stop polling (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
