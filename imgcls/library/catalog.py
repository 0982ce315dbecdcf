"""The labelled image library: catalog, counts, cutoff, flags, duplicates and
journaled label moves with undo.

Folder-per-class is the truth for labels: ``library/<class>/<image>``. The
folder ``library/unknown/`` holds good images nobody can name yet; it is a real
folder but never trains as a class.

Facts about an image that must survive moves and renames (staged or synthetic,
a needed 90-degree turn, benchmark membership) are keyed by the image's content
hash in ``flags.csv``.

Every label operation (add, move, send to unknown, discard to trash, undo) is

* atomic: the file is hard-linked to its new name (which fails rather than
  overwrite) and only then unlinked from the old one; a crash in between leaves
  both names, and the next :class:`Library` opened on the workspace finishes
  the move from the journal;
* never overwriting: a name clash gets a new name (``cat.png`` -> ``cat-1.png``);
* never deleting: discards go to ``trash/``;
* journaled in ``journal.jsonl`` (one JSON object a line, fsynced) and undoable.

This module never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.fileio import append_jsonl, read_jsonl, write_csv
from imgcls.core.images import ImageError, file_hash, iter_image_files, read_image
from imgcls.core.workspace import UNKNOWN_CLASS, Workspace, open_workspace

__all__ = [
    "Library",
    "validate_class_name",
    "plot_class_counts",
    "plot_image_grid",
    "CATALOG_COLUMNS",
    "FLAG_COLUMNS",
]

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
#: Flags kept by content hash in ``flags.csv`` and their defaults.
FLAG_COLUMNS = {"staged": False, "turns": 0, "benchmark": False}

_RESERVED_NAMES = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
#: Hamming distance (of 64 bits) at or under which two perceptual hashes are near duplicates.
NEAR_DUPLICATE_DISTANCE = 4


def validate_class_name(name: str) -> str:
    """Return ``name`` stripped, or raise ``ValueError`` if it cannot be a class folder.

    A class name is a single folder name: no path separators, no ``..``, not
    hidden (leading dot), no control or shell-hostile characters, not a
    reserved device name, at most 100 characters.
    """
    if not isinstance(name, str):
        raise ValueError(f"A class name must be a string. Received: {name!r}")
    cleaned = name.strip()
    problem = None
    if not cleaned:
        problem = "it is empty"
    elif cleaned in {".", ".."} or ".." in cleaned:
        problem = "it contains '..'"
    elif cleaned.startswith("."):
        problem = "it starts with a dot (hidden folders are ignored)"
    elif _BAD_CHARS.search(cleaned):
        problem = "it contains a path separator or a character not allowed in folder names"
    elif cleaned.lower().split(".")[0] in _RESERVED_NAMES:
        problem = "it is a reserved device name on Windows"
    elif len(cleaned) > 100:
        problem = "it is longer than 100 characters"
    if problem:
        raise ValueError(
            f"Invalid class name {name!r}: {problem}. Use a plain name such as "
            "'giraffe' or 'red_fox' (letters, digits, spaces, '-', '_')."
        )
    return cleaned


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


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


def _link_no_clobber(src: Path, folder: Path, name: str, *, copy: bool = False) -> Path:
    """Hard-link ``src`` into ``folder`` under a free name (never overwrites).

    With ``copy=True``, or when a hard link is not possible (another file
    system), the bytes are copied to a temporary file that is then linked
    under the free name.  Returns the new path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    while not copy:
        dst = _free_name(folder, name)
        try:
            os.link(src, dst)
            return dst
        except FileExistsError:
            continue  # raced with another writer: pick the next free name
        except OSError:
            break
    import shutil

    tmp = folder / f".imgcls-tmp-{uuid.uuid4().hex}{Path(name).suffix}"
    shutil.copy2(src, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    while True:
        dst = _free_name(folder, name)
        try:
            os.link(tmp, dst)
            os.unlink(tmp)
            return dst
        except FileExistsError:
            continue


class _ScanCache:
    """Per-file facts keyed by (relative path, size, mtime): hashing and
    decoding happen only for new or changed files."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, hash TEXT, width INTEGER, height INTEGER, "
            "readable INTEGER, error TEXT, phash TEXT)"
        )

    def folder(self, label: str) -> dict[str, tuple]:
        """Cached rows of one class folder: key -> (size, mtime_ns, hash, w, h, readable, error, phash).

        Loaded one folder at a time, so the cache held in memory is bounded by
        the largest class, not the library.
        """
        lo, hi = f"{label}/", f"{label}0"  # '0' sorts right after '/'
        rows = self.conn.execute(
            "SELECT key, size, mtime_ns, hash, width, height, readable, error, phash "
            "FROM files WHERE key >= ? AND key < ?", (lo, hi),
        )
        return {r[0]: r[1:] for r in rows}

    def get_pairs(self, key: str) -> list[tuple[str, str]] | None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS near_pairs (key TEXT PRIMARY KEY, pairs TEXT)")
        row = self.conn.execute("SELECT pairs FROM near_pairs WHERE key=?", (key,)).fetchone()
        return None if row is None else [tuple(p) for p in json.loads(row[0])]

    def put_pairs(self, key: str, pairs: list[tuple[str, str]]) -> None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS near_pairs (key TEXT PRIMARY KEY, pairs TEXT)")
        self.conn.execute("DELETE FROM near_pairs")  # only the latest library state is worth keeping
        self.conn.execute("INSERT INTO near_pairs VALUES (?, ?)", (key, json.dumps(pairs)))
        self.conn.commit()

    def put_many(self, rows: list[tuple]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?)", rows
        )
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def _phash(pixels: np.ndarray) -> str:
    import imagehash
    from PIL import Image

    return str(imagehash.phash(Image.fromarray(pixels)))


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
    return (digest, int(pixels.shape[1]), int(pixels.shape[0]), 1, "", _phash(pixels))


def _near_duplicate_pairs(phashes: list[str], max_distance: int) -> list[tuple[int, int]]:
    """Index pairs whose 64-bit perceptual hashes differ in <= max_distance bits.

    Pigeonhole: split each hash in ``max_distance + 1`` chunks; two hashes within
    the distance agree exactly on at least one chunk, so only hashes sharing a
    chunk are compared.  Linear in the number of images for real libraries.
    """
    valid = [(i, int(h, 16)) for i, h in enumerate(phashes) if h]
    if len(valid) < 2:
        return []
    idx = np.array([i for i, _ in valid])
    vals = np.array([v for _, v in valid], dtype=np.uint64)
    n_chunks = max_distance + 1
    bounds = np.linspace(0, 64, n_chunks + 1).astype(int)
    pairs: set[tuple[int, int]] = set()
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        mask = np.uint64((1 << (hi - lo)) - 1)
        keys = (vals >> np.uint64(lo)) & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts, ends):
            if e - s < 2:
                continue
            members = order[s:e]
            sub = vals[members]
            x = sub[:, None] ^ sub[None, :]
            dist = np.unpackbits(x.view(np.uint8), axis=-1).reshape(len(sub), len(sub), -1).sum(-1)
            a, b = np.nonzero(np.triu(dist <= max_distance, k=1))
            for i, j in zip(a, b):
                p, q = int(idx[members[i]]), int(idx[members[j]])
                pairs.add((min(p, q), max(p, q)))
    return sorted(pairs)


def _union_find_groups(n: int, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)])


class Library:
    """The labelled library of one workspace.

    Owns the catalog of the last scan, the hash-keyed flags, and the journal of
    label moves.

    Args:
        workspace: A :class:`~imgcls.core.Workspace` or a folder path.
        near_distance: Perceptual-hash distance for near duplicates.

    Example:
        >>> lib = Library("my-project")
        >>> lib.counts()              # images per class against the cutoff
        >>> lib.move("library/cat/x.png", "lynx")   # journaled, undoable
        >>> lib.undo()
    """

    def __init__(self, workspace: Workspace | str | os.PathLike, *, near_distance: int = NEAR_DUPLICATE_DISTANCE):
        self.workspace = open_workspace(workspace)
        self.near_distance = int(near_distance)
        self._catalog: pd.DataFrame | None = None
        self.recovered_: list[dict] = self._recover()

    # ------------------------------------------------------------------ scan
    def iter_files(self) -> Iterator[tuple[Path, str]]:
        """Yield (path, label) for every image file under ``library/``."""
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
        cache = _ScanCache(ws.cache_dir / "scan_cache.sqlite")
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
            cat["group"] = self._groups(cat, cache)
        finally:
            cache.close()
        cat = cat.astype({"bytes": "int64", "width": "int64", "height": "int64", "readable": bool})
        cat = self._join_flags(cat)
        self._catalog = cat[CATALOG_COLUMNS].reset_index(drop=True)
        return self._catalog

    @property
    def catalog(self) -> pd.DataFrame:
        """The catalog of the last :meth:`scan` (scanning first if needed)."""
        if self._catalog is None:
            self.scan()
        return self._catalog

    def _groups(self, cat: pd.DataFrame, cache: _ScanCache) -> pd.Series:
        """Duplicate group of each row: the smallest content hash among its
        exact and near duplicates (its own hash when it has none).

        The near-duplicate search is cached by the set of perceptual hashes,
        so a rescan of an unchanged library does not repeat it.
        """
        n = len(cat)
        if n == 0:
            return pd.Series([], dtype=str)
        hashes = cat["hash"].tolist()
        phashes = cat["phash"].tolist()
        distinct = sorted(set(p for p in phashes if p))
        key = hashlib.sha256(f"{self.near_distance}:{','.join(distinct)}".encode()).hexdigest()
        ph_pairs = cache.get_pairs(key)
        if ph_pairs is None:
            ph_pairs = [(distinct[a], distinct[b]) for a, b in _near_duplicate_pairs(distinct, self.near_distance)]
            cache.put_pairs(key, ph_pairs)
        rows_of: dict[str, list[int]] = {}
        for i, p in enumerate(phashes):
            if p:
                rows_of.setdefault(p, []).append(i)
        pairs = [(rows_of[a][0], rows_of[b][0]) for a, b in ph_pairs]
        for members in rows_of.values():  # identical perceptual hashes
            pairs.extend((members[0], m) for m in members[1:])
        first_of_hash: dict[str, int] = {}
        for i, h in enumerate(hashes):
            if not h:
                continue
            if h in first_of_hash:
                pairs.append((first_of_hash[h], i))
            else:
                first_of_hash[h] = i
        roots = _union_find_groups(n, pairs)
        rep: dict[int, str] = {}
        for i, r in enumerate(roots):
            h = hashes[i] or f"path:{cat['relpath'].iat[i]}"
            if r not in rep or h < rep[r]:
                rep[r] = h
        return pd.Series([rep[r] for r in roots], index=cat.index)

    # ---------------------------------------------------------------- counts
    def counts(self, *, cutoff: int | None = None) -> pd.DataFrame:
        """Readable images per class against the cutoff.

        ``unknown`` is listed last with ``meets_cutoff=False``: it never trains.

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

    def classes(self, cutoff: int | None = None) -> list[str]:
        """Sorted class names with at least ``cutoff`` readable images (never ``unknown``)."""
        c = self.counts(cutoff=cutoff)
        return sorted(c.loc[c["meets_cutoff"], "label"].tolist())

    def _cutoff(self, cutoff: int | None) -> int:
        if cutoff is None:
            return self.workspace.cutoff
        return check_int(cutoff, "cutoff")

    # ----------------------------------------------------------------- flags
    def flags(self) -> pd.DataFrame:
        """The hash-keyed flags table (hash, staged, turns, benchmark)."""
        f = self.workspace.flags_file
        if not f.exists():
            return pd.DataFrame({"hash": pd.Series(dtype=str), **{k: pd.Series(dtype=type(v)) for k, v in FLAG_COLUMNS.items()}})
        df = pd.read_csv(f, dtype={"hash": str})
        for col, default in FLAG_COLUMNS.items():
            if col not in df:
                df[col] = default
            df[col] = df[col].fillna(default).astype(type(default))
        return df[["hash", *FLAG_COLUMNS]]

    def _join_flags(self, cat: pd.DataFrame) -> pd.DataFrame:
        flags = self.flags()
        out = cat.merge(flags, on="hash", how="left") if len(flags) else cat.copy()
        for col, default in FLAG_COLUMNS.items():
            if col not in out:
                out[col] = default
            out[col] = out[col].fillna(default).astype(type(default))
        return out

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
        if turns is not None and (isinstance(turns, bool) or int(turns) != turns or not 0 <= int(turns) <= 3):
            raise ValueError(f"`turns` must be 0, 1, 2 or 3 quarter turns. Received: turns={turns!r}")
        if isinstance(images, (str, os.PathLike)):
            images = [images]
        hashes = [self._to_hash(x) for x in images]
        flags = self.flags().set_index("hash")
        for h in hashes:
            if h not in flags.index:
                flags.loc[h] = [FLAG_COLUMNS[c] for c in FLAG_COLUMNS]
            if staged is not None:
                flags.loc[h, "staged"] = bool(staged)
            if turns is not None:
                flags.loc[h, "turns"] = int(turns)
            if benchmark is not None:
                flags.loc[h, "benchmark"] = bool(benchmark)
        out = flags.reset_index()
        out = out.astype({"staged": bool, "turns": int, "benchmark": bool})
        write_csv(self.workspace.flags_file, out)
        if self._catalog is not None:
            self._catalog = self._join_flags(self._catalog.drop(columns=list(FLAG_COLUMNS)))[CATALOG_COLUMNS]
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

        Returns:
            DataFrame [group, kind, path, relpath, label, hash]: one row per
            image in a group of two or more; ``kind`` is ``"exact"`` when every
            member has the same content, else ``"near"``.
        """
        cat = self.catalog
        cols = ["group", "kind", "path", "relpath", "label", "hash"]
        sizes = cat.groupby("group")["path"].transform("size")
        dup = cat[sizes > 1].copy()
        if dup.empty:
            return pd.DataFrame(columns=cols)
        n_hashes = dup.groupby("group")["hash"].transform("nunique")
        dup["kind"] = np.where(n_hashes == 1, "exact", "near")
        if not near:
            dup = dup[dup["kind"] == "exact"]
        return dup.sort_values(["group", "relpath"])[cols].reset_index(drop=True)

    # ------------------------------------------------------- label operations
    def _resolve(self, path: str | os.PathLike) -> Path:
        p = Path(os.fspath(path)).expanduser()
        if not p.is_absolute():
            candidates = [Path.cwd() / p, self.workspace.root / p, self.workspace.library / p]
            p = next((c for c in candidates if os.path.lexists(c)), candidates[0])
        return p

    def _inside(self, path: Path, folder: Path) -> bool:
        try:
            path.resolve().relative_to(folder.resolve())
            return True
        except ValueError:
            return False

    def _check_source(self, path: str | os.PathLike, *, within: tuple[Path, ...]) -> Path:
        p = self._resolve(path)
        if not os.path.lexists(p):
            raise FileNotFoundError(f"No image at {os.fspath(path)!r} (looked at {str(p)!r}).")
        if p.is_symlink() or not p.is_file():
            raise ValueError(f"{str(p)!r} is not a regular image file; only regular files can be moved.")
        if within and not any(self._inside(p, w) for w in within):
            names = ", ".join(str(w) for w in within)
            raise ValueError(f"{str(p)!r} is outside {names}; label operations only move files inside the workspace.")
        return p

    def _journal_write(self, entry: dict) -> None:
        append_jsonl(self.workspace.journal, entry)

    def journal(self) -> pd.DataFrame:
        """Every label operation ever made: one row per completed operation
        [id, batch, time, op, src, dst, hash, label, undone]."""
        entries = self._journal_entries()
        done = [e for e in entries if e.get("state") == "done"]
        undone = {e["undoes"] for e in done if e.get("undoes")}
        cols = ["id", "batch", "time", "op", "src", "dst", "hash", "label", "undone"]
        rows = [
            {**{k: e.get(k) for k in cols[:-1]}, "undone": e["id"] in undone}
            for e in done
        ]
        return pd.DataFrame(rows, columns=cols)

    def _journal_entries(self) -> list[dict]:
        return read_jsonl(self.workspace.journal)  # a torn last line from a crash: the op never began

    def _transfer(self, src: Path, folder: Path, *, op: str, label: str | None, batch: str,
                  keep_source: bool = False, undoes: str | None = None, name: str | None = None) -> Path:
        """Journal-begin, link into ``folder``, unlink the source, journal-done."""
        op_id = uuid.uuid4().hex
        digest = file_hash(src)
        base = {"id": op_id, "batch": batch, "op": op, "src": str(src), "folder": str(folder),
                "hash": digest, "label": label, "undoes": undoes}
        self._journal_write({**base, "state": "begin", "time": _now(), "keep_source": keep_source})
        dst = _link_no_clobber(src, folder, name or src.name, copy=keep_source)
        self._journal_write({**base, "state": "linked", "dst": str(dst), "time": _now()})
        if not keep_source:
            os.unlink(src)
            _fsync_dir(src.parent)
        _fsync_dir(folder)
        self._journal_write({**base, "state": "done", "dst": str(dst), "time": _now()})
        self._catalog = None
        return dst

    def _recover(self) -> list[dict]:
        """Finish or roll back operations a crash interrupted.

        * begun, never linked: nothing happened on disk; closed as aborted.
        * linked, not done: the image exists under both names (or only the
          new one); the move is completed (the old name unlinked when both
          are the same file) and journaled as done.
        """
        entries = self._journal_entries()
        state: dict[str, dict] = {}
        for e in entries:
            state.setdefault(e["id"], {}).update(e)
        fixed = []
        for op_id, e in state.items():
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
                self._journal_write({**e, "state": "aborted", "time": _now()})
                fixed.append({**e, "state": "aborted"})
                continue
            if not e.get("keep_source") and src.exists():
                with contextlib.suppress(OSError):
                    if os.path.samefile(src, dst) or file_hash(src) == e["hash"]:
                        os.unlink(src)
            self._journal_write({**e, "state": "done", "time": _now(), "recovered": True})
            fixed.append({**e, "state": "done"})
        return fixed

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
        batch = uuid.uuid4().hex
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
        """Move a library image to class ``label`` (a new name creates its folder)."""
        label = validate_class_name(label)
        ws = self.workspace
        src = self._check_source(path, within=(ws.library, ws.unlabelled, ws.trash))
        return self._transfer(src, ws.library / label, op="move", label=label, batch=batch or uuid.uuid4().hex)

    def to_unknown(self, path: str | os.PathLike, *, batch: str | None = None) -> Path:
        """Send an image to ``library/unknown/``: good, but nobody can name it yet."""
        return self.move(path, UNKNOWN_CLASS, batch=batch)

    def discard(self, path: str | os.PathLike, *, batch: str | None = None) -> Path:
        """Move an image to ``trash/`` (nothing is ever deleted outright)."""
        ws = self.workspace
        src = self._check_source(path, within=(ws.library, ws.unlabelled))
        return self._transfer(src, ws.trash, op="discard", label=None, batch=batch or uuid.uuid4().hex)

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
        batch = uuid.uuid4().hex
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

        Returns:
            The paths the images now have.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"`steps` must be an int >= 1. Received: steps={steps!r}")
        j = self.journal()
        todo = j[(~j["undone"]) & (j["op"] != "undo")]
        if todo.empty:
            raise ValueError("Nothing to undo: the journal has no operation that is not undone yet.")
        batches = list(dict.fromkeys(todo["batch"][::-1]))[:steps]
        restored = []
        ws = self.workspace
        for b in batches:
            ops = todo[todo["batch"] == b].iloc[::-1]
            undo_batch = uuid.uuid4().hex
            for e in ops.itertuples(index=False):
                dst = Path(e.dst)
                if not dst.exists():
                    raise ValueError(
                        f"Cannot undo {e.op} of {e.src!r}: {e.dst!r} is gone (moved by hand?). "
                        "Nothing was changed for this entry; check journal.jsonl."
                    )
                src = Path(e.src)
                if e.op == "add" and not self._inside(src, ws.root):
                    target, name = ws.trash, dst.name  # the original outside stays where it is
                else:
                    target, name = src.parent, src.name
                restored.append(self._transfer(dst, target, op="undo", label=None, batch=undo_batch,
                                               undoes=e.id, name=name))
        return restored


# ----------------------------------------------------------------- plots
def plot_class_counts(counts: pd.DataFrame, *, cutoff: int, title: str | None = None):
    """Bar chart of readable images per class against the cutoff.

    Args:
        counts: Output of :meth:`Library.counts`.
        cutoff: Drawn as a line; bars under it are grey, ``unknown`` hatched.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13.33, 5.5), layout="constrained")
    ax = fig.subplots()
    colours = [
        "#bbbbbb" if lbl == UNKNOWN_CLASS else ("#2a7ab9" if ok else "#e39b2d")
        for lbl, ok in zip(counts["label"], counts["meets_cutoff"])
    ]
    bars = ax.bar(counts["label"], counts["n"], color=colours)
    for bar, lbl in zip(bars, counts["label"]):
        if lbl == UNKNOWN_CLASS:
            bar.set_hatch("//")
    ax.axhline(cutoff, color="#c0392b", lw=2, ls="--", label=f"cutoff = {cutoff}")
    ax.bar_label(bars, fontsize=11)
    n_ok = int(counts["meets_cutoff"].sum())
    near = counts[(~counts["meets_cutoff"]) & (counts["label"] != UNKNOWN_CLASS)]
    ax.set_title(title or f"{n_ok} classes make the cutoff of {cutoff}; "
                 f"{len(near)} below it ({', '.join(near['label']) or 'none'})", fontsize=16)
    ax.set_ylabel("readable images", fontsize=13)
    ax.tick_params(labelsize=12)
    ax.legend(fontsize=12)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_image_grid(paths, *, titles=None, ncols: int = 8, size: float = 1.6, suptitle: str | None = None):
    """Thumbnails of image files in a grid; unreadable files show their reason.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure

    paths = [Path(p) for p in paths]
    titles = list(titles) if titles is not None else [p.name for p in paths]
    n = max(len(paths), 1)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(ncols * size, nrows * (size + 0.35)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p, t in zip(axes.flat, paths, titles):
        try:
            ax.imshow(read_image(p))
        except ImageError as exc:
            ax.text(0.5, 0.5, exc.reason[:60], ha="center", va="center", wrap=True, fontsize=7, color="#c0392b")
        ax.set_title(str(t)[:28], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=13)
    return fig
