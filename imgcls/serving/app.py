"""Serving: a predictor that logs every transaction, its HTTP endpoint, and demo traffic.

Three faces of one object:

* :class:`Predictor` loads a run (the production run by default) and predicts
  the top-k classes of image bytes, files, numpy arrays or Pillow images. It
  decodes exactly as training does (:func:`imgcls.core.read_image_resized`
  at the run's input size, the same call the tf.data pipelines make), and
  logs every request, successful or not, through
  :class:`imgcls.translog.TransactionLog`. The same object is used from a
  notebook (no HTTP) and behind the server, so both log the same way.
* :func:`create_app` wraps a predictor in a FastAPI app (``POST /predict``,
  ``POST /evaluations``, ``GET /health``, ``GET /model``); :func:`serve`
  runs it with uvicorn (one worker, 127.0.0.1 unless told otherwise) and
  :func:`start_server` runs it in a background thread (notebooks, tests).
* :func:`simulate_traffic` replays the sample's unlabelled pool through a
  predictor or a running server over several simulated weeks and two model
  versions, and records manual evaluations from the hidden labels, all
  marked ``simulated`` so reports can tell demo data from real traffic.

**Durability.** A transaction id reaches a client only after its row is
committed (:meth:`TransactionLog.log_transaction` commits before it returns).
If the write fails, the request fails with :class:`LogWriteError` (HTTP 503)
and the prediction is not returned: the log never misses an acknowledged
request. In WAL mode with ``synchronous=NORMAL`` a commit survives the death
of the process (``SIGKILL``); ``benchmarks/bench_serving_concurrency.py``
checks it by killing a loaded server.

**Concurrency.** uvicorn runs one worker process with one model. Request
bodies are parsed in the event loop; the blocking work (decode, model call,
log write) runs in Starlette's thread pool. The model runs as one traced
``tf.function`` (any batch size) and its calls are serialised by a lock
(TensorFlow already spreads one call over the cores); decoding runs in
parallel (Pillow releases the GIL). Two options gather the work of
concurrent requests, measured side by side in
``benchmarks/bench_serving_concurrency.py`` (8 clients, mini_inception at
64x64, 2 cores):

* ``batch_inference=True``: one inference thread runs the model on the
  images of all waiting requests at once: 1.3-1.6x the throughput and
  0.55-0.75x the p95 latency of one model call per request (two runs on a
  shared, busy machine), with no measurable cost for a lone client, so
  :func:`serve` turns it on.
* ``group_commit=True``: one writer thread commits the rows of all waiting
  requests in one SQLite transaction, then releases them. It did not help
  (0.94-1.04x, i.e. noise): a WAL commit takes ~0.1-0.3 ms beside a 5-20 ms
  prediction, so :func:`serve` leaves it off. Either way no request is
  answered before its row is committed.

**Limits.** An upload larger than ``max_bytes`` is refused with 413 while it
is being received (the body is counted, not trusted from Content-Length);
an image whose header claims more than ``max_pixels`` pixels is refused with
413 before any pixel is decoded (decompression bombs); anything that is not
a readable image gets 400 with the reason. All of them are logged as
``status="failed"`` transactions with the reason in ``error``.
"""

import datetime as _dt
import hashlib
import io
import json
import os
import queue
import secrets
import shutil
import socket
import threading
import time as _time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.images import ImageError, file_hash, read_image_resized
from imgcls.core.workspace import Workspace, open_workspace
from imgcls.runs import Run, load_run, version_label
from imgcls.translog import VERDICTS, TransactionLog, UnknownTransactionError

__all__ = [
    "DEFAULT_TOP_K",
    "DEFAULT_MAX_BYTES",
    "SERVED_DIR",
    "SIMULATED_TIME_HEADER",
    "Predictor",
    "RejectedImage",
    "LogWriteError",
    "create_app",
    "serve",
    "start_server",
    "RunningServer",
    "simulate_traffic",
]

#: Classes returned (and logged) per prediction unless told otherwise.
DEFAULT_TOP_K = 3
#: Largest accepted upload (bytes of the image file).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Folder (under the workspace) where kept inputs go: ``served/<yyyy-mm-dd>/<hash>.<ext>``.
SERVED_DIR = "served"
#: Request header carrying the time of a simulated request (accepted only by
#: an app created with ``allow_simulated=True``).
SIMULATED_TIME_HEADER = "X-Imgcls-Simulated-Time"

_MULTIPART_SLACK = 64 * 1024  # multipart framing and form fields beside the file
_HTTP_SOURCE = "http"
_PYTHON_SOURCE = "python"
_SIMULATED_SOURCE = "simulated"
_SIMULATED_REVIEWER = "simulated-reviewer"
_MAGIC = (  # (prefix, offset, extension): the formats imgcls.core decodes
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"WEBP", 8, "webp"),
    (b"II*\x00", 0, "tif"),
    (b"MM\x00*", 0, "tif"),
)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
class RejectedImage(ImageError):
    """A request refused because of its image; it was logged as a failed transaction.

    Attributes:
        path: The file or upload name (``"<upload>"`` for bare bytes).
        reason: Why it was refused (what a client sees).
        kind: :attr:`imgcls.core.ImageError.kind`, or ``"too_large"`` for
            an upload over ``max_bytes``, ``"no_file"`` for a request
            without an image.
        status_code: The HTTP status the server answers with (400 or 413).
        transaction_id: The failed transaction's id (None without a log).
    """

    def __init__(self, path, reason: str, kind: str, *, status_code: int = 400,
                 transaction_id: int | None = None) -> None:
        super().__init__(path, reason, kind)
        self.status_code = status_code
        self.transaction_id = transaction_id


class LogWriteError(RuntimeError):
    """The transaction log could not be written, so the request was not answered.

    A client never gets a prediction whose transaction is not committed; the
    original error is the ``__cause__``.
    """


def _status_for(kind: str) -> int:
    if kind == "too_large":
        return 413
    if kind in ("io_error", "permission", "missing", "not_a_file", "directory"):
        return 500  # our own temp file went wrong, not the client's image
    return 400


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _as_utc(value: Any, name: str) -> _dt.datetime:
    """A timezone-aware UTC datetime from a datetime, Timestamp or ISO string."""
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"`{name}` is not an ISO 8601 time. Received: {name}={value!r}. "
                "Use e.g. '2025-01-31T14:05:00Z'."
            ) from None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
    raise ValueError(
        f"`{name}` must be a datetime, date or ISO 8601 string. Received: {name}={value!r}"
    )


def _extension(data: bytes) -> str:
    for magic, offset, ext in _MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return ext
    return "img"


# --------------------------------------------------------------------------
# batching worker threads: group commit and batched inference
# --------------------------------------------------------------------------
class _BatchingWorker:
    """One thread that serves the items of all waiting requests at once.

    :meth:`submit` blocks until the item's result is ready (or raises its
    error). While one batch is being processed, new requests queue up and
    form the next batch; a lone request is processed at once (no waiting for
    company). Subclasses implement :meth:`_process`, which must resolve every
    future of the batch.
    """

    _name = "imgcls-worker"
    _what = "worker"

    def __init__(self, *, max_batch: int) -> None:
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self.batches = 0  # batches processed (for measurements)
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> Any:
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
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)


class _GroupCommitWriter(_BatchingWorker):
    """Commits the transaction rows of all waiting requests at once.

    :meth:`submit` takes a row and returns its id once committed.
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


class _InferenceBatcher(_BatchingWorker):
    """Runs the model on the images of all waiting requests at once.

    :meth:`submit` takes one image and returns its probabilities.
    """

    _name = "imgcls-inference"
    _what = "inference thread"

    def __init__(self, infer, *, max_batch: int) -> None:
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


# --------------------------------------------------------------------------
# the predictor
# --------------------------------------------------------------------------
class Predictor:
    """A run's model, ready to predict and log every transaction.

    Args:
        workspace: The workspace (or its folder).
        run: The run to serve: ``"production"`` (default), ``"latest"``, a run
            id, a run folder or a :class:`~imgcls.runs.Run`.
        log: ``True`` (default) opens the workspace's transaction log;
            a :class:`~imgcls.translog.TransactionLog` is used as given (and
            not closed by :meth:`close`); ``None`` or ``False`` logs nothing
            (for measurements; every result then has ``transaction_id=None``).
        top_k: Classes returned and logged per prediction.
        keep_inputs: Store every decoded input under the workspace as
            ``served/<yyyy-mm-dd>/<sha256>.<ext>`` and log that path.
        max_bytes: Largest image (bytes) accepted from bytes / uploads.
        max_pixels: Largest pixel count (from the header, before decoding);
            default the workspace's ``max_pixels``.
        source: The ``source`` logged for calls from Python (the server
            passes ``"http"``).
        model_version: Human label logged with every transaction (e.g.
            ``"v2"``); default ``v<n>`` when the run was the n-th run
            promoted to production (``runs/promotions.jsonl``), else the run id.
        group_commit: Commit the rows of concurrent requests together from a
            writer thread (see the module docs).
        batch_inference: Run the model on the images of concurrent requests
            together, from one inference thread (up to ``max_batch`` images
            per call), instead of one call per request.
        max_batch: Largest batch ``batch_inference`` forms.

    Attributes:
        workspace, run, run_id, classes, image_size, model_version, log, top_k,
        keep_inputs, max_bytes, max_pixels, source.

    Example:
        >>> with Predictor(ws) as predictor:
        ...     result = predictor.predict("zebra.jpg")
        >>> result["class"], result["transaction_id"]
        ('zebra', 1)
    """

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike,
        *,
        run: "Run | str | os.PathLike" = "production",
        log: "TransactionLog | bool | None" = True,
        top_k: int = DEFAULT_TOP_K,
        keep_inputs: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int | None = None,
        source: str = _PYTHON_SOURCE,
        model_version: str | None = None,
        group_commit: bool = False,
        batch_inference: bool = False,
        max_batch: int = 32,
    ) -> None:
        self.workspace = open_workspace(workspace, create=False)
        self.top_k = check_int(top_k, "top_k")
        self.max_bytes = check_int(max_bytes, "max_bytes")
        self.max_pixels = check_int(
            self.workspace.max_pixels if max_pixels is None else max_pixels, "max_pixels")
        if not isinstance(source, str) or not source:
            raise ValueError(f"`source` must be a non-empty string. Received: source={source!r}")
        self.source = source
        self.keep_inputs = bool(keep_inputs)
        max_batch = check_int(max_batch, "max_batch")
        self.run = load_run(run, self.workspace)
        self.run_id = self.run.run_id
        self.classes = list(self.run.classes)
        self.model = self.run.model
        size = self.run.image_size
        if size is None or None in size:
            shape = self.model.input_shape
            size = (int(shape[1]), int(shape[2]))
        self.image_size = (int(size[0]), int(size[1]))
        n_out = self.model.output_shape[-1]
        if n_out != len(self.classes):
            raise ValueError(
                f"Run {self.run_id!r} has {len(self.classes)} classes but its model has "
                f"{n_out} outputs; the run folder is inconsistent. Retrain or re-save it."
            )
        self.model_version = model_version or _version_label(self.workspace, self.run_id)
        self._infer_lock = threading.Lock()
        self._tmp_dir = self.workspace.cache_dir / "serving-tmp"
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale(self._tmp_dir)

        self._own_log = False
        if log is True:
            self.log: TransactionLog | None = TransactionLog(self.workspace)
            self._own_log = True
        elif log is None or log is False:
            self.log = None
        elif isinstance(log, TransactionLog):
            self.log = log
        else:
            raise ValueError(
                "`log` must be True (the workspace's log), a TransactionLog, or None "
                f"(no logging). Received: log={log!r}"
            )
        self._writer = _GroupCommitWriter(self.log) if (group_commit and self.log) else None
        self._batcher = _InferenceBatcher(self._infer, max_batch=max_batch) if batch_inference else None
        # One traced graph for any batch size (Keras' predict_on_batch traces
        # twice before it generalises the batch dimension), built now rather
        # than on the first request.
        import tensorflow as tf

        model = self.model
        self._forward = tf.function(
            lambda x: model(x, training=False), autograph=False,
            input_signature=[tf.TensorSpec([None, *self.image_size, 3], tf.float32)])
        self._infer(np.zeros((1, *self.image_size, 3), dtype=np.uint8))

    # --- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        """Stop the worker threads and close the log if this predictor opened it."""
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._own_log and self.log is not None:
            self.log.close()

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Predictor(run={self.run_id!r}, version={self.model_version!r}, "
            f"classes={len(self.classes)}, input={self.image_size}, "
            f"log={'off' if self.log is None else str(self.log.path)!r})"
        )

    def info(self) -> dict:
        """What is being served (``GET /model``)."""
        created = self.run.created
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "model": self.run.model_name,
            "classes": list(self.classes),
            "num_classes": len(self.classes),
            "input_size": list(self.image_size),
            "generation": self.run.generation,
            "parent": self.run.parent,
            "created": None if created is None else created.isoformat(),
            "top_k": self.top_k,
            "logging": self.log is not None,
            "keep_inputs": self.keep_inputs,
            "max_bytes": self.max_bytes,
            "max_pixels": self.max_pixels,
        }

    # --- the model ---------------------------------------------------------
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities (n, num_classes) for uint8 pixels (n, h, w, 3)."""
        x = np.asarray(batch, dtype=np.float32)
        with self._infer_lock:  # Keras model objects are not documented thread-safe
            probs = self._forward(x).numpy()
        return np.asarray(probs, dtype=np.float64)

    def _top(self, probs: np.ndarray, k: int) -> list[dict]:
        k = min(k, len(self.classes))
        order = np.argsort(-probs, kind="stable")[:k]
        return [{"class": self.classes[i], "score": round(float(probs[i]), 6)} for i in order]

    # --- decoding ----------------------------------------------------------
    def _decode_bytes(self, data: bytes, name: str, when: _dt.datetime):
        """(pixels, sha256, kept path or None) for an uploaded image; ImageError on a
        bad one, with the upload's sha256 as its ``digest`` (see :func:`_upload_digest`)."""
        digest = hashlib.sha256(data).hexdigest()
        if len(data) > self.max_bytes:
            err = ImageError(
                name,
                f"the upload has {len(data):,} bytes, more than max_bytes={self.max_bytes:,}; "
                "send a smaller image",
                "too_large",
            )
            err.digest = digest
            raise err
        tmp = self._tmp_dir / f"{secrets.token_hex(8)}.upload"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            try:
                pixels = read_image_resized(tmp, self.image_size, max_pixels=self.max_pixels)
            except ImageError as err:
                bad = ImageError(name, err.reason, err.kind)
                bad.digest = digest
                raise bad from None
            kept = None
            if self.keep_inputs:
                kept = self._kept_path(digest, _extension(data[:16]), when)
                os.replace(tmp, kept)
            return pixels, digest, kept
        finally:
            tmp.unlink(missing_ok=True)

    def _decode_path(self, path: Path, when: _dt.datetime):
        digest = file_hash(path)
        pixels = read_image_resized(path, self.image_size, max_pixels=self.max_pixels)
        kept = str(path.resolve())
        if self.keep_inputs:
            with open(path, "rb") as fh:
                head = fh.read(16)
            target = self._kept_path(digest, _extension(head), when)
            if not target.exists():
                tmp = self._tmp_dir / f"{secrets.token_hex(8)}.upload"
                try:
                    shutil.copyfile(path, tmp)
                    os.replace(tmp, target)
                finally:
                    tmp.unlink(missing_ok=True)
            kept = target
        return pixels, digest, kept

    def _kept_path(self, digest: str, ext: str, when: _dt.datetime) -> Path:
        folder = self.workspace.root / SERVED_DIR / f"{when:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{digest}.{ext}"

    def _decode(self, image: Any, when: _dt.datetime):
        """(pixels, image_hash, image_path, name) for any accepted input."""
        if isinstance(image, (bytes, bytearray, memoryview)):
            pixels, digest, kept = self._decode_bytes(bytes(image), "<upload>", when)
            return pixels, digest, kept, "<upload>"
        if isinstance(image, (str, os.PathLike)):
            path = Path(os.fspath(image)).expanduser()
            pixels, digest, kept = self._decode_path(path, when)
            return pixels, digest, kept, str(path)
        if isinstance(image, np.ndarray) or _is_pil(image):
            data = _encode_png(image)
            pixels, digest, kept = self._decode_bytes(data, "<array>", when)
            return pixels, digest, kept, "<array>"
        raise ValueError(
            "`image` must be image bytes, a file path, a uint8 numpy array (H, W, 3) or "
            f"a PIL image. Received: {type(image).__name__}"
        )

    # --- logging -----------------------------------------------------------
    def _record(self, *, top_k: list[dict] | None, image_hash: str | None, latency_ms: float,
                source: str, image_path: Any, error: str | None, simulated: bool,
                when: _dt.datetime) -> dict:
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "top_k": top_k or None,
            "image_hash": image_hash,
            "latency_ms": round(float(latency_ms), 3),
            "source": source,
            "image_path": None if image_path is None else str(image_path),
            "status": "failed" if error is not None else "ok",
            "error": error,
            "simulated": bool(simulated),
            "time": when,
        }

    def _write(self, record: dict) -> int | None:
        if self.log is None:
            return None
        try:
            if self._writer is not None:
                return int(self._writer.submit(record))
            return int(self.log.log_transaction(**record))
        except Exception as exc:  # noqa: BLE001 - any failed write fails the request
            raise LogWriteError(
                f"The transaction log {str(self.log.path)!r} could not be written "
                f"({type(exc).__name__}: {exc}). The request was not answered so that no "
                "served prediction goes unrecorded; fix the log (disk space, permissions, "
                "a lock held by another program) and retry."
            ) from exc

    def _log_rejection(self, name: str, reason: str, kind: str, *, source: str | None = None,
                       latency_ms: float = 0.0, image_hash: str | None = None,
                       simulated: bool = False, time: Any = None) -> RejectedImage:
        """Log a refused request; return the :class:`RejectedImage` to raise."""
        when = _utcnow() if time is None else _as_utc(time, "time")
        tid = self._write(self._record(
            top_k=None, image_hash=image_hash, latency_ms=latency_ms, source=source or self.source,
            image_path=None, error=f"{kind}: {reason}", simulated=simulated, when=when))
        return RejectedImage(name, reason, kind, status_code=_status_for(kind), transaction_id=tid)

    # --- predicting --------------------------------------------------------
    def predict(
        self,
        image: Any,
        *,
        top_k: int | None = None,
        source: str | None = None,
        time: Any = None,
        simulated: bool = False,
    ) -> dict:
        """Predict the top-k classes of one image and log the transaction.

        Args:
            image: Image file bytes, a file path, a uint8 array ``(H, W, 3)``
                (or ``(H, W)``) or a PIL image. Arrays are PNG-encoded first,
                so every input goes through the same decoder as training.
            top_k: Classes to return (default :attr:`top_k`; at most the
                number of classes).
            source: Who asked (default :attr:`source`).
            time: When the request happened (default now): for simulated traffic.
            simulated: Mark the transaction as demo data.

        Returns:
            ``{"transaction_id", "run_id", "model_version", "class", "score",
            "predictions": [{"class", "score"}, ...] best first,
            "latency_ms", "image_hash", "image_path", "time"}``. The
            transaction is committed before this returns.

        Raises:
            RejectedImage: The image is unreadable, truncated or too large
                (logged as a failed transaction first; ``.transaction_id``).
            LogWriteError: The log could not be written (no result is given).
            ValueError: ``image`` is of an unsupported type.
        """
        start = _time.perf_counter()
        k = self.top_k if top_k is None else check_int(top_k, "top_k")
        source = source or self.source
        when = _utcnow() if time is None else _as_utc(time, "time")
        try:
            pixels, digest, kept, _ = self._decode(image, when)
        except ImageError as err:
            digest = _upload_digest(image, err)
            raise self._log_rejection(
                str(err.path), err.reason, err.kind, source=source,
                latency_ms=(_time.perf_counter() - start) * 1000, image_hash=digest,
                simulated=simulated, time=when) from None
        try:
            if self._batcher is not None:
                probs = self._batcher.submit(pixels)
            else:
                probs = self._infer(pixels[None])[0]
        except Exception as exc:  # noqa: BLE001 - logged, then re-raised
            self._write(self._record(
                top_k=None, image_hash=digest, latency_ms=(_time.perf_counter() - start) * 1000,
                source=source, image_path=kept, error=f"inference: {type(exc).__name__}: {exc}",
                simulated=simulated, when=when))
            raise
        top = self._top(probs, k)
        latency = (_time.perf_counter() - start) * 1000
        tid = self._write(self._record(
            top_k=top, image_hash=digest, latency_ms=latency, source=source, image_path=kept,
            error=None, simulated=simulated, when=when))
        return {
            "transaction_id": tid,
            "run_id": self.run_id,
            "model_version": self.model_version,
            "class": top[0]["class"],
            "score": top[0]["score"],
            "predictions": top,
            "latency_ms": round(latency, 3),
            "image_hash": digest,
            "image_path": None if kept is None else str(kept),
            "time": _iso(when),
        }

    def predict_many(
        self,
        images: Iterable[Any],
        *,
        top_k: int | None = None,
        source: str | None = None,
        times: Sequence[Any] | None = None,
        simulated: bool = False,
        batch_size: int = 64,
    ) -> pd.DataFrame:
        """Predict many images in batches and log them, one commit per batch.

        Unreadable images do not stop the batch: they are logged as failed
        transactions and reported in the result.

        Args:
            images: Inputs as for :meth:`predict`.
            top_k: Classes per prediction.
            source: Who asked (default :attr:`source`).
            times: One time per image (default now), e.g. simulated times.
            simulated: Mark the transactions as demo data.
            batch_size: Images per model call and per commit.

        Returns:
            One row per image, in order: transaction_id (int, or <NA> without
            a log), status ("ok"/"failed"), error, class, score, predictions
            (list of dicts), latency_ms (decode time plus the image's share of
            the batch's model call), image_hash, image_path, time (UTC).

        Raises:
            LogWriteError: A batch could not be logged. Earlier batches stay
                committed; nothing of the failing batch is returned.
        """
        k = self.top_k if top_k is None else check_int(top_k, "top_k")
        batch_size = check_int(batch_size, "batch_size")
        source = source or self.source
        images = list(images)
        if times is not None:
            times = list(times)
            if len(times) != len(images):
                raise ValueError(
                    f"`times` must have one time per image: {len(images)} images, "
                    f"{len(times)} times."
                )
        rows: list[dict] = []
        for first in range(0, len(images), batch_size):
            chunk = images[first:first + batch_size]
            whens = [
                _utcnow() if times is None else _as_utc(times[first + i], "times")
                for i in range(len(chunk))
            ]
            decoded, records, out = [], [], []
            for image, when in zip(chunk, whens):
                t0 = _time.perf_counter()
                try:
                    pixels, digest, kept, _ = self._decode(image, when)
                    decoded.append(pixels)
                    out.append({"ok": True, "hash": digest, "path": kept,
                                "decode_ms": (_time.perf_counter() - t0) * 1000, "when": when})
                except ImageError as err:
                    digest = _upload_digest(image, err)
                    out.append({"ok": False, "hash": digest, "error": f"{err.kind}: {err.reason}",
                                "decode_ms": (_time.perf_counter() - t0) * 1000, "when": when})
            if decoded:
                t0 = _time.perf_counter()
                probs = self._infer(np.stack(decoded))
                share = (_time.perf_counter() - t0) * 1000 / len(decoded)
            j = 0
            for item in out:
                if item["ok"]:
                    item["top"] = self._top(probs[j], k)
                    item["latency"] = item["decode_ms"] + share
                    j += 1
                    records.append(self._record(
                        top_k=item["top"], image_hash=item["hash"], latency_ms=item["latency"],
                        source=source, image_path=item["path"], error=None, simulated=simulated,
                        when=item["when"]))
                else:
                    item["latency"] = item["decode_ms"]
                    records.append(self._record(
                        top_k=None, image_hash=item["hash"], latency_ms=item["latency"],
                        source=source, image_path=None, error=item["error"], simulated=simulated,
                        when=item["when"]))
            ids: list[int | None] = [None] * len(records)
            if self.log is not None:
                try:
                    ids = list(self.log.log_transactions(records))
                except Exception as exc:  # noqa: BLE001
                    raise LogWriteError(
                        f"The transaction log {str(self.log.path)!r} could not be written "
                        f"({type(exc).__name__}: {exc}); {len(rows)} earlier predictions are "
                        "logged, this batch is not."
                    ) from exc
            for item, tid in zip(out, ids):
                top = item.get("top") or []
                rows.append({
                    "transaction_id": tid,
                    "status": "ok" if item["ok"] else "failed",
                    "error": "" if item["ok"] else item["error"],
                    "class": top[0]["class"] if top else "",
                    "score": top[0]["score"] if top else np.nan,
                    "predictions": top,
                    "latency_ms": round(item["latency"], 3),
                    "image_hash": item["hash"] or "",
                    "image_path": "" if not item.get("path") else str(item["path"]),
                    "time": item["when"],
                })
        df = pd.DataFrame(rows, columns=[
            "transaction_id", "status", "error", "class", "score", "predictions",
            "latency_ms", "image_hash", "image_path", "time"])
        df["transaction_id"] = df["transaction_id"].astype("Int64")
        df["score"] = df["score"].astype(float)
        df["time"] = pd.to_datetime(df["time"], utc=True)
        return df

    def evaluate(
        self,
        transaction_id: int,
        verdict: str,
        *,
        reviewer: str,
        true_class: str | None = None,
        time: Any = None,
        simulated: bool = False,
    ) -> int:
        """Record a manual verdict on a served prediction.

        Args:
            transaction_id: The id :meth:`predict` returned.
            verdict: ``"correct"``, ``"wrong"`` or ``"unsure"``.
            reviewer: Who judged it.
            true_class: The real class, when known.
            time: When it was judged (default now).
            simulated: Mark the evaluation as demo data.

        Returns:
            The evaluation id.

        Raises:
            ValueError: No log, unknown transaction, or an invalid verdict.
            LogWriteError: The log could not be written.
        """
        if self.log is None:
            raise ValueError(
                "This Predictor has no transaction log (log=None); evaluations cannot be "
                "recorded. Create it with log=True."
            )
        try:
            return int(self.log.log_evaluation(
                transaction_id, verdict, reviewer=reviewer, true_class=true_class,
                time=time, simulated=simulated))
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise LogWriteError(
                f"The evaluation could not be written to {str(self.log.path)!r} "
                f"({type(exc).__name__}: {exc})."
            ) from exc


def _upload_digest(image: Any, err: ImageError) -> str | None:
    """The sha256 of a rejected upload (logged with the failed transaction),
    as ``_decode_bytes`` computed it; None for paths and arrays."""
    return getattr(err, "digest", None) if isinstance(image, (bytes, bytearray, memoryview)) else None


def _remove_stale(folder: Path, *, age_s: float = 3600.0) -> None:
    """Delete upload temp files an earlier, killed process left behind."""
    cutoff = _time.time() - age_s
    for path in folder.glob("*.upload"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass  # another process removed it, or it is not ours to remove


def _is_pil(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Image.Image)


def _encode_png(image: Any) -> bytes:
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(
                "An image array must be uint8 pixels 0-255 of shape (H, W, 3) or (H, W). "
                f"Received dtype {image.dtype}; convert with np.clip(a, 0, 255).astype('uint8')."
            )
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
            raise ValueError(
                "An image array must have shape (H, W, 3), (H, W, 4) or (H, W). "
                f"Received shape {image.shape}."
            )
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _version_label(workspace: Workspace, run_id: str) -> str:
    """The human version label of a run (``v<n>``: see :func:`imgcls.runs.version_label`)."""
    return version_label(workspace, run_id)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------
class _TooLarge(Exception):
    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def create_app(predictor: Predictor, *, allow_simulated: bool = False, title: str = "imgcls"):
    """A FastAPI app serving ``predictor``.

    Endpoints:

    * ``POST /predict`` — multipart form with the image in a ``file`` field
      (optional query ``top_k``). 200: ``{"transaction_id", "run_id",
      "model_version", "class", "score", "predictions": [{"class", "score"}],
      "latency_ms", "image_hash", "time"}``. 400 (not an image, truncated,
      corrupt, no file), 413 (over ``max_bytes``, or over ``max_pixels``):
      ``{"detail": reason, "kind", "transaction_id"}``, logged as failed.
      503: the log could not be written (nothing is acknowledged).
    * ``POST /evaluations`` — JSON ``{"transaction_id", "verdict"
      ("correct"/"wrong"/"unsure"), "reviewer", "true_class"?}``.
      201: ``{"evaluation_id", "transaction_id", "verdict"}``; 404 unknown
      transaction; 422 invalid verdict or inconsistent true class.
    * ``GET /health`` — ``{"status": "ok", "run_id", "model_version", "logging", "uptime_s"}``.
    * ``GET /model`` — :meth:`Predictor.info`.

    Args:
        predictor: The predictor (it is not closed by the app).
        allow_simulated: Accept the :data:`SIMULATED_TIME_HEADER` header, which
            logs the request as simulated traffic at the given time (for
            :func:`simulate_traffic` through HTTP). Off by default: a
            production server refuses it with 400.
        title: The app's title (OpenAPI docs at ``/docs``).

    Returns:
        A ``fastapi.FastAPI`` app (``app.state.predictor`` is the predictor).
    """
    from fastapi import FastAPI, Query, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    if not isinstance(predictor, Predictor):
        raise ValueError(
            f"`predictor` must be an imgcls.serving.Predictor. Received: {type(predictor).__name__}"
        )
    started = _time.monotonic()
    body_limit = predictor.max_bytes + _MULTIPART_SLACK
    app = FastAPI(title=title, version="1", description=(
        f"Image classification with run {predictor.run_id} ({predictor.model_version}); "
        "every prediction is logged."))
    app.state.predictor = predictor

    def error(status: int, detail: str, **extra) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail, **extra})

    def simulated_time(request: Request):
        """(time, simulated) from the header; raises ValueError if it is refused."""
        value = request.headers.get(SIMULATED_TIME_HEADER)
        if value is None:
            return None, False
        if not allow_simulated:
            raise ValueError(
                f"This server does not accept simulated traffic ({SIMULATED_TIME_HEADER} "
                "header). Start it with allow_simulated=True for a demo."
            )
        return _as_utc(value, SIMULATED_TIME_HEADER), True

    async def reject(name: str, reason: str, kind: str, *, status: int | None = None,
                     when=None, simulated=False) -> JSONResponse:
        try:
            rejected = await run_in_threadpool(
                predictor._log_rejection, name, reason, kind, source=_HTTP_SOURCE,
                simulated=simulated, time=when)
        except LogWriteError as exc:
            return error(503, str(exc))
        return error(status or rejected.status_code, rejected.reason, kind=kind,
                     transaction_id=rejected.transaction_id)

    async def limited_stream(request: Request):
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise _TooLarge(received)
            yield chunk

    @app.post(
        "/predict",
        summary="Predict the top-k classes of an uploaded image (logged)",
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": ["file"],
                       "properties": {"file": {"type": "string", "format": "binary"}}}}}}},
    )
    async def predict(request: Request, top_k: int | None = Query(None, ge=1, le=1000)):
        try:
            when, simulated = simulated_time(request)
        except ValueError as exc:
            return error(400, str(exc))
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit:
            return await reject(
                "<upload>", f"the request has {int(declared):,} bytes, more than the limit of "
                f"{predictor.max_bytes:,} bytes per image; send a smaller image",
                "too_large", when=when, simulated=simulated)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return await reject(
                "<upload>", "send the image as multipart/form-data in a field named 'file' "
                f"(received content-type {content_type or 'none'!r})", "no_file",
                status=415, when=when, simulated=simulated)
        parser = MultiPartParser(request.headers, limited_stream(request), max_files=1, max_fields=20)
        try:
            form = await parser.parse()
        except _TooLarge as exc:
            return await reject(
                "<upload>", f"the upload exceeds {predictor.max_bytes:,} bytes "
                f"(received {exc.received:,} so far); send a smaller image",
                "too_large", when=when, simulated=simulated)
        except MultiPartException as exc:
            return await reject("<upload>", f"malformed multipart body: {exc.message}",
                                "no_file", when=when, simulated=simulated)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                upload = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
            if upload is None:
                return await reject("<upload>", "no image in the request: send it as a "
                                    "multipart file field named 'file'", "no_file",
                                    when=when, simulated=simulated)
            data = await upload.read()
        finally:
            await form.close()
        try:
            return await run_in_threadpool(
                predictor.predict, data, top_k=top_k, source=_HTTP_SOURCE, time=when,
                simulated=simulated)
        except RejectedImage as exc:
            name = upload.filename or "<upload>"
            return error(exc.status_code, f"{name}: {exc.reason}", kind=exc.kind,
                         transaction_id=exc.transaction_id)
        except LogWriteError as exc:
            return error(503, str(exc))

    class EvaluationIn(BaseModel):
        transaction_id: int = Field(..., ge=1, description="The id /predict returned.")
        verdict: str = Field(..., description=f"One of {', '.join(VERDICTS)}.")
        reviewer: str = Field(..., min_length=1)
        true_class: str | None = Field(None, description="The real class, when known.")

    @app.post("/evaluations", status_code=201, summary="Record a manual verdict on a prediction")
    async def evaluations(body: EvaluationIn, request: Request):
        try:
            when, simulated = simulated_time(request)
        except ValueError as exc:
            return error(400, str(exc))
        try:
            eid = await run_in_threadpool(
                predictor.evaluate, body.transaction_id, body.verdict, reviewer=body.reviewer,
                true_class=body.true_class, time=when, simulated=simulated)
        except LogWriteError as exc:
            return error(503, str(exc))
        except UnknownTransactionError as exc:
            return error(404, str(exc))
        except ValueError as exc:
            return error(422, str(exc))
        return {"evaluation_id": eid, "transaction_id": body.transaction_id,
                "verdict": body.verdict.strip().lower()}

    @app.get("/health", summary="Liveness and what is served")
    async def health():
        return {"status": "ok", "run_id": predictor.run_id,
                "model_version": predictor.model_version,
                "logging": predictor.log is not None,
                "uptime_s": round(_time.monotonic() - started, 3)}

    @app.get("/model", summary="The served run: id, version, classes, input size")
    async def model():
        return predictor.info()

    return app


def _uvicorn_config(app, host: str, port: int, log_level: str, access_log: bool):
    import uvicorn

    return uvicorn.Config(
        app, host=host, port=port, workers=1, log_level=log_level, access_log=access_log,
        timeout_graceful_shutdown=5, lifespan="off",
    )


def serve(
    workspace: Workspace | str | os.PathLike,
    *,
    run: "Run | str" = "production",
    host: str = "127.0.0.1",
    port: int = 8000,
    top_k: int = DEFAULT_TOP_K,
    keep_inputs: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int | None = None,
    model_version: str | None = None,
    group_commit: bool = False,
    batch_inference: bool = True,
    allow_simulated: bool = False,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve a run over HTTP until interrupted (Ctrl-C / SIGTERM).

    One uvicorn worker holds one model; see :func:`create_app` for the
    endpoints and :class:`Predictor` for the options.

    Args:
        workspace: The workspace.
        run: The run to serve (default the production run).
        host: Interface to bind. The default, 127.0.0.1, is reachable from
            this machine only; pass ``"0.0.0.0"`` deliberately to expose it.
        port: TCP port.
        top_k, keep_inputs, max_bytes, max_pixels, model_version, group_commit:
            See :class:`Predictor`.
        batch_inference: See :class:`Predictor`; on by default here (measured
            to raise throughput under concurrent clients, see the module docs).
        allow_simulated: See :func:`create_app` (demo servers only).
        log_level: uvicorn's log level.
        access_log: Also print uvicorn's access log (every request is in the
            transaction log anyway).
    """
    import uvicorn

    predictor = Predictor(
        workspace, run=run, top_k=top_k, keep_inputs=keep_inputs, max_bytes=max_bytes,
        max_pixels=max_pixels, source=_HTTP_SOURCE, model_version=model_version,
        group_commit=group_commit, batch_inference=batch_inference)
    try:
        app = create_app(predictor, allow_simulated=allow_simulated)
        uvicorn.Server(_uvicorn_config(app, host, port, log_level, access_log)).run()
    finally:
        predictor.close()


class RunningServer:
    """An HTTP server running in a background thread (see :func:`start_server`).

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        host, port: Where it listens.
        app: The FastAPI app.
    """

    def __init__(self, app, server, thread: threading.Thread, host: str, port: int) -> None:
        self.app = app
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish (it completes the requests in flight) and wait."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningServer({self.url!r}, running={self.running})"


def start_server(
    predictor_or_app: "Predictor | Any",
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_simulated: bool = False,
    timeout: float = 30.0,
) -> RunningServer:
    """Start the HTTP server in a background thread and return once it accepts requests.

    For notebooks and tests: the kernel stays free, and the same predictor
    can be used from Python and over HTTP at once.

    Args:
        predictor_or_app: A :class:`Predictor` (an app is created) or an app
            from :func:`create_app`.
        host: Interface to bind (default 127.0.0.1).
        port: TCP port; 0 picks a free one (see ``.port``).
        allow_simulated: See :func:`create_app`.
        timeout: Seconds to wait for the server to start.

    Returns:
        A :class:`RunningServer`; call ``.stop()`` (or use ``with``).
    """
    import uvicorn

    app = predictor_or_app
    if isinstance(predictor_or_app, Predictor):
        app = create_app(predictor_or_app, allow_simulated=allow_simulated)
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that
    # say so, and without it every keep-alive response waits ~40 ms (Nagle +
    # delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(app, host, port, "warning", False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"imgcls-server-{port}", daemon=True)
    thread.start()
    deadline = _time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or _time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"The server on {host}:{port} did not start within {timeout} s.")
        _time.sleep(0.02)
    return RunningServer(app, server, thread, host, port)


# --------------------------------------------------------------------------
# demo traffic
# --------------------------------------------------------------------------
def _multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _http_json(url: str, *, body: bytes, content_type: str, headers: dict, timeout: float = 60.0):
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        try:
            payload = json.loads(err.read() or b"{}")
        except ValueError:
            payload = {"detail": str(err)}
        return err.code, payload


def _traffic_plan(n_days: int, total: int, growth: float, rng: np.random.Generator) -> np.ndarray:
    """Requests per day: a linear ramp times a weekly pattern (quieter weekends)."""
    ramp = np.linspace(1.0, growth, n_days) if n_days > 1 else np.ones(1)
    weekday = np.array([1.0, 1.05, 1.05, 1.0, 0.95, 0.55, 0.45])
    weights = ramp * np.resize(weekday, n_days)
    return rng.multinomial(total, weights / weights.sum())


def simulate_traffic(
    workspace: Workspace | str | os.PathLike,
    *,
    runs: Sequence["Run | str"] | None = None,
    weeks: int = 8,
    requests_per_day: float = 36.0,
    requests: int | None = None,
    growth: float = 2.0,
    evaluation_share: float = 0.1,
    unsure_share: float = 0.05,
    seed: int = 0,
    via: "str | Sequence[str]" = "predictor",
    end: Any = None,
    versions: Sequence[str] | None = None,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Replay the sample pool as several weeks of served traffic with manual evaluations.

    The weeks are split evenly between ``runs`` in order (the first run
    serves the first weeks, then the next one is rolled out). Each day gets
    a number of requests that grows over the period (``growth``) and dips on
    weekends; request times are spread over the day's working hours. Images
    are drawn (with replacement) from the sample's unlabelled pool, bad files
    included, so a few requests fail as real ones do. For a share of the
    successful requests a simulated reviewer records a verdict from the
    hidden true label (``correct`` / ``wrong`` with the true class, a few
    ``unsure``), some hours to days after the request. Everything is logged
    with ``simulated=True`` and source ``"simulated"``.

    Args:
        workspace: The sample workspace (it needs ``unlabelled_truth.csv``).
        runs: The runs to roll out in order (Run objects or refs); default
            ``["production"]``. Two runs give "v1 then v2".
        weeks: Simulated weeks, ending at ``end``.
        requests_per_day: Average requests per day over the period.
        requests: Exact total number of requests (overrides ``requests_per_day``).
        growth: Usage on the last day relative to the first.
        evaluation_share: Share of successful requests that get a verdict.
        unsure_share: Share of those verdicts that are ``"unsure"``.
        seed: Random seed (which images, times, evaluations).
        via: ``"predictor"`` (in-process, batched: fast) or the base URL of a
            running server (``"http://127.0.0.1:8000"``) started with
            ``allow_simulated=True``; with several runs, one URL per run.
        end: End of the simulated period (exclusive); default today 00:00 UTC.
        versions: Version labels logged for ``runs`` (default: each run's
            label, e.g. from the production pointer, else ``v1``, ``v2``, ...
            in rollout order). Ignored through HTTP (the server decides).
        batch_size: Images per model call and per commit (predictor mode).

    Returns:
        One row per request, by time: transaction_id, time, run_id,
        model_version, image_path, true_class, status, predicted, score,
        evaluated (bool), verdict ("" when not evaluated).
    """
    from imgcls.sample import sample_truth

    ws = open_workspace(workspace, create=False)
    weeks = check_int(weeks, "weeks")
    batch_size = check_int(batch_size, "batch_size")
    for name, value in (("evaluation_share", evaluation_share), ("unsure_share", unsure_share)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"`{name}` must be a number in [0, 1]. Received: {name}={value!r}")
    if isinstance(growth, bool) or not isinstance(growth, (int, float)) or growth <= 0:
        raise ValueError(f"`growth` must be a number > 0. Received: growth={growth!r}")
    n_days = weeks * 7
    if requests is None:
        if isinstance(requests_per_day, bool) or not isinstance(requests_per_day, (int, float)) \
                or requests_per_day <= 0:
            raise ValueError(
                f"`requests_per_day` must be a number > 0. Received: requests_per_day={requests_per_day!r}"
            )
        requests = int(round(requests_per_day * n_days))
    requests = check_int(requests, "requests")
    runs = ["production"] if runs is None else list(runs)
    if not runs:
        raise ValueError("`runs` must name at least one run. Received: runs=[]")
    if isinstance(via, str) and via != "predictor":
        urls: list[str] | None = [via] * len(runs) if len(runs) == 1 else None
        if urls is None:
            raise ValueError(
                f"Through HTTP each run needs its own server: pass one base URL per run, "
                f"via=[url_for_run1, ...] ({len(runs)} runs). Received: via={via!r}"
            )
    elif isinstance(via, str):
        urls = None
    else:
        urls = [str(u) for u in via]
        if len(urls) != len(runs) or not all(u.startswith(("http://", "https://")) for u in urls):
            raise ValueError(
                "`via` must be 'predictor', a base URL, or one base URL per run "
                f"({len(runs)} runs). Received: via={via!r}"
            )
    if urls is not None:
        urls = [u.rstrip("/") for u in urls]
        if not all(u.startswith(("http://", "https://")) for u in urls):
            raise ValueError(f"`via` must be 'predictor' or an http:// base URL. Received: via={via!r}")
    if versions is not None and len(versions) != len(runs):
        raise ValueError(
            f"`versions` must give one label per run ({len(runs)} runs). Received: versions={versions!r}"
        )

    truth = sample_truth(ws)
    # Pool images already labelled into the library (moved away) are not traffic.
    truth = truth[[os.path.exists(p) for p in truth["path"]]].reset_index(drop=True)
    if truth.empty:
        raise ValueError(f"The sample pool of {str(ws.root)!r} is empty; nothing to replay.")
    rng = np.random.default_rng(seed)
    end_t = (_utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
             if end is None else _as_utc(end, "end"))
    start_t = end_t - _dt.timedelta(days=n_days)
    per_day = _traffic_plan(n_days, requests, float(growth), rng)
    times, days = [], []
    for day, count in enumerate(per_day):
        # Working hours, busiest around midday.
        hours = rng.normal(13.0, 3.0, size=count)
        outside = (hours < 6.0) | (hours > 22.0)
        hours[outside] = rng.uniform(7.0, 20.0, size=int(outside.sum()))
        for h in np.sort(hours):
            times.append(start_t + _dt.timedelta(days=day, hours=float(h)))
            days.append(day)
    days = np.asarray(days)
    picks = rng.integers(0, len(truth), size=len(times))
    image_paths = truth["path"].to_numpy()[picks]
    true_labels = truth["label"].to_numpy()[picks]
    segment = np.minimum(days * len(runs) // n_days, len(runs) - 1)

    labels: list[str | None] = [None] * len(runs)
    loaded: list[Run | None] = [None] * len(runs)
    if urls is None:
        loaded = [load_run(ref, ws) for ref in runs]
        labels = [str(v) for v in versions] if versions is not None else [
            _version_label(ws, run.run_id) for run in loaded]
        for i, run in enumerate(loaded):
            # A run never promoted is labelled by its rollout order when that is free.
            if labels[i] == run.run_id and f"v{i + 1}" not in labels:
                labels[i] = f"v{i + 1}"

    frames = []
    with TransactionLog(ws) as log:
        for i, ref in enumerate(runs):
            idx = np.flatnonzero(segment == i)
            if len(idx) == 0:
                continue
            seg_times = [times[j] for j in idx]
            if urls is None:
                predictor = Predictor(ws, run=loaded[i], log=log, source=_SIMULATED_SOURCE,
                                      model_version=labels[i])
                try:
                    result = predictor.predict_many(
                        list(image_paths[idx]), times=seg_times, simulated=True,
                        batch_size=batch_size)
                finally:
                    predictor.close()
                result["run_id"] = predictor.run_id
                result["model_version"] = predictor.model_version
            else:
                result = _replay_http(urls[i], list(image_paths[idx]), seg_times)
            result["image_path"] = list(image_paths[idx])
            result["true_class"] = list(true_labels[idx])
            frames.append(result)
        out = pd.concat(frames, ignore_index=True)
        out = out.rename(columns={"class": "predicted"})

        # Manual evaluations of a share of the successful requests.
        ok = np.flatnonzero((out["status"] == "ok").to_numpy() & (out["true_class"] != "").to_numpy())
        chosen = ok[rng.random(len(ok)) < evaluation_share]
        out["evaluated"] = False
        out["verdict"] = ""
        records = []
        for j in chosen:
            row = out.iloc[j]
            delay = _dt.timedelta(hours=float(rng.exponential(20.0)) + 0.25)
            when = min(row["time"].to_pydatetime() + delay, end_t - _dt.timedelta(seconds=1))
            if rng.random() < unsure_share:
                verdict, true_class = "unsure", None
            else:
                verdict = "correct" if row["predicted"] == row["true_class"] else "wrong"
                true_class = row["true_class"]
            records.append({"transaction_id": int(row["transaction_id"]), "verdict": verdict,
                            "reviewer": _SIMULATED_REVIEWER, "true_class": true_class,
                            "time": when, "simulated": True})
            out.iat[j, out.columns.get_loc("evaluated")] = True
            out.iat[j, out.columns.get_loc("verdict")] = verdict
        if urls is None:
            log.log_evaluations(records)
        else:
            _evaluate_http(urls, out, records)
    columns = ["transaction_id", "time", "run_id", "model_version", "image_path", "true_class",
               "status", "predicted", "score", "evaluated", "verdict"]
    return out[columns].sort_values(["time", "transaction_id"], kind="stable").reset_index(drop=True)


def _replay_http(url: str, paths: list[str], times: list[_dt.datetime], *, workers: int = 4) -> pd.DataFrame:
    def one(item):
        path, when = item
        with open(path, "rb") as fh:
            data = fh.read()
        body, ctype = _multipart(data, Path(path).name)
        status, payload = _http_json(f"{url}/predict", body=body, content_type=ctype,
                                     headers={SIMULATED_TIME_HEADER: _iso(when)})
        if status >= 500 or (status != 200 and payload.get("transaction_id") is None):
            raise RuntimeError(f"{url}/predict answered {status}: {payload.get('detail', payload)}")
        return {
            "transaction_id": payload.get("transaction_id"),
            "status": "ok" if status == 200 else "failed",
            "error": "" if status == 200 else str(payload.get("detail", "")),
            "class": payload.get("class", ""),
            "score": payload.get("score", np.nan),
            "run_id": payload.get("run_id", ""),
            "model_version": payload.get("model_version", ""),
            "time": when,
        }

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, zip(paths, times)))
    df = pd.DataFrame(rows)
    if (df["run_id"] == "").any():
        info = json.loads(urllib.request.urlopen(f"{url}/model", timeout=30).read())
        df.loc[df["run_id"] == "", "run_id"] = info["run_id"]
        df.loc[df["model_version"] == "", "model_version"] = info["model_version"]
    df["transaction_id"] = df["transaction_id"].astype("Int64")
    df["score"] = df["score"].astype(float)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def _evaluate_http(urls: list[str], out: pd.DataFrame, records: list[dict]) -> None:
    by_run = dict(zip(out["transaction_id"].astype("Int64"), out["run_id"]))
    run_url = {}
    for url in urls:
        run_url[json.loads(urllib.request.urlopen(f"{url}/model", timeout=30).read())["run_id"]] = url
    for rec in records:
        url = run_url.get(by_run.get(rec["transaction_id"]), urls[0])
        body = json.dumps({k: rec[k] for k in ("transaction_id", "verdict", "reviewer", "true_class")}).encode()
        status, payload = _http_json(f"{url}/evaluations", body=body, content_type="application/json",
                                     headers={SIMULATED_TIME_HEADER: _iso(rec["time"])})
        if status != 201:
            raise RuntimeError(f"{url}/evaluations answered {status}: {payload.get('detail', payload)}")
