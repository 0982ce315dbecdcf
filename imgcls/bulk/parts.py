"""The part files of a bulk job folder: listing, writing atomically, reading, quarantining.

A job folder (:mod:`imgcls.bulk.store`) holds its results in
``part-NNNNN.parquet`` files and its unreadable images in
``_errors-NNNNN.parquet`` files. Each is written to a hidden temporary file,
fsynced and renamed into place (:func:`write_part`), so a part is complete or
absent. A part damaged later (a disk fault, a truncated copy of the folder)
is moved aside into ``_quarantine/`` inside the job folder, kept and never
deleted, with a warning (:func:`read_parts`); ``pandas.read_parquet`` of the
folder ignores ``_``-prefixed entries, so it still reads the intact parts.

This module imports pyarrow only inside its functions.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

__all__ = ["PART_RE", "ERR_RE", "QUARANTINE_DIR", "part_files", "write_part", "read_parts",
           "quarantined_parts"]

#: Result part files.
PART_RE = re.compile(r"^part-(\d+)\.parquet$")
#: Error part files.
ERR_RE = re.compile(r"^_errors-(\d+)\.parquet$")
#: Sub-folder of a job where unreadable part files are moved aside (kept, never deleted).
QUARANTINE_DIR = "_quarantine"


def part_files(out: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    """``(number, path)`` of the part files in ``out`` whose names match ``pattern``, in order."""
    if not out.is_dir():
        return []
    found = []
    for entry in os.scandir(out):
        m = pattern.match(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def write_part(out: Path, name: str, table: Any) -> None:
    """Write a pyarrow table as ``out/name`` atomically (temp file, fsync, rename)."""
    import pyarrow.parquet as pq

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as f:  # durable before it becomes visible
            os.fsync(f.fileno())
        os.replace(tmp, out / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _quarantine(out: Path, part: Path, err: BaseException) -> str:
    """Move an unreadable part file into ``out/_quarantine/`` (kept, never deleted); its new name."""
    folder = out / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    target, i = folder / part.name, 0
    while target.exists():
        i += 1
        target = folder / f"{part.stem}-{i}{part.suffix}"
    os.replace(part, target)
    warnings.warn(
        f"Bulk results part {part.name!r} in {str(out)!r} cannot be read ({type(err).__name__}: the file "
        f"is damaged or truncated). It was moved aside to {str(target)!r} (kept, not deleted); the "
        "other parts are read, and its images are identified again when the job resumes.",
        RuntimeWarning,
        stacklevel=3,
    )
    return target.name


def read_parts(out: Path, pattern: re.Pattern, *, columns: list[str] | None = None) -> tuple[list, list[str]]:
    """Read the part files of a job folder that match ``pattern``, quarantining damaged ones.

    A part that cannot be read (truncated, corrupt) is moved into
    ``_quarantine/`` inside the job folder with a warning; the others are read.

    Args:
        out: The job folder.
        pattern: :data:`PART_RE` (results) or :data:`ERR_RE` (errors).
        columns: Read only these columns.

    Returns:
        (the pyarrow tables of the readable parts in order, names of the parts quarantined now).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, moved = [], []
    for _, f in part_files(out, pattern):
        try:
            tables.append(pq.read_table(f, columns=columns))
        except (pa.ArrowException, OSError, ValueError) as err:
            moved.append(_quarantine(out, f, err))
    return tables, moved


def quarantined_parts(out: Path) -> list[str]:
    """Names of the part files of a job folder that were moved aside as unreadable, sorted."""
    folder = out / QUARANTINE_DIR
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
