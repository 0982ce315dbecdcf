"""imgcls.translog.values through the public API: how record fields are checked and stored."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from imgcls.translog import TransactionLog, to_utc_micros


@pytest.fixture
def log(log_url):  # SQLite and PostgreSQL (conftest)
    with TransactionLog(log_url) as log:
        yield log


def test_scores_are_fractions_with_a_float32_rounding_slack(log):
    # float32 softmax may land a rounding step above 1: stored as 1.0
    tid = log.log_transaction("run-a", {"a": np.float32(1.0000004), "b": "0.25"})
    assert log.transactions().set_index("id").loc[tid, "top_k"] == [
        {"class": "a", "score": 1.0}, {"class": "b", "score": 0.25}]
    # beyond the slack, below 0, bools and text that is no number are refused
    for bad in (1.00001, -0.01, True, "high"):
        with pytest.raises(ValueError, match=r"`top_k score` must be a number in \[0, 1\].*not a logit"):
            log.log_transaction("run-a", {"a": bad})
    assert log.count() == 1  # only the first, valid one


def test_field_checks_share_the_core_message_shape(log):
    with pytest.raises(ValueError, match=r"`latency_ms` must be a number >= 0\. Received: latency_ms=-1"):
        log.log_transaction("run-a", {"a": 0.5}, latency_ms=-1)
    with pytest.raises(ValueError, match=r"`simulated` must be True or False\. Received: simulated='yes'"):
        log.log_transaction("run-a", {"a": 0.5}, simulated="yes")
    with pytest.raises(ValueError, match=r"`status` must be one of 'ok', 'failed'\. Received: status='done'"):
        log.log_transaction("run-a", {"a": 0.5}, status="done")
    with pytest.raises(ValueError, match=r"`timeout` must be a number >= 0"):
        TransactionLog(log.url, timeout=-1)
    # 0 / 1 ints (as SQLite returns flags) are accepted as simulated
    tid = log.log_transaction("run-a", {"a": 0.5}, simulated=1, latency_ms=np.float32(2.5))
    row = log.transactions().set_index("id").loc[tid]
    assert row["simulated"] and row["latency_ms"] == 2.5


def test_to_utc_micros_forms():
    day = to_utc_micros(dt.date(2025, 1, 6))
    assert day == to_utc_micros("2025-01-06T00:00:00Z") == to_utc_micros(dt.datetime(2025, 1, 6))
    assert to_utc_micros(np.datetime64("2025-01-06T00:00:01")) == day + 1_000_000
    with pytest.raises(ValueError, match="before 1970"):
        to_utc_micros("1969-12-31T23:59:59Z")
