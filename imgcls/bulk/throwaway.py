"""The throw-away run's purpose: pool images for the classes just under the cutoff."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from imgcls.bulk.identify import Source, identify
from imgcls.core import DEFAULT_CUTOFF, Workspace, as_workspace
from imgcls.library import Library
from imgcls.runs import load_run

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.runs import Run

__all__ = ["throwaway_candidates"]


def throwaway_candidates(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike,
    *,
    source: Source | None = None,
    cutoff: int = DEFAULT_CUTOFF,
    out: str | os.PathLike | None = None,
    top_k: int = 3,
    batch_size: int = 64,
    chunk_size: int = 1024,
    progress: bool = True,
    resume: bool = True,
) -> pd.DataFrame:
    """Identify the pool with a throw-away run; keep the images of classes under the cutoff.

    Identifies ``source`` (default the workspace's ``unlabelled/``) with the
    throw-away ``run`` and keeps the images whose first or second choice is
    one of the run's classes that are still under the usual ``cutoff`` in
    the library, ready for the review grid. A throw-away model is weak on
    exactly these classes (it saw few of their images), so second choices
    count too. Three columns are added: ``candidate`` (the target class),
    ``candidate_score`` (its score) and ``choice`` (1 when it is the first
    choice, 2 when the second). First-choice candidates come first, each
    group best score first. Images no longer at their path (moved since an
    earlier identification of the same pool) are left out.

    Args:
        workspace: The workspace.
        run: The throw-away run (any run works; the filter is what matters):
            a Run, run folder, run id, ``"production"`` or ``"latest"``.
        source: Folder or paths to identify (as in :func:`~imgcls.bulk.identify`).
        cutoff: The usual cutoff the targets are under (default 40).
        out, top_k, batch_size, chunk_size, progress, resume: As in
            :func:`~imgcls.bulk.identify`.

    Returns:
        The filtered results; ``attrs["targets"]`` lists the target classes
        (empty, and so no rows, when every class of the run makes ``cutoff``)
        and ``attrs["n_identified"]`` counts the pool images identified.
    """
    ws = as_workspace(workspace)
    run = load_run(run, workspace=ws)
    counts = Library(ws).counts(cutoff=cutoff).set_index("label")["n"]
    targets = [c for c in run.classes if int(counts.get(c, 0)) < cutoff]
    results = identify(ws, source, run=run, out=out, top_k=top_k, batch_size=batch_size,
                       chunk_size=chunk_size, progress=progress, resume=resume)
    results = results[[os.path.exists(p) for p in results["path"]]]  # moved out since: nothing to review
    top2 = results["top2_class"] if "top2_class" in results else pd.Series(None, index=results.index, dtype=object)
    top2_score = results["top2_score"] if "top2_score" in results else pd.Series(0.0, index=results.index)
    first = results["top1_class"].isin(targets)
    keep = first | top2.isin(targets)
    out_df = results[keep].copy()
    out_df["candidate"] = results["top1_class"].where(first, top2)[keep]
    out_df["candidate_score"] = results["top1_score"].where(first, top2_score)[keep].astype(float)
    out_df["choice"] = np.where(first[keep], 1, 2)
    out_df = out_df.sort_values(["choice", "candidate_score", "path"],
                                ascending=[True, False, True]).reset_index(drop=True)
    out_df.attrs.update(results.attrs)
    out_df.attrs["targets"] = targets
    out_df.attrs["n_identified"] = len(results)
    out_df.attrs["filter"] = (f"Throw-away candidates: first or second choice {' or '.join(targets) or '(no target)'}"
                              f" (classes under {cutoff} images), first choices first")
    return out_df
