"""Scanning ``library/``: one catalog row per image file, hashes and sizes cached.

A scan reads; it takes no lock and never writes into the library (only the
scan cache in ``.imgcls/``). What it finds that needs a person's attention is
reported, never fixed behind their back:

* unreadable files are rows with ``readable=False`` and the reason in
  ``error`` (truncated, not an image, too many pixels, ...);
* symbolic links to files are rows too, never followed out of ``library/``:
  ``error`` says "symbolic link leaving the folder" or "dangling link";
* a class folder that is a symbolic link is not entered: a warning names it
  and ``catalog.attrs["linked_folders"]`` lists it (writing into it is refused);
* classes whose names look alike (``Cat`` and ``cat``; ``café`` composed and
  decomposed) are warned about and listed in
  ``catalog.attrs["look_alike_classes"]`` until they are renamed or merged.

This module never imports TensorFlow.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from imgcls.core import ImageError, Workspace, file_hash, read_image
from imgcls.core.imagefiles import iter_image_entries
from imgcls.library.duplicates import duplicate_groups, phash
from imgcls.library.flags import join_flags
from imgcls.library.names import look_alike_classes
from imgcls.library.scancache import ScanCache

__all__ = ["CATALOG_COLUMNS", "class_folders", "iter_library_files", "scan_catalog"]

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


def class_folders(workspace: Workspace) -> tuple[list[str], list[str]]:
    """The class folder names in ``library/``, sorted: (real folders, symbolic links to folders).

    Hidden names (leading dot) are left out.
    """
    real, linked = [], []
    with os.scandir(workspace.library) as entries:
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                real.append(e.name)
            elif e.is_symlink() and e.is_dir(follow_symlinks=True):
                linked.append(e.name)
    return sorted(real), sorted(linked)


def iter_library_files(workspace: Workspace, folders: Iterable[str] | None = None
                       ) -> Iterator[tuple[Path, str, str]]:
    """Yield ``(path, label, problem)`` for every file with an image name under ``library/<label>/``, sorted.

    ``problem`` is ``""`` for a file to read, else why it is not followed (a
    symbolic link leaving the folder, a dangling link).

    Args:
        workspace: The workspace.
        folders: The class folders to walk (default: every real one).
    """
    lib = workspace.library
    for label in class_folders(workspace)[0] if folders is None else folders:
        for path, problem in iter_image_entries(lib / label, recursive=True):
            yield path, label, problem


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


def _report(cat: pd.DataFrame, folders: list[str], linked: list[str]) -> None:
    """Warn about linked class folders and look-alike class names; note them in ``cat.attrs``."""
    alike = look_alike_classes(folders + linked)
    cat.attrs["linked_folders"] = list(linked)
    cat.attrs["look_alike_classes"] = alike
    if linked:
        warnings.warn(
            f"Class folders that are symbolic links are not scanned and cannot be written to: "
            f"{', '.join(repr(n) for n in linked)}. Replace each link by a real folder holding its images.",
            UserWarning,
            stacklevel=3,
        )
    if alike:
        shown = "; ".join(" / ".join(repr(n) for n in g) for g in alike)
        warnings.warn(
            f"Classes whose names look alike (same letters up to case or Unicode form) train as "
            f"different classes: {shown}. Mend them with Library.merge_class(src, into=...) or "
            "Library.rename_class(old, new) (imgcls merge-class / rename-class).",
            UserWarning,
            stacklevel=3,
        )


def scan_catalog(workspace: Workspace, *, near_distance: int, flags: pd.DataFrame,
                 progress: bool = False) -> pd.DataFrame:
    """Scan ``library/`` and return the catalog (one row per image file); see :meth:`Library.scan`.

    Args:
        workspace: The workspace.
        near_distance: Perceptual-hash distance (bits of 64) for near duplicates.
        flags: The flags table to join (:func:`~imgcls.library.flags.read_flags`).
        progress: Show a tqdm progress bar.

    Returns:
        DataFrame with :data:`CATALOG_COLUMNS`; ``attrs`` holds ``linked_folders`` and ``look_alike_classes``.
    """
    ws = workspace
    root = ws.library
    folders, linked = class_folders(ws)
    cache = ScanCache(ws.cache_dir / "scan_cache.sqlite")
    records: list[tuple] = []
    pending: list[tuple] = []
    files: Iterable = iter_library_files(ws, folders)
    if progress:
        from tqdm.auto import tqdm

        files = tqdm(files, desc="scanning library", unit="img")
    root_prefix = len(str(root)) + 1
    cached_label, cached = None, {}
    try:
        for path, label, problem in files:
            spath = str(path)
            rel = spath[root_prefix:].replace(os.sep, "/")
            if problem:  # a link never followed: listed, not read
                records.append((spath, rel, label, "", 0, 0, 0, False, problem, ""))
                continue
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
        cat["group"] = duplicate_groups(cat, max_distance=near_distance, cache=cache)
    finally:
        cache.close()
    cat = cat.astype({"bytes": "int64", "width": "int64", "height": "int64", "readable": bool})
    cat = join_flags(cat, flags)
    cat = cat[CATALOG_COLUMNS].reset_index(drop=True)
    _report(cat, folders, linked)
    return cat
