"""The predictor: a run's model that predicts the top-k classes and logs every transaction.

:class:`Predictor` loads a run (the production run by default) and predicts
the top-k classes of image bytes, files, numpy arrays or Pillow images. It
decodes exactly as training does (:func:`imgcls.serving.uploads.decode_image`),
within a decode budget (:mod:`imgcls.serving.budget`: a decode cost per image
from the header, a bound on concurrent decodes and their memory), applies the
run's calibration temperature to the scores it returns, and logs every
request, successful or not, through :class:`imgcls.translog.TransactionLog`,
committed before a result is returned. It can follow the production pointer
and swap to a newly promoted run without a restart
(:mod:`imgcls.serving.reload`). The same object is used from a notebook (no
HTTP) and behind the server, so both log the same way. Durability and
concurrency are described in :mod:`imgcls.serving`.
"""

from __future__ import annotations

import os
import threading
import time as _time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from imgcls.core import ImageError, Workspace, as_workspace, check_int, check_number, utcnow
from imgcls.runs import Run, load_run
from imgcls.serving.budget import DecodeBudget, Overloaded
from imgcls.serving.limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_QUEUE_TIMEOUT,
    default_decode_memory,
    default_max_concurrent,
    default_max_decode_bytes,
)
from imgcls.serving.model import ServedModel, load_served
from imgcls.serving.records import LogWriteError, RequestLog, as_utc, iso
from imgcls.serving.reload import ProductionFollower
from imgcls.serving.uploads import (
    SERVED_DIR,
    RejectedImage,
    decode_image,
    remove_stale,
    status_for,
    upload_digest,
)
from imgcls.serving.verdicts import record_verdict
from imgcls.translog import TransactionLog

__all__ = ["DEFAULT_TOP_K", "LogWriteError", "Predictor", "as_utc", "iso"]

#: Classes returned (and logged) per prediction unless told otherwise.
DEFAULT_TOP_K = 3
_PYTHON_SOURCE = "python"


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
        max_decode_bytes: Largest decode cost of one image in bytes, from
            its header (:func:`imgcls.core.decode_cost`); default
            ``max_pixels * 4.5`` (an 8-bit RGB image at the pixel limit fits).
        decode_memory: Decode cost of all images decoded at once (bytes);
            default ``min(available memory / 4, cores * max_decode_bytes)``.
        max_concurrent: Requests decoding or waiting for the model at once
            (default 4 per core).
        queue_timeout: Seconds a request may wait for a slot and decode
            memory before it is refused (``overloaded``, HTTP 503).
        source: The ``source`` logged for calls from Python (the server
            passes ``"http"``).
        model_version: Human label logged with every transaction of the run
            served first (e.g. ``"v2"``); default ``v<n>`` when the run was
            the n-th run promoted to production
            (:func:`imgcls.runs.version_label`), else the run id. Runs loaded
            by a reload always get their :func:`~imgcls.runs.version_label`.
        group_commit: Commit the rows of concurrent requests together from a
            writer thread (see :mod:`imgcls.serving`).
        batch_inference: Run the model on the images of concurrent requests
            together, from one inference thread (up to ``max_batch`` images
            per call), instead of one call per request.
        max_batch: Largest batch ``batch_inference`` forms.
        follow_production: Watch ``runs/production.json`` and swap to the run
            it names when it changes (see :mod:`imgcls.serving.reload`).
        reload_interval: Seconds between two looks at the pointer.
        runtime: What runs the model: ``"keras"`` or ``"openvino"`` (the run's
            export; a run without one raises an error naming ``imgcls export``).
            A reload keeps the runtime; a newly promoted run without an export
            is served on Keras with a warning (:func:`~imgcls.serving.model.load_served`).
        precision: For openvino, which export (None: the run's best).

    Attributes:
        workspace, log, top_k, keep_inputs, max_bytes, max_pixels,
        max_decode_bytes, source, budget (:class:`~imgcls.serving.budget.DecodeBudget`),
        served (the current :class:`~imgcls.serving.model.ServedModel`), and
        the served model's run, run_id, classes, model, image_size,
        model_version, temperature.

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
        run: Run | str | os.PathLike = "production",
        log: TransactionLog | bool | None = True,
        top_k: int = DEFAULT_TOP_K,
        keep_inputs: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int | None = None,
        max_decode_bytes: int | None = None,
        decode_memory: int | None = None,
        max_concurrent: int | None = None,
        queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
        source: str = _PYTHON_SOURCE,
        model_version: str | None = None,
        group_commit: bool = False,
        batch_inference: bool = False,
        max_batch: int = 32,
        follow_production: bool = False,
        reload_interval: float = 1.0,
        runtime: str = "keras",
        precision: str | None = None,
    ) -> None:
        self.workspace = as_workspace(workspace)
        self.top_k = check_int(top_k, "top_k")
        self.max_bytes = check_int(max_bytes, "max_bytes")
        self.max_pixels = check_int(
            self.workspace.max_pixels if max_pixels is None else max_pixels, "max_pixels")
        self.max_decode_bytes = check_int(
            default_max_decode_bytes(self.max_pixels) if max_decode_bytes is None else max_decode_bytes,
            "max_decode_bytes")
        self.budget = DecodeBudget(
            max_concurrent=default_max_concurrent() if max_concurrent is None else max_concurrent,
            decode_memory=(default_decode_memory(self.max_decode_bytes) if decode_memory is None
                           else decode_memory),
            queue_timeout=queue_timeout)
        if not isinstance(source, str) or not source:
            raise ValueError(f"`source` must be a non-empty string. Received: source={source!r}")
        self.source = source
        self.keep_inputs = bool(keep_inputs)
        self._max_batch = check_int(max_batch, "max_batch")
        self._batch_inference = bool(batch_inference)
        reload_interval = check_number(reload_interval, "reload_interval", 0.0, low_open=True)
        self._runtime, self._precision = runtime, precision
        self.served = ServedModel(self.workspace, run, model_version=model_version,
                                  batch_inference=self._batch_inference, max_batch=self._max_batch,
                                  runtime=runtime, precision=precision)
        self._swap_lock = threading.Lock()
        self._tmp_dir = self.workspace.cache_dir / "serving-tmp"
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        remove_stale(self._tmp_dir)

        self._own_log = False
        if log is True:
            self.log: TransactionLog | None = TransactionLog(self.workspace)
            self._own_log = True
        elif log is None or log is False:
            self.log = None
        elif isinstance(log, TransactionLog):
            self.log = log
        else:
            self.served.close()
            raise ValueError(
                "`log` must be True (the workspace's log), a TransactionLog, or None "
                f"(no logging). Received: log={log!r}"
            )
        self.requests = RequestLog(self.log, group_commit=group_commit)
        self._classes_of: dict[str, list[str]] = {}
        self.follower = ProductionFollower(self, interval=reload_interval) if follow_production else None

    # --- the served model ----------------------------------------------------
    run = property(lambda self: self.served.run, doc="The served :class:`~imgcls.runs.Run`.")
    run_id = property(lambda self: self.served.run_id, doc="The served run's id.")
    classes = property(lambda self: self.served.classes, doc="The served run's classes.")
    model = property(lambda self: self.served.model, doc="The served ``keras.Model``.")
    image_size = property(lambda self: self.served.image_size, doc="Model input (height, width).")
    model_version = property(lambda self: self.served.model_version, doc="The served version label.")
    temperature = property(lambda self: self.served.temperature,
                           doc="The served run's calibration temperature (None: scores raw).")
    # measurements (tests, benchmarks) read the workers' counters
    _batcher = property(lambda self: self.served.batcher)
    _writer = property(lambda self: self.requests.writer)

    def reload(self, run: Run | str | os.PathLike = "production") -> bool:
        """Load ``run`` and make it the served model, atomically; the old one closes when idle.

        Requests in flight finish on the model they started with (and their
        rows name it). Nothing changes when ``run`` is the one served.

        Args:
            run: The run to serve (default: the production run now).

        Returns:
            True when the served model changed.
        """
        target = load_run(run, workspace=self.workspace)
        if target.run_id == self.served.run_id:
            return False
        new = load_served(self.workspace, target, runtime=self._runtime, precision=self._precision,
                          batch_inference=self._batch_inference, max_batch=self._max_batch)
        with self._swap_lock:
            old, self.served = self.served, new
        threading.Thread(target=old.close_when_idle, name="imgcls-retire-model", daemon=True).start()
        return True

    # --- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        """Stop the worker threads and close the log if this predictor opened it."""
        if self.follower is not None:
            self.follower.close()
            self.follower = None
        self.served.close()
        self.requests.close()
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
            f"log={'off' if self.log is None else self.log.where!r})"
        )

    def info(self) -> dict:
        """What is being served (``GET /model``): the model, its temperature and runtime, the limits."""
        return {
            **self.served.info(),
            "top_k": self.top_k,
            "logging": self.log is not None,
            "keep_inputs": self.keep_inputs,
            "follows_production": self.follower is not None,
            "max_bytes": self.max_bytes,
            "max_pixels": self.max_pixels,
            "max_decode_bytes": self.max_decode_bytes,
            "decode_memory": self.budget.decode_memory,
            "max_concurrent": self.budget.max_concurrent,
            "queue_timeout": self.budget.queue_timeout,
        }

    # --- decoding and logging ----------------------------------------------
    def _decode(self, image: Any, when: Any, model: ServedModel, deadline: float | None):
        """(pixels, image_hash, image_path, name) for any accepted input."""
        return decode_image(
            image, when, image_size=model.image_size, max_bytes=self.max_bytes,
            max_pixels=self.max_pixels, tmp_dir=self._tmp_dir,
            served_root=self.workspace.root / SERVED_DIR if self.keep_inputs else None,
            max_decode_bytes=self.max_decode_bytes, budget=self.budget, deadline=deadline)

    def log_failure(self, reason: str, failure: str, *, endpoint: str = "predict",
                    http_status: int | None = None, source: str | None = None,
                    latency_ms: float = 0.0, image_hash: str | None = None,
                    simulated: bool = False, time: Any = None) -> int | None:
        """Log a refused request (committed) and return its transaction id (None without a log).

        Args:
            reason: Why it was refused (what the client is told).
            failure: The kind of failure (``validation``, ``unauthorized``,
                ``rate_limited``, ``bad_header``, ``too_large``, ...).
            endpoint: The request refused (``predict``, ``evaluations``, ...).
            http_status: The status answered (None for calls from Python).
            source: Who asked (default :attr:`source`).
            latency_ms: Time spent on it.
            image_hash: The sha256 of a refused upload (never its bytes).
            simulated: Demo traffic.
            time: When (default now).

        Raises:
            LogWriteError: The row could not be committed.
        """
        return self.requests.failure(
            self.served, reason, failure, source=source or self.source, endpoint=endpoint,
            http_status=http_status, latency_ms=latency_ms, image_hash=image_hash,
            simulated=simulated, time=time)

    def _rejected(self, name: str, reason: str, kind: str, *, http: bool, **row: Any) -> RejectedImage:
        """Log a refused image; return the :class:`RejectedImage` to raise."""
        status = status_for(kind)
        tid = self.log_failure(reason, kind, http_status=status if http else None, **row)
        return RejectedImage(name, reason, kind, status_code=status, transaction_id=tid)

    # --- predicting --------------------------------------------------------
    def predict(
        self,
        image: Any,
        *,
        top_k: int | None = None,
        source: str | None = None,
        time: Any = None,
        simulated: bool = False,
        http: bool = False,
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
            http: The request came over HTTP (its row records the status answered).

        Returns:
            ``{"transaction_id", "run_id", "model_version", "class", "score",
            "predictions": [{"class", "score"}, ...] best first,
            "raw_score", "temperature", "latency_ms", "image_hash",
            "image_path", "time"}``. Scores are calibrated with the run's
            temperature (``raw_score``: the top-1 score before). The
            transaction is committed before this returns.

        Raises:
            RejectedImage: The image is unreadable, truncated or too large,
                or the server is overloaded (logged as a failed transaction
                first; ``.transaction_id``, ``.status_code``, ``.retry_after``).
            LogWriteError: The log could not be written (no result is given).
            ValueError: ``image`` is of an unsupported type.
        """
        start = _time.perf_counter()
        k = self.top_k if top_k is None else check_int(top_k, "top_k")
        source = source or self.source
        when = utcnow() if time is None else as_utc(time, "time")
        model = self.served  # this request's model, to its end (a reload swaps the reference)
        row = {"source": source, "simulated": simulated, "time": when}
        with model.hold():
            try:
                with self.budget.slot() as deadline:
                    try:
                        pixels, digest, kept, _ = self._decode(image, when, model, deadline)
                    except ImageError as err:
                        raise self._rejected(
                            str(err.path), err.reason, err.kind, http=http,
                            image_hash=upload_digest(image, err),
                            latency_ms=(_time.perf_counter() - start) * 1000, **row) from None
                    try:
                        probs = model.probabilities(pixels)
                    except Exception as exc:  # noqa: BLE001 - logged, then re-raised
                        self.requests.write(self.requests.row(
                            model, top_k=None, raw_score=None, image_hash=digest,
                            latency_ms=(_time.perf_counter() - start) * 1000, source=source,
                            image_path=kept, error=f"inference: {type(exc).__name__}: {exc}",
                            simulated=simulated, when=when, http_status=500 if http else None))
                        raise
            except Overloaded as exc:
                status = status_for("overloaded")
                tid = self.requests.failure(
                    model, str(exc), "overloaded", source=source, http_status=status if http else None,
                    latency_ms=(_time.perf_counter() - start) * 1000, simulated=simulated, time=when)
                raise RejectedImage("<upload>", str(exc), "overloaded", status_code=status,
                                    transaction_id=tid, retry_after=exc.retry_after) from None
            top, raw = model.ranked(probs, k)
            latency = (_time.perf_counter() - start) * 1000
            tid = self.requests.write(self.requests.row(
                model, top_k=top, raw_score=raw, image_hash=digest, latency_ms=latency, source=source,
                image_path=kept, error=None, simulated=simulated, when=when,
                http_status=200 if http else None))
        return {
            "transaction_id": tid,
            "run_id": model.run_id,
            "model_version": model.model_version,
            "class": top[0]["class"],
            "score": top[0]["score"],
            "predictions": top,
            "raw_score": raw,
            "temperature": model.temperature,
            "latency_ms": round(latency, 3),
            "image_hash": digest,
            "image_path": None if kept is None else str(kept),
            "time": iso(when),
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
            a log), status ("ok"/"failed"), error, class, score (calibrated),
            predictions (list of dicts), latency_ms (decode time plus the
            image's share of the batch's model call), image_hash, image_path,
            time (UTC).

        Raises:
            LogWriteError: A batch could not be logged. Earlier batches stay
                committed; nothing of the failing batch is returned.
        """
        from imgcls.serving.many import predict_many

        return predict_many(self, images, top_k=top_k, source=source, times=times,
                            simulated=simulated, batch_size=batch_size)

    def record_verdict(
        self,
        transaction_id: int,
        verdict: str,
        *,
        reviewer: str,
        true_class: str | None = None,
        new_class: bool = False,
        note: str | None = None,
        time: Any = None,
        simulated: bool = False,
    ) -> int:
        """Record a manual verdict on a served prediction.

        The last verdict the log receives for a transaction is its current
        one (the history is kept; reports count the current verdict).

        Args:
            transaction_id: The id :meth:`predict` returned.
            verdict: ``"correct"``, ``"wrong"`` or ``"unsure"``.
            reviewer: Who judged it (at most 100 characters).
            true_class: The real class, when known: one of the classes of the
                run that served the prediction, or (with ``new_class=True``)
                a new class name that passes
                :func:`imgcls.library.validate_class_name`.
            new_class: ``true_class`` is a class the model does not know yet.
            note: A free-text note (at most 2,000 characters).
            time: When it was judged (default now).
            simulated: Mark the evaluation as demo data.

        Returns:
            The evaluation id.

        Raises:
            UnknownTransactionError: No such transaction (a ``ValueError``).
            ValueError: No log, an invalid verdict, reviewer, note or true class.
            LogWriteError: The log could not be written.
        """
        return record_verdict(
            self, transaction_id, verdict, reviewer=reviewer, true_class=true_class,
            new_class=new_class, note=note, time=time, simulated=simulated)

    def classes_of(self, run_id: str) -> list[str]:
        """The classes of the run ``run_id`` (cached; the served ones if the run is gone)."""
        if run_id not in self._classes_of:
            try:
                self._classes_of[run_id] = list(load_run(run_id, workspace=self.workspace).classes)
            except (ValueError, FileNotFoundError, LookupError):
                return list(self.served.classes) if run_id == self.served.run_id else []
        return self._classes_of[run_id]
