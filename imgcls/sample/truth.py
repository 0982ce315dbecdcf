"""The sample's hidden labels, joined to any results table by content.

The zoo sample keeps the true label of every pool image in
``unlabelled_truth.csv`` (for scoring only). A results table names its images
by the path it read them from, which may be written differently (a notebook
opens ``../demo-workspace``, bulk identification stores absolute paths, a
symlinked folder resolves elsewhere) or may no longer exist (a labelled image
has moved into ``library/``). :func:`attach_truth` is the one join: by
resolved path first, then by content hash (SHA-256 of the bytes, stored in
the truth file since the sample keeps it, else computed from the pool files
still present), so the label follows the image, not the path string.

This module never imports TensorFlow.
"""

from __future__ import annotations

import os

import pandas as pd

from imgcls.core import ImageError, Workspace, as_workspace, file_hash

__all__ = ["TRUTH_COLUMN", "sample_truth", "attach_truth"]

#: The column :func:`attach_truth` adds.
TRUTH_COLUMN = "true_label"


def sample_truth(
    workspace: Workspace | str | os.PathLike,
    *,
    present_only: bool = False,
    classes: list[str] | tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """The hidden true labels of the sample pool: [path, relpath, label, hash].

    For scoring bulk identification only; ``label`` is empty for the bad files.
    ``path`` is absolute (``workspace`` resolved), whatever form it was given in.

    Args:
        workspace: A workspace made by :func:`~imgcls.sample.build_sample`.
        present_only: Keep only the images still in ``unlabelled/`` (those
            labelled since have moved into the library).
        classes: Keep only images whose true label is one of these (e.g. the
            classes a model knows); bad files (no label) are then left out.

    Returns:
        One row per pool file; ``hash`` is empty for a sample built before
        hashes were kept (:func:`attach_truth` then hashes the files present).

    Raises:
        FileNotFoundError: The workspace has no hidden labels (it is not the sample).
    """
    ws = as_workspace(workspace)
    if not ws.sample_labels_file.exists():
        raise FileNotFoundError(
            f"{str(ws.sample_labels_file)!r} not found: only the zoo sample (imgcls sample) has hidden labels."
        )
    df = pd.read_csv(ws.sample_labels_file, dtype=str, keep_default_na=False)
    base = os.path.abspath(ws.unlabelled)
    df.insert(0, "path", [os.path.join(base, *r.split("/")) for r in df["relpath"]])
    if "hash" not in df.columns:
        df["hash"] = ""
    df = df[["path", "relpath", "label", "hash"]]
    if classes is not None:
        if isinstance(classes, str):
            raise ValueError(f"`classes` must be a list of class names. Received: classes={classes!r}; "
                             "fix: e.g. classes=run.classes")
        df = df[df["label"].isin([str(c) for c in classes])]
    if present_only:
        df = df[[os.path.isfile(p) for p in df["path"]]]
    return df.reset_index(drop=True)


def _resolved(paths: pd.Series) -> pd.Series:
    return paths.astype(str).map(os.path.realpath)


def _hash_or_empty(path: str) -> str:
    try:
        return file_hash(path)
    except (ImageError, OSError, ValueError):
        return ""


def attach_truth(
    results: pd.DataFrame,
    workspace: Workspace | str | os.PathLike | None = None,
    *,
    truth: pd.DataFrame | None = None,
    column: str = TRUTH_COLUMN,
) -> pd.DataFrame:
    """A copy of ``results`` with each image's hidden true label in ``column``.

    Joined by resolved path (relative and absolute paths, symlinks and
    ``..`` all agree), then, for the rows still unmatched, by content hash
    (the results' ``hash`` column where it has one, else the file's bytes),
    then by ``relpath`` when ``truth`` has no ``path`` column. Rows without a
    known label get ``""`` (the sample's bad files, images not from the pool).

    Args:
        results: Any table with a ``path`` column (bulk results, candidates,
            grid decisions) or a ``relpath`` column matching the truth's.
        workspace: The sample workspace whose hidden labels to use (not needed
            when ``truth`` is given).
        truth: True labels [path and/or relpath, label, optional hash],
            e.g. :func:`sample_truth`; default ``sample_truth(workspace)``.
        column: Name of the label column added.

    Returns:
        The copy; ``attrs["truth_join"]`` counts the rows matched ``by_path``,
        ``by_hash`` and ``by_relpath``, and those ``unmatched``.

    Raises:
        ValueError: Neither ``workspace`` nor ``truth`` is given, or the tables
            share no key column.
        FileNotFoundError: ``workspace`` is not the zoo sample.
    """
    if not isinstance(results, pd.DataFrame):
        raise ValueError(f"`results` must be a pandas DataFrame. Received: results={type(results).__name__}; "
                         "fix: pass a results table, e.g. from imgcls.bulk.identify.")
    if truth is None:
        if workspace is None:
            raise ValueError("attach_truth needs `workspace` (a zoo sample) or `truth` (a labels table). "
                             "Received neither; fix: attach_truth(results, workspace).")
        truth = sample_truth(workspace)
    if not isinstance(truth, pd.DataFrame) or "label" not in truth.columns or not (
            {"path", "relpath"} & set(truth.columns)):
        raise ValueError("`truth` must be a DataFrame with columns label and path (or relpath), e.g. "
                         "imgcls.sample.sample_truth(workspace).")
    labelled = truth[truth["label"].astype(str) != ""]
    out = results.copy()
    true = pd.Series([None] * len(out), index=out.index, dtype=object)
    counts = {"by_path": 0, "by_hash": 0, "by_relpath": 0}
    if "path" in labelled.columns and "path" in out.columns and len(out):
        by_path = dict(zip(_resolved(labelled["path"]), labelled["label"].astype(str)))
        true = _resolved(out["path"]).map(by_path).astype(object)
        counts["by_path"] = int(true.notna().sum())
        missing = true.isna()
        if missing.any():
            hashes = labelled["hash"].astype(str) if "hash" in labelled.columns else pd.Series("", index=labelled.index)
            unknown = hashes == ""
            if unknown.any():  # an older sample: hash the pool files still present
                hashes = hashes.copy()
                hashes[unknown] = [_hash_or_empty(p) if os.path.isfile(p) else "" for p in labelled.loc[unknown, "path"]]
            by_hash = {h: lab for h, lab in zip(hashes, labelled["label"].astype(str)) if h}
            mine = (out.loc[missing, "hash"].astype(str) if "hash" in out.columns
                    else pd.Series("", index=out.index[missing]))
            redo = mine == ""
            if redo.any():
                mine = mine.copy()
                mine[redo] = [_hash_or_empty(p) for p in out.loc[mine.index[redo], "path"].astype(str)]
            found = mine.map(by_hash)
            true[found.index] = found
            counts["by_hash"] = int(found.notna().sum())
    elif "relpath" in labelled.columns and "relpath" in out.columns:
        true = out["relpath"].astype(str).map(dict(zip(labelled["relpath"].astype(str),
                                                       labelled["label"].astype(str)))).astype(object)
        counts["by_relpath"] = int(true.notna().sum())
    elif len(out):
        raise ValueError("`truth` and `results` share no key column: results need `path` "
                         "(or `relpath` when truth has no path).")
    out[column] = true.fillna("").astype(str).to_numpy() if len(out) else pd.Series([], dtype=str)
    counts["unmatched"] = int(len(out) - sum(counts.values()))
    out.attrs["truth_join"] = counts
    return out
