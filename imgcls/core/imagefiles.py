"""Image files on disk: finding them, hashing them, opening them safely.

* :func:`iter_image_files` walks a folder lazily, in sorted order, and never
  follows a link out of it; :func:`iter_image_entries` also lists the links it
  does not follow, with the reason.
* :func:`file_hash` is the content hash (SHA-256) that keys every image-level
  fact in a workspace.
* :func:`open_regular_file` is the one way :mod:`imgcls.core.images` opens a
  file: only regular files (never a FIFO, device or directory), never blocking,
  a symbolic link may not leave ``root`` when one is given, and every problem
  is an :class:`ImageError` with a reason and a stable ``kind``.

This module imports only the standard library.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from imgcls.core.checks import check_int
from imgcls.core.workspace import IMAGE_EXTENSIONS

__all__ = [
    "ImageError",
    "PathLike",
    "iter_image_files",
    "iter_image_entries",
    "LINK_LEAVES_FOLDER",
    "DANGLING_LINK",
    "file_hash",
    "open_regular_file",
]

#: What the image functions accept as a path.
PathLike = str | os.PathLike

_DIRECTORY_REASON = "it is a directory, not an image file (only its name looks like an image)"
_PERMISSION_REASON = "permission denied; make the file readable (e.g. chmod a+r)"
_MISSING_REASON = "the file does not exist; check the path or rescan the folder"


class ImageError(ValueError):
    """An image file that cannot be read, and why.

    Attributes:
        path: The file as given (a :class:`~pathlib.Path`).
        reason: What is wrong with it and, where possible, what to do about it.
        kind: A short stable code for filtering, one of ``"missing"``,
            ``"dangling_symlink"``, ``"outside_root"``, ``"directory"``,
            ``"not_a_file"``, ``"permission"``, ``"empty"``,
            ``"not_an_image"``, ``"unsupported_format"``, ``"truncated"``,
            ``"too_large"``, ``"corrupt"``, ``"io_error"``.

    Example:
        >>> try:
        ...     read_image("missing.jpg")
        ... except ImageError as err:
        ...     print(err.kind)
        missing
    """

    def __init__(self, path: PathLike, reason: str, kind: str = "corrupt") -> None:
        # All three go into ``args`` so the error survives pickling
        # (multiprocessing, tf.data workers).
        super().__init__(path, reason, kind)
        self.path = Path(os.fspath(path))
        self.reason = reason
        self.kind = kind

    def __str__(self) -> str:
        return f"Cannot read image {str(self.path)!r}: {self.reason}"


# --------------------------------------------------------------------------
# Walking folders
# --------------------------------------------------------------------------
def iter_image_files(folder: PathLike, *, recursive: bool = True) -> Iterator[Path]:
    """Yield the image files under ``folder``, in sorted order, lazily.

    A file counts as an image by its extension (any case) in
    :data:`imgcls.core.IMAGE_EXTENSIONS`; its content is not opened.
    Names starting with a dot (files or folders) are skipped. Symbolic links
    to folders are never followed. A symbolic link to a file is yielded (as
    the link's path) only if its target is a regular file inside ``folder``;
    links leading out of ``folder``, dangling links, FIFOs, sockets and
    devices are skipped (:func:`iter_image_entries` lists the links with the
    reason instead). Folders are read one at a time with :func:`os.scandir`;
    only one folder's listing is held in memory per level.

    The order is depth-first with names sorted within each folder, which is
    the sort order of the yielded :class:`~pathlib.Path` objects.

    Args:
        folder: The folder to walk.
        recursive: Also walk sub-folders.

    Yields:
        Paths starting with ``folder`` as given.

    Raises:
        ValueError: ``folder`` is not an existing directory.
    """
    for path, problem in iter_image_entries(folder, recursive=recursive):
        if not problem:
            yield path


#: Reason given for a symbolic link whose target lies outside the walked folder.
LINK_LEAVES_FOLDER = "symbolic link leaving the folder"
#: Reason given for a symbolic link whose target does not exist (or loops).
DANGLING_LINK = "dangling link"


def iter_image_entries(folder: PathLike, *, recursive: bool = True) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, problem)`` for every file with an image name under ``folder``, sorted, lazily.

    As :func:`iter_image_files` (same order, same files with ``problem ==
    ""``), plus the symbolic links with an image name that are never
    followed, with the reason in ``problem``: :data:`LINK_LEAVES_FOLDER`
    (the target lies outside ``folder``) or :data:`DANGLING_LINK` (the
    target is missing, or the link loops), each followed by where it points.
    Nothing outside ``folder`` is ever opened. So a scan can list such links
    as unreadable instead of dropping them silently.

    Args:
        folder: The folder to walk.
        recursive: Also walk sub-folders.

    Yields:
        ``(path, "")`` for an image file to read, ``(path, reason)`` for a link not followed.

    Raises:
        ValueError: ``folder`` is not an existing directory.
    """
    folder = Path(os.fspath(folder))
    if not folder.is_dir():
        raise ValueError(
            "`folder` must be an existing directory. "
            f"Received: folder={str(folder)!r}, which "
            f"{'is not a directory' if folder.exists() else 'does not exist'}."
        )
    real_root = folder.resolve()
    stack: list[Iterator[os.DirEntry]] = [iter(_sorted_entries(folder))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        problem = ""
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    stack.append(iter(_sorted_entries(Path(entry.path))))
                continue
            if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            if entry.is_symlink():
                problem = _link_problem(Path(entry.path), real_root)
                if problem is None:
                    continue  # a link to a FIFO, device or folder inside: not an image file
            elif not entry.is_file(follow_symlinks=False):
                continue  # FIFO, socket, device
        except (OSError, RuntimeError):  # vanished, unreadable
            continue
        yield Path(entry.path), problem


def _link_problem(link: Path, real_root: Path) -> str | None:
    """"" for a link to a regular file inside ``real_root``, the reason for a link
    that is not followed, None for a link to something that is no file."""
    shown_target = _readlink(link)
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):  # missing target, or a loop
        return f"{DANGLING_LINK} (its target {shown_target!r} does not exist); remove the link or restore the target"
    if not target.is_relative_to(real_root):
        return (f"{LINK_LEAVES_FOLDER} (it points to {shown_target!r}); it is never followed: copy "
                "the image into the folder instead of linking it")
    return "" if target.is_file() else None


def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as err:
        warnings.warn(
            f"Skipping folder {str(folder)!r}: cannot list it ({err.strerror}).",
            RuntimeWarning,
            stacklevel=3,
        )
        return []


# --------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------
def file_hash(path: PathLike, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (the "content hash"), read in chunks.

    Args:
        path: The file (any regular file; it need not be a valid image).
        chunk_size: Bytes read at a time.

    Returns:
        64 lower-case hex digits.

    Raises:
        ImageError: The file is missing, not a regular file or unreadable
            (an empty file is fine: it has a hash).
        ValueError: ``chunk_size`` is not an int >= 1.
    """
    chunk_size = check_int(chunk_size, "chunk_size")
    digest = hashlib.sha256()
    with open_regular_file(path, root=None, allow_empty=True) as fh:
        try:
            # A buffer no larger than the file: zeroing 1 MiB for an 8 KB image
            # cost as much as hashing it. A file that grows meanwhile is read whole.
            buffer = bytearray(max(1, min(chunk_size, os.fstat(fh.fileno()).st_size)))
            view = memoryview(buffer)
            while n := fh.readinto(buffer):
                digest.update(view[:n])
        except OSError as err:
            raise ImageError(path, f"reading failed: {err}", "io_error") from None
    return digest.hexdigest()


# --------------------------------------------------------------------------
# Opening a file
# --------------------------------------------------------------------------
def open_regular_file(path: PathLike, *, root: PathLike | None, allow_empty: bool = False) -> BinaryIO:
    """Open ``path`` for binary reading after checking it is a sane file.

    Never blocks (a FIFO is refused, not opened for reading and waited on).

    Args:
        path: The file.
        root: If given, the file (after resolving symbolic links) must lie
            inside this folder (after resolving it too).
        allow_empty: Accept a file of 0 bytes.

    Returns:
        The open file (the caller closes it, e.g. in a ``with`` block).

    Raises:
        ImageError: The file is missing, a dangling link, outside ``root``, a
            directory or not a regular file, unreadable or (unless
            ``allow_empty``) empty.
        ValueError: ``path`` is not a path at all.
    """
    try:
        given = Path(os.fspath(path))
    except TypeError:
        raise ValueError(
            f"`path` must be a str or os.PathLike. Received: path={path!r}"
        ) from None
    target = given
    if root is not None:
        root_real = Path(os.fspath(root)).resolve()
        try:
            target = given.resolve()
        except (OSError, RuntimeError):
            raise ImageError(
                given, "it is a symbolic link loop; remove or fix the link", "dangling_symlink"
            ) from None
        if not target.is_relative_to(root_real):
            raise ImageError(
                given,
                f"it resolves to {str(target)!r}, outside the allowed folder "
                f"{str(root_real)!r}; symbolic links may not lead out of it. "
                "Copy the file into the folder instead of linking it",
                "outside_root",
            )

    try:
        link_info = os.lstat(given)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(given, _MISSING_REASON, "missing") from None
    except PermissionError:
        raise ImageError(given, _PERMISSION_REASON, "permission") from None
    except (OSError, ValueError) as err:
        raise ImageError(given, f"cannot access the file ({err})", "io_error") from None
    if stat.S_ISLNK(link_info.st_mode):
        try:
            os.stat(given)
        except FileNotFoundError:
            raise ImageError(
                given,
                f"it is a dangling symbolic link (its target {_readlink(given)!r} does "
                "not exist); remove the link or restore the target",
                "dangling_symlink",
            ) from None
        except OSError as err:
            raise ImageError(
                given, f"it is a broken symbolic link ({err.strerror})", "dangling_symlink"
            ) from None

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError:
        raise ImageError(given, _MISSING_REASON, "missing") from None
    except IsADirectoryError:
        raise ImageError(given, _DIRECTORY_REASON, "directory") from None
    except PermissionError:
        raise ImageError(given, _PERMISSION_REASON, "permission") from None
    except OSError as err:
        raise ImageError(given, f"cannot open the file ({err.strerror})", "io_error") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(given, _DIRECTORY_REASON, "directory")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(
                given,
                "it is not a regular file (a FIFO, socket or device); only files can be images",
                "not_a_file",
            )
        if info.st_size == 0 and not allow_empty:
            raise ImageError(
                given,
                "the file is empty (0 bytes); the copy or download probably failed, "
                "copy it again",
                "empty",
            )
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"
