"""The journal of label moves: atomic, never-overwriting, crash-safe moves and their undo.

Every label operation (add, move, send to unknown, discard to trash, undo) is

* atomic: the file is hard-linked to its new name (which fails rather than
  overwrite) and only then unlinked from the old one; a crash in between leaves
  both names, and :meth:`Journal.recover` (run whenever a
  :class:`~imgcls.library.Library` is opened) finishes the move;
* never overwriting: a name clash gets a new name (``cat.png`` -> ``cat-1.png``);
* never deleting: discards go to ``trash/``;
* journaled in ``journal.jsonl`` and undoable.

The journal file holds one JSON object a line, each fsynced before the next
step on disk. One operation writes three lines with the same ``id``::

    {"id", "batch", "op", "src", "folder", "hash", "label", "undoes",
     "state": "begin", "time", "keep_source"}
    {... the same keys, "state": "linked", "dst", "time"}
    {... the same keys, "state": "done",   "dst", "time"}

Recovery closes an interrupted operation with one more line, ``"state":
"aborted"`` or ``"state": "done"`` with ``"recovered": true``. ``op`` is one of
``add``, ``move``, ``discard``, ``undo`` (an undo names the operation it
reverses in ``undoes``); operations of one batch (e.g. one
:meth:`~imgcls.library.Library.apply`) share ``batch`` and are undone together.

This module never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd

from imgcls.core import Workspace, check_int, file_hash, isoformat
from imgcls.core.fileio import append_jsonl, read_jsonl

__all__ = ["Journal", "JOURNAL_COLUMNS", "new_batch_id", "is_inside", "link_no_clobber"]

#: Columns of :meth:`Journal.table`.
JOURNAL_COLUMNS = ["id", "batch", "time", "op", "src", "dst", "hash", "label", "undone"]


def new_batch_id() -> str:
    """A fresh id for a batch of operations that are undone together."""
    return uuid.uuid4().hex


def is_inside(path: Path, folder: Path) -> bool:
    """True if ``path`` (symbolic links resolved) lies inside ``folder`` (resolved too)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
    shutil.copy2(src, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    dst = _link_to_free_name(tmp, folder, name)
    os.unlink(tmp)
    return dst


class Journal:
    """The journal of one workspace's label moves, and the moves themselves.

    Owns ``journal.jsonl``: every move is journaled as it happens
    (:meth:`transfer`), interrupted moves are finished or rolled back
    (:meth:`recover`) and completed ones undone (:meth:`undo`).

    Args:
        workspace: The workspace whose ``journal.jsonl`` this is.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def path(self) -> Path:
        """The journal file (``<workspace>/journal.jsonl``)."""
        return self.workspace.journal

    def _write(self, entry: dict) -> None:
        append_jsonl(self.path, entry)

    def entries(self) -> list[dict]:
        """Every line of the journal, oldest first (a torn last line from a crash is skipped)."""
        return read_jsonl(self.path)  # a torn last line from a crash: the op never began

    def table(self) -> pd.DataFrame:
        """Every completed operation: one row each, columns :data:`JOURNAL_COLUMNS`.

        ``undone`` is True for an operation a later undo reversed.
        """
        done = [e for e in self.entries() if e.get("state") == "done"]
        undone = {e["undoes"] for e in done if e.get("undoes")}
        rows = [
            {**{k: e.get(k) for k in JOURNAL_COLUMNS[:-1]}, "undone": e["id"] in undone}
            for e in done
        ]
        return pd.DataFrame(rows, columns=JOURNAL_COLUMNS)

    def transfer(self, src: Path, folder: Path, *, op: str, label: str | None, batch: str,
                 keep_source: bool = False, undoes: str | None = None, name: str | None = None) -> Path:
        """Move (or, with ``keep_source``, copy) ``src`` into ``folder``, journaled.

        Journal "begin", link into ``folder`` under a free name, journal
        "linked", unlink the source, journal "done".

        Args:
            src: The file to move.
            folder: Where it goes.
            op: ``"add"``, ``"move"``, ``"discard"`` or ``"undo"``.
            label: The class it gets (None for trash and undo).
            batch: The batch id (see :func:`new_batch_id`).
            keep_source: Copy instead of moving (adding a file from outside).
            undoes: For an undo, the id of the operation it reverses.
            name: File name wanted in ``folder`` (default: ``src``'s name).

        Returns:
            The new path.
        """
        op_id = uuid.uuid4().hex
        digest = file_hash(src)
        base = {"id": op_id, "batch": batch, "op": op, "src": str(src), "folder": str(folder),
                "hash": digest, "label": label, "undoes": undoes}
        self._write({**base, "state": "begin", "time": isoformat(), "keep_source": keep_source})
        dst = link_no_clobber(src, folder, name or src.name, copy=keep_source)
        self._write({**base, "state": "linked", "dst": str(dst), "time": isoformat()})
        if not keep_source:
            os.unlink(src)
            _fsync_dir(src.parent)
        _fsync_dir(folder)
        self._write({**base, "state": "done", "dst": str(dst), "time": isoformat()})
        return dst

    def recover(self) -> list[dict]:
        """Finish or roll back operations a crash interrupted.

        * begun, never linked: nothing happened on disk; closed as aborted.
        * linked, not done: the image exists under both names (or only the
          new one); the move is completed (the old name unlinked when both
          are the same file) and journaled as done.

        Returns:
            The operations closed now (their last state, ``"aborted"`` or ``"done"``).
        """
        state: dict[str, dict] = {}
        for e in self.entries():
            state.setdefault(e["id"], {}).update(e)
        fixed = []
        for e in state.values():
            if e.get("state") in {"done", "aborted"}:
                continue
            src = Path(e["src"])
            dst = Path(e["dst"]) if e.get("dst") else None
            if e["state"] == "begin" or dst is None or not dst.exists():
                # The link may have been made before the crash but not
                # journaled: remove that second name, keep the original.
                folder = Path(e.get("folder", ""))
                if src.exists() and folder.is_dir() and not e.get("keep_source"):
                    for other in folder.iterdir():
                        with contextlib.suppress(OSError):
                            if other != src and os.path.samefile(other, src):
                                os.unlink(other)
                self._write({**e, "state": "aborted", "time": isoformat()})
                fixed.append({**e, "state": "aborted"})
                continue
            if not e.get("keep_source") and src.exists():
                with contextlib.suppress(OSError):
                    if os.path.samefile(src, dst) or file_hash(src) == e["hash"]:
                        os.unlink(src)
            self._write({**e, "state": "done", "time": isoformat(), "recovered": True})
            fixed.append({**e, "state": "done"})
        return fixed

    def undo(self, steps: int = 1) -> list[Path]:
        """Undo the last ``steps`` operations (a batch counts as one).

        Each image goes back to where it came from (under a new name if that
        one is taken now); a copy made by an add from outside the workspace
        goes to ``trash/``. Undos are journaled too.

        Args:
            steps: How many operations (or batches) to undo.

        Returns:
            The paths the images now have.

        Raises:
            ValueError: ``steps`` is not an int >= 1, nothing is left to undo,
                or an image was moved away by hand since.
        """
        check_int(steps, "steps")
        j = self.table()
        todo = j[(~j["undone"]) & (j["op"] != "undo")]
        if todo.empty:
            raise ValueError("Nothing to undo: the journal has no operation that is not undone yet.")
        batches = list(dict.fromkeys(todo["batch"][::-1]))[:steps]
        restored = []
        ws = self.workspace
        for b in batches:
            ops = todo[todo["batch"] == b].iloc[::-1]
            undo_batch = new_batch_id()
            for e in ops.itertuples(index=False):
                dst = Path(e.dst)
                if not dst.exists():
                    raise ValueError(
                        f"Cannot undo {e.op} of {e.src!r}: {e.dst!r} is gone (moved by hand?). "
                        "Nothing was changed for this entry; check journal.jsonl."
                    )
                src = Path(e.src)
                if e.op == "add" and not is_inside(src, ws.root):
                    target, name = ws.trash, dst.name  # the original outside stays where it is
                else:
                    target, name = src.parent, src.name
                restored.append(self.transfer(dst, target, op="undo", label=None, batch=undo_batch,
                                              undoes=e.id, name=name))
        return restored
