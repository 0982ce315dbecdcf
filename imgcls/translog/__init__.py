"""The transaction and evaluation log: schema + migrations, reads and writes (layer 5; no TensorFlow).

* :mod:`~imgcls.translog.schema` — the tables, :data:`MIGRATIONS` and every SQL statement;
* :mod:`~imgcls.translog.values` — times (:func:`to_utc_micros`) and the checks of a record's fields;
* :mod:`~imgcls.translog.log` — :class:`TransactionLog`, the one reader and writer of ``serving.sqlite``.
"""

from imgcls.translog.log import TransactionLog
from imgcls.translog.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    STATUSES,
    US_PER_DAY,
    VERDICTS,
    Migration,
)
from imgcls.translog.values import UnknownTransactionError, to_utc_micros

__all__ = [
    "VERDICTS",
    "STATUSES",
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "US_PER_DAY",
    "Migration",
    "TransactionLog",
    "UnknownTransactionError",
    "to_utc_micros",
]
