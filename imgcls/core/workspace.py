"""Workspace: every path of an imgcls project on disk, and the defaults.

A workspace is a plain folder::

    <workspace>/
      library/<class>/<image>   labelled images; library/unknown/ for good, unnamed ones
      unlabelled/               incoming images for bulk identification (any depth)
      trash/                    discarded images (nothing is ever deleted outright)
      runs/<run_id>/            one trained model and everything about it
      bulk/                     bulk-identification results (Parquet)
      reports/                  exported figures and tables
      journal.jsonl             every label move, for audit and undo (paths relative to the root)
      flags.csv                 image-level facts keyed by content hash
      serving.sqlite            transactions and manual evaluations
      imgcls.lock               the lock every writer holds (never deleted; see imgcls.core.lock)
      imgcls-workspace.json     the workspace format version (see imgcls.core.upgrade)
      .imgcls/                  caches (hashes, thumbnails); safe to delete

Opening a workspace (:func:`open_workspace`, :func:`as_workspace` of a path)
checks its format and upgrades an older one under the lock; a workspace
written by a newer imgcls is refused instead of misread.

This module imports nothing heavier than the standard library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from imgcls.core.lock import LOCK_FILE
from imgcls.core.upgrade import FORMAT_FILE, ensure_current_format, stamp_format

__all__ = [
    "DEFAULT_CUTOFF",
    "THROWAWAY_CUTOFF",
    "UNKNOWN_CLASS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "Workspace",
    "as_workspace",
    "open_workspace",
]

#: A class enters training only with at least this many readable images.
DEFAULT_CUTOFF = 40
#: The lowered cutoff the write-up uses for a throw-away run.
THROWAWAY_CUTOFF = 35
#: Folder name, inside ``library/``, for good images nobody can name yet.
UNKNOWN_CLASS = "unknown"
#: Images with more pixels than this are refused as decompression bombs.
DEFAULT_MAX_PIXELS = 64_000_000
#: File name endings (lower case) that are treated as images.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
)


@dataclass(frozen=True)
class Workspace:
    """Every path of one project on disk.

    Args:
        root: The workspace folder. It need not exist yet; call :meth:`ensure`
            (or use :func:`open_workspace`) to create the layout.
        cutoff: Minimum number of readable images for a class to train.

    Example:
        >>> ws = open_workspace("my-project")
        >>> ws.library
        PosixPath('my-project/library')
    """

    root: Path
    cutoff: int = DEFAULT_CUTOFF
    max_pixels: int = field(default=DEFAULT_MAX_PIXELS, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(os.fspath(self.root)).expanduser())
        if isinstance(self.cutoff, bool) or not isinstance(self.cutoff, int) or self.cutoff < 1:
            raise ValueError(
                f"`cutoff` must be an int >= 1. Received: cutoff={self.cutoff!r}"
            )

    # --- folders -----------------------------------------------------------
    @property
    def library(self) -> Path:
        return self.root / "library"

    @property
    def unknown(self) -> Path:
        return self.library / UNKNOWN_CLASS

    @property
    def unlabelled(self) -> Path:
        return self.root / "unlabelled"

    @property
    def trash(self) -> Path:
        return self.root / "trash"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def bulk(self) -> Path:
        return self.root / "bulk"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".imgcls"

    # --- files -------------------------------------------------------------
    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def flags_file(self) -> Path:
        return self.root / "flags.csv"

    @property
    def serving_db(self) -> Path:
        return self.root / "serving.sqlite"

    @property
    def lock_file(self) -> Path:
        """The file every writer of the library locks (``imgcls.lock``; never deleted)."""
        return self.root / LOCK_FILE

    @property
    def format_file(self) -> Path:
        """The workspace format version (``imgcls-workspace.json``)."""
        return self.root / FORMAT_FILE

    # --- stored paths --------------------------------------------------------
    def stored_path(self, path: str | os.PathLike) -> str:
        """How a path is stored in the workspace's own files (e.g. the journal).

        A path inside the workspace becomes relative to its root, in POSIX
        form (``library/cat/a.png``), whatever form the workspace or the path
        was given in, so the record stays valid from any folder and in a copy
        of the workspace. A path outside it stays absolute.

        Args:
            path: A file or folder path (absolute, or relative to the current folder).

        Returns:
            The stored form; :meth:`path_of` turns it back into a path.
        """
        target = os.path.abspath(os.fspath(path))
        for root, p in ((os.path.abspath(self.root), target),
                        (os.path.realpath(self.root),
                         os.path.join(os.path.realpath(os.path.dirname(target)), os.path.basename(target)))):
            if p == root:
                return "."
            if p.startswith(root.rstrip(os.sep) + os.sep):
                return os.path.relpath(p, root).replace(os.sep, "/")
        return target

    def path_of(self, stored: str) -> Path:
        """The path a stored path (:meth:`stored_path`) names in this workspace."""
        return Path(stored) if os.path.isabs(stored) else self.root / stored

    @property
    def production_file(self) -> Path:
        """Pointer to the production run (written only by the deploy gate)."""
        return self.runs / "production.json"

    @property
    def sample_labels_file(self) -> Path:
        """Hidden true labels of the sample's unlabelled pool (scoring only)."""
        return self.root / "unlabelled_truth.csv"

    def folders(self) -> tuple[Path, ...]:
        return (
            self.library,
            self.unknown,
            self.unlabelled,
            self.trash,
            self.runs,
            self.bulk,
            self.reports,
            self.cache_dir,
        )

    def ensure(self) -> "Workspace":
        """Create every folder of the layout that does not exist yet.

        A brand-new workspace (no folder, or an empty one) is stamped with the
        current format; the lock file is created when missing.
        """
        fresh = False
        if not self.format_file.exists():
            try:
                with os.scandir(self.root) as entries:
                    fresh = next(entries, None) is None
            except FileNotFoundError:
                fresh = True
        for folder in self.folders():
            folder.mkdir(parents=True, exist_ok=True)
        if fresh:
            stamp_format(self.root)
        if not self.lock_file.exists():
            try:
                self.lock_file.touch()
            except OSError:  # a read-only workspace: readers need no lock; a writer will say why
                pass
        return self

    def with_cutoff(self, cutoff: int) -> "Workspace":
        """The same workspace with another cutoff (e.g. for a throw-away run)."""
        return Workspace(self.root, cutoff=cutoff, max_pixels=self.max_pixels)


def open_workspace(
    root: str | os.PathLike | Workspace, *, cutoff: int = DEFAULT_CUTOFF, create: bool = True
) -> Workspace:
    """Open (and by default create) the workspace at ``root``.

    The workspace's format is checked (and an older one upgraded, under the
    workspace lock; see :mod:`imgcls.core.upgrade`).

    Args:
        root: The folder, or an existing :class:`Workspace` (returned as is).
        cutoff: Minimum images per class for training.
        create: Create the folder layout if it is missing. With ``False`` a
            missing folder raises ``FileNotFoundError``.

    Raises:
        FileNotFoundError: ``create`` is False and there is no folder.
        WorkspaceFormatError: The workspace was written by a newer imgcls.
    """
    if isinstance(root, Workspace):
        if create:
            root.ensure()
            ensure_current_format(root)
        return root
    ws = Workspace(Path(root), cutoff=cutoff)
    if create:
        ws.ensure()
        ensure_current_format(ws)
        return ws
    if not ws.root.is_dir():
        raise FileNotFoundError(
            f"No workspace at {str(ws.root)!r}. Expected a folder with a library/ "
            "inside. Create it with `imgcls sample --workspace PATH` or "
            "`open_workspace(PATH, create=True)`."
        )
    ensure_current_format(ws)
    return ws


def as_workspace(workspace: "Workspace | str | os.PathLike", *, must_exist: bool = True) -> Workspace:
    """The :class:`Workspace` an API argument names; nothing is created.

    Args:
        workspace: A :class:`Workspace` (returned as is) or a folder path.
        must_exist: Refuse a path with no folder (``FileNotFoundError``, as
            :func:`open_workspace` with ``create=False``).

    Raises:
        ValueError: ``workspace`` is neither.
        FileNotFoundError: ``must_exist`` and the folder is missing.
    """
    if isinstance(workspace, Workspace):
        return workspace
    if isinstance(workspace, (str, os.PathLike)):
        return open_workspace(workspace, create=False) if must_exist else Workspace(Path(workspace))
    raise ValueError(
        f"`workspace` must be a Workspace or a workspace folder path. Received: workspace={workspace!r}"
    )

