"""The resumable job store of bulk identification: one Parquet dataset per job.

**The results table** (one row per image; :data:`RESULT_COLUMNS` for ``top_k=3``):

=====================  ======================================================
``path``               absolute path of the image file (the key)
``relpath``            path relative to the identified folder (posix)
``hash``               sha256 of the file's bytes (:func:`imgcls.core.file_hash`)
``top1_class``         predicted class; ``top1_score`` its probability, calibrated
                       with the run's temperature (:attr:`imgcls.runs.Run.temperature`)
``top2_class`` ...     the next choices, down to ``top{k}_class`` / ``top{k}_score``
``raw_top1_score``     the model's own (uncalibrated) probability of ``top1_class``;
                       equal to ``top1_score`` for a run without a temperature
``entropy``            entropy of the (calibrated) class probabilities, in nats
                       (0 = certain; ``log(n_classes)`` = uniform)
``margin``             ``top1_score - top2_score`` (small = torn between two)
``model``              registry name of the model, e.g. ``"mini_inception"``
``run_id``             the run that predicted
``time``               when the row was predicted (UTC)
=====================  ======================================================

Unreadable files go to a separate errors table (:data:`ERROR_COLUMNS`: path,
relpath, hash, reason, run_id, time), read with :func:`load_errors`; they never
stop the job.

**On disk** a job is one folder, a Parquet dataset that ``pandas.read_parquet``
reads as it is::

    bulk/<run_id>-<name>.parquet/
      part-00001.parquet     results of the first chunk of images
      part-00002.parquet     ...
      _errors-00001.parquet  unreadable files of the first chunk (if any)
      _meta.json             run id, model, k, source, counts, complete flag
      _quarantine/           part files that could not be read, moved aside (kept)

Each chunk is written to a hidden temporary file, fsynced and renamed into
place, so a part file is either complete or absent. A job that is killed
(even with SIGKILL) and started again skips every path already recorded in a
part file and continues; no path is ever recorded twice. A lock file keeps
two jobs from writing into one folder. A part file that cannot be read (a
disk fault, a truncated copy) is moved aside into ``_quarantine/`` in the job
folder (kept, never deleted) with a warning; the intact parts are still read,
and its images are identified again when the job resumes.

:class:`JobStore` owns the folder, :class:`ChunkWriter` buffers one chunk and
writes its part files, :class:`ErrorRouter` hands decode errors to the chunk
that covers them. :func:`load_results` and :func:`load_errors` read a job back.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core import entropy, file_hash, margin, utcnow
from imgcls.core import top_k as rank_top_k
from imgcls.bulk.parts import ERR_RE, PART_RE, part_files, quarantined_parts, read_parts, write_part
from imgcls.core.fileio import read_json, write_json

__all__ = [
    "ERROR_COLUMNS",
    "RESULT_COLUMNS",
    "ChunkWriter",
    "ErrorRouter",
    "JobStore",
    "errors_schema",
    "load_errors",
    "load_results",
    "quarantined_parts",
    "read_parts",
    "result_columns",
    "results_schema",
]

#: Errors table columns.
ERROR_COLUMNS = ["path", "relpath", "hash", "reason", "run_id", "time"]

_META_FILE = "_meta.json"
_LOCK_FILE = ".lock"


def result_columns(top_k: int = 3) -> list[str]:
    """Columns of a results table with ``top_k`` choices per image.

    Args:
        top_k: Choices recorded per image.

    Returns:
        The column names, in table order.

    Example:
        >>> result_columns(2)
        ['path', 'relpath', 'hash', 'top1_class', 'top1_score', 'top2_class',
         'top2_score', 'raw_top1_score', 'entropy', 'margin', 'model', 'run_id', 'time']
    """
    top = [c for i in range(1, top_k + 1) for c in (f"top{i}_class", f"top{i}_score")]
    return ["path", "relpath", "hash", *top, "raw_top1_score", "entropy", "margin", "model", "run_id", "time"]


#: Results table columns for the default ``top_k=3``.
RESULT_COLUMNS = result_columns(3)


def results_schema(top_k: int):
    """The ``pyarrow`` schema of a results table with ``top_k`` choices."""
    import pyarrow as pa

    fields = [pa.field("path", pa.string()), pa.field("relpath", pa.string()), pa.field("hash", pa.string())]
    for i in range(1, top_k + 1):
        fields += [pa.field(f"top{i}_class", pa.string()), pa.field(f"top{i}_score", pa.float64())]
    fields += [
        pa.field("raw_top1_score", pa.float64()),
        pa.field("entropy", pa.float64()),
        pa.field("margin", pa.float64()),
        pa.field("model", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
    ]
    return pa.schema(fields)


def errors_schema():
    """The ``pyarrow`` schema of an errors table (:data:`ERROR_COLUMNS`)."""
    import pyarrow as pa

    return pa.schema([
        pa.field("path", pa.string()),
        pa.field("relpath", pa.string()),
        pa.field("hash", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
    ])


def _now() -> pd.Timestamp:
    # The time column is a pyarrow timestamp; the job stores pandas Timestamps.
    return pd.Timestamp(utcnow())


def _safe_hash(path: str) -> str:
    try:
        return file_hash(path)
    except (OSError, ValueError):
        return ""


# --------------------------------------------------------------------------
# The job folder
# --------------------------------------------------------------------------
class JobStore:
    """One job folder: its part files, its ``_meta.json`` and its lock.

    Args:
        out: The job folder (created by :meth:`create`).
    """

    def __init__(self, out: Path):
        self.out = out

    def create(self) -> None:
        """Create the folder, refusing a file of that name."""
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(
                f"`out` must be a folder (a Parquet dataset of part files). {str(self.out)!r} is a file; "
                "pass another path."
            )
        self.out.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive advisory lock on the folder (released even on SIGKILL).

        Raises:
            ValueError: Another job holds it.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            yield
            return
        with open(self.out / _LOCK_FILE, "a+") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(
                    f"Another identify job is writing into {str(self.out)!r} right now. Wait for it to "
                    "finish, or pass another `out`."
                ) from None
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def clean_temp(self) -> None:
        """Remove temporary files a killed job left behind."""
        for entry in os.scandir(self.out):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                Path(entry.path).unlink(missing_ok=True)

    def read_meta(self) -> dict:
        """The job's ``_meta.json`` ({} if missing or unreadable)."""
        try:
            meta = read_json(self.out / _META_FILE, {})
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        """Replace ``_meta.json`` atomically."""
        write_json(self.out / _META_FILE, dict(meta))

    def part_numbers(self) -> list[int]:
        """Numbers of the result and error part files present."""
        return [n for n, _ in part_files(self.out, PART_RE)] + [n for n, _ in part_files(self.out, ERR_RE)]

    def has_parts(self) -> bool:
        """Whether any result or error part file exists."""
        return bool(self.part_numbers())

    def clear(self) -> None:
        """Delete the part files and the meta file (a fresh start)."""
        for pattern in (PART_RE, ERR_RE):
            for _, f in part_files(self.out, pattern):
                f.unlink()
        (self.out / _META_FILE).unlink(missing_ok=True)

    def recorded_paths(self) -> set[str]:
        """Every path recorded in a readable part file, results and errors alike.

        A part that cannot be read is quarantined (:func:`read_parts`), so its
        paths count as not recorded and are identified again.
        """
        done: set[str] = set()
        for pattern in (PART_RE, ERR_RE):
            for table in read_parts(self.out, pattern, columns=["path"])[0]:
                done.update(table.column("path").to_pylist())
        return done

    def quarantined(self) -> list[str]:
        """Names of the part files moved aside as unreadable (in ``_quarantine/``), sorted."""
        return quarantined_parts(self.out)


# --------------------------------------------------------------------------
# Writing one chunk
# --------------------------------------------------------------------------
class ChunkWriter:
    """Buffers the predictions and errors of one chunk and writes them as part files.

    Args:
        out: The job folder.
        top_k: Choices recorded per image.
        classes: The run's class names (model output order).
        model_name: Registry name of the model.
        run_id: The run that predicts.
        start_part: Number of the last part file already written.
    """

    def __init__(self, out: Path, *, top_k: int, classes: Sequence[str], model_name: str, run_id: str,
                 start_part: int):
        import pyarrow as pa

        self._pa = pa
        self.out = out
        self.top_k = top_k
        self.classes = np.asarray(list(classes), dtype=object)
        self.model_name = model_name
        self.run_id = run_id
        self.part = start_part
        self.schema = results_schema(top_k)
        self.err_schema = errors_schema()
        self.rows: list[dict[str, Any]] = []  # one dict of column arrays per batch
        self.errors: list[tuple[str, str, str]] = []  # (path, relpath, reason)
        self.n_rows = 0
        self.written_rows = 0
        self.written_errors = 0

    def add_batch(self, paths: list[str], rels: list[str], probs: np.ndarray, *,
                  raw_top1: np.ndarray | None = None) -> None:
        """Buffer one batch of class probabilities ``(n, n_classes)`` (calibrated), with the
        raw probability of each row's first choice (default: the first choice's score)."""
        order, scores = rank_top_k(probs, self.top_k)
        now = _now()
        cols: dict[str, Any] = {
            "path": paths,
            "relpath": rels,
            "hash": [_safe_hash(p) for p in paths],
        }
        for i in range(self.top_k):
            cols[f"top{i + 1}_class"] = self.classes[order[:, i]].tolist()
            cols[f"top{i + 1}_score"] = scores[:, i]
        cols["raw_top1_score"] = scores[:, 0] if raw_top1 is None else np.asarray(raw_top1, dtype=np.float64)
        cols["entropy"] = entropy(probs)
        cols["margin"] = margin(scores)
        cols["model"] = [self.model_name] * len(paths)
        cols["run_id"] = [self.run_id] * len(paths)
        cols["time"] = [now] * len(paths)
        self.rows.append(cols)
        self.n_rows += len(paths)

    def add_error(self, path: str, rel: str, reason: str) -> None:
        """Buffer one unreadable file."""
        self.errors.append((path, rel, reason))

    def pending(self) -> int:
        """Rows and errors buffered since the last :meth:`flush`."""
        return self.n_rows + len(self.errors)

    def flush(self) -> None:
        """Write the buffered chunk as the next part file(s)."""
        if not self.rows and not self.errors:
            return
        pa = self._pa
        self.part += 1
        name = f"{self.part:05d}.parquet"
        # Errors first: if the job dies between the two writes, the chunk's
        # good images are simply identified again on resume (never twice).
        if self.errors:
            now = _now()
            table = pa.table(
                {
                    "path": [e[0] for e in self.errors],
                    "relpath": [e[1] for e in self.errors],
                    "hash": ["" if os.path.islink(e[0]) else _safe_hash(e[0]) for e in self.errors],
                    "reason": [e[2] for e in self.errors],
                    "run_id": [self.run_id] * len(self.errors),
                    "time": [now] * len(self.errors),
                },
                schema=self.err_schema,
            )
            write_part(self.out, f"_errors-{name}", table)
            self.written_errors += len(self.errors)
        if self.rows:
            merged = {
                name_: (np.concatenate([np.asarray(r[name_]) for r in self.rows])
                        if isinstance(self.rows[0][name_], np.ndarray)
                        else [v for r in self.rows for v in r[name_]])
                for name_ in self.schema.names
            }
            table = pa.table(merged, schema=self.schema)
            write_part(self.out, f"part-{name}", table)
            self.written_rows += self.n_rows
        self.rows, self.errors, self.n_rows = [], [], 0


class ErrorRouter:
    """Moves decode errors of ``paths[:hi]`` from the pipeline's ``skipped`` list
    into the chunk writer.

    ``tf.data`` decodes ahead of the model and in parallel, so ``skipped`` may
    already hold errors of later paths, in any order; those are held back for
    the chunk that covers them.

    Args:
        skipped: The pipeline's list of ``(path, reason)``, growing.
        position: Index of each path in the job's list.
        rels: Relative path of each path in the job's list.
        writer: Where the errors go.
    """

    def __init__(self, skipped: list, position: Mapping[str, int], rels: list[str], writer: ChunkWriter):
        self.skipped = skipped
        self.position = position
        self.rels = rels
        self.writer = writer
        self.consumed = 0
        self.held: list[tuple[int, str, str]] = []

    def route(self, hi: int) -> None:
        """Hand the errors of ``paths[:hi]`` to the writer."""
        new = self.skipped[self.consumed:]
        self.consumed += len(new)
        self.held.extend((self.position.get(path, -1), path, reason) for path, reason in new)
        keep = []
        for pos, path, reason in self.held:
            if pos < hi:
                rel = self.rels[pos] if pos >= 0 else Path(path).name
                self.writer.add_error(path, rel, reason)
            else:
                keep.append((pos, path, reason))
        self.held = keep


# --------------------------------------------------------------------------
# Reading results back
# --------------------------------------------------------------------------
def _results_dir(path: str | os.PathLike) -> Path:
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"No bulk results at {str(p)!r}. Run identify(...) first; results are written to "
            "<workspace>/bulk/<run_id>-<name>.parquet by default."
        )
    return p


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results table written by :func:`imgcls.bulk.identify`.

    Args:
        path: The results folder (``....parquet/`` with part files), or a
            single Parquet file holding a results table.

    Returns:
        The results, parts in the order they were written. ``attrs`` holds
        ``results_path``, ``n_errors`` (see :func:`load_errors`) and
        ``quarantined``: the part files moved aside into ``_quarantine/``
        because they cannot be read (a warning names any moved now; their
        images are identified again when the job resumes).

    Raises:
        FileNotFoundError: Nothing at ``path``.
    """
    p = _results_dir(path)
    quarantined: list[str] = []
    if p.is_file():
        df = pd.read_parquet(p)
        n_err = 0
    else:
        import pyarrow as pa

        parts = read_parts(p, PART_RE)[0]
        if parts:
            df = pa.concat_tables(parts, promote_options="default").to_pandas()
        else:
            meta = JobStore(p).read_meta()
            df = results_schema(int(meta.get("k") or 3)).empty_table().to_pandas()
        n_err = sum(t.num_rows for t in read_parts(p, ERR_RE, columns=["path"])[0])
        quarantined = quarantined_parts(p)
    df = df.reset_index(drop=True)
    df.attrs = {"results_path": str(p), "n_errors": int(n_err), "quarantined": quarantined}
    return df


def load_errors(path: str | os.PathLike) -> pd.DataFrame:
    """The files :func:`imgcls.bulk.identify` could not read.

    Args:
        path: The results folder.

    Returns:
        DataFrame [path, relpath, hash, reason, run_id, time] (:data:`ERROR_COLUMNS`).

    Raises:
        FileNotFoundError: Nothing at ``path``.
    """
    import pyarrow as pa

    p = _results_dir(path)
    parts = read_parts(p, ERR_RE)[0] if p.is_dir() else []
    if not parts:
        return errors_schema().empty_table().to_pandas()
    return pa.concat_tables(parts).to_pandas().reset_index(drop=True)
