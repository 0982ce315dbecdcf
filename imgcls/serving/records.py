"""The rows a served request leaves in the log, and writing them so that no answer goes unrecorded.

:class:`RequestLog` turns what happened to a request into the keyword
arguments of :meth:`imgcls.translog.TransactionLog.log_transaction` and
writes them (directly, or through the group-commit writer), raising
:class:`LogWriteError` when the row cannot be committed: the caller then
answers nothing but the failure. Every request is a row: a prediction, a
refused upload, a failed evaluation, a request refused for its headers, its
token or its rate; never the bytes of an upload, only its sha256.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from imgcls.core import isoformat, utcnow
from imgcls.serving.batching import GroupCommitWriter
from imgcls.translog import TransactionLog, to_utc_micros

__all__ = ["LogWriteError", "RequestLog", "as_utc", "iso"]

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


class RequestLog:
    """Writes the rows of served requests to a log (or to nothing, without one).

    Args:
        log: The transaction log, or None (nothing is written; ids are None).
        group_commit: Commit the rows of concurrent requests together from a
            writer thread (see :mod:`imgcls.serving`).
    """

    def __init__(self, log: TransactionLog | None, *, group_commit: bool = False) -> None:
        self.log = log
        self.writer = GroupCommitWriter(log) if (group_commit and log is not None) else None

    def close(self) -> None:
        """Stop the writer thread (the log itself is closed by its owner)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    @staticmethod
    def row(model: Any, *, top_k: list[dict] | None, raw_score: float | None, image_hash: str | None,
            latency_ms: float, source: str, image_path: Any, error: str | None, simulated: bool,
            when: _dt.datetime, endpoint: str = "predict", http_status: int | None = None,
            failure: str | None = None) -> dict:
        """The keyword arguments of ``log_transaction`` for one request answered by ``model``."""
        return {
            "run_id": model.run_id,
            "model_version": model.model_version,
            "top_k": top_k or None,
            "image_hash": image_hash,
            "latency_ms": round(float(latency_ms), 3),
            "source": source,
            "image_path": None if image_path is None else str(image_path),
            "status": "failed" if error is not None else "ok",
            "error": error,
            "simulated": bool(simulated),
            "time": when,
            "endpoint": endpoint,
            "http_status": http_status,
            "failure": failure,
            "raw_score": raw_score,
            "temperature": model.temperature if top_k else None,
            "runtime": getattr(model, "runtime_label", None),
        }

    def write(self, record: dict) -> int | None:
        """Commit one row and return its id (None without a log).

        Raises:
            LogWriteError: The row could not be committed.
        """
        if self.log is None:
            return None
        try:
            if self.writer is not None:
                return int(self.writer.submit(record))
            return int(self.log.log_transaction(**record))
        except Exception as exc:  # noqa: BLE001 - any failed write fails the request
            raise LogWriteError(
                f"The transaction log {self.log.where!r} could not be written "
                f"({type(exc).__name__}: {exc}). The request was not answered so that no "
                "served prediction goes unrecorded; fix the log (disk space, permissions, "
                "a lock held by another program) and retry."
            ) from exc

    def failure(self, model: Any, reason: str, failure: str, *, source: str, endpoint: str = "predict",
                http_status: int | None = None, latency_ms: float = 0.0, image_hash: str | None = None,
                simulated: bool = False, time: Any = None) -> int | None:
        """Commit the row of a refused request (``error`` is ``"<failure>: <reason>"``)."""
        when = utcnow() if time is None else as_utc(time, "time")
        return self.write(self.row(
            model, top_k=None, raw_score=None, image_hash=image_hash, latency_ms=latency_ms,
            source=source, image_path=None, error=f"{failure}: {reason}", simulated=simulated,
            when=when, endpoint=endpoint, http_status=http_status, failure=failure))
