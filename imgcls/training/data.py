"""The data a training uses: classes over the cutoff, the library snapshot with its splits.

:func:`prepare_training_data` turns a workspace (or a given catalog) into the
snapshot a run trains on: the readable images of the chosen classes with
their stable hash-based split (see :func:`imgcls.library.assign_splits`).
Chosen classes that have no benchmark image get theirs first
(:func:`imgcls.library.ensure_benchmark`), so the first training of a library
fixes the benchmark set before anything is trained on it. It
refuses, with the counts and what to do, a library where fewer than two
classes meet the cutoff or where the train or validation split is empty.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.workspace import UNKNOWN_CLASS, Workspace, as_workspace
from imgcls.library import Library, assign_splits, ensure_benchmark, training_rows

__all__ = ["prepare_training_data"]


def _counts_table(catalog: pd.DataFrame) -> pd.Series:
    """Readable labelled images per class (``unknown`` left out), largest first."""
    cat = catalog[catalog["label"] != UNKNOWN_CLASS]
    if "readable" in cat.columns:
        cat = cat[cat["readable"].astype(bool)]
    return cat["label"].value_counts().sort_values(ascending=False)


def _no_classes_error(counts: pd.Series, cutoff: int, n_found: int) -> ValueError:
    if len(counts) == 0:
        listing = "the library has no readable labelled images"
    else:
        shown = ", ".join(f"{label} {n}" for label, n in counts.head(15).items())
        more = f" (and {len(counts) - 15} more classes)" if len(counts) > 15 else ""
        listing = f"readable images per class: {shown}{more}"
    suggestion = ""
    if len(counts) >= 2:
        lower = int(counts.iloc[1])
        suggestion = f" Lower the cutoff, e.g. train(workspace, cutoff={lower}) trains the top {int((counts >= lower).sum())} classes;"
    what = "No class has" if n_found == 0 else f"Only {n_found} class has"
    return ValueError(
        f"{what} at least cutoff={cutoff} readable images, and training needs 2 or more classes "
        f"({listing}).{suggestion} add images to the library; or try the zoo sample "
        "(imgcls.sample.build_sample(path), or `imgcls sample --workspace PATH`)."
    )


def prepare_training_data(
    workspace: Workspace | str | os.PathLike,
    *,
    catalog: pd.DataFrame | None = None,
    classes: Sequence[str] | None = None,
    cutoff: int | None = None,
) -> tuple[pd.DataFrame, list[str], int]:
    """The snapshot a training uses: rows with their split, the ordered classes, the cutoff.

    Args:
        workspace: The workspace (or its folder).
        catalog: A catalog from ``Library.scan()`` to use instead of scanning;
            an existing ``split`` column is kept (same splits across runs).
        classes: Train on exactly these classes (in this order) instead of
            the ones with at least ``cutoff`` readable images (sorted).
        cutoff: Minimum readable images per class; default ``workspace.cutoff``.

    Returns:
        ``(snapshot, classes, cutoff)``: the readable rows of the classes with
        ``split`` and ``turns`` (0 when unknown) columns, the class list, and
        the cutoff used.

    Raises:
        ValueError: Fewer than 2 classes meet the cutoff (the message lists the
            counts and what to do), ``classes`` names classes without images,
            or the train or validation split is empty.
    """
    ws = as_workspace(workspace)
    snapshot, chosen, used_cutoff = _prepare_data(ws, catalog=catalog, classes=classes, cutoff=cutoff)
    _check_split_sizes(snapshot, chosen)
    return snapshot, chosen, used_cutoff


def _prepare_data(
    ws: Workspace,
    *,
    catalog: pd.DataFrame | None,
    classes: Sequence[str] | None,
    cutoff: int | None,
) -> tuple[pd.DataFrame, list[str], int]:
    """Catalog -> (snapshot rows with split, ordered classes, cutoff used)."""
    if cutoff is not None:
        cutoff = check_int(cutoff, "cutoff", 1, " (minimum readable images for a class to train)")
    used_cutoff = ws.cutoff if cutoff is None else cutoff
    if catalog is None:
        catalog = Library(ws).scan()
    elif not isinstance(catalog, pd.DataFrame):
        raise ValueError(f"`catalog` must be a DataFrame from Library.scan(). Received: {type(catalog).__name__}")
    missing = [c for c in ("path", "label", "hash") if c not in catalog.columns]
    if missing:
        raise ValueError(
            f"`catalog` must have the columns of Library.scan(); missing {missing}. "
            f"Received columns: {list(catalog.columns)}"
        )
    counts = _counts_table(catalog)
    if classes is None:
        chosen = sorted(counts[counts >= used_cutoff].index.astype(str).tolist())
        if len(chosen) < 2:
            raise _no_classes_error(counts, used_cutoff, len(chosen))
    else:
        if isinstance(classes, str):
            raise ValueError(f"`classes` must be a list of class names, not one string. Received: classes={classes!r}")
        chosen = [str(c) for c in classes]
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"`classes` must not repeat names. Received: classes={chosen!r}")
        if UNKNOWN_CLASS in chosen:
            raise ValueError(f"{UNKNOWN_CLASS!r} is not a trainable class; remove it from `classes`.")
        absent = [c for c in chosen if c not in counts.index]
        if absent:
            raise ValueError(
                f"`classes` names classes with no readable images in the library: {absent}. "
                f"Classes with images: {sorted(counts.index.astype(str))}."
            )
        if len(chosen) < 2:
            raise ValueError(f"Training needs at least 2 classes. Received: classes={chosen!r}")
    catalog = ensure_benchmark(ws, chosen, catalog=catalog)  # the benchmark is fixed before any training
    with_split = catalog if "split" in catalog.columns else assign_splits(catalog)
    rows = training_rows(with_split, chosen).copy()
    if "turns" not in rows.columns:
        rows["turns"] = 0
    rows["turns"] = rows["turns"].fillna(0).astype(int)
    return rows.reset_index(drop=True), list(chosen), int(used_cutoff)


def _split_rows(snapshot: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of one split of a snapshot, renumbered from 0."""
    return snapshot[snapshot["split"] == split].reset_index(drop=True)


def _check_split_sizes(snapshot: pd.DataFrame, classes: list[str]) -> None:
    train_rows = _split_rows(snapshot, "train")
    val_rows = _split_rows(snapshot, "val")
    sizes = snapshot.groupby("split").size().to_dict()
    if len(train_rows) == 0 or len(val_rows) == 0:
        which = "training" if len(train_rows) == 0 else "validation"
        raise ValueError(
            f"The {which} split is empty (images per split: {sizes}; classes: {classes}). "
            "Training needs images in both train and val: add images to the classes, or "
            "lower the cutoff to include larger classes."
        )


def _split_text(snapshot: pd.DataFrame) -> str:
    """``"train 40, val 10, test 10"``: images per split, in the usual order."""
    sizes = snapshot.groupby("split").size()
    order = ["train", "val", "test", "benchmark"]
    return ", ".join(f"{s} {int(sizes[s])}" for s in order if s in sizes.index)
