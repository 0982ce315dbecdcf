"""Judged served images back into the library: :func:`harvest`.

The write-up trains each next generation on images that "came in through
regular usage of the application". A served input that was kept
(``imgcls serve --keep-inputs`` stores it as ``served/<day>/<sha256>.<ext>``)
and judged with a known true class is such an image. :func:`harvest` files
them into ``library/<true class>/`` through the library's journal, as ONE
batch (one ``imgcls undo`` takes the whole harvest back):

* the true class of a transaction comes from its *current* verdict (the last
  one received): ``correct`` means the predicted class; ``wrong`` needs a
  ``true_class``; ``unsure`` and ``wrong`` without a true class are skipped;
* an image whose content (sha256) is already in the library, or was already
  harvested in this batch, is skipped (``duplicate``);
* a class name the library refuses (:func:`imgcls.library.validate_class_name`)
  is skipped and reported (``bad_class``), as is an input no longer stored
  (``missing``: purged, or never kept).

This module never imports TensorFlow.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from imgcls.core.workspace import Workspace, as_workspace
from imgcls.translog.log import TransactionLog
from imgcls.translog.retention import SERVED_DIR

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.library import Library

__all__ = ["HARVEST_COLUMNS", "harvest"]

#: Columns of :func:`harvest`'s result.
HARVEST_COLUMNS = ["transaction_id", "image_path", "image_hash", "label", "verdict", "action",
                   "reason", "new_path"]


def _true_class(verdict: str, true_class: Any, predicted: Any) -> str | None:
    if isinstance(true_class, str) and true_class:
        return true_class
    if verdict == "correct" and isinstance(predicted, str) and predicted:
        return predicted
    return None


def harvest(
    workspace: Workspace | str | os.PathLike,
    *,
    include_simulated: bool = False,
    dry_run: bool = False,
    log_url: str | None = None,
) -> pd.DataFrame:
    """File kept, judged served inputs into the library, in one undoable batch.

    Args:
        workspace: The workspace (its ``serving.sqlite``, ``served/`` and ``library/``).
        include_simulated: Also harvest demo traffic (left out by default).
        dry_run: Decide and report, move nothing.
        log_url: The log, when it is not the workspace's ``serving.sqlite``
            (``postgresql://...``); the stored inputs are still the workspace's.

    Returns:
        One row per judged transaction with a stored input
        (:data:`HARVEST_COLUMNS`): ``action`` is ``"added"`` (``"add"`` in a
        dry run) or ``"skipped"`` with the ``reason`` (``no_true_class``,
        ``bad_class: ...``, ``duplicate``, ``missing``, ``error: ...``).
        ``attrs``: ``batch`` (the journal batch, None if nothing was added),
        ``added``, ``skipped``, ``bad_classes`` (name -> why).

    Raises:
        FileNotFoundError: The workspace has no log.
    """
    # The library is imported here, not with the log: reading logs stays instant.
    from imgcls.library import Library, validate_class_name

    ws = as_workspace(workspace)
    served_root = (ws.root / SERVED_DIR).resolve()
    with TransactionLog(ws if log_url is None else log_url, create=False) as log:
        judged = log.evaluated_transactions(
            include_simulated=include_simulated,
            columns=["transaction_id", "verdict", "true_class", "top1_class", "image_path",
                     "image_hash", "status"])
    lib = Library(ws)
    known = set(lib.scan()["hash"])
    rows: list[dict] = []
    bad: dict[str, str] = {}
    planned: dict[str, list[int]] = {}
    for rec in judged.itertuples(index=False):
        path = rec.image_path if isinstance(rec.image_path, str) and rec.image_path else None
        if path is None or rec.status != "ok":
            continue  # nothing stored to harvest
        row = {"transaction_id": int(rec.transaction_id), "image_path": path,
               "image_hash": rec.image_hash, "label": None, "verdict": rec.verdict,
               "action": "skipped", "reason": "", "new_path": None}
        rows.append(row)
        label = _true_class(rec.verdict, rec.true_class, rec.top1_class)
        inside = os.path.realpath(path).startswith(str(served_root) + os.sep)
        if label is None:
            row["reason"] = "no_true_class"
            continue
        try:
            row["label"] = label = validate_class_name(label)
        except ValueError as exc:
            row["label"] = label
            row["reason"] = f"bad_class: {exc}"
            bad[label] = str(exc)
            continue
        if not inside or not os.path.isfile(path):
            row["reason"] = "missing"
            continue
        if rec.image_hash in known:
            row["reason"] = "duplicate"
            continue
        known.add(rec.image_hash)
        row["action"] = "add" if dry_run else "added"
        planned.setdefault(label, []).append(len(rows) - 1)
    batch = None
    if planned and not dry_run:
        batch = _add_batch(lib, rows, planned)
    out = pd.DataFrame(rows, columns=HARVEST_COLUMNS)
    out.attrs.update(batch=batch, added=int(out["action"].isin(["added", "add"]).sum()),
                     skipped=int((out["action"] == "skipped").sum()), bad_classes=bad)
    return out


def _add_batch(lib: Library, rows: list[dict], planned: dict[str, list[int]]) -> str | None:
    """Add the planned rows class by class under one journal batch; returns the batch id."""
    from imgcls.library.journal import new_batch_id

    batch = new_batch_id()
    added = False
    with lib.writing():  # one hold of the workspace lock: no other writer in between
        for label, indices in planned.items():
            for i in indices:
                try:
                    (new,) = lib.add([rows[i]["image_path"]], label, batch=batch)
                except (ValueError, OSError) as exc:
                    rows[i]["action"], rows[i]["reason"] = "skipped", f"error: {exc}"
                    continue
                rows[i]["new_path"] = str(new)
                added = True
    return batch if added else None
