"""The labelled image library: catalog, counts, cutoff, flags and label operations.

Folder-per-class is the truth for labels: ``library/<class>/<image>``. The
folder ``library/unknown/`` holds good images nobody can name yet; it is a real
folder but never trains as a class.

Facts about an image that must survive moves and renames (staged or synthetic,
a needed 90-degree turn, benchmark membership) are keyed by the image's content
hash in ``flags.csv`` (see :mod:`imgcls.library.flags`).

Any number of processes may read a library at once; changes (label
operations, flags, crash recovery) are made under the workspace lock
(:mod:`imgcls.core.lock`), one writer at a time. Label operations (add, move,
send to unknown, discard to trash, undo, class rename and merge) are atomic,
never overwrite, never delete and are journaled: see
:mod:`imgcls.library.labels` and :mod:`imgcls.library.journal`. Scans are
:mod:`imgcls.library.scan`'s; duplicates are found by
:mod:`imgcls.library.duplicates`.

This module never imports TensorFlow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from imgcls.core import (
    UNKNOWN_CLASS,
    Workspace,
    as_workspace,
    check_int,
    check_number,
    file_hash,
)
from imgcls.core.lock import WorkspaceLock
from imgcls.core.upgrade import ensure_current_format
from imgcls.library.duplicates import NEAR_DUPLICATE_DISTANCE, duplicate_table
from imgcls.library.flags import FLAG_COLUMNS, check_turns, join_flags, read_flags, update_flags
from imgcls.library.journal import Journal
from imgcls.library.labels import LabelOperations
from imgcls.library.scan import CATALOG_COLUMNS, iter_library_files, scan_catalog

__all__ = ["Library", "CATALOG_COLUMNS", "count_changes"]


class Library(LabelOperations):
    """The labelled library of one workspace.

    Owns the catalog of the last scan and the hash-keyed flags; label moves go
    through the workspace's :class:`~imgcls.library.journal.Journal` (see
    :class:`~imgcls.library.labels.LabelOperations` for them). Opening a
    library creates the workspace's folders if missing, checks the workspace
    format (upgrading an older one, listed in ``upgraded_``) and, if no other
    process is writing right now, finishes or rolls back moves a crash
    interrupted (listed in ``recovered_``). It never waits for the lock
    unless an upgrade is needed.

    Args:
        workspace: A :class:`~imgcls.core.Workspace` or a folder path.
        near_distance: Perceptual-hash distance (bits of 64) for near duplicates.
        lock_timeout: Seconds a change waits for another writer's lock
            (default ``$IMGCLS_LOCK_TIMEOUT`` or 60).

    Example:
        >>> lib = Library("my-project")
        >>> lib.counts()              # images per class against the cutoff
        >>> lib.move("library/cat/x.png", "lynx")   # journaled, undoable
        >>> lib.undo()
    """

    def __init__(self, workspace: Workspace | str | os.PathLike, *, near_distance: int = NEAR_DUPLICATE_DISTANCE,
                 lock_timeout: float | None = None):
        self.workspace = as_workspace(workspace, must_exist=False).ensure()
        self.near_distance = check_int(near_distance, "near_distance", low=0)
        self.lock_timeout = check_number(lock_timeout, "lock_timeout", low=0, allow_none=True,
                                         fix="pass the seconds to wait for another writer")
        self._catalog: pd.DataFrame | None = None
        self._journal = Journal(self.workspace)
        self._lock = WorkspaceLock(self.workspace.root, timeout=self.lock_timeout)
        self.upgraded_: list[str] = ensure_current_format(self.workspace, timeout=self.lock_timeout)
        self.recovered_: list[dict] = []
        # Recovery only with the lock, taken without waiting: if someone is writing,
        # their move in flight is not a crashed one. Under the lock protocol only the
        # journal's last operation can be left open (its writer died), so a look at its
        # end suffices; after a format upgrade the whole journal is checked once.
        if (self.upgraded_ or self._journal.needs_recovery()) and self._lock.acquire(blocking=False):
            try:
                self.recovered_ = self._journal.recover()
            finally:
                self._lock.release()

    # ------------------------------------------------------------------ scan
    def iter_files(self) -> Iterator[tuple[Path, str]]:
        """Yield ``(path, label)`` for every image file under ``library/<label>/``, sorted.

        Symbolic links that are not followed (leaving the folder, dangling)
        are left out here; :meth:`scan` lists them with the reason.
        """
        for path, label, problem in iter_library_files(self.workspace):
            if not problem:
                yield path, label

    def scan(self, *, progress: bool = False) -> pd.DataFrame:
        """Scan ``library/`` and return the catalog (one row per image file).

        Reading only: no lock is taken. Hashes, sizes and readability are
        cached by (path, size, mtime) in ``.imgcls/scan_cache.sqlite``; a
        rescan of an unchanged library reads no image. Unreadable files are
        rows with ``readable=False`` and the reason in ``error``; so are
        symbolic links to files, never followed out of ``library/`` ("symbolic
        link leaving the folder", "dangling link"). Nothing stops the scan.
        A class folder that is a symbolic link is not entered, and classes
        whose names look alike (``Cat``/``cat``) are warned about; both are
        listed in ``attrs`` (``linked_folders``, ``look_alike_classes``).

        Args:
            progress: Show a tqdm progress bar.

        Returns:
            DataFrame with :data:`CATALOG_COLUMNS`.
        """
        self._catalog = scan_catalog(self.workspace, near_distance=self.near_distance, flags=self.flags(),
                                     progress=progress)
        return self._catalog

    @property
    def catalog(self) -> pd.DataFrame:
        """The catalog of the last :meth:`scan` (scanning first if needed)."""
        if self._catalog is None:
            self.scan()
        return self._catalog

    # ---------------------------------------------------------------- counts
    def counts(self, *, cutoff: int | None = None) -> pd.DataFrame:
        """Readable images per class against the cutoff.

        ``unknown`` is listed last with ``meets_cutoff=False``: it never trains.

        Args:
            cutoff: Minimum readable images (default: the workspace's cutoff).

        Returns:
            DataFrame [label, n, unreadable, staged, meets_cutoff, short_by]
            sorted by count, largest first.
        """
        cutoff = self._cutoff(cutoff)
        cat = self.catalog
        rows = []
        for label, g in cat.groupby("label", sort=True):
            n = int(g["readable"].sum())
            trainable = label != UNKNOWN_CLASS
            rows.append({
                "label": label,
                "n": n,
                "unreadable": int((~g["readable"]).sum()),
                "staged": int((g["staged"] & g["readable"]).sum()),
                "meets_cutoff": trainable and n >= cutoff,
                "short_by": max(cutoff - n, 0) if trainable else 0,
            })
        df = pd.DataFrame(rows, columns=["label", "n", "unreadable", "staged", "meets_cutoff", "short_by"])
        df["_unknown"] = df["label"] == UNKNOWN_CLASS
        df = df.sort_values(["_unknown", "n", "label"], ascending=[True, False, True]).drop(columns="_unknown")
        return df.reset_index(drop=True)

    def classes(self, *, cutoff: int | None = None) -> list[str]:
        """Sorted class names with at least ``cutoff`` readable images (never ``unknown``).

        Args:
            cutoff: Minimum readable images (default: the workspace's cutoff).
        """
        c = self.counts(cutoff=cutoff)
        return sorted(c.loc[c["meets_cutoff"], "label"].tolist())

    def _cutoff(self, cutoff: int | None) -> int:
        if cutoff is None:
            return self.workspace.cutoff
        return check_int(cutoff, "cutoff")

    # ----------------------------------------------------------------- flags
    def flags(self) -> pd.DataFrame:
        """The hash-keyed flags table.

        Returns:
            DataFrame [hash, staged, turns, benchmark] (empty when no flag is set).
        """
        return read_flags(self.workspace)

    def set_flags(
        self,
        images: Iterable[str | os.PathLike] | str | os.PathLike,
        *,
        staged: bool | None = None,
        turns: int | None = None,
        benchmark: bool | None = None,
    ) -> pd.DataFrame:
        """Set flags on images, given as paths or content hashes.

        Flags are stored by content hash, so they follow an image through moves
        and renames. Written under the workspace lock.

        Args:
            images: Paths of image files or content hashes (one or many).
            staged: Staged or synthetic (not a real-world picture).
            turns: Quarter turns counter-clockwise needed to be upright (0-3).
            benchmark: Member of the fixed benchmark set.

        Returns:
            The updated flags table.
        """
        check_turns(turns)  # before hashing anything
        if isinstance(images, (str, os.PathLike)):
            images = [images]
        with self.writing():
            hashes = [self._to_hash(x) for x in images]
            out = update_flags(self.workspace, hashes, staged=staged, turns=turns, benchmark=benchmark)
        if self._catalog is not None:
            attrs = dict(self._catalog.attrs)
            self._catalog = join_flags(self._catalog.drop(columns=list(FLAG_COLUMNS)), out)[CATALOG_COLUMNS]
            self._catalog.attrs.update(attrs)
        return out

    def _to_hash(self, x) -> str:
        s = os.fspath(x)
        if re.fullmatch(r"[0-9a-f]{64}", s):
            return s
        p = self._resolve(s)
        if not p.is_file():
            raise ValueError(
                f"{s!r} is neither an image file nor a content hash. Give a path "
                "to an image (absolute or relative to the workspace) or a 64-hex hash."
            )
        return file_hash(p)

    # ------------------------------------------------------------ duplicates
    def duplicates(self, *, near: bool = True) -> pd.DataFrame:
        """Groups of exact duplicates (same content) and near duplicates
        (perceptual hashes within :attr:`near_distance` bits), for review.

        Args:
            near: Include near duplicates; ``False`` keeps exact ones only.

        Returns:
            DataFrame [group, kind, path, relpath, label, hash]: one row per
            image in a group of two or more; ``kind`` is ``"exact"`` when every
            member has the same content, else ``"near"``.
        """
        return duplicate_table(self.catalog, near=near)


def count_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The classes whose image count changed between two :meth:`Library.counts` tables.

    Args:
        before, after: Tables from :meth:`Library.counts` (columns ``label`` and ``n``).

    Returns:
        DataFrame [label, n_before, n_after, change] of the classes that gained or
        lost images (a class new in ``after`` has ``n_before`` 0), largest change first.
    """
    for name, table in (("before", before), ("after", after)):
        if not isinstance(table, pd.DataFrame) or not {"label", "n"} <= set(table.columns):
            raise ValueError(f"`{name}` must be a Library.counts() table with columns label and n. "
                             f"Received: {type(table).__name__}")
    out = before[["label", "n"]].merge(after[["label", "n"]], on="label", how="outer",
                                       suffixes=("_before", "_after")).fillna(0)
    out = out.astype({"n_before": "int64", "n_after": "int64"})
    out["change"] = out["n_after"] - out["n_before"]
    out = out[out["change"] != 0]
    order = out["change"].abs().sort_values(ascending=False, kind="stable").index
    return out.loc[order].reset_index(drop=True)
