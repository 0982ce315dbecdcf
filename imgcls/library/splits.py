"""Deterministic train / validation / test splits and the fixed benchmark set.

A split is a pure function of an image's duplicate *group* (the smallest content
hash among its exact and near duplicates, see :class:`~imgcls.library.Library`)
and a salt, so

* an image keeps its split as the library grows and files move or are renamed;
* exact and near duplicates always land in the same split (no leakage);
* no random state is involved: the same library gives the same splits on any
  machine.

The benchmark set is chosen before the first training (:func:`ensure_benchmark`,
which every training calls; or :func:`choose_benchmark` directly), stored as a
flag by content hash, and never trained on: its rows get ``split="benchmark"``
whatever their hash says. Each class gets a share of its images with a floor
(:func:`benchmark_size`: 10%, at least 10 images where the class allows, never
more than a third), whole duplicate groups at a time. Later calls only add
benchmark images for classes that have none yet; they never re-draw the set or
move an image out of it. The cutoff keeps counting all of a class's readable
images, benchmark included.

This module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from imgcls.core import UNKNOWN_CLASS, Workspace, check_int
from imgcls.core.checks import check_number, shown
from imgcls.library.catalog import Library

__all__ = [
    "SPLITS",
    "BENCHMARK_SHARE",
    "BENCHMARK_MIN_IMAGES",
    "BENCHMARK_MAX_SHARE",
    "assign_splits",
    "split_sizes",
    "training_rows",
    "benchmark_size",
    "choose_benchmark",
    "ensure_benchmark",
    "benchmark_table",
]

SPLITS = ("train", "val", "test", "benchmark")
#: Share of a class's readable images its benchmark takes ...
BENCHMARK_SHARE = 0.10
#: ... with at least this many images where the class allows ...
BENCHMARK_MIN_IMAGES = 10
#: ... and never more than this share of the class.
BENCHMARK_MAX_SHARE = 1 / 3


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


def benchmark_size(
    n: int,
    *,
    share: float = BENCHMARK_SHARE,
    minimum: int = BENCHMARK_MIN_IMAGES,
    max_share: float = BENCHMARK_MAX_SHARE,
) -> int:
    """Benchmark images a class of ``n`` readable images gets.

    ``share`` of the class, but at least ``minimum`` images where the class
    allows, and never more than ``max_share`` of it: with the defaults 10 of
    40 images, 10 of 90, 20 of 200, and 4 of 12.

    Args:
        n: Readable images of the class.
        share: Share of the class held out.
        minimum: Floor in images.
        max_share: Ceiling as a share of the class.

    Returns:
        The number of images (0 when the class is too small for any).
    """
    n = check_int(n, "n", 0, " (readable images of the class)")
    share = check_number(share, "share", 0.0, 1.0, low_open=True, fix="e.g. share=0.1 for 10%")
    minimum = check_int(minimum, "minimum", 0, " (benchmark images per class where the class allows)")
    max_share = check_number(max_share, "max_share", 0.0, 1.0, low_open=True, fix="e.g. max_share=1/3")
    want = max(math.ceil(share * n - 1e-9), minimum)
    return int(max(0, min(want, math.floor(max_share * n + 1e-9))))


def _group_keys(rows: pd.DataFrame) -> pd.Series:
    """Each row's duplicate group (its own hash when it has none)."""
    keys = rows["group"] if "group" in rows else rows["hash"]
    return keys.where(keys.astype(bool), rows["hash"]).astype(str)


def choose_benchmark(
    library: Library,
    *,
    classes: Sequence[str] | None = None,
    per_class: int | None = None,
    share: float = BENCHMARK_SHARE,
    minimum: int = BENCHMARK_MIN_IMAGES,
    max_share: float = BENCHMARK_MAX_SHARE,
    salt: str = "imgcls-benchmark",
) -> pd.DataFrame:
    """Choose benchmark images for the classes that have none, and store them as flags.

    For every class (``unknown`` excluded) without any benchmark image, whole
    duplicate groups are taken in the order of their salted hash until the
    class has :func:`benchmark_size` images (``share`` with a floor of
    ``minimum``, at most ``max_share`` of the class), and every image of
    those groups is flagged ``benchmark=True`` in ``flags.csv``. Existing
    benchmark images are never removed and a class that has some gets no
    more, so the set stays fixed while the library grows: it is only
    extended, for new classes.

    Args:
        library: An :class:`~imgcls.library.Library`.
        classes: Only these classes (default: every labelled class).
        per_class: A fixed number of images per class instead of the share
            rule (classes with no more images than that are skipped).
        share: Share of a class held out (default 10%).
        minimum: Floor in images where the class allows (default 10).
        max_share: Never more than this share of a class (default a third).
        salt: Selects which images (deterministically).

    Returns:
        The flagged benchmark rows of the refreshed catalog;
        ``attrs["added"]`` maps each class that got images now to how many.
    """
    per_class = check_int(per_class, "per_class", allow_none=True)
    benchmark_size(0, share=share, minimum=minimum, max_share=max_share)  # checks the options
    # Read, decide and flag under one hold of the workspace lock: two processes choosing at once
    # (two notebooks training their first run) cannot both draw a set for the same class.
    with library.writing():
        cat = library.scan()  # decide on the files as they are now, under the lock
        cand = cat[cat["readable"].astype(bool) & (cat["label"] != UNKNOWN_CLASS)]
        if classes is not None:
            if isinstance(classes, str):
                raise ValueError(f"`classes` must be a list of class names. Received: classes={shown(classes)}")
            cand = cand[cand["label"].isin([str(c) for c in classes])]
        has = set(cand.loc[cand["benchmark"].astype(bool), "label"])
        chosen: list[str] = []
        added: dict[str, int] = {}
        for label, g in cand.groupby("label"):
            if label in has:
                continue
            if per_class is not None:
                if len(g) <= per_class:
                    continue
                target = cap = per_class
            else:
                target = benchmark_size(len(g), share=share, minimum=minimum, max_share=max_share)
                cap = max(target, math.floor(max_share * len(g) + 1e-9))
            if target <= 0:
                continue
            keys = _group_keys(g)
            sizes = keys.value_counts()
            groups = np.asarray(sizes.index)
            order = np.argsort(_unit_interval(pd.Series(groups), salt), kind="stable")
            taken: list[str] = []
            count = 0
            for key in groups[order]:
                size = int(sizes[key])
                if count + size > cap:
                    continue
                taken.append(key)
                count += size
                if count >= target:
                    break
            if taken:
                chosen.extend(g.loc[keys.isin(taken).to_numpy(), "hash"].astype(str).tolist())
                added[str(label)] = count
        if chosen:
            library.set_flags(sorted(set(chosen)), benchmark=True)
        cat = library.catalog
        out = cat[cat["benchmark"].astype(bool)]
        out.attrs["added"] = added
        return out


def ensure_benchmark(
    workspace: Workspace | str | os.PathLike,
    classes: Sequence[str],
    *,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Give each of ``classes`` benchmark images before anything trains on it.

    Every training calls this first: the first run of a library fixes the
    benchmark set (:func:`choose_benchmark` with its defaults) before any
    training, and a later run only extends it for classes that have no
    benchmark image yet; it never re-draws it.

    Args:
        workspace: The workspace whose ``flags.csv`` holds the set.
        classes: The classes about to be trained.
        catalog: A catalog from :meth:`Library.scan` (optionally with a
            ``split`` column), to save a scan and keep its splits.

    Returns:
        ``catalog`` with the new benchmark images marked (``benchmark=True``
        and, where it has a ``split`` column, their duplicate groups moved to
        ``"benchmark"``); the same object when nothing was added. Without
        ``catalog``, a fresh scan.
    """
    names = [str(c) for c in classes]
    if catalog is not None and "benchmark" in catalog:
        rows = catalog[catalog["label"].isin(names)]
        if "readable" in rows:
            rows = rows[rows["readable"].astype(bool)]
        if set(names) <= set(rows.loc[rows["benchmark"].astype(bool), "label"]):
            return catalog
    lib = Library(workspace)
    after = set(choose_benchmark(lib, classes=names)["hash"])
    if catalog is None:
        return lib.catalog
    # Mark every benchmark image the catalog lacks: a catalog read before another run extended the
    # set (two runs trained from one snapshot) must not train on the images that run just set aside.
    new = after - set(catalog.loc[catalog["benchmark"].astype(bool), "hash"]) if "benchmark" in catalog else after
    if not new:
        return catalog
    out = catalog.copy()
    out["benchmark"] = out["benchmark"].astype(bool) if "benchmark" in out else False
    hit = out["hash"].astype(str).isin(new)
    out.loc[hit, "benchmark"] = True
    if "split" in out:
        keys = _group_keys(out)
        out.loc[keys.isin(set(keys[hit])), "split"] = "benchmark"
    return out


def benchmark_table(catalog: pd.DataFrame) -> pd.DataFrame:
    """Benchmark images per class beside the class's size.

    Args:
        catalog: A catalog from :meth:`Library.scan` (with or without ``split``).

    Returns:
        DataFrame [label, images, benchmark, share, other] per labelled class
        (``unknown`` left out), largest first: readable images, those in the
        benchmark set (flagged, or a duplicate of a flagged image), their
        share, and the rest (train / val / test). The cutoff counts all of
        ``images``, benchmark included.
    """
    cat = catalog if "split" in catalog else assign_splits(catalog)
    cat = cat[cat["readable"].astype(bool) & (cat["label"] != UNKNOWN_CLASS)]
    out = pd.DataFrame({
        "images": cat.groupby("label").size(),
        "benchmark": cat.assign(b=cat["split"] == "benchmark").groupby("label")["b"].sum(),
    }).fillna(0).astype(int)
    out["share"] = out["benchmark"] / out["images"].clip(lower=1)
    out["other"] = out["images"] - out["benchmark"]
    out = out.rename_axis("label").reset_index()
    return out.sort_values(["images", "label"], ascending=[False, True], kind="stable").reset_index(drop=True)
