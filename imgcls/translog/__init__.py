"""The transaction and evaluation log: schema, migrations, reads and writes (layer 5; no TensorFlow)."""

from imgcls.translog.log import (
    MIGRATIONS,
    SCHEMA_VERSION,
    STATUSES,
    VERDICTS,
    Migration,
    TransactionLog,
    UnknownTransactionError,
    to_utc_micros,
)

__all__ = [
    "VERDICTS",
    "STATUSES",
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "Migration",
    "TransactionLog",
    "UnknownTransactionError",
    "to_utc_micros",
]
