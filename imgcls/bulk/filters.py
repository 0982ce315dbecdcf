"""The write-up's filters on a bulk results table.

* :func:`low_count_classes` - predicted class has few library images;
* :func:`staged_classes` - predicted class is built mostly from staged images;
* :func:`look_alike` - class X at middling confidence, with the second choice;
* :func:`in_unknown` - images in ``library/unknown/``;
* :func:`lowest_scores` - lowest scores first, for mass removal;
* :func:`sort_by` - by score, class, entropy or margin.

Every filter takes a results DataFrame first and returns a new DataFrame
(rows kept, index reset), so filters chain:
``lowest_scores(look_alike(results, "cow"), n=50)``.
:func:`filter_results` runs any of them by name (what ``imgcls filter`` does).

The scores they compare with their thresholds (``top1_score``, ``entropy``,
``margin``) are calibrated by :func:`imgcls.bulk.identify` with the run's
temperature, so ``look_alike(..., max_score=0.7)`` keeps images the model
gets right at most about 70% of the time; ``raw_top1_score`` holds the
model's own score.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core import (
    DEFAULT_CUTOFF,
    UNKNOWN_CLASS,
    Workspace,
    as_workspace,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
)
from imgcls.library import Library

__all__ = [
    "FILTER_NAMES",
    "SORT_KEYS",
    "check_results",
    "filter_results",
    "in_unknown",
    "look_alike",
    "low_count_classes",
    "lowest_scores",
    "sort_by",
    "staged_classes",
]

#: Keys accepted by :func:`sort_by`.
SORT_KEYS = ("score", "class", "entropy", "margin")
#: Names accepted by :func:`filter_results`: the write-up's five filters and the two uncertainty sorts.
FILTER_NAMES = ("low-count", "staged", "look-alike", "unknown", "lowest", "entropy", "margin")


def check_results(results: Any, needed: Iterable[str], func: str) -> pd.DataFrame:
    """``results`` if it is a results DataFrame with the ``needed`` columns.

    Args:
        results: What the caller passed.
        needed: Columns ``func`` reads.
        func: The caller's name, for the message.

    Raises:
        ValueError: Not a DataFrame, or a needed column is missing.
    """
    if not isinstance(results, pd.DataFrame):
        raise ValueError(
            f"`results` must be a results DataFrame from identify() or load_results(). "
            f"Received: {type(results).__name__}"
        )
    needed = list(needed)
    missing = [c for c in needed if c not in results.columns]
    if missing:
        raise ValueError(
            f"{func}() needs results columns {needed}; missing {missing}. "
            "Pass a table from identify() or load_results()."
        )
    return results


def _class_counts(counts: Any) -> pd.DataFrame:
    """Normalise a Library / counts table / catalog / mapping to [label, n, staged]."""
    if isinstance(counts, Library):
        counts = counts.counts()
    if isinstance(counts, Mapping):
        return pd.DataFrame({"label": [str(c) for c in counts], "n": [int(v) for v in counts.values()],
                             "staged": 0})
    if isinstance(counts, pd.Series):
        return pd.DataFrame({"label": counts.index.astype(str), "n": counts.to_numpy().astype("int64"),
                             "staged": 0})
    if isinstance(counts, pd.DataFrame):
        if "label" not in counts.columns:
            raise ValueError(
                "`counts` must have a `label` column: Library.counts() [label, n, staged, ...] or a "
                f"catalog [path, label, readable, staged, ...]. Received columns: {list(counts.columns)}"
            )
        if "n" in counts.columns:  # a counts table
            out = counts[["label", "n"]].copy()
            out["staged"] = counts["staged"] if "staged" in counts.columns else 0
            if out["staged"].dtype == bool:  # a per-class flag rather than a count
                out["staged"] = np.where(out["staged"], out["n"], 0)
            out["label"] = out["label"].astype(str)
            return out.reset_index(drop=True)
        cat = counts
        if "readable" in cat.columns:
            cat = cat[cat["readable"].astype(bool)]
        staged = cat["staged"].astype(bool) if "staged" in cat.columns else pd.Series(False, index=cat.index)
        g = pd.DataFrame({"label": cat["label"].astype(str), "staged": staged.astype("int64")})
        out = g.groupby("label", sort=True).agg(n=("staged", "size"), staged=("staged", "sum"))
        return out.reset_index()
    raise ValueError(
        "`counts` must be a Library, a Library.counts() table, a catalog DataFrame or a "
        f"{{class: n}} mapping. Received: {type(counts).__name__}"
    )


def _done(df: pd.DataFrame, what: str | None = None, *, after: pd.DataFrame | None = None) -> pd.DataFrame:
    """Reset the index; ``what`` (the view, said in words) goes to ``attrs["filter"]``.

    The review grid shows ``attrs["filter"]`` as its title, so a person always
    knows which filter the tiles come from. When the input table ``after``
    was itself a filter's output, both are named ("…; then …").
    """
    out = df.reset_index(drop=True)
    if what is not None:
        prior = (after.attrs.get("filter") if after is not None else None)
        out.attrs["filter"] = f"{prior}; then {what[0].lower()}{what[1:]}" if prior else what
    return out


def _sorted(results: pd.DataFrame, how: str) -> str:
    prior = results.attrs.get("filter")
    return f"{prior}; sorted {how}" if prior else f"All {len(results)} results, sorted {how}"


def _scores(lo: float, hi: float) -> str:
    return f"{lo:.2f}-{hi:.2f}"


def low_count_classes(
    results: pd.DataFrame,
    counts: Library | pd.DataFrame | Mapping[str, int],
    *,
    below: int | None = None,
) -> pd.DataFrame:
    """Images predicted as a class with few library images (to raise its count).

    Adds the column ``class_count`` (library images of ``top1_class``; 0 for
    a class not in ``counts``).

    Args:
        results: A results table.
        counts: A :class:`~imgcls.library.Library`, its ``counts()`` table,
            a catalog, or a ``{class: n}`` mapping.
        below: Keep classes with fewer images than this; defaults to the
            library's cutoff (a Library) or :data:`~imgcls.core.DEFAULT_CUTOFF`.
            A throw-away run (cutoff 35) finds images for the classes that
            just missed 40 this way.

    Returns:
        Rows of those classes, smallest class first, then most confident first.
    """
    check_results(results, ["top1_class", "top1_score"], "low_count_classes")
    if below is None:
        ws = getattr(counts, "workspace", None)
        below = ws.cutoff if isinstance(ws, Workspace) else DEFAULT_CUTOFF
    below = check_int(below, "below")
    table = _class_counts(counts)
    n = dict(zip(table["label"], table["n"].astype("int64")))
    out = results.copy()
    out["class_count"] = out["top1_class"].astype(str).map(n).fillna(0).astype("int64")
    out = out[out["class_count"] < below]
    out = out.sort_values(["class_count", "top1_class", "top1_score"], ascending=[True, True, False],
                          kind="stable")
    what = (f"Low count: predicted as a class with fewer than {below} library images "
            f"({out['top1_class'].nunique()} classes), smallest class first")
    return _done(out, what, after=results)


def staged_classes(
    results: pd.DataFrame,
    counts_or_catalog: Library | pd.DataFrame,
    *,
    min_share: float = 0.5,
) -> pd.DataFrame:
    """Images predicted as a class whose library images are all or mostly staged.

    Real-world images of such classes are the ones to add (the staged ones
    look different from what comes through). Adds ``staged_share`` (share of
    the predicted class's readable library images flagged staged).

    Args:
        results: A results table.
        counts_or_catalog: A Library, its ``counts()`` table ([label, n,
            staged], staged being a count) or a catalog (rows with label,
            staged, readable).
        min_share: Keep classes with at least this share of staged images
            (``1.0``: only classes built entirely from staged images).

    Returns:
        Rows of those classes, highest staged share first, then most
        confident first.
    """
    check_results(results, ["top1_class", "top1_score"], "staged_classes")
    min_share = check_fraction(min_share, "min_share")
    table = _class_counts(counts_or_catalog)
    n = table["n"].astype("float64")
    share = (table["staged"].astype("float64") / n.where(n > 0)).fillna(0.0)
    shares = dict(zip(table["label"], share))
    out = results.copy()
    out["staged_share"] = out["top1_class"].astype(str).map(shares).fillna(0.0).astype("float64")
    out = out[(out["staged_share"] >= min_share) & (out["staged_share"] > 0)]
    out = out.sort_values(["staged_share", "top1_class", "top1_score"], ascending=[False, True, False],
                          kind="stable")
    what = f"Staged: predicted as a class whose library images are at least {min_share:.0%} staged, most staged first"
    return _done(out, what, after=results)


def look_alike(
    results: pd.DataFrame,
    predicted: str | Sequence[str],
    *,
    min_score: float = 0.3,
    max_score: float = 0.7,
) -> pd.DataFrame:
    """Images predicted as ``predicted`` at middling confidence, with the second choice.

    "An antelope at lower confidence may be a gazelle": the model's unsure
    antelopes are where a look-alike class it does not know yet hides.
    ``top2_class`` / ``top2_score`` show what else it considered.

    Args:
        results: A results table.
        predicted: The class (or classes) predicted as first choice.
        min_score: Lowest ``top1_score`` kept (inclusive).
        max_score: Highest ``top1_score`` kept (inclusive).

    Returns:
        The rows, least confident first.
    """
    check_results(results, ["top1_class", "top1_score"], "look_alike")
    if isinstance(predicted, str):
        wanted = [predicted]
    elif isinstance(predicted, Iterable):
        wanted = [str(p) for p in predicted]
    else:
        raise ValueError(f"`predicted` must be a class name or a list of them. Received: {predicted!r}")
    if not wanted:
        raise ValueError("`predicted` must name at least one class. Received: []")
    lo, hi = check_fraction(min_score, "min_score"), check_fraction(max_score, "max_score")
    if lo > hi:
        raise ValueError(
            f"`min_score` must not exceed `max_score`. Received: min_score={min_score!r}, "
            f"max_score={max_score!r}"
        )
    s = results["top1_score"]
    out = results[results["top1_class"].astype(str).isin(wanted) & (s >= lo) & (s <= hi)]
    return _done(out.sort_values("top1_score", ascending=True, kind="stable"), after=results,
                 what=f"Look-alike: predicted {' or '.join(wanted)} at a score of {_scores(lo, hi)}, "
                 "least confident first")


def in_unknown(
    results: pd.DataFrame,
    where: Workspace | Library | pd.DataFrame | str | os.PathLike,
) -> pd.DataFrame:
    """Images that are in ``library/unknown/`` (by location or by content).

    A row is kept if its file lies in the unknown folder, or if its content
    hash is that of an image now in the unknown folder (so results of the
    unlabelled pool find images that have since been moved there). Look at
    ``top1_class`` of these to find the look-alike of a class still to be
    named; :func:`imgcls.bulk.identify_unknown` identifies them in the first place.

    Args:
        results: A results table.
        where: A Workspace or workspace folder, a Library, or a catalog
            DataFrame (with path, label, and optionally hash).

    Returns:
        Those rows, grouped by predicted class, most confident first.
    """
    check_results(results, ["path", "top1_class", "top1_score"], "in_unknown")
    folders: list[str] = []
    hashes: set[str] = set()
    if isinstance(where, pd.DataFrame):
        cat = where
    else:
        lib = where if isinstance(where, Library) else Library(as_workspace(where, must_exist=False))
        folders.append(os.path.abspath(lib.workspace.unknown))
        cat = lib.catalog
    if "label" not in cat.columns or "path" not in cat.columns:
        raise ValueError(
            "`where` catalog must have columns path and label (and optionally hash). "
            f"Received columns: {list(cat.columns)}"
        )
    unk = cat[cat["label"].astype(str) == UNKNOWN_CLASS]
    known_paths = {os.path.abspath(p) for p in unk["path"]}
    if "hash" in unk.columns:
        hashes = {h for h in unk["hash"].astype(str) if h}
    paths = results["path"].astype(str).map(os.path.abspath)
    keep = paths.isin(known_paths)
    for folder in folders:
        prefix = folder.rstrip(os.sep) + os.sep
        keep |= paths.str.startswith(prefix)
    if hashes and "hash" in results.columns:
        keep |= results["hash"].astype(str).isin(hashes)
    out = results[keep.to_numpy()]
    return _done(out.sort_values(["top1_class", "top1_score"], ascending=[True, False], kind="stable"),
                 after=results, what="Unknown: images in library/unknown/, by predicted class")


def lowest_scores(
    results: pd.DataFrame,
    *,
    n: int | None = None,
    max_score: float | None = None,
) -> pd.DataFrame:
    """Lowest first-choice scores first: candidates for mass removal.

    Args:
        results: A results table.
        n: Keep at most this many rows.
        max_score: Keep rows with ``top1_score <= max_score``.

    Returns:
        The rows, lowest ``top1_score`` first.
    """
    check_results(results, ["top1_score"], "lowest_scores")
    out = results
    if max_score is not None:
        out = out[out["top1_score"] <= check_fraction(max_score, "max_score")]
    out = out.sort_values("top1_score", ascending=True, kind="stable")
    if n is not None:
        out = out.head(check_int(n, "n", 0, " or None"))
    what = f"The {len(out)} lowest first-choice scores" if n is not None else "Lowest first-choice scores first"
    if max_score is not None:
        what += f" (at most {float(max_score):.2f})"
    return _done(out, what, after=results)


def sort_by(results: pd.DataFrame, key: str = "score", *, ascending: bool | None = None) -> pd.DataFrame:
    """Sort a results table.

    Args:
        results: A results table.
        key: ``"score"`` (``top1_score``, highest first), ``"class"``
            (``top1_class`` A-Z, then highest score first), ``"entropy"``
            (highest first: most uncertain first) or ``"margin"`` (smallest
            first: most uncertain first).
        ascending: Reverse the default direction by passing the opposite.

    Returns:
        The sorted rows.
    """
    check_choice(key, "key", SORT_KEYS)
    if ascending is not None:
        check_bool(ascending, "ascending", fix="pass True, False or None (the key's default direction)")
    if key == "class":
        check_results(results, ["top1_class", "top1_score"], "sort_by")
        asc = True if ascending is None else bool(ascending)
        out = results.sort_values(["top1_class", "top1_score"], ascending=[asc, False], kind="stable")
        return _done(out, _sorted(results, f"by predicted class ({'A-Z' if asc else 'Z-A'})"))
    # the column, its default direction, and the direction that puts the most uncertain first
    column, default, uncertain = {"score": ("top1_score", False, True), "entropy": ("entropy", False, False),
                                  "margin": ("margin", True, True)}[key]
    check_results(results, [column], "sort_by")
    asc = default if ascending is None else bool(ascending)
    order = "most uncertain first" if asc == uncertain else "most certain first"
    out = results.sort_values(column, ascending=asc, kind="stable")
    return _done(out, _sorted(results, f"by {key} ({order})"))


def filter_results(
    results: pd.DataFrame,
    name: str,
    *,
    library: Library | None = None,
    below: int | None = None,
    min_share: float = 0.5,
    predicted: str | Sequence[str] | None = None,
    min_score: float = 0.3,
    max_score: float | None = None,
    n: int | None = None,
) -> pd.DataFrame:
    """Run one filter of :data:`FILTER_NAMES` on a results table, by name.

    Args:
        results: A results table.
        name: ``"low-count"`` (:func:`low_count_classes`), ``"staged"``
            (:func:`staged_classes`), ``"look-alike"`` (:func:`look_alike`),
            ``"unknown"`` (:func:`in_unknown`), ``"lowest"`` (:func:`lowest_scores`),
            ``"entropy"`` or ``"margin"`` (:func:`sort_by`: most uncertain first).
        library: The library (needed by low-count, staged and unknown).
        below: low-count: classes with fewer library images (default: the cutoff).
        min_share: staged: smallest share of staged images of the class.
        predicted: look-alike: the predicted class(es) (required).
        min_score: look-alike: lowest ``top1_score`` kept.
        max_score: look-alike: highest ``top1_score`` kept (default 0.7);
            lowest: keep rows with ``top1_score <= max_score`` (default: all).
        n: Keep at most this many rows (the first ones in the filter's order).

    Returns:
        The filtered rows (index reset).

    Raises:
        ValueError: An unknown name, or an option the filter needs is missing.
    """
    check_choice(name, "name", FILTER_NAMES)
    if n is not None:
        n = check_int(n, "n", 0, " or None")
    if name in ("low-count", "staged", "unknown") and not isinstance(library, Library):
        raise ValueError(f"The {name!r} filter needs `library=` (a Library of the workspace).")
    if name == "low-count":
        out = low_count_classes(results, library, below=below)
    elif name == "staged":
        out = staged_classes(results, library, min_share=min_share)
    elif name == "look-alike":
        if predicted is None or (not isinstance(predicted, str) and not list(predicted)):
            raise ValueError("The 'look-alike' filter needs `predicted=`: the class(es) predicted, e.g. 'cow'.")
        out = look_alike(results, predicted, min_score=min_score, max_score=0.7 if max_score is None else max_score)
    elif name == "unknown":
        out = in_unknown(results, library)
    elif name == "lowest":
        out = lowest_scores(results, n=n, max_score=max_score)
    else:
        out = sort_by(results, name)
    return out if n is None else _done(out.head(n), out.attrs.get("filter"))
