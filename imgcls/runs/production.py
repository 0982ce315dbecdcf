"""The production pointer and the promotions log: their one reader and one writer.

``runs/production.json`` names the run in production; only the deploy gate
(:func:`imgcls.evaluation.promote`) and :func:`rollback` write it, always through
:func:`set_production`. ``runs/promotions.jsonl`` keeps every promotion
attempt, accepted or not, one JSON object a line, appended through
:func:`append_promotion`. Everything else reads them through this module, so
a damaged file is treated the same way everywhere: the pointer raises a
``ValueError`` that says which file and how to mend it; a torn last line of
the log (a crash mid-append) is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from imgcls.core.clock import isoformat
from imgcls.core.fileio import append_jsonl, read_json, read_jsonl, write_json
from imgcls.core.lock import workspace_lock
from imgcls.core.workspace import Workspace, as_workspace

__all__ = [
    "PROMOTIONS_FILE",
    "PROMOTION_COLUMNS",
    "read_production",
    "production_run_id",
    "set_production",
    "append_promotion",
    "promotion_log",
    "promoted_run_ids",
    "version_label",
    "production_history",
    "rollback",
]

#: File name of the promotions log inside ``runs/``.
PROMOTIONS_FILE = "promotions.jsonl"
#: Columns of :func:`promotion_log`, in order (later additions follow them).
PROMOTION_COLUMNS = ["time", "run_id", "action", "accepted", "override", "user", "previous_run_id", "reason",
                     "reasons", "warnings", "candidate_accuracy", "production_accuracy", "delta",
                     "benchmark_accuracy", "compared_classes", "n_images", "n_dropped", "alpha", "margin",
                     "max_class_drop", "min_class_n", "class_drops"]


def _promotions_path(ws: Workspace):
    return ws.runs / PROMOTIONS_FILE


def read_production(workspace: Workspace | str | os.PathLike) -> dict[str, Any] | None:
    """The production pointer as a dict (``run_id``, ``promoted_at``, …), or None when none is set.

    Args:
        workspace: The workspace (its folder need not exist: then None).

    Raises:
        ValueError: The file exists but is not JSON like ``{"run_id": "..."}``;
            the message names the file and how to mend it.
    """
    ws = as_workspace(workspace, must_exist=False)
    path = ws.production_file
    try:
        data = read_json(path, None)
    except ValueError:
        data = ...
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("run_id"), str) or not data["run_id"]:
        raise ValueError(
            f"{str(path)!r} must be JSON like {{\"run_id\": \"...\"}}, but it is damaged. "
            "Fix: promote a run again (`imgcls promote RUN`), or delete the file to have no "
            "production run; runs/promotions.jsonl lists earlier production runs."
        )
    return data


def production_run_id(workspace: Workspace | str | os.PathLike) -> str | None:
    """Run id named by ``runs/production.json`` (None when no run is in production).

    Args:
        workspace: The workspace.

    Raises:
        ValueError: The pointer file is damaged (see :func:`read_production`).
    """
    data = read_production(workspace)
    return None if data is None else str(data["run_id"])


def set_production(workspace: Workspace | str | os.PathLike, run_id: str, **fields: Any) -> dict[str, Any]:
    """Point production at ``run_id`` (atomic write); ``fields`` are stored beside it.

    Only the deploy gate and a rollback call this; each also appends its
    decision to the promotions log with :func:`append_promotion`.

    Args:
        workspace: The workspace (an existing folder).
        run_id: The run to put in production.
        **fields: JSON-able facts stored beside it (e.g. ``promoted_at``).

    Returns:
        The pointer as written.
    """
    ws = as_workspace(workspace)
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"`run_id` must be a non-empty run id. Received: run_id={run_id!r}")
    data = {"run_id": run_id, **fields}
    ws.runs.mkdir(parents=True, exist_ok=True)
    write_json(ws.production_file, data)
    return data


def append_promotion(workspace: Workspace | str | os.PathLike, entry: Mapping[str, Any]) -> None:
    """Append one promotion attempt (a JSON-able mapping) to ``runs/promotions.jsonl``.

    Args:
        workspace: The workspace (an existing folder).
        entry: The attempt: ``time``, ``run_id``, ``accepted``, ... (:data:`PROMOTION_COLUMNS`).
    """
    ws = as_workspace(workspace)
    ws.runs.mkdir(parents=True, exist_ok=True)
    append_jsonl(_promotions_path(ws), entry)


def _entries(ws: Workspace) -> list[dict]:
    try:
        return [e for e in read_jsonl(_promotions_path(ws)) if isinstance(e, dict)]
    except FileNotFoundError:
        return []


def promotion_log(workspace: Workspace | str | os.PathLike) -> pd.DataFrame:
    """Every promotion attempt, oldest first (from ``runs/promotions.jsonl``).

    Columns: :data:`PROMOTION_COLUMNS` first, then any others entries carry.

    Args:
        workspace: The workspace (an existing folder).
    """
    ws = as_workspace(workspace)
    df = pd.DataFrame(_entries(ws))
    df = df.reindex(columns=PROMOTION_COLUMNS + [c for c in df.columns if c not in PROMOTION_COLUMNS])
    if len(df):
        df["time"] = pd.to_datetime(df["time"], utc=True, errors="coerce", format="ISO8601")
        df["accepted"] = df["accepted"].fillna(False).astype(bool)
    return df


def promoted_run_ids(workspace: Workspace | str | os.PathLike) -> list[str]:
    """Runs ever accepted into production, in the order of their first promotion.

    Args:
        workspace: The workspace.
    """
    ws = as_workspace(workspace, must_exist=False)
    out: list[str] = []
    for entry in _entries(ws):
        rid = entry.get("run_id")
        if entry.get("accepted") and isinstance(rid, str) and rid and rid not in out:
            out.append(rid)
    return out


def version_label(workspace: Workspace | str | os.PathLike, run_id: str) -> str:
    """``v<n>`` for the n-th run ever promoted to production, else the run id itself.

    Args:
        workspace: The workspace.
        run_id: The run.
    """
    promoted = promoted_run_ids(workspace)
    return f"v{promoted.index(run_id) + 1}" if run_id in promoted else run_id


def production_history(workspace: Workspace | str | os.PathLike) -> list[str]:
    """The runs that were production, oldest first, as promotions and rollbacks left them.

    An accepted promotion puts its run on top; a rollback takes the top run
    off (the one before it is production again). The last item is the
    production run (``runs/production.json`` wins if it names another run:
    the history is cut back to it, or it is put on top).

    Args:
        workspace: The workspace.
    """
    ws = as_workspace(workspace, must_exist=False)
    stack: list[str] = []
    for entry in _entries(ws):
        rid = entry.get("run_id")
        if not isinstance(rid, str) or not rid or not entry.get("accepted"):
            continue
        if entry.get("action") == "rollback":
            gone = entry.get("previous_run_id")
            if stack and stack[-1] == gone:
                stack.pop()
        if not stack or stack[-1] != rid:
            stack.append(rid)
    current = production_run_id(ws)
    if current is not None and (not stack or stack[-1] != current):
        if current in stack:
            del stack[len(stack) - stack[::-1].index(current):]
        else:
            stack.append(current)
    return stack


def rollback(workspace: Workspace | str | os.PathLike, *, reason: str | None = None) -> dict[str, Any]:
    """Make the previous production run the production run again, without the deploy gate.

    It was production before, so it is not gated again. The rollback is
    recorded in ``runs/promotions.jsonl`` (``action: "rollback"``,
    ``run_id``: the run restored, ``previous_run_id``: the run rolled back);
    a server following the production pointer swaps to it by itself.

    Args:
        workspace: The workspace.
        reason: Why (recorded).

    Returns:
        The promotions-log entry written.

    Raises:
        ValueError: No production run, no earlier one to go back to, or the
            earlier run's folder is gone.
    """
    ws = as_workspace(workspace)
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"`reason` must be a string or None. Received: reason={reason!r}")
    with workspace_lock(ws.root):  # read, decide and write with no promotion in between
        return _rollback_locked(ws, reason)


def _rollback_locked(ws: Workspace, reason: str | None) -> dict[str, Any]:
    history = production_history(ws)
    current = production_run_id(ws)
    if current is None:
        raise ValueError("There is no production run to roll back; promote one first (imgcls promote RUN).")
    if len(history) < 2:
        raise ValueError(
            f"Run {current!r} is the only production run so far; there is nothing to roll back to. "
            "See runs/promotions.jsonl for the history.")
    previous = history[-2]
    if not (ws.runs / previous / "config.json").is_file():
        raise ValueError(
            f"Cannot roll back to {previous!r}: its folder runs/{previous} is gone. Promote a run "
            "that exists instead (imgcls promote RUN).")
    now = isoformat(timespec="seconds")
    set_production(ws, previous, promoted_at=now, reason=reason, previous_run_id=current,
                   action="rollback")
    entry = {"time": now, "run_id": previous, "action": "rollback", "accepted": True,
             "previous_run_id": current, "reason": reason}
    append_promotion(ws, entry)
    return entry
