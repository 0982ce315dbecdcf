"""The file operations under every label move: linking without overwriting, and where writing is allowed.

* :func:`link_no_clobber` gives a file a new name in a folder, never
  replacing an existing file (a clash gets ``stem-1.ext``, ``stem-2.ext``...).
* :func:`check_write_folder` refuses to write into a folder reached through a
  symbolic link (a linked ``library/``, class folder, ``unknown/`` or
  ``trash/``): images moved there would leave the workspace and vanish from
  its scans. Reading through such links goes on; only writing is refused.

This module imports only the standard library.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from pathlib import Path

from imgcls.core import Workspace

__all__ = [
    "is_inside",
    "fsync_dir",
    "link_no_clobber",
    "check_write_folder",
    "name_fits",
    "MAX_NAME_BYTES",
]

#: Longest file or folder name most file systems accept, in bytes.
MAX_NAME_BYTES = 255


def is_inside(path: Path, folder: Path) -> bool:
    """True if ``path`` (symbolic links resolved) lies inside ``folder`` (resolved too)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries durable (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def name_fits(name: str) -> bool:
    """Whether ``name`` can be a file name: at most :data:`MAX_NAME_BYTES` bytes in UTF-8."""
    try:
        return len(os.fsencode(name)) <= MAX_NAME_BYTES
    except UnicodeError:
        return False


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name`` if free, else ``folder/stem-1.ext``, ``stem-2.ext`` ..."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    i = 0
    while os.path.lexists(candidate):
        i += 1
        candidate = folder / f"{stem}-{i}{suffix}"
    return candidate


def _link_to_free_name(src: Path, folder: Path, name: str) -> Path:
    """Hard-link ``src`` as ``folder/name`` or the next free variant of it.

    A name taken between the check and the link (another writer) is skipped
    for the next free one; any other ``OSError`` propagates.
    """
    while True:
        dst = _free_name(folder, name)
        try:
            os.link(src, dst)
            return dst
        except FileExistsError:
            continue  # raced with another writer: pick the next free name


def link_no_clobber(src: Path, folder: Path, name: str, *, copy: bool = False) -> Path:
    """Hard-link ``src`` into ``folder`` under a free name (never overwrites).

    With ``copy=True``, or when a hard link is not possible (another file
    system), the bytes are copied to a temporary file (fsynced) that is then
    linked under the free name and unlinked.

    Args:
        src: The file.
        folder: The folder to link it into (created if missing).
        name: The wanted file name; ``stem-1.ext``, ``stem-2.ext`` ... when taken.
        copy: Copy the bytes instead of linking ``src`` itself.

    Returns:
        The new path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if not copy:
        try:
            return _link_to_free_name(src, folder, name)
        except OSError:
            pass  # no hard link possible here: copy instead
    tmp = folder / f".imgcls-tmp-{uuid.uuid4().hex}{Path(name).suffix}"
    try:
        shutil.copy2(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        dst = _link_to_free_name(tmp, folder, name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dst


def check_write_folder(workspace: Workspace, folder: Path) -> None:
    """Refuse to write into ``folder`` unless it lies inside the workspace through real folders only.

    Every component from the workspace root down to ``folder`` that exists
    must be a real directory: a symbolic link anywhere on the way (``library/``
    itself, a class folder, ``unknown/``, ``trash/``, a folder of
    ``unlabelled/``) would send the images somewhere else.

    Args:
        workspace: The workspace.
        folder: The folder a file is about to be linked into or unlinked from.

    Raises:
        ValueError: A component is a symbolic link (or not a folder), or ``folder``
            lies outside the workspace.
    """
    stored = workspace.stored_path(folder)
    if os.path.isabs(stored):
        raise ValueError(
            f"{str(folder)!r} is outside the workspace {str(workspace.root)!r}; label operations "
            "only write inside it."
        )
    current = workspace.root
    for part in [] if stored == "." else stored.split("/"):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return  # created below as a real folder
        except OSError as err:
            raise ValueError(f"Cannot use {str(current)!r}: {err.strerror or err}.") from None
        if os.path.islink(current):
            raise ValueError(
                f"Refusing to write into {stored!r}: {part!r} ({str(current)!r}) is a symbolic link "
                f"(to {_readlink(current)!r}). imgcls never writes through links: images moved there "
                "would leave the workspace and vanish from its scans. Replace the link by a real "
                "folder holding the images (e.g. move them in), then try again. Reading and "
                "scanning go on as before."
            )
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"Cannot write into {stored!r}: {str(current)!r} is not a folder.")


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"
