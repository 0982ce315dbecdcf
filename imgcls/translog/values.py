"""Values into and out of the log: times, the checked fields of a record, typed frames.

Nothing here talks to a database. A record going in (a dict with the
arguments of ``log_transaction`` / ``log_evaluation``) becomes a tuple of
plain values in the column order of the insert statements of
:mod:`imgcls.translog.schema`; rows coming out become DataFrames with stable
dtypes. Numbers, fractions and flags are checked with :mod:`imgcls.core.checks`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_number,
    shown,
)
from imgcls.core.clock import utcnow
from imgcls.translog.schema import (
    ENDPOINTS,
    MAX_ERROR_CHARS,
    MAX_NOTE_CHARS,
    MAX_REVIEWER_CHARS,
    STATUSES,
    US_PER_DAY,
    VERDICTS,
)

__all__ = ["to_utc_micros", "UnknownTransactionError"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
# Epoch seconds above this (year 5138) are almost surely milliseconds.
_MAX_EPOCH_SECONDS = 1e11
#: A score may exceed 1 by this much and is then stored as 1.0: float32
#: softmax outputs can land a rounding step above 1.
SCORE_SLACK = 1e-6
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: The fields of a transaction record (the keyword arguments of log_transaction).
TX_FIELDS = (
    "run_id", "top_k", "model_version", "image_hash", "latency_ms", "source",
    "image_path", "status", "error", "simulated", "time",
    "endpoint", "http_status", "failure", "raw_score", "temperature", "runtime",
)
_TX_FIELD_SET = frozenset(TX_FIELDS)
#: The fields of an evaluation record (the arguments of log_evaluation).
EV_FIELDS = ("transaction_id", "verdict", "reviewer", "true_class", "time", "simulated",
             "new_class", "note")
#: Largest id SQLite (and a PostgreSQL BIGINT) can hold.
MAX_ID = 2**63 - 1
_FAILURE_PREFIX = re.compile(r"^([a-z_]{1,40}):")
_EV_FIELD_SET = frozenset(EV_FIELDS)


class UnknownTransactionError(LookupError, ValueError):
    """An evaluation names a transaction id the log does not hold.

    A ``ValueError`` too, so code that catches bad input as ``ValueError``
    keeps working; the HTTP endpoint answers it with 404.
    """


# --------------------------------------------------------------------------
# times
# --------------------------------------------------------------------------
def to_utc_micros(value: Any, *, name: str = "time") -> int:
    """UTC microseconds since 1970 for a time given in any common form.

    Args:
        value: A ``datetime`` / ``pandas.Timestamp`` (naive means UTC), a
            ``date`` (midnight UTC), an ISO 8601 string, a ``numpy.datetime64``,
            or epoch seconds (int or float).
        name: Argument name used in error messages.

    Returns:
        Integer microseconds since 1970-01-01 UTC.

    Raises:
        ValueError: Not a time, before 1970, or a number that looks like
            epoch milliseconds rather than seconds.
    """
    if type(value) is float and 0 <= value <= _MAX_EPOCH_SECONDS:  # fast path: epoch seconds
        return int(round(value * 1_000_000))
    if value is None or value is pd.NaT or isinstance(value, bool):
        raise ValueError(
            f"`{name}` must be a datetime, ISO 8601 string or epoch seconds. Received: {name}={value!r}"
        )
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"`{name}` is not an ISO 8601 time. Received: {name}={value!r}. "
                "Use e.g. '2025-01-31T14:05:00Z'."
            ) from None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        us = (value - _EPOCH) // _dt.timedelta(microseconds=1)
    elif isinstance(value, _dt.date):
        us = (value - _EPOCH.date()).days * US_PER_DAY
    elif isinstance(value, numbers.Real):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"`{name}` must be finite. Received: {name}={value!r}")
        if abs(seconds) > _MAX_EPOCH_SECONDS:
            raise ValueError(
                f"`{name}` looks like epoch milliseconds or microseconds, expected epoch "
                f"seconds. Received: {name}={value!r}. Divide by 1000 (or pass a datetime)."
            )
        us = int(round(seconds * 1_000_000))
    else:
        raise ValueError(
            f"`{name}` must be a datetime, ISO 8601 string or epoch seconds. "
            f"Received: {name}={shown(value)} ({type(value).__name__})"
        )
    us = int(us)
    if us < 0:
        raise ValueError(f"`{name}` must not be before 1970-01-01 UTC. Received: {name}={value!r}")
    return us


def now_us() -> int:
    """Now, in UTC microseconds (:func:`imgcls.core.clock.utcnow`)."""
    return to_utc_micros(utcnow())


def optional_micros(value: Any, name: str) -> int | None:
    """:func:`to_utc_micros` of ``value``, or None for None (an open end of a range)."""
    return None if value is None else to_utc_micros(value, name=name)


# --------------------------------------------------------------------------
# fields
# --------------------------------------------------------------------------
def _as_number(value: Any) -> Any:
    """``float(value)`` for number-like values that are not ``numbers.Real`` (text,
    0-d arrays, Decimal), as the log has always taken them; anything else as is
    (a bool stays a bool, so the checks refuse it)."""
    if isinstance(value, (bool, numbers.Real)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def opt_str(value: Any, name: str) -> str | None:
    """A string, or None for None / NA / NaN (paths become strings)."""
    if value is None or type(value) is str:
        return value
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be a string or None. Received: {name}={shown(value)}")
    return value


def req_str(value: Any, name: str, max_chars: int | None = None) -> str:
    """A non-empty string that does not start with white space (at most ``max_chars``)."""
    if not (type(value) is str and value and not value[0].isspace()):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"`{name}` must be a non-empty string. Received: {name}={shown(value)}")
    if max_chars is not None and len(value) > max_chars:
        raise ValueError(
            f"`{name}` must be at most {max_chars} characters. Received: {len(value):,} characters; "
            f"fix: shorten it")
    return value


def limited_str(value: Any, name: str, max_chars: int) -> str | None:
    """:func:`opt_str` of at most ``max_chars`` characters."""
    text = opt_str(value, name)
    if text is not None and len(text) > max_chars:
        raise ValueError(
            f"`{name}` must be at most {max_chars} characters. Received: {len(text):,} characters; "
            f"fix: shorten it")
    return text


def flag(value: Any, name: str) -> int:
    """0 or 1 from a bool (Python or NumPy) or the ints 0 and 1 (as SQLite returns them)."""
    if value is False or value is True:
        return int(value)
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return int(bool(value))
    return int(check_bool(value, name))  # raises: "`name` must be True or False. ..."


def score(value: Any, name: str) -> float:
    """A probability in [0, 1], rounded to 6 decimals.

    Checked as :func:`imgcls.core.checks.check_fraction`, with one tolerance
    kept from the first log: up to ``1 + SCORE_SLACK`` is stored as 1.0
    (float32 softmax rounding).
    """
    if type(value) is float and 0.0 <= value <= 1.0:
        return round(value, 6)
    number = _as_number(value)
    if isinstance(number, numbers.Real) and not isinstance(number, bool) \
            and 1.0 < float(number) <= 1.0 + SCORE_SLACK:
        return 1.0
    return round(check_fraction(
        number, name, fix="pass a probability in [0, 1] (softmax output, not a logit)"), 6)


def normalise_top_k(top_k: Any) -> list[tuple[str, float]]:
    """[(class, score), ...] best first, from a mapping, pairs, dicts or their JSON."""
    if top_k is None:
        return []
    if isinstance(top_k, str):
        try:
            top_k = json.loads(top_k)
        except json.JSONDecodeError:
            raise ValueError(f"`top_k` is a string but not JSON. Received: top_k={shown(top_k)}") from None
    items = list(top_k.items()) if isinstance(top_k, Mapping) else list(top_k)
    out = []
    for item in items:
        if type(item) is tuple and len(item) == 2 and type(item[0]) is str and item[0]:
            out.append((item[0], score(item[1], "top_k score")))
            continue
        if isinstance(item, Mapping):
            if "class" not in item or "score" not in item:
                raise ValueError(
                    "Each `top_k` entry must have 'class' and 'score'. "
                    f"Received: {shown(dict(item))}"
                )
            cls, value = item["class"], item["score"]
        else:
            try:
                cls, value = item
            except (TypeError, ValueError):
                raise ValueError(
                    "`top_k` must be {class: score}, [(class, score), ...] or "
                    f"[{{'class': ..., 'score': ...}}, ...]. Received entry: {shown(item)}"
                ) from None
        out.append((req_str(str(cls), "top_k class"), score(value, "top_k score")))
    out.sort(key=lambda pair: -pair[1])
    return out


def verdict(value: Any) -> str:
    """One of :data:`~imgcls.translog.VERDICTS` (case and surrounding spaces ignored)."""
    cleaned = value.strip().lower() if isinstance(value, str) else value
    if cleaned not in VERDICTS:
        raise ValueError(f"`verdict` must be one of {VERDICTS}. Received: verdict={shown(value)}")
    return cleaned


def transaction_id(value: Any) -> int:
    """An int id in the range the log can hold (existence is checked against the log, not here)."""
    return check_int(value, "transaction_id", None, " (the id log_transaction returned)", high=MAX_ID)


def failure_of(status: str, error: str | None, failure: Any) -> str | None:
    """The failure kind of a row: given, or the ``kind:`` prefix of ``error``, or ``"error"``."""
    if status == "ok":
        return None
    given = opt_str(failure, "failure")
    if given:
        return given[:40]
    match = _FAILURE_PREFIX.match(error or "")
    return match.group(1) if match else "error"


def http_status(value: Any) -> int | None:
    """None, or an HTTP status code 100-599."""
    if value is None:
        return None
    return check_int(value, "http_status", 100, high=599)


# --------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------
def records_list(records: Iterable[Mapping[str, Any]] | pd.DataFrame, what: str) -> list[Mapping[str, Any]]:
    """The records of a batch write as a list of mappings (a DataFrame gives its rows)."""
    if isinstance(records, pd.DataFrame):
        return records.to_dict("records")
    if isinstance(records, Mapping):
        raise ValueError(f"`records` must be a list of {what} dicts, not one dict. Wrap it in a list.")
    out = list(records)
    for rec in out:
        if not isinstance(rec, Mapping):
            raise ValueError(f"Each {what} record must be a dict. Received: {shown(rec)}")
    return out


def transaction_row(record: Mapping[str, Any], now: int) -> tuple:
    """The checked values of one transaction, in the column order of ``INSERT_TX``.

    Args:
        record: The keyword arguments of ``log_transaction``.
        now: The time (UTC microseconds) of a record without ``time``.
    """
    unknown = record.keys() - _TX_FIELD_SET
    if unknown:
        raise ValueError(
            f"Unknown transaction field(s) {sorted(unknown)}. Expected some of {list(TX_FIELDS)}."
        )
    run_id = req_str(record.get("run_id"), "run_id")
    version = opt_str(record.get("model_version"), "model_version") or run_id
    status = record.get("status", "ok")
    if status not in STATUSES:
        check_choice(status, "status", STATUSES)  # raises: "`status` must be one of 'ok', 'failed'. ..."
    top_k = normalise_top_k(record.get("top_k"))
    if status == "ok" and not top_k:
        raise ValueError(
            "A transaction with status='ok' needs a non-empty `top_k` (the prediction). "
            "Log a request that produced no prediction with status='failed' and an error."
        )
    latency = record.get("latency_ms")
    if latency is not None:
        latency = check_number(_as_number(latency), "latency_ms", 0)
    time = record.get("time")
    time_us = now if time is None else to_utc_micros(time)
    error = opt_str(record.get("error"), "error")
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS - 1] + "…"
    endpoint = opt_str(record.get("endpoint"), "endpoint") or "predict"
    raw = record.get("raw_score")
    raw = (top_k[0][1] if top_k else None) if raw is None else score(raw, "raw_score")
    temperature = record.get("temperature")
    if temperature is not None:
        temperature = check_number(_as_number(temperature), "temperature", 0, low_open=True)
    return (
        time_us,
        time_us // US_PER_DAY,
        run_id,
        version,
        opt_str(record.get("image_hash"), "image_hash"),
        _JSON.encode([{"class": c, "score": s} for c, s in top_k]),
        top_k[0][0] if top_k else None,
        top_k[0][1] if top_k else None,
        latency,
        opt_str(record.get("source"), "source"),
        opt_str(record.get("image_path"), "image_path"),
        status,
        error,
        flag(record.get("simulated", False), "simulated"),
        endpoint if endpoint in ENDPOINTS else "other",
        http_status(record.get("http_status")),
        failure_of(status, error, record.get("failure")),
        raw,
        temperature,
        opt_str(record.get("runtime"), "runtime"),
    )


def evaluation_row(record: Mapping[str, Any], now: int) -> tuple:
    """The checked values of one evaluation: (transaction_id, time_us, reviewer,
    verdict, true_class, simulated, received_us, new_class, note), the first
    columns of ``INSERT_EV``. ``received_us`` is always ``now`` (the log's
    clock), whatever ``time`` the record gives: the current verdict is the
    last one received."""
    unknown = record.keys() - _EV_FIELD_SET
    if unknown:
        raise ValueError(
            f"Unknown evaluation field(s) {sorted(unknown)}. Expected some of {list(EV_FIELDS)}."
        )
    time = record.get("time")
    return (
        transaction_id(record.get("transaction_id")),
        now if time is None else to_utc_micros(time),
        req_str(record.get("reviewer"), "reviewer", MAX_REVIEWER_CHARS),
        verdict(record.get("verdict")),
        opt_str(record.get("true_class"), "true_class"),
        flag(record.get("simulated", False), "simulated"),
        now,
        flag(record.get("new_class", False), "new_class"),
        limited_str(record.get("note"), "note", MAX_NOTE_CHARS),
    )


def check_judgement(found: Mapping[int, tuple], tid: int, verdict: str, true_class: str | None, *,
                    log_path: Any, at: str = "") -> None:
    """Refuse an evaluation of an unknown or failed transaction, or an inconsistent one.

    Args:
        found: What the log holds of the judged transactions: id -> (status,
            top1_class, ...), as ``schema.judged_transactions`` selects it.
        tid, verdict, true_class: The evaluation (already checked by :func:`evaluation_row`).
        log_path: The log's file, named in the message.
        at: Prefix naming the record of a batch.

    Raises:
        UnknownTransactionError: ``tid`` is not in the log.
        ValueError: The transaction failed, or ``true_class`` contradicts ``verdict``.
    """
    if tid not in found:
        raise UnknownTransactionError(
            f"{at}No transaction with id {tid} in "
            f"{str(log_path)!r}. Use an id returned by log_transaction "
            "(see TransactionLog.transactions())."
        )
    status, top1 = found[tid][:2]
    if status != "ok":
        raise ValueError(
            f"{at}Transaction {tid} has status {status!r} and "
            "no prediction to judge. Only status='ok' transactions can be evaluated."
        )
    if true_class is not None and verdict == "correct" and true_class != top1:
        raise ValueError(
            f"{at}Verdict 'correct' but true_class={true_class!r} "
            f"differs from the prediction {top1!r}. Use verdict 'wrong', or omit true_class."
        )
    if true_class is not None and verdict == "wrong" and true_class == top1:
        raise ValueError(
            f"{at}Verdict 'wrong' but true_class={true_class!r} is "
            "the predicted class. Use verdict 'correct', or give the real class."
        )


def checked_rows(records: list[Mapping[str, Any]], row, what: str, now: int) -> list[tuple]:
    """``row(record, now)`` for every record; an error names the record when there are several."""
    rows = []
    for i, rec in enumerate(records):
        try:
            rows.append(row(rec, now))
        except ValueError as err:
            if len(records) == 1:
                raise
            raise ValueError(f"{what.capitalize()} record {i}: {err}") from None
    return rows


# --------------------------------------------------------------------------
# out: rows -> DataFrame
# --------------------------------------------------------------------------
def frame(rows: list[tuple], spec: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """A DataFrame with stable dtypes from SQL rows and (name, kind) pairs.

    Kinds: ``int``, ``optint`` (nullable ``Int64``), ``time`` (UTC microseconds ->
    UTC timestamps), ``float``,
    ``bool``, ``json`` (decoded), anything else a string column.
    """
    columns = list(zip(*rows)) if rows else [() for _ in spec]
    data = {}
    for (name, kind), col in zip(spec, columns):
        if kind == "int":
            data[name] = np.asarray(col, dtype=np.int64)
        elif kind == "optint":
            data[name] = pd.array(list(col), dtype="Int64")
        elif kind == "time":
            data[name] = pd.to_datetime(np.asarray(col, dtype=np.int64), unit="us", utc=True)
        elif kind == "float":
            data[name] = np.asarray(col, dtype=np.float64)
        elif kind == "bool":
            data[name] = np.asarray(col, dtype=bool)
        elif kind == "json":
            data[name] = pd.Series([json.loads(v) for v in col], dtype=object)
        else:
            data[name] = pd.Series(col, dtype="str")
    return pd.DataFrame(data)
