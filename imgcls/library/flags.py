"""Image-level flags kept by content hash in ``flags.csv``: staged, turns, benchmark.

A flag is a fact about an image that must survive moves and renames, so it is
keyed by the image's content hash, not its path:

* ``staged``: a staged or synthetic picture, not a real-world one;
* ``turns``: quarter turns counter-clockwise needed to be upright (0-3);
* ``benchmark``: a member of the fixed benchmark set (never trained on).

This module never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from imgcls.core import Workspace
from imgcls.core.fileio import write_csv

__all__ = ["FLAG_COLUMNS", "read_flags", "join_flags", "check_turns", "update_flags"]

#: Flags kept by content hash in ``flags.csv`` and their defaults.
FLAG_COLUMNS = {"staged": False, "turns": 0, "benchmark": False}


def read_flags(workspace: Workspace) -> pd.DataFrame:
    """The flags table of a workspace.

    Args:
        workspace: The workspace.

    Returns:
        DataFrame [hash, staged, turns, benchmark] (empty when no flag is set;
        missing values take the defaults of :data:`FLAG_COLUMNS`).
    """
    f = workspace.flags_file
    if not f.exists():
        return pd.DataFrame({"hash": pd.Series(dtype=str), **{k: pd.Series(dtype=type(v)) for k, v in FLAG_COLUMNS.items()}})
    df = pd.read_csv(f, dtype={"hash": str})
    for col, default in FLAG_COLUMNS.items():
        if col not in df:
            df[col] = default
        df[col] = df[col].fillna(default).astype(type(default))
    return df[["hash", *FLAG_COLUMNS]]


def join_flags(catalog: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """``catalog`` with the flag columns of its rows' hashes (defaults where unflagged).

    Args:
        catalog: Rows with a ``hash`` column and no flag columns.
        flags: A flags table (:func:`read_flags`).

    Returns:
        A new DataFrame.
    """
    out = catalog.merge(flags, on="hash", how="left") if len(flags) else catalog.copy()
    for col, default in FLAG_COLUMNS.items():
        if col not in out:
            out[col] = default
        out[col] = out[col].fillna(default).astype(type(default))
    return out


def check_turns(turns: int | None) -> None:
    """Refuse a ``turns`` flag that is not None, 0, 1, 2 or 3 (``ValueError``)."""
    if turns is not None and (isinstance(turns, bool) or int(turns) != turns or not 0 <= int(turns) <= 3):
        raise ValueError(f"`turns` must be 0, 1, 2 or 3 quarter turns. Received: turns={turns!r}")


def update_flags(
    workspace: Workspace,
    hashes: Iterable[str],
    *,
    staged: bool | None = None,
    turns: int | None = None,
    benchmark: bool | None = None,
) -> pd.DataFrame:
    """Set flags on images given by content hash and write ``flags.csv`` (atomically).

    Args:
        workspace: The workspace.
        hashes: Content hashes of the images.
        staged: Staged or synthetic (None leaves it as it is).
        turns: Quarter turns counter-clockwise needed to be upright (0-3).
        benchmark: Member of the fixed benchmark set.

    Returns:
        The updated flags table.

    Raises:
        ValueError: ``turns`` is not 0, 1, 2 or 3.
    """
    check_turns(turns)
    flags = read_flags(workspace).set_index("hash")
    for h in hashes:
        if h not in flags.index:
            flags.loc[h] = [FLAG_COLUMNS[c] for c in FLAG_COLUMNS]
        if staged is not None:
            flags.loc[h, "staged"] = bool(staged)
        if turns is not None:
            flags.loc[h, "turns"] = int(turns)
        if benchmark is not None:
            flags.loc[h, "benchmark"] = bool(benchmark)
    out = flags.reset_index()
    out = out.astype({"staged": bool, "turns": int, "benchmark": bool})
    write_csv(workspace.flags_file, out)
    return out
