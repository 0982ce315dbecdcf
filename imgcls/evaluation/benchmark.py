"""Who has seen the benchmark set: a run is never measured on images it trained on.

The benchmark set is fixed before the first training (see
:func:`imgcls.library.ensure_benchmark`), so a run's training normally never
sees it. A benchmark chosen *after* some runs were trained, or an image
flagged benchmark by hand, can still have been in a run's train or
validation split, or in one of its ancestors' (a head-swap generation keeps
its parent's weights). :func:`seen_hashes` lists what a run's lineage saw,
:func:`benchmark_exposure` which runs saw any of today's benchmark set; the
deploy gate (:func:`imgcls.evaluation.promote`) leaves such images out of its
comparison.

No TensorFlow: only run metadata and the library catalog are read.
"""

from __future__ import annotations

import os

import pandas as pd

from imgcls.core.workspace import UNKNOWN_CLASS, Workspace, as_workspace
from imgcls.library import Library, assign_splits
from imgcls.runs import Run, lineage, list_runs, load_run

__all__ = ["seen_hashes", "benchmark_rows", "benchmark_exposure"]

#: Splits of a run's snapshot whose images shaped its weights or its stopping epoch.
_FITTED_SPLITS = ("train", "val")


def seen_hashes(
    run: Run | str | os.PathLike,
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    ancestors: bool = True,
) -> set[str]:
    """Content hashes in the train or validation split of ``run`` (and its ancestors).

    Args:
        run: A run, run folder, or a reference for :func:`imgcls.runs.load_run`.
        workspace: Needed when ``run`` is a run id, ``"production"`` or ``"latest"``.
        ancestors: Include the runs it was fine-tuned from (their weights live on in it).

    Returns:
        The hashes (a run saved without hashes contributes none).
    """
    the_run = load_run(run, workspace=workspace)
    runs_dir = the_run.path.parent
    ids = lineage(the_run) if ancestors else [the_run.run_id]
    out: set[str] = set()
    for run_id in ids:
        folder = runs_dir / run_id
        try:
            snap = Run(folder).splits
        except (OSError, ValueError):
            continue
        if "hash" in snap and "split" in snap and len(snap):
            out |= set(snap.loc[snap["split"].isin(_FITTED_SPLITS), "hash"].astype(str))
    out.discard("")
    return out


def benchmark_rows(workspace: Workspace | str | os.PathLike, *, catalog: pd.DataFrame | None = None) -> pd.DataFrame:
    """The readable, labelled images of the benchmark set now (flagged images and their duplicates).

    Args:
        workspace: The workspace.
        catalog: A catalog from ``Library.scan()`` (with or without ``split``), to save a scan.

    Returns:
        The catalog rows whose split is ``"benchmark"``.
    """
    cat = Library(workspace).scan() if catalog is None else catalog
    if "split" not in cat:
        cat = assign_splits(cat)
    mask = (cat["split"] == "benchmark") & cat["readable"].astype(bool) & (cat["label"] != UNKNOWN_CLASS)
    return cat[mask].reset_index(drop=True)


def benchmark_exposure(
    workspace: Workspace | str | os.PathLike,
    *,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Which runs trained (or validated) on images that are in the benchmark set now.

    Args:
        workspace: The workspace.
        catalog: A catalog from ``Library.scan()``, to save a scan.

    Returns:
        DataFrame [run_id, generation, throwaway, production, seen_own,
        seen_with_ancestors, classes], one row per finished run, oldest first:
        benchmark images in the run's own train/val split, the same counting
        its ancestors, and the classes of those images. A run with 0 in both
        was never trained on the benchmark set.
    """
    ws = as_workspace(workspace)
    bench = benchmark_rows(ws, catalog=catalog)
    label_of = bench.drop_duplicates("hash").set_index("hash")["label"]
    hashes = set(label_of.index.astype(str))
    rows = []
    runs = list_runs(ws)
    for _, r in runs.iterrows():
        try:
            own = seen_hashes(ws.runs / r["run_id"], ancestors=False) & hashes
            every = seen_hashes(ws.runs / r["run_id"]) & hashes
        except (OSError, ValueError):
            continue
        rows.append({
            "run_id": r["run_id"],
            "generation": r["generation"],
            "throwaway": bool(r["throwaway"]),
            "production": bool(r["production"]),
            "seen_own": len(own),
            "seen_with_ancestors": len(every),
            "classes": ", ".join(sorted({str(label_of[h]) for h in every})),
        })
    return pd.DataFrame(rows, columns=["run_id", "generation", "throwaway", "production", "seen_own",
                                       "seen_with_ancestors", "classes"])
