"""Label operations of the library: add, move, unknown, discard, batches, undo, class rename and merge.

Every operation here changes the library, so each holds the workspace lock
(:mod:`imgcls.core.lock`) for its whole length: sources are checked, class
names validated and files moved while no other writer can act. A batch
(:meth:`LabelOperations.apply`, :meth:`LabelOperations.move_many`, one
:meth:`LabelOperations.add`, a class rename or merge) is one journal batch,
undone in one step. Moves themselves are the journal's
(:mod:`imgcls.library.journal`).

:class:`LabelOperations` is the half of :class:`~imgcls.library.Library`
that writes; the other half (catalog, counts, flags, duplicates) is in
:mod:`imgcls.library.catalog`.

This module never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from imgcls.core import UNKNOWN_CLASS, ImageError, read_image
from imgcls.library.fileops import is_inside
from imgcls.library.journal import new_batch_id
from imgcls.library.names import validate_class_name
from imgcls.library.scan import class_folders

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.core import Workspace
    from imgcls.core.lock import WorkspaceLock
    from imgcls.library.journal import Journal

__all__ = ["LabelOperations"]

_ACTIONS = ("label", "unknown", "discard", "skip")


class LabelOperations:
    """The library's writing half (mixed into :class:`~imgcls.library.Library`).

    Expects ``workspace``, ``_journal``, ``_lock``, ``_catalog`` and
    ``recovered_`` on the instance.
    """

    workspace: "Workspace"
    _journal: "Journal"
    _lock: "WorkspaceLock"
    _catalog: pd.DataFrame | None
    recovered_: list[dict]

    # ------------------------------------------------------------ the lock
    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the workspace lock for a ``with`` block of changes (reentrant).

        Waits up to the library's ``lock_timeout`` for another writer. When
        this is the outermost hold and the journal's last operation was left
        open by a process that died, it is settled first.

        Raises:
            WorkspaceLockedError: Another process held the lock longer than the timeout.

        Example:
            >>> with lib.writing():       # several changes, no writer in between
            ...     lib.move(a, "lynx"); lib.set_flags(b, staged=True)
        """
        self._lock.acquire()
        try:
            if self._lock.depth == 1 and self._journal.needs_recovery():
                self.recovered_ = self.recovered_ + self._journal.recover()  # also ends a torn line
            yield
        finally:
            self._lock.release()

    # ------------------------------------------------------------- helpers
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

    def _check_readable(self, src: Path) -> None:
        try:
            read_image(src, max_pixels=self.workspace.max_pixels)
        except ImageError as exc:
            raise ValueError(f"Not adding {str(src)!r}: {exc.reason}. Only readable images enter the library.") from None

    def _label(self, label: str) -> str:
        """A target class, validated against the classes already in the library."""
        if isinstance(label, str) and label.strip() == UNKNOWN_CLASS:
            return UNKNOWN_CLASS
        real, linked = class_folders(self.workspace)
        return validate_class_name(label, existing=real + linked)

    def _transfer(self, src: Path, folder: Path, **kwargs) -> Path:
        dst = self._journal.transfer(src, folder, **kwargs)
        self._catalog = None
        return dst

    # ---------------------------------------------------------- operations
    def journal(self) -> pd.DataFrame:
        """Every label operation ever made, for audit (reading: no lock).

        Returns:
            One row per completed operation: [id, batch, time, op, src, dst,
            hash, label, undone] (:data:`~imgcls.library.JOURNAL_COLUMNS`).
        """
        return self._journal.table()

    def journal_batches(self) -> pd.DataFrame:
        """The journal by batch: one row per batch (one :meth:`undo` step), oldest first (reading: no lock).

        Returns:
            DataFrame [batch, time, op, n, labels, undone] (:data:`~imgcls.library.BATCH_COLUMNS`).
        """
        return self._journal.batches()

    def add(self, paths: Iterable[str | os.PathLike] | str | os.PathLike, label: str, *,
            move: bool = False, batch: str | None = None) -> list[Path]:
        """Add images to class ``label`` (a new name creates its folder), as one batch.

        Args:
            paths: Image files anywhere (copied) or inside the workspace's
                ``unlabelled/`` (moved with ``move=True``).
            label: Target class; validated.
            move: Move instead of copy. Only for files inside the workspace.
            batch: Batch id to undo it together with others (default: its own).

        Returns:
            The new paths, in order.
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        ws = self.workspace
        with self.writing():
            label = self._label(label)
            batch = batch or new_batch_id()
            out = []
            for p in paths:
                src = self._check_source(p, within=(ws.root,) if move else ())
                self._check_readable(src)
                out.append(self._transfer(src, ws.library / label, op="add", label=label,
                                          batch=batch, keep_source=not move))
        return out

    def move(self, path: str | os.PathLike, label: str, *, batch: str | None = None) -> Path:
        """Move a library image to class ``label`` (a new name creates its folder).

        Args:
            path: An image in ``library/``, ``unlabelled/`` or ``trash/``
                (absolute, or relative to the current folder, the workspace or
                ``library/``).
            label: Target class; validated (a new name that looks like an
                existing class, e.g. ``cat`` beside ``Cat``, is refused).
            batch: Batch id to undo it together with others (default: its own).

        Returns:
            The new path (a free name if the old one is taken there).
        """
        ws = self.workspace
        with self.writing():
            label = self._label(label)
            src = self._check_source(path, within=(ws.library, ws.unlabelled, ws.trash))
            return self._transfer(src, ws.library / label, op="move", label=label,
                                  batch=batch or new_batch_id())

    def move_many(self, paths: Iterable[str | os.PathLike], label: str) -> list[Path]:
        """Move several images to ``label`` (or ``"trash"``) as one batch, all or nothing up front.

        Every source is checked before anything moves: if one is missing or
        not movable, nothing is moved and the error names every such path.
        The moves share one batch, so one :meth:`undo` reverses them all.

        Args:
            paths: Images in ``library/``, ``unlabelled/`` or ``trash/`` (as for :meth:`move`).
            label: Target class, ``"unknown"``, or ``"trash"`` to discard them.

        Returns:
            The new paths, in order.

        Raises:
            FileNotFoundError: Some sources do not exist (nothing was moved).
            ValueError: Some sources cannot be moved, or ``label`` is invalid (nothing was moved).
        """
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        ws = self.workspace
        discard = label == "trash"
        within = (ws.library, ws.unlabelled) if discard else (ws.library, ws.unlabelled, ws.trash)
        with self.writing():
            target = None if discard else self._label(label)
            sources, missing, refused = [], [], []
            for p in paths:
                try:
                    sources.append(self._check_source(p, within=within))
                except FileNotFoundError:
                    missing.append(os.fspath(p))
                except ValueError as exc:
                    refused.append(str(exc))
            if missing:
                raise FileNotFoundError(
                    f"Nothing was moved: {len(missing)} of {len(paths)} images do not exist: "
                    f"{', '.join(repr(m) for m in missing)}. Check the paths (absolute, or relative to "
                    "the current folder, the workspace or library/)."
                )
            if refused:
                raise ValueError(f"Nothing was moved: {' '.join(refused)}")
            if len(set(sources)) != len(sources):
                raise ValueError("Nothing was moved: the same image is named twice.")
            batch = new_batch_id()
            if discard:
                return [self._transfer(s, ws.trash, op="discard", label=None, batch=batch) for s in sources]
            return [self._transfer(s, ws.library / target, op="move", label=target, batch=batch)
                    for s in sources]

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
        with self.writing():
            src = self._check_source(path, within=(ws.library, ws.unlabelled))
            return self._transfer(src, ws.trash, op="discard", label=None, batch=batch or new_batch_id())

    def apply(self, decisions: pd.DataFrame) -> pd.DataFrame:
        """Apply many label decisions as one undoable batch (under one hold of the lock).

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
        with self.writing():
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
                        raise ValueError(f"unknown action {action!r}; expected {', '.join(_ACTIONS)}")
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
        """Undo the last ``steps`` operations (a batch from :meth:`apply`,
        :meth:`add`, :meth:`move_many` or a class rename or merge counts as
        one). Each image goes back to where it came from (under a new name if
        that one is taken now); a copy made by :meth:`add` goes to ``trash/``.
        Undos are journaled too.

        Args:
            steps: How many operations (or batches) to undo.

        Returns:
            The paths the images now have.
        """
        try:
            with self.writing():
                return self._journal.undo(steps)
        finally:
            self._catalog = None

    # ------------------------------------------------------------- classes
    def _class_files(self, name: str) -> list[Path]:
        """Every file of a class folder (any depth), refusing links and special files."""
        folder = self.workspace.library / name
        files, odd = [], []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            for d in list(dirnames):
                if os.path.islink(os.path.join(dirpath, d)):
                    odd.append(os.path.join(dirpath, d))
            for f in filenames:
                p = Path(dirpath) / f
                (files if p.is_file() and not p.is_symlink() else odd).append(p)
        if odd:
            raise ValueError(
                f"Class {name!r} holds symbolic links or special files that cannot be moved: "
                f"{', '.join(repr(str(p)) for p in odd[:5])}{' ...' if len(odd) > 5 else ''}. "
                "Replace them by real files (or remove them), then try again. Nothing was moved."
            )
        return sorted(files)

    def _existing_class(self, name: str, what: str) -> str:
        real, linked = class_folders(self.workspace)
        if isinstance(name, str) and name in linked:
            raise ValueError(f"`{what}` {name!r} is a symbolic link to a folder; imgcls never writes through links.")
        if not isinstance(name, str) or name not in real:
            raise ValueError(
                f"`{what}` must be an existing class folder in library/. Received: {what}={name!r}; "
                f"classes: {', '.join(real) or 'none'}."
            )
        return name

    def _move_class(self, src: str, target: str, *, note: str) -> list[Path]:
        ws = self.workspace
        folder = ws.library / src
        files = self._class_files(src)
        batch = new_batch_id()
        out = []
        for f in files:
            rel_parent = f.parent.relative_to(folder)
            out.append(self._transfer(f, ws.library / target / rel_parent, op="move", label=target,
                                      batch=batch, note=note))
        for dirpath, _, _ in sorted(os.walk(folder), key=lambda t: len(t[0]), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # only empty folders go; nothing else is ever removed
        if src == UNKNOWN_CLASS:
            ws.unknown.mkdir(exist_ok=True)
        return out

    def rename_class(self, old: str, new: str) -> list[Path]:
        """Rename a class: every file of ``library/<old>/`` moves to ``library/<new>/``, as one batch.

        Journaled and undone in one :meth:`undo`. Flags follow the images
        (they are keyed by content). Use it to mend look-alike classes, e.g.
        ``rename_class("Cat", "Felis catus")``, or a case-only rename
        ``rename_class("CAT", "cat")``.

        Args:
            old: An existing class folder.
            new: The new name; validated, and it must not exist yet (or look
                like another existing class): to combine two classes use
                :meth:`merge_class`.

        Returns:
            The new paths of the class's files.

        Raises:
            ValueError: ``old`` is not a class folder (or is ``unknown``), ``new``
                is invalid or taken, or the folder holds links (nothing moved then).
        """
        with self.writing():
            old = self._existing_class(old, "old")
            if old == UNKNOWN_CLASS:
                raise ValueError("`old` must be a class, not 'unknown'. To give the unknown images a class, "
                                 "move them (Library.move) or merge_class('unknown', into=...).")
            real, linked = class_folders(self.workspace)
            others = [n for n in real + linked if n != old]
            new_name = validate_class_name(new, existing=others)
            if new_name == old:
                raise ValueError(f"`new` is the same as `old` ({old!r}): nothing to rename.")
            if new_name in others:
                raise ValueError(
                    f"`new` {new_name!r} is an existing class. To combine the two, use "
                    f"merge_class({old!r}, into={new_name!r}) (imgcls merge-class)."
                )
            return self._move_class(old, new_name, note="rename_class")

    def merge_class(self, src: str, *, into: str) -> list[Path]:
        """Merge a class into another: every file of ``library/<src>/`` moves to ``library/<into>/``, as one batch.

        Name clashes get new names (nothing is overwritten); the emptied
        folder is removed. Journaled and undone in one :meth:`undo`. Use it to
        mend look-alike classes: ``merge_class("Cat", into="cat")``.

        Args:
            src: The class whose images move (an existing class folder).
            into: The class that receives them (an existing class folder, or ``"unknown"``).

        Returns:
            The new paths of the moved files.

        Raises:
            ValueError: Either is not a class folder, they are the same, or
                ``src`` holds links (nothing moved then).
        """
        with self.writing():
            src = self._existing_class(src, "src")
            into = self._existing_class(into, "into")
            if src == into:
                raise ValueError(f"`src` and `into` are the same class ({src!r}): nothing to merge.")
            return self._move_class(src, into, note="merge_class")
