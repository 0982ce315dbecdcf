"""Deterministic train / validation / test splits and the fixed benchmark set.

A split is a pure function of an image's duplicate *group* (the smallest content
hash among its exact and near duplicates, see :class:`~imgcls.library.Library`)
and a salt, so

* an image keeps its split as the library grows and files move or are renamed;
* exact and near duplicates always land in the same split (no leakage);
* no random state is involved: the same library gives the same splits on any
  machine.

The benchmark set is chosen once (:func:`choose_benchmark`), stored as a flag by
content hash, and never trained on: its rows get ``split="benchmark"`` whatever
their hash says. Later calls only add benchmark images for classes that have
none yet; they never move an image out of the benchmark.

This module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from imgcls.core import UNKNOWN_CLASS, check_int
from imgcls.core.checks import shown

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.library.catalog import Library

__all__ = ["SPLITS", "assign_splits", "split_sizes", "training_rows", "choose_benchmark"]

SPLITS = ("train", "val", "test", "benchmark")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        train, val, test = (float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(
            "`fractions` must be three numbers (train, val, test). "
            f"Received: fractions={shown(fractions)}"
        ) from None
    if min(train, val, test) < 0 or abs(train + val + test - 1.0) > 1e-6 or train == 0:
        raise ValueError(
            "`fractions` must be three non-negative numbers summing to 1 with a "
            f"non-zero train share, e.g. (0.8, 0.1, 0.1). Received: fractions={shown(fractions)}"
        )
    return train, val, test


def _unit_interval(keys: pd.Series, salt: str) -> np.ndarray:
    """Map each key to a stable number in [0, 1) (first 8 bytes of sha256)."""
    out = np.empty(len(keys))
    for i, k in enumerate(keys):
        d = hashlib.sha256(f"{salt}:{k}".encode()).digest()
        out[i] = int.from_bytes(d[:8], "big") / 2**64
    return out


def assign_splits(
    catalog: pd.DataFrame,
    *,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    salt: str = "imgcls",
) -> pd.DataFrame:
    """Assign each catalog row to train, val, test or benchmark.

    Args:
        catalog: A catalog from :meth:`Library.scan` (needs ``hash``; uses
            ``group`` and ``benchmark`` when present).
        fractions: Shares of train, val and test among non-benchmark images.
        salt: Change it to draw a different (still deterministic) split.

    Returns:
        A copy of ``catalog`` with a ``split`` column.
    """
    train, val, _ = _check_fractions(fractions)
    if "hash" not in catalog:
        raise ValueError("`catalog` needs a `hash` column; pass the output of Library.scan().")
    out = catalog.copy()
    keys = out["group"] if "group" in out else out["hash"]
    keys = keys.where(keys.astype(bool), out.get("path", keys))
    u = _unit_interval(keys, salt)
    split = np.where(u < train, "train", np.where(u < train + val, "val", "test"))
    if "benchmark" in out:
        bench_groups = set(keys[out["benchmark"].astype(bool)])
        split = np.where(keys.isin(bench_groups), "benchmark", split)
    out["split"] = split
    return out


def training_rows(catalog: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Rows that may enter training: readable and labelled with one of ``classes``.

    Args:
        catalog: A catalog from :meth:`Library.scan` (needs ``label``).
        classes: The trainable classes (never ``unknown``).

    Returns:
        The matching rows of ``catalog``.
    """
    classes = list(classes)
    if UNKNOWN_CLASS in classes:
        raise ValueError(f"{UNKNOWN_CLASS!r} is not a trainable class; remove it from `classes`.")
    mask = catalog["label"].isin(classes)
    if "readable" in catalog:
        mask &= catalog["readable"].astype(bool)
    return catalog[mask]


def split_sizes(catalog: pd.DataFrame, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Images per class and split (a pivot table with a total row and column).

    Args:
        catalog: A catalog, with a ``split`` column or without (then
            :func:`assign_splits` with its defaults draws one).
        classes: Count only these classes' readable rows (default: every row).

    Returns:
        Counts indexed by label (plus ``total``), one column per split plus ``total``.
    """
    if "split" not in catalog:
        catalog = assign_splits(catalog)
    rows = catalog if classes is None else training_rows(catalog, classes)
    if "readable" in rows:
        rows = rows[rows["readable"].astype(bool)]
    table = pd.crosstab(rows["label"], rows["split"], margins=True, margins_name="total")
    cols = [s for s in SPLITS if s in table.columns] + ["total"]
    return table.reindex(columns=cols, fill_value=0)


def choose_benchmark(library: Library, *, per_class: int = 5, salt: str = "imgcls-benchmark") -> pd.DataFrame:
    """Choose the fixed benchmark set once and store it as flags.

    For every trainable class (any count, ``unknown`` excluded) that has no
    benchmark image yet, the ``per_class`` readable images with the smallest
    salted hash of their duplicate group are flagged ``benchmark=True``.
    Existing benchmark images are never removed, so the set stays fixed while
    the library grows.

    Args:
        library: An :class:`~imgcls.library.Library`.
        per_class: Benchmark images per class.
        salt: Selects which images (deterministically).

    Returns:
        The benchmark rows of the refreshed catalog.
    """
    per_class = check_int(per_class, "per_class")
    cat = library.catalog
    cand = cat[cat["readable"] & (cat["label"] != UNKNOWN_CLASS)]
    has = set(cand.loc[cand["benchmark"], "label"])
    chosen: list[str] = []
    for label, g in cand.groupby("label"):
        if label in has or len(g) <= per_class:
            continue
        g = g.drop_duplicates("group")
        order = np.argsort(_unit_interval(g["group"], salt), kind="stable")
        chosen.extend(g["hash"].iloc[order[:per_class]].tolist())
    if chosen:
        library.set_flags(chosen, benchmark=True)
    cat = library.catalog
    return cat[cat["benchmark"]]
