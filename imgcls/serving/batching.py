"""Worker threads that gather the work of concurrent requests: group commit and batched inference.

Both are measured side by side in ``benchmarks/bench_serving_concurrency.py``
(see :mod:`imgcls.serving.predictor` for the numbers): batched inference
raises throughput under concurrent clients, group commit does not (a WAL
commit is cheap beside a prediction). Either way :meth:`BatchingWorker.submit`
returns only once the request's own item is done, so no request is answered
before its row is committed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from imgcls.translog import TransactionLog

__all__ = ["BatchingWorker", "GroupCommitWriter", "InferenceBatcher"]


class BatchingWorker:
    """One thread that serves the items of all waiting requests at once.

    :meth:`submit` blocks until the item's result is ready (or raises its
    error). While one batch is being processed, new requests queue up and
    form the next batch; a lone request is processed at once (no waiting for
    company). Subclasses implement :meth:`_process`, which must resolve every
    future of the batch.

    Args:
        max_batch: Largest batch processed at once.

    Attributes:
        batches: Batches processed (for measurements).
    """

    _name = "imgcls-worker"
    _what = "worker"

    def __init__(self, *, max_batch: int) -> None:
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self.batches = 0
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> Any:
        """Queue ``item``, wait for its batch, and return its result (or raise its error)."""
        if self._closed:
            raise ValueError(f"The {self._what} is closed; the Predictor was closed.")
        future: Future = Future()
        self._queue.put((item, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._process(batch)
            if stop:
                return

    def _process(self, batch: list) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued batches and stop the thread (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)


class GroupCommitWriter(BatchingWorker):
    """Commits the transaction rows of all waiting requests at once.

    :meth:`submit` takes a row (the keyword arguments of
    :meth:`~imgcls.translog.TransactionLog.log_transaction`) and returns its
    id once committed. A bad row fails only its own request.

    Args:
        log: The log written to.
        max_batch: Largest number of rows per commit.

    Attributes:
        rows: Rows committed (for measurements).
    """

    _name = "imgcls-log-writer"
    _what = "log writer"

    def __init__(self, log: TransactionLog, *, max_batch: int = 256) -> None:
        self._log = log
        self.rows = 0
        super().__init__(max_batch=max_batch)

    def _process(self, batch: list) -> None:
        try:
            ids = self._log.log_transactions([rec for rec, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            # Isolate the culprit: one bad row must not fail its neighbours.
            for rec, fut in batch:
                try:
                    fut.set_result(self._log.log_transactions([rec])[0])
                except BaseException as one:  # noqa: BLE001
                    fut.set_exception(one)
            return
        self.batches += 1
        self.rows += len(batch)
        for (_, fut), tid in zip(batch, ids):
            fut.set_result(tid)


class InferenceBatcher(BatchingWorker):
    """Runs the model on the images of all waiting requests at once.

    :meth:`submit` takes one image (uint8 pixels ``(h, w, 3)``) and returns
    its class probabilities.

    Args:
        infer: Probabilities ``(n, num_classes)`` of a stack of images ``(n, h, w, 3)``.
        max_batch: Largest number of images per call.

    Attributes:
        images: Images run (for measurements).
    """

    _name = "imgcls-inference"
    _what = "inference thread"

    def __init__(self, infer: Callable[[np.ndarray], np.ndarray], *, max_batch: int) -> None:
        self._infer = infer
        self.images = 0
        super().__init__(max_batch=max_batch)

    def _process(self, batch: list) -> None:
        try:
            probs = self._infer(np.stack([pixels for pixels, _ in batch]))
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
            for _, fut in batch:
                fut.set_exception(exc)
        else:
            self.batches += 1
            self.images += len(batch)
            for (_, fut), p in zip(batch, probs):
                fut.set_result(p)
