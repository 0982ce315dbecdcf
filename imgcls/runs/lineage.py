"""Lineage: the chain of runs a fine-tuned run descends from.

A head-swap fine-tuning run names its parent in ``config.json``
(``"parent"``); following the parents back gives the run's lineage, from
itself to the run trained from scratch at its root.

This module never imports TensorFlow.
"""

from __future__ import annotations

import os

from imgcls.core import Workspace
from imgcls.core.fileio import read_json
from imgcls.runs.run import CONFIG_FILE, Run
from imgcls.runs.store import load_run

__all__ = ["lineage"]


def lineage(
    run: Run | str | os.PathLike,
    *,
    workspace: Workspace | str | os.PathLike | None = None,
) -> list[str]:
    """Run ids from ``run`` back to its root: ``[run, parent, grandparent, ..., root]``.

    Parents are looked up in the same ``runs/`` folder. If an ancestor's
    folder was deleted, its id is still listed and the walk stops there.

    Args:
        run: A :class:`~imgcls.runs.Run` or a reference accepted by
            :func:`~imgcls.runs.load_run`.
        workspace: Needed when ``run`` is a run id, "production" or "latest".

    Returns:
        The run ids, newest first.

    Raises:
        ValueError: The parents form a cycle.
    """
    run = load_run(run, workspace=workspace)
    chain = [run.run_id]
    runs_dir = run.path.parent
    parent = run.parent
    while parent:
        if parent in chain:
            raise ValueError(f"Run lineage has a cycle: {' -> '.join(chain + [parent])}")
        chain.append(parent)
        cfg = read_json(runs_dir / parent / CONFIG_FILE, None)
        if cfg is None:
            break
        parent = cfg.get("parent")
    return chain
