"""Retention: purge the log and the stored inputs older than a date, and say so.

The log and the inputs kept by ``imgcls serve --keep-inputs``
(``served/<yyyy-mm-dd>/<sha256>.<ext>``) grow forever unless purged.
:func:`purge` deletes the transactions served before a date (with their
evaluations) and/or the stored input files of the days before it, and records
each purge in the log's ``purges`` table, which reports read to say that
their data was purged (see :meth:`TransactionLog.purges`). A dry run counts
what would go and changes nothing. This module never imports TensorFlow.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from imgcls.core.workspace import Workspace, as_workspace
from imgcls.translog.log import TransactionLog
from imgcls.translog.values import to_utc_micros

__all__ = ["SERVED_DIR", "purge", "stored_inputs"]

#: Folder (under the workspace) where kept inputs go: ``served/<yyyy-mm-dd>/<hash>.<ext>``.
SERVED_DIR = "served"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _day_folders(root: Path) -> list[tuple[_dt.date, Path]]:
    """The ``served/<yyyy-mm-dd>`` folders, oldest first (other names are left alone)."""
    out = []
    if not root.is_dir():
        return out
    for entry in root.iterdir():
        try:
            day = _dt.date.fromisoformat(entry.name)
        except ValueError:
            continue
        if entry.is_dir() and not entry.is_symlink():
            out.append((day, entry))
    return sorted(out)


def stored_inputs(workspace: Workspace | str | os.PathLike) -> pd.DataFrame:
    """The stored inputs per day folder: day, files, bytes (oldest first).

    Args:
        workspace: The workspace.
    """
    ws = as_workspace(workspace)
    rows = []
    for day, folder in _day_folders(ws.root / SERVED_DIR):
        files = [p for p in folder.iterdir() if p.is_file()]
        rows.append({"day": pd.Timestamp(day, tz="UTC"), "files": len(files),
                     "bytes": sum(p.stat().st_size for p in files)})
    return pd.DataFrame(rows, columns=["day", "files", "bytes"])


def purge(
    workspace: Workspace | str | os.PathLike,
    *,
    before: Any,
    log: bool = True,
    inputs: bool = False,
    dry_run: bool = False,
    log_url: str | None = None,
) -> dict[str, Any]:
    """Delete what was served before ``before``: log rows, stored inputs, or both.

    Args:
        workspace: The workspace (its ``serving.sqlite`` and ``served/``).
        before: A date or time (any form :func:`to_utc_micros` takes): log
            rows served strictly before it go; stored inputs go by whole day
            folders that end at or before it.
        log: Purge the transactions (and their evaluations) of the log.
        inputs: Purge the stored input files (``served/<day>/``).
        dry_run: Count only; change nothing and record nothing.
        log_url: The log, when it is not the workspace's ``serving.sqlite``
            (``postgresql://...`` or ``sqlite:///...``; see :class:`TransactionLog`).

    Returns:
        ``{"before": ISO time, "dry_run", "transactions", "evaluations",
        "inputs", "input_bytes"}``: what went (or would go).

    Raises:
        ValueError: Neither ``log`` nor ``inputs``, or a bad ``before``.
    """
    if not log and not inputs:
        raise ValueError("Nothing to purge: pass log=True and/or inputs=True.")
    ws = as_workspace(workspace)
    before_us = to_utc_micros(before, name="before")
    before_t = _EPOCH + _dt.timedelta(microseconds=before_us)
    result: dict[str, Any] = {"before": before_t.isoformat().replace("+00:00", "Z"),
                              "dry_run": bool(dry_run), "transactions": 0, "evaluations": 0,
                              "inputs": 0, "input_bytes": 0}
    where = ws if log_url is None else log_url
    has_log = log_url is not None or ws.serving_db.is_file()
    if log and has_log:
        with TransactionLog(where, create=False) as tl:
            result.update(tl.purge(before_t, dry_run=dry_run))
    if inputs:
        for day, folder in _day_folders(ws.root / SERVED_DIR):
            end = _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(), tzinfo=_dt.timezone.utc)
            if end > before_t:
                break
            files = [p for p in folder.iterdir() if p.is_file()]
            result["inputs"] += len(files)
            result["input_bytes"] += sum(p.stat().st_size for p in files)
            if not dry_run:
                shutil.rmtree(folder)
        if not dry_run and has_log:
            with TransactionLog(where, create=False) as tl:
                tl.record_purge(before_t, what="inputs", inputs=result["inputs"])
    return result
