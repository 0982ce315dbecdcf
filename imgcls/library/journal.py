"""The journal of label moves: atomic, never-overwriting, crash-safe moves and their undo.

Every label operation (add, move, send to unknown, discard to trash, undo,
class rename and merge) is

* atomic: the file is hard-linked to its new name (which fails rather than
  overwrite) and only then unlinked from the old one; a crash in between leaves
  both names, and :meth:`Journal.recover` finishes the move;
* never overwriting: a name clash gets a new name (``cat.png`` -> ``cat-1.png``);
* never deleting: discards go to ``trash/``;
* journaled in ``journal.jsonl`` and undoable;
* done under the workspace lock (:mod:`imgcls.core.lock`), held by the
  :class:`~imgcls.library.Library` method that calls :meth:`Journal.transfer`,
  :meth:`Journal.recover` or :meth:`Journal.undo`. Since only a lock holder
  writes the journal, an operation left open in it belongs to a process that
  died: recovery can never mistake a live process's move for a crashed one.

The journal file holds one JSON object a line, each fsynced before the next
step on disk. One operation writes three lines with the same ``id``::

    {"id", "batch", "op", "src", "folder", "hash", "label", "undoes",
     "state": "begin", "time", "keep_source"}
    {... the same keys, "state": "linked", "dst", "time"}
    {... the same keys, "state": "done",   "dst", "time"}

A failed link (a name the file system refuses, a full disk) closes the
operation with ``"state": "aborted"`` at once, so it never blocks the next
open. Recovery closes an interrupted operation with one more line,
``"aborted"`` or ``"done"`` with ``"recovered": true``. ``op`` is one of
``add``, ``move``, ``discard``, ``undo`` (an undo names the operation it
reverses in ``undoes``); operations of one batch (e.g. one
:meth:`~imgcls.library.Library.apply`, one ``imgcls move a b c``) share
``batch`` and are undone together.

**Paths** (``src``, ``folder``, ``dst``) are stored relative to the
workspace root in POSIX form (:meth:`imgcls.core.Workspace.stored_path`),
so undo and recovery work from any folder and in a copy of the workspace,
and touch only that workspace. Only the source of an image added from
outside the workspace is stored absolute. (Older journals are rewritten so
on open: :mod:`imgcls.core.upgrade_journal`.)

This module never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import warnings
from pathlib import Path

import pandas as pd

from imgcls.core import UNKNOWN_CLASS, Workspace, check_int, file_hash, isoformat
from imgcls.core.fileio import append_jsonl, read_jsonl
from imgcls.library.fileops import check_write_folder, fsync_dir, link_no_clobber, name_fits

__all__ = ["Journal", "JOURNAL_COLUMNS", "BATCH_COLUMNS", "new_batch_id"]

#: Columns of :meth:`Journal.table`.
JOURNAL_COLUMNS = ["id", "batch", "time", "op", "src", "dst", "hash", "label", "undone"]
#: Columns of :meth:`Journal.batches`.
BATCH_COLUMNS = ["batch", "time", "op", "n", "labels", "undone"]
#: Notes of operations that belong to a class rename or merge (undo tidies their emptied folders).
_CLASS_NOTES = ("rename_class", "merge_class")
_TAIL_BYTES = 64 * 1024


def new_batch_id() -> str:
    """A fresh id for a batch of operations that are undone together."""
    return uuid.uuid4().hex


class Journal:
    """The journal of one workspace's label moves, and the moves themselves.

    Owns ``journal.jsonl``: every move is journaled as it happens
    (:meth:`transfer`), interrupted moves are finished or rolled back
    (:meth:`recover`) and completed ones undone (:meth:`undo`). The caller
    holds the workspace lock around each of these.

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
        return [e for e in read_jsonl(self.path) if isinstance(e, dict)]

    def _operations(self) -> list[dict]:
        """One dict per operation id (its lines merged, the last state winning), oldest first."""
        state: dict[str, dict] = {}
        for e in self.entries():
            if "id" in e:
                state.setdefault(e["id"], {}).update(e)
        return list(state.values())

    def _done(self) -> list[dict]:
        """The completed operations, with ``undone`` set for those a later undo reversed."""
        done = [e for e in self._operations() if e.get("state") == "done"]
        undone = {e["undoes"] for e in done if e.get("undoes")}
        return [{**e, "undone": e["id"] in undone} for e in done]

    def _shown(self, stored) -> str | None:
        return None if not isinstance(stored, str) else str(self.workspace.path_of(stored))

    def table(self) -> pd.DataFrame:
        """Every completed operation: one row each, columns :data:`JOURNAL_COLUMNS`.

        ``src`` and ``dst`` are paths in this workspace (its root joined to
        the stored relative path). ``undone`` is True for an operation a later
        undo reversed.
        """
        rows = [
            {**{k: e.get(k) for k in JOURNAL_COLUMNS[:-1]}, "src": self._shown(e.get("src")),
             "dst": self._shown(e.get("dst")), "undone": e["undone"]}
            for e in self._done()
        ]
        return pd.DataFrame(rows, columns=JOURNAL_COLUMNS)

    def batches(self) -> pd.DataFrame:
        """One row per batch of completed operations (what one :meth:`undo` step reverses), oldest first.

        Returns:
            DataFrame :data:`BATCH_COLUMNS`: ``batch`` id, ``time`` of its first
            operation, ``op`` (its kinds, e.g. ``"move"``), ``n`` operations,
            ``labels`` they gave, and ``undone`` (True when every one is undone;
            None for a batch of undos, which is never undone itself).
        """
        rows = {}
        for e in self._done():
            b = rows.setdefault(e["batch"], {"batch": e["batch"], "time": e.get("time"), "op": [],
                                             "n": 0, "labels": [], "undone": True})
            b["n"] += 1
            if e.get("op") not in b["op"]:
                b["op"].append(e.get("op"))
            if e.get("label") and e["label"] not in b["labels"]:
                b["labels"].append(e["label"])
            b["undone"] = b["undone"] and e["undone"]
        out = [{**b, "op": "/".join(map(str, b["op"])), "labels": ", ".join(b["labels"]),
                "undone": None if b["op"] == ["undo"] else b["undone"]} for b in rows.values()]
        return pd.DataFrame(out, columns=BATCH_COLUMNS)

    # ---------------------------------------------------------------- moving
    def transfer(self, src: Path, folder: Path, *, op: str, label: str | None, batch: str,
                 keep_source: bool = False, undoes: str | None = None, name: str | None = None,
                 note: str | None = None) -> Path:
        """Move (or, with ``keep_source``, copy) ``src`` into ``folder``, journaled.

        Check that both folders may be written (no symbolic link on the way)
        and that the name fits, journal "begin", link into ``folder`` under a
        free name, journal "linked", unlink the source, journal "done". A link
        that fails journals "aborted" and raises; nothing has changed then.

        Args:
            src: The file to move.
            folder: Where it goes.
            op: ``"add"``, ``"move"``, ``"discard"`` or ``"undo"``.
            label: The class it gets (None for trash and undo).
            batch: The batch id (see :func:`new_batch_id`).
            keep_source: Copy instead of moving (adding a file from outside).
            undoes: For an undo, the id of the operation it reverses.
            name: File name wanted in ``folder`` (default: ``src``'s name).
            note: Why, when part of a larger operation (``"rename_class"``, ``"merge_class"``).

        Returns:
            The new path.

        Raises:
            ValueError: ``folder`` (or the source's folder) is reached through a
                symbolic link or lies outside the workspace, or the name is too long.
            OSError: The file system refused the link (journaled as aborted).
        """
        ws = self.workspace
        name = name or src.name
        check_write_folder(ws, folder)
        if not keep_source:
            check_write_folder(ws, src.parent)
        if not name_fits(name) or not name_fits(folder.name):
            raise ValueError(
                f"Cannot move {str(src)!r} into {str(folder)!r}: a file or folder name would be longer "
                "than 255 bytes, which file systems refuse. Rename the file first."
            )
        op_id = uuid.uuid4().hex
        digest = file_hash(src)
        base = {"id": op_id, "batch": batch, "op": op, "src": ws.stored_path(src),
                "folder": ws.stored_path(folder), "hash": digest, "label": label, "undoes": undoes}
        if note:
            base["note"] = note
        self._write({**base, "state": "begin", "time": isoformat(), "keep_source": keep_source})
        try:
            dst = link_no_clobber(src, folder, name, copy=keep_source)
        except OSError as err:
            self._write({**base, "state": "aborted", "time": isoformat(), "error": err.strerror or str(err)})
            raise
        self._write({**base, "state": "linked", "dst": ws.stored_path(dst), "time": isoformat()})
        if not keep_source:
            try:
                os.unlink(src)
            except OSError as err:  # roll back: the new name goes, the old one stays
                with contextlib.suppress(OSError):
                    if os.path.samefile(src, dst):
                        os.unlink(dst)
                self._write({**base, "state": "aborted", "time": isoformat(), "error": err.strerror or str(err)})
                raise
            fsync_dir(src.parent)
        fsync_dir(folder)
        self._write({**base, "state": "done", "dst": ws.stored_path(dst), "time": isoformat()})
        return dst

    # -------------------------------------------------------------- recovery
    def end_torn_line(self) -> None:
        """End a line a crash tore mid-append, so the next entry starts on a line of its own.

        (The torn line is skipped when the journal is read; without this, the
        next entry would be glued to it and skipped too.) The caller holds the lock.
        """
        try:
            with open(self.path, "rb+") as fh:
                if fh.seek(0, os.SEEK_END) == 0:
                    return
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        except FileNotFoundError:
            return

    def needs_recovery(self) -> bool:
        """Whether the journal's last operation was left open (a cheap look at its end).

        Every operation is closed before its writer lets go of the workspace
        lock, so only the last one can be open, and only if its process died.
        """
        try:
            with open(self.path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - _TAIL_BYTES))
                tail = fh.read()
        except FileNotFoundError:
            return False
        if tail and not tail.endswith(b"\n"):
            return True  # a torn line: a writer died mid-append
        for line in reversed(tail.splitlines()):
            try:
                last = json.loads(line)
            except ValueError:
                continue  # blank, or a torn line already ended
            return not isinstance(last, dict) or last.get("state") not in ("done", "aborted")
        return False

    def recover(self) -> list[dict]:
        """Finish or roll back operations a crash interrupted (the caller holds the lock).

        * begun, never linked: nothing happened on disk, or the link was made
          but not journaled: that second name is removed; closed as aborted.
        * linked, not done: the image exists under both names (or only the
          new one); the move is completed (the old name unlinked when both
          are the same file) and journaled as done.

        An operation that cannot be settled now (e.g. a folder it cannot read)
        is left open with a warning; it never stops the others, nor an open.

        Returns:
            The operations closed now (their last state, ``"aborted"`` or ``"done"``).
        """
        self.end_torn_line()
        fixed = []
        for e in self._operations():
            if e.get("state") in {"done", "aborted"}:
                continue
            try:
                fixed.append(self._settle(e))
            except (OSError, ValueError) as err:
                warnings.warn(
                    f"Could not settle the interrupted {e.get('op')} of {e.get('src')!r} "
                    f"(journal id {e.get('id')}): {err}. It stays open in journal.jsonl and is tried "
                    "again next time.",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return fixed

    def _settle(self, e: dict) -> dict:
        ws = self.workspace
        src = ws.path_of(e["src"])
        dst = ws.path_of(e["dst"]) if e.get("dst") else None
        if e["state"] == "begin" or dst is None or not dst.exists():
            # The link may have been made before the crash but not
            # journaled: remove that second name, keep the original.
            folder = ws.path_of(e.get("folder") or ".")
            if (src.exists() and not e.get("keep_source") and not os.path.islink(folder)
                    and folder.is_dir()):
                for other in folder.iterdir():
                    with contextlib.suppress(OSError):
                        if other != src and os.path.samefile(other, src):
                            os.unlink(other)
            self._write({**e, "state": "aborted", "time": isoformat()})
            return {**e, "state": "aborted"}
        if not e.get("keep_source") and src.exists():
            with contextlib.suppress(OSError):
                if os.path.samefile(src, dst) or file_hash(src) == e["hash"]:
                    os.unlink(src)
        self._write({**e, "state": "done", "time": isoformat(), "recovered": True})
        return {**e, "state": "done"}

    # ------------------------------------------------------------------ undo
    def undo(self, steps: int = 1) -> list[Path]:
        """Undo the last ``steps`` operations (a batch counts as one; the caller holds the lock).

        Each image goes back to where it came from (under a new name if that
        one is taken now); a copy made by an add from outside the workspace
        goes to ``trash/``. Undos are journaled too. Every image of a batch
        is checked before any is moved back.

        Args:
            steps: How many operations (or batches) to undo.

        Returns:
            The paths the images now have.

        Raises:
            ValueError: ``steps`` is not an int >= 1, nothing is left to undo,
                or an image was moved away by hand since.
        """
        check_int(steps, "steps")
        todo = [e for e in self._done() if not e["undone"] and e.get("op") != "undo"]
        if not todo:
            raise ValueError("Nothing to undo: the journal has no operation that is not undone yet.")
        batches = list(dict.fromkeys(e["batch"] for e in reversed(todo)))[:steps]
        restored = []
        ws = self.workspace
        for b in batches:
            ops = [e for e in reversed(todo) if e["batch"] == b]
            for e in ops:
                if not ws.path_of(e["dst"]).exists():
                    raise ValueError(
                        f"Cannot undo {e['op']} of {self._shown(e['src'])!r}: {self._shown(e['dst'])!r} is "
                        "gone (moved by hand?). Nothing was changed for this batch; check journal.jsonl."
                    )
            undo_batch = new_batch_id()
            emptied: set[Path] = set()
            for e in ops:
                dst, src = ws.path_of(e["dst"]), ws.path_of(e["src"])
                if e["op"] == "add" and (os.path.isabs(e["src"]) or e.get("src_outside")):
                    target, name = ws.trash, dst.name  # the original outside stays where it is
                else:
                    target, name = src.parent, src.name
                restored.append(self.transfer(dst, target, op="undo", label=None, batch=undo_batch,
                                              undoes=e["id"], name=name, note=e.get("note")))
                if e.get("note") in _CLASS_NOTES:
                    emptied.add(dst.parent)
            for folder in emptied:  # a class an undone rename or merge created, now empty
                if folder.parent == ws.library and folder.name != UNKNOWN_CLASS:
                    with contextlib.suppress(OSError):
                        folder.rmdir()
        return restored
