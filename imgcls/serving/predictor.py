"""The predictor: a run's model that predicts the top-k classes and logs every transaction.

:class:`Predictor` loads a run (the production run by default) and predicts
the top-k classes of image bytes, files, numpy arrays or Pillow images. It
decodes exactly as training does (:func:`imgcls.serving.uploads.decode_image`),
and logs every request, successful or not, through
:class:`imgcls.translog.TransactionLog`, committed before a result is
returned. The same object is used from a notebook (no HTTP) and behind the
server, so both log the same way. Durability and concurrency (and the
measurements behind ``batch_inference`` and ``group_commit``) are described
in :mod:`imgcls.serving`.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time as _time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core import (
    ImageError,
    Workspace,
    as_workspace,
    check_int,
    isoformat,
    utcnow,
)
from imgcls.core import top_k as rank_top_k  # `top_k` is also an argument name here
from imgcls.runs import Run, load_run, version_label
from imgcls.serving.batching import GroupCommitWriter, InferenceBatcher
from imgcls.serving.uploads import (
    DEFAULT_MAX_BYTES,
    SERVED_DIR,
    RejectedImage,
    decode_image,
    remove_stale,
    status_for,
    upload_digest,
)
from imgcls.translog import TransactionLog, to_utc_micros

__all__ = ["DEFAULT_TOP_K", "LogWriteError", "Predictor"]

#: Classes returned (and logged) per prediction unless told otherwise.
DEFAULT_TOP_K = 3
_PYTHON_SOURCE = "python"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class LogWriteError(RuntimeError):
    """The transaction log could not be written, so the request was not answered.

    A client never gets a prediction whose transaction is not committed; the
    original error is the ``__cause__``.
    """


def as_utc(value: Any, name: str) -> _dt.datetime:
    """A timezone-aware UTC datetime from any time :func:`imgcls.translog.to_utc_micros` takes
    (a datetime or Timestamp, naive meaning UTC; a date; an ISO 8601 string; epoch seconds)."""
    return _EPOCH + _dt.timedelta(microseconds=to_utc_micros(value, name=name))


def iso(t: _dt.datetime) -> str:
    """``t`` as ISO 8601 UTC text with microseconds and a ``Z`` (the time a client gets back)."""
    return isoformat(t).replace("+00:00", "Z")


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
            promoted to production (:func:`imgcls.runs.version_label`), else the run id.
        group_commit: Commit the rows of concurrent requests together from a
            writer thread (see :mod:`imgcls.serving`).
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
        run: Run | str | os.PathLike = "production",
        log: TransactionLog | bool | None = True,
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
        self.workspace = as_workspace(workspace)
        self.top_k = check_int(top_k, "top_k")
        self.max_bytes = check_int(max_bytes, "max_bytes")
        self.max_pixels = check_int(
            self.workspace.max_pixels if max_pixels is None else max_pixels, "max_pixels")
        if not isinstance(source, str) or not source:
            raise ValueError(f"`source` must be a non-empty string. Received: source={source!r}")
        self.source = source
        self.keep_inputs = bool(keep_inputs)
        max_batch = check_int(max_batch, "max_batch")
        self.run = load_run(run, workspace=self.workspace)
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
        self.model_version = model_version or version_label(self.workspace, self.run_id)
        self._infer_lock = threading.Lock()
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
            raise ValueError(
                "`log` must be True (the workspace's log), a TransactionLog, or None "
                f"(no logging). Received: log={log!r}"
            )
        self._writer = GroupCommitWriter(self.log) if (group_commit and self.log) else None
        self._batcher = InferenceBatcher(self._infer, max_batch=max_batch) if batch_inference else None
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
        """The ``k`` best classes of one image's probabilities, best first, scores to 6 decimals."""
        indices, scores = rank_top_k(probs, k)
        return [{"class": self.classes[i], "score": round(float(s), 6)}
                for i, s in zip(indices.tolist(), scores.tolist())]

    def _decode(self, image: Any, when: _dt.datetime):
        """(pixels, image_hash, image_path, name) for any accepted input."""
        return decode_image(
            image, when, image_size=self.image_size, max_bytes=self.max_bytes,
            max_pixels=self.max_pixels, tmp_dir=self._tmp_dir,
            served_root=self.workspace.root / SERVED_DIR if self.keep_inputs else None)

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
        """Log a refused request; return the :class:`RejectedImage` to raise (the app answers it)."""
        when = utcnow() if time is None else as_utc(time, "time")
        tid = self._write(self._record(
            top_k=None, image_hash=image_hash, latency_ms=latency_ms, source=source or self.source,
            image_path=None, error=f"{kind}: {reason}", simulated=simulated, when=when))
        return RejectedImage(name, reason, kind, status_code=status_for(kind), transaction_id=tid)

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
        when = utcnow() if time is None else as_utc(time, "time")
        try:
            pixels, digest, kept, _ = self._decode(image, when)
        except ImageError as err:
            digest = upload_digest(image, err)
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
                utcnow() if times is None else as_utc(times[first + i], "times")
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
                    digest = upload_digest(image, err)
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
                else:
                    item["latency"] = item["decode_ms"]
                records.append(self._record(  # a failed item has no top / path, an ok one no error
                    top_k=item.get("top"), image_hash=item["hash"], latency_ms=item["latency"],
                    source=source, image_path=item.get("path"), error=item.get("error"),
                    simulated=simulated, when=item["when"]))
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

    def record_verdict(
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
