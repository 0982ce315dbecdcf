"""What the embeddings say about each image's neighbours: nearest labelled images,
near-duplicates in different classes, and images unlike their own class.

All three compare embeddings by cosine similarity after centring (the
library's mean embedding subtracted, then each row scaled to length 1):
pooled features are mostly positive, so without centring any two images look
alike. Similarities are computed in blocks of rows, never as one ``n x n``
matrix: 10,000 images need about 80 MB at a time.

This module is NumPy and pandas only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from imgcls.cleaning.embeddings import Embeddings
from imgcls.core import UNKNOWN_CLASS, check_int, check_number

__all__ = [
    "DUPLICATE_SIMILARITY",
    "OUTLIER_RATIO",
    "NEIGHBOURS",
    "DUPLICATE_COLUMNS",
    "OUTLIER_COLUMNS",
    "NEIGHBOUR_COLUMNS",
    "unit_vectors",
    "nearest_neighbours",
    "cross_class_duplicates",
    "class_outliers",
]

#: Centred cosine similarity at or above which two images of different classes are reported as duplicates.
DUPLICATE_SIMILARITY = 0.95
#: Outlier score (distance to its own class over the typical distance between classes) above which
#: an image is flagged as unlike its class.
OUTLIER_RATIO = 1.0
#: Nearest same-class neighbours whose mean similarity scores an image's fit to its class.
NEIGHBOURS = 10

#: Columns of :func:`cross_class_duplicates`.
DUPLICATE_COLUMNS = ["path_a", "relpath_a", "label_a", "path_b", "relpath_b", "label_b",
                     "similarity", "same_group"]
#: Columns of :func:`class_outliers`.
OUTLIER_COLUMNS = ["path", "relpath", "label", "outlier_score", "is_outlier", "class_distance", "class_n",
                   "nearest_path"]
#: Columns of :func:`nearest_neighbours`.
NEIGHBOUR_COLUMNS = ["path", "label", "rank", "neighbour_path", "neighbour_relpath", "neighbour_label",
                     "similarity"]

_BLOCK = 2048
#: Images whose distances to other classes estimate the typical distance between classes.
_REFERENCE_SAMPLE = 2000


def _embeddings_arg(embeddings: Any) -> Embeddings:
    if not isinstance(embeddings, Embeddings):
        raise ValueError(
            "`embeddings` must be an Embeddings (from imgcls.cleaning.library_embeddings). "
            f"Received: {type(embeddings).__name__}"
        )
    return embeddings


def unit_vectors(features: Any) -> np.ndarray:
    """Centred, length-1 rows of ``features`` (``float32``): their dot products are centred cosines.

    A row that is all zeros after centring stays zero (similar to nothing).
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"`features` must be a 2-D array (n, d). Received: shape {x.shape}")
    if len(x) == 0:
        return x.copy()
    x = x - x.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes of text values (comparing ints is much faster than comparing strings)."""
    return pd.factorize(values.astype(str))[0]


def _blocks(n: int, size: int = _BLOCK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _mean_distance(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean of one minus the ``k`` largest finite similarities of each row (NaN: none),
    the column of the largest (-1: none))."""
    idx, vals = _top(sims, k)
    finite = np.isfinite(vals)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = 1.0 - np.where(finite, vals, 0.0).sum(axis=1) / count
    first = np.where(finite[:, 0], idx[:, 0], -1) if idx.shape[1] else np.full(len(sims), -1)
    return np.where(count > 0, mean, np.nan), first


def _top(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``k`` largest entries of each row, best first (stable ties)."""
    k = min(k, sims.shape[1])
    if k == 0:
        return np.zeros((len(sims), 0), np.int64), np.zeros((len(sims), 0), sims.dtype)
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else \
        np.tile(np.arange(sims.shape[1]), (len(sims), 1))
    vals = np.take_along_axis(sims, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def nearest_neighbours(
    embeddings: Embeddings,
    *,
    top_k: int = 5,
    paths: Any = None,
    labelled_only: bool = True,
) -> pd.DataFrame:
    """The ``top_k`` most similar other images of each image: why the model thinks what it thinks.

    An image's own duplicate group (exact and near copies) is left out, so the
    neighbours are other pictures.

    Args:
        embeddings: :class:`~imgcls.cleaning.Embeddings` of the library.
        top_k: Neighbours per image.
        paths: Only find neighbours for these images (paths as in
            ``embeddings.rows["path"]``); None for every image.
        labelled_only: Neighbours come from class folders only (not ``unknown/``).

    Returns:
        DataFrame :data:`NEIGHBOUR_COLUMNS`: one row per (image, neighbour),
        ``rank`` 1 the most similar.
    """
    emb = _embeddings_arg(embeddings)
    top_k = check_int(top_k, "top_k")
    rows = emb.rows
    if paths is None:
        query = np.arange(len(rows))
    else:
        wanted = {str(p) for p in (paths if not isinstance(paths, str) else [paths])}
        query = np.flatnonzero(rows["path"].astype(str).isin(wanted).to_numpy())
    cand = np.ones(len(rows), dtype=bool)
    if labelled_only:
        cand &= (rows["label"].astype(str) != UNKNOWN_CLASS).to_numpy()
    cand_idx = np.flatnonzero(cand)
    unit = unit_vectors(emb.features)
    groups = _codes(rows["group"])
    out: list[tuple] = []
    for sl in _blocks(len(query)):
        q = query[sl]
        sims = unit[q] @ unit[cand_idx].T
        sims[groups[q][:, None] == groups[cand_idx][None, :]] = -np.inf
        idx, vals = _top(sims, top_k)
        for r, i in enumerate(q):
            for rank, (j, s) in enumerate(zip(idx[r], vals[r]), start=1):
                if not np.isfinite(s):
                    break
                c = cand_idx[j]
                out.append((rows["path"].iat[i], rows["label"].iat[i], rank, rows["path"].iat[c],
                            rows["relpath"].iat[c], rows["label"].iat[c], float(s)))
    return pd.DataFrame(out, columns=NEIGHBOUR_COLUMNS)


def cross_class_duplicates(
    embeddings: Embeddings,
    *,
    threshold: float = DUPLICATE_SIMILARITY,
    include_unknown: bool = True,
) -> pd.DataFrame:
    """Near-duplicates that sit in DIFFERENT classes: one of the two labels is wrong.

    Two sources, merged: pairs whose embeddings have a centred cosine
    similarity of at least ``threshold``, and pairs in the same duplicate
    group of the library (the catalog's ``group``: identical content or
    perceptual hashes within the library's near distance).

    Args:
        embeddings: :class:`~imgcls.cleaning.Embeddings` of the library.
        threshold: Smallest similarity (in (0, 1]) reported.
        include_unknown: Also report an ``unknown/`` image that duplicates a
            labelled one (its class may be the other image's).

    Returns:
        DataFrame :data:`DUPLICATE_COLUMNS`, one row per pair (``a`` before
        ``b`` by path): duplicate-group pairs first, then by similarity,
        highest first. ``same_group`` tells the library's own duplicates.
    """
    emb = _embeddings_arg(embeddings)
    threshold = check_number(threshold, "threshold", 0.0, 1.0, low_open=True)
    rows = emb.rows
    keep = np.ones(len(rows), dtype=bool) if include_unknown else \
        (rows["label"].astype(str) != UNKNOWN_CLASS).to_numpy()
    idx = np.flatnonzero(keep)
    labels = rows["label"].astype(str).to_numpy()
    label_codes = _codes(rows["label"])
    groups = _codes(rows["group"])
    unit = unit_vectors(emb.features)
    pairs: dict[tuple[int, int], float] = {}
    for sl in _blocks(len(idx)):
        q = idx[sl]
        sims = unit[q] @ unit[idx].T
        a, b = np.nonzero(sims >= threshold - 1e-6)
        for r, c in zip(a, b):
            i, j = int(q[r]), int(idx[c])
            if i < j and label_codes[i] != label_codes[j]:
                pairs[(i, j)] = float(sims[r, c])
    by_group: dict[int, list[int]] = {}
    for i in idx:
        by_group.setdefault(groups[i], []).append(int(i))
    grouped: set[tuple[int, int]] = set()
    for members in by_group.values():
        if len(members) < 2:
            continue
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                i, j = members[x], members[y]
                if labels[i] != labels[j]:
                    grouped.add((min(i, j), max(i, j)))
    out = []
    for i, j in set(pairs) | grouped:
        if str(rows["path"].iat[j]) < str(rows["path"].iat[i]):
            i, j = j, i
        sim = pairs.get((min(i, j), max(i, j)))
        if sim is None:
            sim = float(unit[i] @ unit[j])
        out.append((rows["path"].iat[i], rows["relpath"].iat[i], labels[i], rows["path"].iat[j],
                    rows["relpath"].iat[j], labels[j], sim, (min(i, j), max(i, j)) in grouped))
    df = pd.DataFrame(out, columns=DUPLICATE_COLUMNS)
    df = df.sort_values(["same_group", "similarity", "path_a", "path_b"], ascending=[False, False, True, True],
                        kind="stable")
    return df.reset_index(drop=True)


def class_outliers(
    embeddings: Embeddings,
    *,
    neighbours: int = NEIGHBOURS,
    threshold: float = OUTLIER_RATIO,
    min_images: int = 5,
) -> pd.DataFrame:
    """How unlike its own class each labelled image is: candidates for ``unknown/`` or the trash.

    ``class_distance`` is the mean centred cosine distance (one minus the
    similarity) from an image to its ``neighbours`` nearest images of the
    same class, its duplicate group left out: a kNN density, not a distance
    to the class mean, so a class with several looks (a cat asleep, a cat
    running) does not make its second look an outlier. ``outlier_score``
    divides it by the library's typical distance between classes (the median,
    over labelled images - a fixed sample of 2,000 in a larger library - of
    the mean distance to their ``neighbours`` nearest images of OTHER
    classes; in ``attrs["between_class_distance"]``): a score of 1 means the image is as far
    from its own class as pictures usually are from another class. The
    score is scale-free, so a tight class does not turn its ordinary
    members into outliers, and a loose class is not spared its strays.

    Args:
        embeddings: :class:`~imgcls.cleaning.Embeddings` of the library
            (``unknown/`` images are left out: they have no class to be unlike).
        neighbours: Nearest images averaged over (same class, and other classes).
        threshold: ``outlier_score`` above which an image is flagged.
        min_images: Classes with fewer images are scored but never flagged.

    Returns:
        DataFrame :data:`OUTLIER_COLUMNS` (``class_distance`` as above,
        ``class_n`` the class's image count, ``nearest_path`` its most similar
        same-class image), the most unusual first. An image whose label is wrong is usually far from its
        (wrong) class too: it shows here and among the label issues.
    """
    emb = _embeddings_arg(embeddings)
    neighbours = check_int(neighbours, "neighbours")
    threshold = check_number(threshold, "threshold", 0.0, low_open=True)
    min_images = check_int(min_images, "min_images", 2)
    lab = emb.labelled()
    rows = lab.rows
    unit = unit_vectors(lab.features)
    labels = rows["label"].astype(str).to_numpy()
    paths = rows["path"].to_numpy()
    label_codes = _codes(rows["label"])
    groups = _codes(rows["group"])
    own = np.full(len(rows), np.nan)
    other = np.full(len(rows), np.nan)
    nearest = np.full(len(rows), None, dtype=object)
    class_n = np.bincount(label_codes)[label_codes] if len(rows) else np.zeros(0, np.int64)
    for code in np.unique(label_codes):
        members = np.flatnonzero(label_codes == code)
        for sl in _blocks(len(members)):
            block = members[sl]
            sims = unit[block] @ unit[members].T
            sims[groups[block][:, None] == groups[members][None, :]] = -np.inf
            own[block], first = _mean_distance(sims, neighbours)
            found = first >= 0
            nearest[block[found]] = paths[members[first[found]]]
    # The typical distance between classes, from a fixed sample of images (a median needs no more).
    sample = np.arange(len(rows))
    if len(sample) > _REFERENCE_SAMPLE:
        sample = np.sort(np.random.default_rng(0).choice(len(rows), _REFERENCE_SAMPLE, replace=False))
    for sl in _blocks(len(sample)):
        block = sample[sl]
        sims = unit[block] @ unit.T
        sims[label_codes[block][:, None] == label_codes[None, :]] = -np.inf
        other[block], _ = _mean_distance(sims, neighbours)
    reference = float(np.nanmedian(other)) if np.isfinite(other).any() else np.nan
    score = own / reference if np.isfinite(reference) and reference > 0 else own
    flag = (np.nan_to_num(score, nan=-np.inf) > threshold) & (class_n >= min_images)
    df = pd.DataFrame({
        "path": rows["path"].to_numpy(), "relpath": rows["relpath"].to_numpy(), "label": labels,
        "outlier_score": score, "is_outlier": flag, "class_distance": own,
        "class_n": class_n, "nearest_path": nearest,
    }, columns=OUTLIER_COLUMNS)
    df.attrs["between_class_distance"] = float(reference) if np.isfinite(reference) else None
    order = np.lexsort((df["path"].astype(str).to_numpy(), -np.nan_to_num(score, nan=-np.inf)))
    return df.iloc[order].reset_index(drop=True)
