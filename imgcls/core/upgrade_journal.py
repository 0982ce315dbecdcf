"""Workspace format 1: the journal's paths become relative to the workspace root.

Before format 1, ``journal.jsonl`` stored every path as it was given: absolute
(``/home/me/zoo/library/cat/a.png``) or relative to the folder the process
ran in (``demo-workspace/library/cat/a.png``). Such a journal breaks as soon
as the workspace is used from another folder or copied: undo says "is gone",
or worse, moves files inside the original workspace.

From format 1 on, a path inside the workspace is stored relative to its root
in POSIX form (``library/cat/a.png``); only a path outside it (the source of
an image added from elsewhere) stays absolute. This step rewrites an old
journal that way:

1. The roots the old entries were written against are read off the entries
   themselves: a move or an add wrote ``folder = <root>/library/<label>``, a
   discard ``folder = <root>/trash``, so each gives the root string used then
   (absolute or relative, e.g. ``demo-workspace``).
2. Each path that starts with one of those roots becomes relative to it.
3. Otherwise an absolute path inside the current root becomes relative to it;
   one that holds the layout (``.../library/<class>/<file>``, ``.../trash/..``,
   ``.../unlabelled/..``) is cut at the last such folder (a copied workspace).
   The current working directory is never used to interpret a path.
4. The source of an add from outside the workspace stays as it is (marked
   ``src_outside`` when it was relative, so undo sends the copy to ``trash/``).

The old journal is kept beside the new one as ``journal.before-format-1.jsonl``.
The step is idempotent (a relative path stays as it is), so a crash half-way
is repaired by running it again. It runs under the workspace lock (see
:mod:`imgcls.core.upgrade`).

This module imports only the standard library.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.core.workspace import Workspace

__all__ = ["relative_journal_paths", "JOURNAL_BACKUP"]

#: Where the journal as it was before the rewrite is kept.
JOURNAL_BACKUP = "journal.before-format-1.jsonl"
#: Top-level folders of a workspace between which the journal moves files.
_LAYOUT = ("library", "trash", "unlabelled")
_PATH_KEYS = ("src", "dst", "folder")


def _known_roots(entries: list[dict]) -> list[str]:
    """The root strings the entries were written against, longest first."""
    roots: set[str] = set()
    for e in entries:
        folder, op = e.get("folder"), e.get("op")
        if not isinstance(folder, str):
            continue
        folder = folder.rstrip("/")
        if op in ("move", "add") and isinstance(e.get("label"), str):
            tail = f"library/{e['label']}"
        elif op == "discard":
            tail = "trash"
        else:
            continue
        if folder == tail:
            roots.add("")
        elif folder.endswith("/" + tail):
            roots.add(folder[: -len(tail) - 1] or "/")
    return sorted(roots, key=len, reverse=True)


def _clean(rel: str) -> str | None:
    """``rel`` as a clean POSIX path inside the root, or None if it climbs out."""
    parts = [p for p in PurePosixPath(rel).parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _by_layout(path: str) -> str | None:
    """Cut an old path at the last layout folder that can hold it, or None."""
    parts = PurePosixPath(path).parts
    for i in range(len(parts) - 1, -1, -1):
        name, after = parts[i], len(parts) - i - 1
        if (name == "library" and after >= 2) or (name in ("trash", "unlabelled") and after >= 1):
            return _clean("/".join(parts[i:]))
    return None


def _migrate_path(text: str, roots: list[str], ws: "Workspace", *, outside_source: bool,
                  inside_source: bool) -> tuple[str, bool]:
    """(the stored form of an old path, whether it names a file outside the workspace)."""
    absolute = os.path.isabs(text)
    for root in roots:
        if root == "":
            if absolute:
                continue
            rel = _clean(text)
            if rel is not None and (rel.split("/")[0] in _LAYOUT or inside_source):
                return rel, False
        elif root == "/" and absolute:
            rel = _clean(text[1:])
            if rel is not None:
                return rel, False
        elif text.startswith(root + "/"):
            rel = _clean(text[len(root) + 1:])
            if rel is not None:
                return rel, False
    if absolute:
        stored = ws.stored_path(text)
        if not os.path.isabs(stored):
            return stored, False
        if outside_source:
            return text, True  # an added file from elsewhere: stays absolute
    elif outside_source:
        return text, True
    rel = _by_layout(text)
    if rel is not None:
        return rel, False
    return text, absolute


def relative_journal_paths(ws: "Workspace") -> str:
    """Rewrite ``journal.jsonl`` with paths relative to the workspace root (format 1).

    Args:
        ws: The workspace (its lock is held by the caller).

    Returns:
        What was done, in words (for the upgrade record).
    """
    path = ws.journal
    if not path.is_file():
        return "no journal yet"
    lines = path.read_text(encoding="utf-8").splitlines()
    entries: list[dict | str] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entries.append(line)  # a torn line from a crash: kept as it was
            continue
        entries.append(entry if isinstance(entry, dict) else line)
    parsed = [e for e in entries if isinstance(e, dict)]
    roots = _known_roots(parsed)
    changed = unresolved = 0
    for e in parsed:
        keep_source = bool(e.get("keep_source"))
        for key in _PATH_KEYS:
            value = e.get(key)
            if not isinstance(value, str) or not value:
                continue
            is_src, added = key == "src", e.get("op") == "add"
            outside_source = is_src and added and keep_source
            new, outside = _migrate_path(value, roots, ws, outside_source=outside_source,
                                         inside_source=is_src and added and not keep_source)
            if outside and not outside_source:
                unresolved += 1
            elif outside and not os.path.isabs(new):
                e["src_outside"] = True
            if new != value:
                e[key] = new
                changed += 1
    if not changed and not any(e.get("src_outside") for e in parsed):
        return f"{len(parsed)} journal entries already relative"
    backup = path.with_name(JOURNAL_BACKUP)
    if not backup.exists():
        shutil.copy2(path, backup)
    text = "".join(
        (e if isinstance(e, str) else json.dumps(e, ensure_ascii=False)) + "\n" for e in entries
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    note = f"{changed} journal paths made relative to the workspace root (old journal kept as {JOURNAL_BACKUP})"
    if unresolved:
        note += f"; {unresolved} paths outside the workspace left as they were"
    return note
