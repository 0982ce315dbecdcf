"""The labelled image library: catalog, counts, cutoff, flags and label operations.

Folder-per-class is the truth for labels: ``library/<class>/<image>``. The
folder ``library/unknown/`` holds good images nobody can name yet; it is a real
folder but never trains as a class.

Facts about an image that must survive moves and renames (staged or synthetic,
a needed 90-degree turn, benchmark membership) are keyed by the image's content
hash in ``flags.csv`` (see :mod:`imgcls.library.flags`).

Label operations (add, move, send to unknown, discard to trash, undo) are
atomic, never overwrite, never delete and are journaled: see
:mod:`imgcls.library.journal`. Duplicates are found by
:mod:`imgcls.library.duplicates`; scans are cached by
:mod:`imgcls.library.scancache`.

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
    ImageError,
    Workspace,
    as_workspace,
    check_int,
    file_hash,
    iter_image_files,
    read_image,
)
from imgcls.library.flags import FLAG_COLUMNS, check_turns, join_flags, read_flags, update_flags
from imgcls.library.duplicates import NEAR_DUPLICATE_DISTANCE, duplicate_groups, duplicate_table, phash
from imgcls.library.journal import Journal, is_inside, new_batch_id
from imgcls.library.names import validate_class_name
from imgcls.library.scancache import ScanCache

__all__ = ["Library", "CATALOG_COLUMNS", "count_changes"]

#: Columns of the catalog returned by :meth:`Library.scan`.
CATALOG_COLUMNS = [
    "path",
    "relpath",
    "label",
    "hash",
    "bytes",
    "width",
    "height",
    "readable",
    "error",
    "phash",
    "group",
    "staged",
    "turns",
    "benchmark",
]


def _inspect(path: Path, root: Path, max_pixels: int) -> tuple:
    """(hash, width, height, readable, error, phash) for one file."""
    try:
        digest = file_hash(path)
    except ImageError as exc:
        return ("", 0, 0, 0, exc.reason, "")
    except OSError as exc:
        return ("", 0, 0, 0, f"cannot read file: {exc.strerror or exc}", "")
    try:
        pixels = read_image(path, max_pixels=max_pixels, root=root)
    except ImageError as exc:
        return (digest, 0, 0, 0, exc.reason, "")
    return (digest, int(pixels.shape[1]), int(pixels.shape[0]), 1, "", phash(pixels))


class Library:
    """The labelled library of one workspace.

    Owns the catalog of the last scan and the hash-keyed flags; label moves go
    through the workspace's :class:`~imgcls.library.journal.Journal`.
    Opening a library creates the workspace's folders if missing and finishes
    or rolls back moves a crash interrupted (listed in ``recovered_``).

    Args:
        workspace: A :class:`~imgcls.core.Workspace` or a folder path.
        near_distance: Perceptual-hash distance (bits of 64) for near duplicates.

    Example:
        >>> lib = Library("my-project")
        >>> lib.counts()              # images per class against the cutoff
        >>> lib.move("library/cat/x.png", "lynx")   # journaled, undoable
        >>> lib.undo()
    """

    def __init__(self, workspace: Workspace | str | os.PathLike, *, near_distance: int = NEAR_DUPLICATE_DISTANCE):
        self.workspace = as_workspace(workspace, must_exist=False).ensure()
        self.near_distance = check_int(near_distance, "near_distance", low=0)
        self._catalog: pd.DataFrame | None = None
        self._journal = Journal(self.workspace)
        self.recovered_: list[dict] = self._journal.recover()

    # ------------------------------------------------------------------ scan
    def iter_files(self) -> Iterator[tuple[Path, str]]:
        """Yield ``(path, label)`` for every image file under ``library/<label>/``, sorted."""
        lib = self.workspace.library
        with os.scandir(lib) as entries:
            folders = sorted(
                e.name for e in entries
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
            )
        for label in folders:
            for path in iter_image_files(lib / label, recursive=True):
                yield path, label

    def scan(self, *, progress: bool = False) -> pd.DataFrame:
        """Scan ``library/`` and return the catalog (one row per image file).

        Hashes, sizes and readability are cached by (path, size, mtime) in
        ``.imgcls/scan_cache.sqlite``; a rescan of an unchanged library reads
        no image.  Unreadable files are rows with ``readable=False`` and the
        reason in ``error``; they never stop the scan.

        Args:
            progress: Show a tqdm progress bar.

        Returns:
            DataFrame with :data:`CATALOG_COLUMNS`.
        """
        ws = self.workspace
        root = ws.library
        cache = ScanCache(ws.cache_dir / "scan_cache.sqlite")
        records: list[tuple] = []
        pending: list[tuple] = []
        files: Iterable = self.iter_files()
        if progress:
            from tqdm.auto import tqdm

            files = tqdm(files, desc="scanning library", unit="img")
        root_prefix = len(str(root)) + 1
        cached_label, cached = None, {}
        try:
            for path, label in files:
                spath = str(path)
                rel = spath[root_prefix:].replace(os.sep, "/")
                try:
                    st = os.lstat(spath)
                except OSError as exc:
                    records.append((spath, rel, label, "", 0, 0, 0, False, f"cannot stat: {exc}", ""))
                    continue
                size, mtime = int(st.st_size), int(st.st_mtime_ns)
                if label != cached_label:
                    cached_label, cached = label, cache.folder(label)
                row = cached.get(rel)
                hit = row[2:] if row is not None and row[0] == size and row[1] == mtime else None
                if hit is None:
                    hit = _inspect(path, root, ws.max_pixels)
                    pending.append((rel, size, mtime, *hit))
                    if len(pending) >= 500:
                        cache.put_many(pending)
                        pending.clear()
                digest, w, h, ok, err, ph = hit
                records.append((spath, rel, label, digest, size, w, h, bool(ok), err or "", ph or ""))
            if pending:
                cache.put_many(pending)
            cached = {}
            cat = pd.DataFrame.from_records(
                records,
                columns=["path", "relpath", "label", "hash", "bytes", "width", "height", "readable", "error", "phash"],
            )
            del records
            cat["group"] = duplicate_groups(cat, max_distance=self.near_distance, cache=cache)
        finally:
            cache.close()
        cat = cat.astype({"bytes": "int64", "width": "int64", "height": "int64", "readable": bool})
        cat = join_flags(cat, self.flags())
        self._catalog = cat[CATALOG_COLUMNS].reset_index(drop=True)
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
        and renames.

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
        hashes = [self._to_hash(x) for x in images]
        out = update_flags(self.workspace, hashes, staged=staged, turns=turns, benchmark=benchmark)
        if self._catalog is not None:
            self._catalog = join_flags(self._catalog.drop(columns=list(FLAG_COLUMNS)), out)[CATALOG_COLUMNS]
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

    # ------------------------------------------------------- label operations
    def _resolve(self, path: str | os.PathLike) -> Path:
        p = Path(os.fspath(path)).expanduser()
        if not p.is_absolute():
            candidates = [Path.cwd() / p, self.workspace.root / p, self.workspace.library / p]
            p = next((c for c in candidates if os.path.lexists(c)), candidates[0])
        return p

    def _check_source(self, path: str | os.PathLike, *, within: tuple[Path, ...]) -> Path:
        p = self._resolve(path)
        if not os.path.lexists(p):
            raise FileNotFoundError(f"No image at {os.fspath(path)!r} (looked at {str(p)!r}).")
        if p.is_symlink() or not p.is_file():
            raise ValueError(f"{str(p)!r} is not a regular image file; only regular files can be moved.")
        if within and not any(is_inside(p, w) for w in within):
            names = ", ".join(str(w) for w in within)
            raise ValueError(f"{str(p)!r} is outside {names}; label operations only move files inside the workspace.")
        return p

    def journal(self) -> pd.DataFrame:
        """Every label operation ever made, for audit.

        Returns:
            One row per completed operation: [id, batch, time, op, src, dst,
            hash, label, undone] (:data:`~imgcls.library.JOURNAL_COLUMNS`).
        """
        return self._journal.table()

    def _transfer(self, src: Path, folder: Path, **kwargs) -> Path:
        dst = self._journal.transfer(src, folder, **kwargs)
        self._catalog = None
        return dst

    def add(self, paths: Iterable[str | os.PathLike] | str | os.PathLike, label: str, *,
            move: bool = False) -> list[Path]:
        """Add images to class ``label`` (a new name creates its folder).

        Args:
            paths: Image files anywhere (copied) or inside the workspace's
                ``unlabelled/`` (moved with ``move=True``).
            label: Target class; validated.
            move: Move instead of copy. Only for files inside the workspace.

        Returns:
            The new paths, in order.
        """
        label = validate_class_name(label)
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        ws = self.workspace
        batch = new_batch_id()
        out = []
        for p in paths:
            src = self._check_source(p, within=(ws.root,) if move else ())
            self._check_readable(src)
            out.append(self._transfer(src, ws.library / label, op="add", label=label,
                                      batch=batch, keep_source=not move))
        return out

    def _check_readable(self, src: Path) -> None:
        try:
            read_image(src, max_pixels=self.workspace.max_pixels)
        except ImageError as exc:
            raise ValueError(f"Not adding {str(src)!r}: {exc.reason}. Only readable images enter the library.") from None

    def move(self, path: str | os.PathLike, label: str, *, batch: str | None = None) -> Path:
        """Move a library image to class ``label`` (a new name creates its folder).

        Args:
            path: An image in ``library/``, ``unlabelled/`` or ``trash/``
                (absolute, or relative to the current folder, the workspace or
                ``library/``).
            label: Target class; validated.
            batch: Batch id to undo it together with others (default: its own).

        Returns:
            The new path (a free name if the old one is taken there).
        """
        label = validate_class_name(label)
        ws = self.workspace
        src = self._check_source(path, within=(ws.library, ws.unlabelled, ws.trash))
        return self._transfer(src, ws.library / label, op="move", label=label, batch=batch or new_batch_id())

    def to_unknown(self, path: str | os.PathLike, *, batch: str | None = None) -> Path:
        """Send an image to ``library/unknown/``: good, but nobody can name it yet.

        Args:
            path: The image (as for :meth:`move`).
            batch: Batch id to undo it together with others.

        Returns:
            The new path.
        """
        return self.move(path, UNKNOWN_CLASS, batch=batch)

    def discard(self, path: str | os.PathLike, *, batch: str | None = None) -> Path:
        """Move an image to ``trash/`` (nothing is ever deleted outright).

        Args:
            path: An image in ``library/`` or ``unlabelled/``.
            batch: Batch id to undo it together with others.

        Returns:
            The new path.
        """
        ws = self.workspace
        src = self._check_source(path, within=(ws.library, ws.unlabelled))
        return self._transfer(src, ws.trash, op="discard", label=None, batch=batch or new_batch_id())

    def apply(self, decisions: pd.DataFrame) -> pd.DataFrame:
        """Apply many label decisions as one undoable batch.

        Args:
            decisions: DataFrame with ``path`` and ``action`` (``"label"``,
                ``"unknown"``, ``"discard"``, ``"skip"``) and, for
                ``"label"``, the class in ``label``.

        Returns:
            The decisions with ``new_path`` and ``error`` columns; a failed
            row never stops the others.
        """
        missing = {"path", "action"} - set(decisions.columns)
        if missing:
            raise ValueError(f"`decisions` needs columns path and action; missing {sorted(missing)}.")
        batch = new_batch_id()
        out = decisions.copy()
        new_paths, errors = [], []
        for row in decisions.itertuples(index=False):
            action = row.action
            try:
                if action == "skip":
                    new = None
                elif action == "label":
                    new = self.move(row.path, row.label, batch=batch)
                elif action == "unknown":
                    new = self.to_unknown(row.path, batch=batch)
                elif action == "discard":
                    new = self.discard(row.path, batch=batch)
                else:
                    raise ValueError(f"unknown action {action!r}; expected label, unknown, discard or skip")
                new_paths.append(str(new) if new else None)
                errors.append("")
            except (ValueError, OSError) as exc:
                new_paths.append(None)
                errors.append(str(exc))
        out["new_path"] = new_paths
        out["error"] = errors
        out.attrs["batch"] = batch
        return out

    def undo(self, steps: int = 1) -> list[Path]:
        """Undo the last ``steps`` operations (a batch from :meth:`apply`
        counts as one). Each image goes back to where it came from (under a new
        name if that one is taken now); a copy made by :meth:`add` goes to
        ``trash/``. Undos are journaled too.

        Args:
            steps: How many operations (or batches) to undo.

        Returns:
            The paths the images now have.
        """
        try:
            return self._journal.undo(steps)
        finally:
            self._catalog = None


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
