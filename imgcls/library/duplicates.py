"""Exact and near duplicates: perceptual hashes, near pairs, duplicate groups.

Two images are exact duplicates when their content hashes match, and near
duplicates when their 64-bit perceptual hashes (``imagehash.phash``) differ
in at most :data:`NEAR_DUPLICATE_DISTANCE` bits. Duplicates of either kind,
chained, form a *group*, named by the smallest content hash among its
members; splits are drawn per group, so duplicates never leak between train
and test.

This module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

import numpy as np
import pandas as pd

__all__ = [
    "NEAR_DUPLICATE_DISTANCE",
    "phash",
    "near_duplicate_pairs",
    "duplicate_groups",
    "duplicate_table",
]

#: Hamming distance (of 64 bits) at or under which two perceptual hashes are near duplicates.
NEAR_DUPLICATE_DISTANCE = 4


class _PairCache(Protocol):
    def get_pairs(self, key: str) -> list[tuple[str, str]] | None: ...

    def put_pairs(self, key: str, pairs: list[tuple[str, str]]) -> None: ...


def phash(pixels: np.ndarray) -> str:
    """The 64-bit perceptual hash of an RGB image, as 16 hex digits.

    Args:
        pixels: A ``uint8`` array of shape ``(height, width, 3)``.
    """
    import imagehash
    from PIL import Image

    return str(imagehash.phash(Image.fromarray(pixels)))


def near_duplicate_pairs(phashes: list[str], max_distance: int) -> list[tuple[int, int]]:
    """Index pairs whose 64-bit perceptual hashes differ in <= max_distance bits.

    Pigeonhole: split each hash in ``max_distance + 1`` chunks; two hashes within
    the distance agree exactly on at least one chunk, so only hashes sharing a
    chunk are compared.  Linear in the number of images for real libraries.

    Args:
        phashes: Perceptual hashes as hex text; ``""`` for none (never paired).
        max_distance: Largest Hamming distance that makes a pair.

    Returns:
        Sorted ``(i, j)`` pairs with ``i < j``.
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


def duplicate_groups(catalog: pd.DataFrame, *, max_distance: int = NEAR_DUPLICATE_DISTANCE,
                     cache: _PairCache | None = None) -> pd.Series:
    """Duplicate group of each catalog row: the smallest content hash among its
    exact and near duplicates (its own hash when it has none).

    Args:
        catalog: Rows with ``hash``, ``phash`` and ``relpath`` (a row without
            a hash is grouped by ``path:<relpath>``).
        max_distance: Perceptual-hash distance for near duplicates.
        cache: Keeps the near-duplicate search by the set of perceptual
            hashes, so a rescan of an unchanged library does not repeat it
            (an object with ``get_pairs(key)`` and ``put_pairs(key, pairs)``).

    Returns:
        The group names, indexed like ``catalog``.
    """
    n = len(catalog)
    if n == 0:
        return pd.Series([], dtype=str)
    hashes = catalog["hash"].tolist()
    phashes = catalog["phash"].tolist()
    distinct = sorted(set(p for p in phashes if p))
    key = hashlib.sha256(f"{max_distance}:{','.join(distinct)}".encode()).hexdigest()
    ph_pairs = cache.get_pairs(key) if cache is not None else None
    if ph_pairs is None:
        ph_pairs = [(distinct[a], distinct[b]) for a, b in near_duplicate_pairs(distinct, max_distance)]
        if cache is not None:
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
        h = hashes[i] or f"path:{catalog['relpath'].iat[i]}"
        if r not in rep or h < rep[r]:
            rep[r] = h
    return pd.Series([rep[r] for r in roots], index=catalog.index)


def duplicate_table(catalog: pd.DataFrame, *, near: bool = True) -> pd.DataFrame:
    """The duplicate groups of a catalog, for review.

    Args:
        catalog: A catalog with a ``group`` column (:meth:`Library.scan`).
        near: Include near duplicates; ``False`` keeps exact ones only.

    Returns:
        DataFrame [group, kind, path, relpath, label, hash]: one row per
        image in a group of two or more; ``kind`` is ``"exact"`` when every
        member has the same content, else ``"near"``.
    """
    cols = ["group", "kind", "path", "relpath", "label", "hash"]
    sizes = catalog.groupby("group")["path"].transform("size")
    dup = catalog[sizes > 1].copy()
    if dup.empty:
        return pd.DataFrame(columns=cols)
    n_hashes = dup.groupby("group")["hash"].transform("nunique")
    dup["kind"] = np.where(n_hashes == 1, "exact", "near")
    if not near:
        dup = dup[dup["kind"] == "exact"]
    return dup.sort_values(["group", "relpath"])[cols].reset_index(drop=True)
