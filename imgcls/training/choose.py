"""Which run a step of the life cycle should use, when the user did not say."""

from __future__ import annotations

import os
from typing import Any

from imgcls.core.workspace import Workspace, as_workspace
from imgcls.runs import Run, list_runs, load_run, production_run_id

__all__ = ["choose_run"]


def choose_run(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike | None = None,
    *,
    train_if_missing: bool = False,
    verbose: int = 1,
    **train_kwargs: Any,
) -> Run:
    """The run to use: ``run`` if given, else production, else the latest kept run, else one trained now.

    Throw-away runs are never chosen unless named. With ``verbose`` the choice
    and its reason are printed, so a notebook says which model it uses.

    Args:
        workspace: The workspace.
        run: A run, run folder, id, "production" or "latest"; ``None`` or ``""``
            to choose.
        train_if_missing: With no kept run at all, train one now with
            :func:`imgcls.training.train` and ``train_kwargs`` (e.g.
            ``max_epochs=8``); otherwise raise.
        verbose: 1 prints which run was chosen and why; 0 is quiet.
        **train_kwargs: Options for :func:`imgcls.training.train` when training.

    Returns:
        The loaded :class:`~imgcls.runs.Run`.

    Raises:
        ValueError: No run exists and ``train_if_missing`` is False.
    """
    ws = as_workspace(workspace)
    if run not in (None, ""):
        chosen, why = load_run(run, workspace=ws), "named by the caller"
    elif production_run_id(ws):
        chosen, why = load_run("production", workspace=ws), "the production run"
    else:
        runs = list_runs(ws)
        kept = runs[~runs["throwaway"].astype(bool)] if len(runs) else runs
        if len(kept):
            chosen, why = load_run(kept["run_id"].iloc[-1], workspace=ws), "the latest kept run (none is in production)"
        elif train_if_missing:
            from imgcls.training.train import train

            if verbose:
                print("No run in this workspace yet: training one now.")
            chosen, why = train(ws, verbose=verbose, **train_kwargs), "trained now (the workspace had no run)"
        else:
            raise ValueError(
                f"The workspace {str(ws.root)!r} has no trained run. Train one first "
                "(`imgcls train -w WORKSPACE` or imgcls.training.train(workspace)), or pass "
                "train_if_missing=True."
            )
    if verbose:
        print(f"Using run {chosen.run_id} ({why}); it knows {chosen.num_classes} classes: "
              f"{', '.join(chosen.classes)}")
    return chosen
