"""The scan cache: per-file facts of the last library scans, in SQLite.

``<workspace>/.imgcls/scan_cache.sqlite`` keeps, for every file by its path
relative to ``library/``, its size and modification time and what a scan
learnt from it (content hash, width, height, readable, error, perceptual
hash), so hashing and decoding happen only for new or changed files. It also
keeps the near-duplicate pairs of the latest library state. The cache is safe
to delete.

This module imports only the standard library.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

__all__ = ["ScanCache"]


class ScanCache:
    """Per-file facts keyed by (relative path, size, mtime): hashing and
    decoding happen only for new or changed files.

    Args:
        path: The SQLite file (created with its folder if missing).
    """

    def __init__(self, path: Path) -> None:
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
        """The near-duplicate pairs stored for ``key`` (a digest of the perceptual hashes), or None."""
        self.conn.execute("CREATE TABLE IF NOT EXISTS near_pairs (key TEXT PRIMARY KEY, pairs TEXT)")
        row = self.conn.execute("SELECT pairs FROM near_pairs WHERE key=?", (key,)).fetchone()
        return None if row is None else [tuple(p) for p in json.loads(row[0])]

    def put_pairs(self, key: str, pairs: list[tuple[str, str]]) -> None:
        """Store the near-duplicate pairs of ``key``, replacing any older state."""
        self.conn.execute("CREATE TABLE IF NOT EXISTS near_pairs (key TEXT PRIMARY KEY, pairs TEXT)")
        self.conn.execute("DELETE FROM near_pairs")  # only the latest library state is worth keeping
        self.conn.execute("INSERT INTO near_pairs VALUES (?, ?)", (key, json.dumps(pairs)))
        self.conn.commit()

    def put_many(self, rows: list[tuple]) -> None:
        """Insert or replace rows ``(key, size, mtime_ns, hash, w, h, readable, error, phash)``."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?)", rows
        )
        self.conn.commit()

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()
