"""The transaction and evaluation log: schema + migrations, reads and writes (layer 5; no TensorFlow).

* :mod:`~imgcls.translog.schema` — the tables, :data:`MIGRATIONS` and every SQL statement;
* :mod:`~imgcls.translog.values` — times (:func:`to_utc_micros`) and the checks of a record's fields;
* :mod:`~imgcls.translog.dialects` — where a log lives (``serving.sqlite``, ``sqlite:///...``,
  ``postgresql://...``) and what differs between SQLite and PostgreSQL;
* :mod:`~imgcls.translog.log` — :class:`TransactionLog`, the one reader and writer of the log
  (its query methods live in :mod:`~imgcls.translog.reads`);
* :mod:`~imgcls.translog.transfer` — :func:`copy_log`: a whole log to another engine, checked
  (``imgcls log migrate``);
* :mod:`~imgcls.translog.retention` — :func:`purge`: the log and the stored inputs older than a date;
* :mod:`~imgcls.translog.harvest` — :func:`harvest`: judged served images back into the library.
"""

from imgcls.translog.harvest import HARVEST_COLUMNS, harvest
from imgcls.translog.log import TransactionLog
from imgcls.translog.retention import SERVED_DIR, purge, stored_inputs
from imgcls.translog.schema import (
    ENDPOINTS,
    MAX_NOTE_CHARS,
    MAX_REVIEWER_CHARS,
    MIGRATIONS,
    SCHEMA_VERSION,
    STATUSES,
    US_PER_DAY,
    VERDICTS,
    Migration,
)
from imgcls.translog.transfer import copy_log, log_checksums
from imgcls.translog.values import MAX_ID, UnknownTransactionError, to_utc_micros

__all__ = [
    "VERDICTS",
    "STATUSES",
    "ENDPOINTS",
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "US_PER_DAY",
    "MAX_ID",
    "MAX_REVIEWER_CHARS",
    "MAX_NOTE_CHARS",
    "SERVED_DIR",
    "HARVEST_COLUMNS",
    "Migration",
    "TransactionLog",
    "UnknownTransactionError",
    "to_utc_micros",
    "purge",
    "stored_inputs",
    "harvest",
    "copy_log",
    "log_checksums",
]
