"""Reading the log: the query methods of :class:`~imgcls.translog.TransactionLog`.

:class:`LogReads` is the reading half of the log, mixed into
:class:`~imgcls.translog.TransactionLog` (which owns the connection and the
writes). Every statement comes from :mod:`imgcls.translog.schema`; rows become
DataFrames with stable dtypes through :func:`imgcls.translog.values.frame`.
This module never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.translog import schema as sql
from imgcls.translog.schema import US_PER_DAY
from imgcls.translog.values import frame, optional_micros
from imgcls.translog.values import transaction_id as _checked_id

__all__: list[str] = []


def _day_numbers(first_day: Any, last_day: Any) -> dict[str, int | None]:
    """The inclusive UTC day range of the per-day queries, as day numbers (None: open)."""
    first = optional_micros(first_day, "first_day")
    last = optional_micros(last_day, "last_day")
    return {"first_day": None if first is None else first // US_PER_DAY,
            "last_day": None if last is None else last // US_PER_DAY}


class LogReads:
    """The query methods of a transaction log (mixed into :class:`~imgcls.translog.TransactionLog`).

    The host class provides ``_query(statement, params) -> list[tuple]``.
    """

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:  # pragma: no cover
        raise NotImplementedError

    def transactions(
        self,
        *,
        since: Any = None,
        until: Any = None,
        run_id: str | None = None,
        model_version: str | None = None,
        include_simulated: bool = True,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Transactions served in ``[since, until)``, oldest first.

        Args:
            since: Inclusive start time (any form :func:`to_utc_micros` takes).
            until: Exclusive end time.
            run_id: Only this run.
            model_version: Only this version label.
            include_simulated: False leaves out demo traffic.
            columns: Only these columns (faster on big logs). Default: id,
                time (UTC), run_id, model_version, image_hash, top_k (list of
                ``{"class", "score"}``, calibrated), top1_class, top1_score,
                latency_ms, source, image_path, status, error, simulated,
                endpoint, http_status (nullable), failure, raw_top1_score
                (before calibration), temperature (NaN for none), runtime
                (``"openvino-int8"``...; None for rows logged before version 4).

        Returns:
            One row per transaction.
        """
        statement, params, spec = sql.transactions_query(
            columns, since_us=optional_micros(since, "since"), until_us=optional_micros(until, "until"),
            run_id=run_id, model_version=model_version, include_simulated=include_simulated)
        return frame(self._query(statement, params), spec)

    def transaction(self, transaction_id: int) -> dict | None:
        """What an evaluation needs of one transaction, or None when the log has no such id.

        Args:
            transaction_id: The id (an int in the range the log holds).

        Returns:
            ``{"id", "status", "top1_class", "run_id", "model_version"}`` or None.
        """
        tid = _checked_id(transaction_id)
        rows = self._query(sql.SELECT_TX_BRIEF, (tid,))
        if not rows:
            return None
        return dict(zip(("id", "status", "top1_class", "run_id", "model_version"), rows[0]))

    def evaluations(
        self, *, since: Any = None, until: Any = None, include_simulated: bool = True
    ) -> pd.DataFrame:
        """Every evaluation judged in ``[since, until)``, oldest first (the whole history).

        Args:
            since: Inclusive start of the evaluation time.
            until: Exclusive end of the evaluation time.
            include_simulated: False leaves out demo evaluations.

        Returns:
            Columns: id, transaction_id, time (UTC, as given), reviewer, verdict,
            true_class, simulated, received (UTC, the log's clock), new_class, note.
        """
        statement, params, spec = sql.evaluations_query(
            since_us=optional_micros(since, "since"), until_us=optional_micros(until, "until"),
            include_simulated=include_simulated)
        return frame(self._query(statement, params), spec)

    def evaluated_transactions(
        self,
        *,
        since: Any = None,
        until: Any = None,
        latest_only: bool = True,
        include_simulated: bool = True,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Evaluations joined with the transactions they judge.

        Args:
            since: Inclusive start of the *transaction* time (when the
                prediction was served, which is what accuracy over time needs).
            until: Exclusive end of the transaction time.
            latest_only: One row per evaluated transaction: its *current*
                verdict, the last one the log received (by the log's clock,
                then id; never a client-supplied time). False: one row per
                evaluation (the history).
            include_simulated: False leaves out simulated transactions and
                simulated evaluations.
            columns: Only these columns. Default: evaluation_id,
                transaction_id, evaluation_time, reviewer, verdict,
                true_class, evaluation_simulated, evaluation_received,
                new_class, note, then the transaction's columns (time, run_id,
                model_version, ..., simulated, ...).

        Returns:
            A DataFrame ordered by transaction id (then the order received).
        """
        statement, params, spec = sql.evaluated_query(
            columns, since_us=optional_micros(since, "since"), until_us=optional_micros(until, "until"),
            include_simulated=include_simulated)
        rows = self._query(statement, params)
        # hidden trailing keys: transaction id, time received and id (order, current)
        keys = np.array([r[-3:] for r in rows], dtype=np.int64).reshape(-1, 3)
        order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
        if latest_only and len(order):
            tids = keys[order, 0]
            last = np.append(tids[1:] != tids[:-1], True)  # last evaluation of each transaction
            order = order[last]
        return frame([rows[i][:-3] for i in order.tolist()], spec)

    def usage_by_day(
        self, *, first_day: Any = None, last_day: Any = None, include_simulated: bool = True
    ) -> pd.DataFrame:
        """Requests per UTC day and model version, from an index-only scan.

        Args:
            first_day: First UTC day counted (inclusive; a date, datetime or
                ISO string: only its day matters).
            last_day: Last UTC day counted (inclusive).
            include_simulated: False leaves out demo traffic.

        Returns:
            DataFrame [day (UTC midnight), model_version, requests, ok,
            failed], ordered by day then version.
        """
        statement, params, spec = sql.usage_query(**_day_numbers(first_day, last_day),
                                                include_simulated=include_simulated)
        df = frame(self._query(statement, params), spec)
        df["day"] = pd.to_datetime(df["day"].to_numpy() * US_PER_DAY, unit="us", utc=True)
        df["failed"] = df["requests"] - df["ok"]
        return df

    def failures_by_day(
        self, *, first_day: Any = None, last_day: Any = None, include_simulated: bool = True
    ) -> pd.DataFrame:
        """Failed requests per UTC day, endpoint, failure kind and HTTP status.

        Args:
            first_day: First UTC day counted (inclusive).
            last_day: Last UTC day counted (inclusive).
            include_simulated: False leaves out demo traffic.

        Returns:
            DataFrame [day (UTC midnight), endpoint, failure, http_status
            (nullable: calls from Python have none), requests].
        """
        statement, params, spec = sql.failures_query(**_day_numbers(first_day, last_day),
                                                include_simulated=include_simulated)
        df = frame(self._query(statement, params), spec)
        df["day"] = pd.to_datetime(df["day"].to_numpy() * US_PER_DAY, unit="us", utc=True)
        return df

    def model_versions(self) -> pd.DataFrame:
        """Every version label logged: model_version, run_id, first_seen, last_seen (UTC).

        Ordered by first seen (then label): the stable order reports use for colours.
        """
        return frame(self._query(sql.SELECT_VERSIONS), sql.VERSION_COLUMNS)

    def purges(self) -> pd.DataFrame:
        """Every retention purge (:func:`imgcls.translog.purge`), oldest first.

        Returns:
            DataFrame [id, time (when it ran), before (what was older went),
            what ("log" or "inputs"), transactions, evaluations, inputs].
        """
        return frame(self._query(sql.SELECT_PURGES), sql.PURGE_COLUMNS)

    def count(self, table: str = "transactions") -> int:
        """Number of rows in ``"transactions"`` or ``"evaluations"``."""
        if table not in sql.COUNTED_TABLES:
            raise ValueError(
                f"`table` must be 'transactions' or 'evaluations'. Received: table={table!r}"
            )
        return int(self._query(sql.count_query(table))[0][0])
