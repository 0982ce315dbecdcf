"""Label-issue ranking with cleanlab: which library images most likely carry a wrong label.

:func:`find_label_issues` is the whole scan of a workspace: embeddings of
the library (:func:`~imgcls.cleaning.library_embeddings`, cached per run),
out-of-sample probabilities
from a K-fold linear head (:func:`~imgcls.cleaning.linear_head_probs`), then
cleanlab's confident learning (:func:`label_issue_table`): a label-quality
score for every image, a flag, and for a flagged image the class it more
likely belongs to. The per-class noise table goes to the run folder
(:mod:`imgcls.cleaning.noise`).

Confident learning itself is cleanlab's (``cleanlab.filter.find_label_issues``
and ``cleanlab.rank.get_label_quality_scores``), never re-implemented here.
cleanlab is an optional extra (``pip install 'imgcls[cleaning]'``), imported
only when a ranking is computed; without it the call says how to install it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.cleaning._requires import cleanlab_module
from imgcls.cleaning.embeddings import Embeddings, library_embeddings
from imgcls.cleaning.holdout import (
    DEFAULT_C,
    DEFAULT_FOLDS,
    kfold_train_probs,
    linear_head_probs,
)
from imgcls.cleaning.noise import noise_table, write_label_noise
from imgcls.core import (
    UNKNOWN_CLASS,
    Workspace,
    as_workspace,
    check_bool,
    check_choice,
    check_int,
    isoformat,
)
from imgcls.library import Library
from imgcls.runs import Run, load_run

__all__ = [
    "METHODS",
    "SCORE_METHODS",
    "FILTERS",
    "ISSUE_COLUMNS",
    "MIN_CLASS_IMAGES",
    "label_issue_table",
    "rank_label_issues",
    "find_label_issues",
]

#: Where the out-of-sample probabilities come from (see :func:`find_label_issues`).
METHODS = ("linear-head", "kfold-train", "in-sample")
#: cleanlab's label-quality scores (``cleanlab.rank.get_label_quality_scores``).
SCORE_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
#: cleanlab's rules for flagging an issue (``cleanlab.filter.find_label_issues``).
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")
#: Classes with fewer labelled images are left out of the ranking (too few to learn them from).
MIN_CLASS_IMAGES = 10
#: Columns of the ranked table.
ISSUE_COLUMNS = ["rank", "path", "relpath", "given_label", "suggested_label", "label_quality", "is_issue",
                 "given_prob", "suggested_prob", "hash", "group"]


def label_issue_table(
    rows: pd.DataFrame,
    probs: Any,
    classes: Sequence[str],
    *,
    score_method: str = "self_confidence",
    filter_by: str = "prune_by_noise_rate",
) -> pd.DataFrame:
    """Rank images by how likely their label is wrong, given out-of-sample probabilities.

    Args:
        rows: One row per image with ``path`` and ``label`` (the given
            class); ``relpath``, ``hash``, ``group`` are carried over when present.
        probs: ``(len(rows), len(classes))`` out-of-sample probabilities
            (a model that never saw the image's label).
        classes: Class names in the column order of ``probs``; every label is one of them.
        score_method: cleanlab's label-quality score (:data:`SCORE_METHODS`).
        filter_by: cleanlab's flagging rule (:data:`FILTERS`).

    Returns:
        DataFrame :data:`ISSUE_COLUMNS`, lowest label quality first (``rank``
        1): ``given_label`` the class folder the image is in,
        ``label_quality`` in [0, 1] (low: likely wrong), ``is_issue``
        cleanlab's flag, ``suggested_label`` the most likely other class
        where flagged (empty otherwise), ``given_prob`` / ``suggested_prob``
        their probabilities. ``attrs`` holds ``n_issues`` and ``classes``.
    """
    cleanlab_issues = cleanlab_module("filter").find_label_issues
    get_label_quality_scores = cleanlab_module("rank").get_label_quality_scores

    check_choice(score_method, "score_method", SCORE_METHODS)
    check_choice(filter_by, "filter_by", FILTERS)
    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    given = rows["label"].astype(str).to_numpy()
    strangers = sorted(set(given.tolist()) - set(index))
    if strangers:
        raise ValueError(f"`rows` has labels that are not in `classes`: {strangers[:10]}")
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (len(rows), len(classes)):
        raise ValueError(f"`probs` must have shape ({len(rows)}, {len(classes)}). Received: {p.shape}")
    y = np.array([index[v] for v in given], dtype=np.int64)
    quality = get_label_quality_scores(y, p, method=score_method)
    flagged = cleanlab_issues(y, p, filter_by=filter_by, n_jobs=1)
    others = p.copy()
    others[np.arange(len(y)), y] = -np.inf
    best_other = np.argmax(others, axis=1) if len(classes) > 1 else np.zeros(len(y), np.int64)
    out = pd.DataFrame({
        "path": rows["path"].astype(str).to_numpy(),
        "relpath": (rows["relpath"] if "relpath" in rows else rows["path"]).astype(str).to_numpy(),
        "given_label": given,
        "suggested_label": np.where(flagged, np.array(classes, dtype=object)[best_other], ""),
        "label_quality": quality.astype(np.float64),
        "is_issue": flagged.astype(bool),
        "given_prob": p[np.arange(len(y)), y],
        "suggested_prob": p[np.arange(len(y)), best_other],
        "hash": (rows["hash"] if "hash" in rows else pd.Series([""] * len(rows))).astype(str).to_numpy(),
        "group": (rows["group"] if "group" in rows else rows["path"]).astype(str).to_numpy(),
    })
    out = out.sort_values(["label_quality", "path"], kind="stable").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1, dtype=np.int64))
    out = out[ISSUE_COLUMNS]
    out.attrs.update(n_issues=int(flagged.sum()), classes=list(classes))
    return out


def _enough(labels: pd.Series, min_images: int) -> tuple[np.ndarray, dict[str, int]]:
    """(mask of rows whose class has at least ``min_images`` rows, {left-out class: n})."""
    counts = labels.astype(str).value_counts()
    small = {str(k): int(v) for k, v in counts[counts < min_images].items()}
    return (~labels.astype(str).isin(small)).to_numpy(), dict(sorted(small.items()))


def rank_label_issues(
    embeddings: Embeddings,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    C: float = DEFAULT_C,
    min_images: int = MIN_CLASS_IMAGES,
    score_method: str = "self_confidence",
    filter_by: str = "prune_by_noise_rate",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label issues from embeddings: K-fold linear head, then cleanlab (no TensorFlow).

    Args:
        embeddings: :class:`~imgcls.cleaning.Embeddings` (``unknown/`` rows are left out).
        folds: K of the cross-validation; duplicate groups stay in one fold.
        seed: Seed of the folds.
        C: Inverse regularisation of the linear head.
        min_images: Classes with fewer labelled images are left out.
        score_method: cleanlab's label-quality score (:data:`SCORE_METHODS`).
        filter_by: cleanlab's flagging rule (:data:`FILTERS`).

    Returns:
        ``(issues, noise)``: the table of :func:`label_issue_table` and the
        per-class :func:`~imgcls.cleaning.noise_table`.
    """
    min_images = check_int(min_images, "min_images", 2)
    lab = embeddings.labelled()
    keep, small = _enough(lab.rows["label"], min_images)
    lab = lab.subset(keep)
    probs, classes = linear_head_probs(lab.features, lab.rows["label"], groups=lab.rows["group"],
                                       folds=folds, seed=seed, C=C)
    issues = label_issue_table(lab.rows, probs, classes, score_method=score_method, filter_by=filter_by)
    flagged = issues.set_index("path").loc[lab.rows["path"].astype(str), "is_issue"].to_numpy()
    noise = noise_table(lab.rows["label"], probs, classes, flagged=flagged)
    issues.attrs.update(excluded_classes=small, folds=int(folds), seed=int(seed))
    return issues, noise


def find_label_issues(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike | None = None,
    *,
    method: str = "linear-head",
    prefer_parent: bool = False,
    embeddings: Embeddings | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    C: float = DEFAULT_C,
    min_images: int = MIN_CLASS_IMAGES,
    score_method: str = "self_confidence",
    filter_by: str = "prune_by_noise_rate",
    save: bool = True,
    batch_size: int = 64,
    progress: bool = False,
    max_epochs: int | None = None,
    patience: int | None = None,
) -> pd.DataFrame:
    """Rank every labelled library image by how likely its label is wrong.

    Args:
        workspace: The workspace.
        run: The run to clean the library with (a :class:`~imgcls.runs.Run`,
            run folder, run id, "production" or "latest"); None for the
            production run. Its folder receives the noise table.
        method: Where the out-of-sample probabilities come from:

            * ``"linear-head"`` (default): embeddings (the ``"avg_pool"``
              layer) and a K-fold cross-validated logistic-regression head.
              Seconds once the embeddings are cached.
            * ``"kfold-train"``: the run's architecture trained K times, each
              without one fold (:func:`~imgcls.cleaning.kfold_train_probs`).
              For small libraries only: K whole trainings.
            * ``"in-sample"``: the run's own predictions on images it trained
              on. For comparison only: a model that memorised a wrong label
              vouches for it.
        prefer_parent: Embed with the parent generation's model when the run
            has one; by default with the run's own, which ranked flipped labels
            better (see :mod:`imgcls.cleaning.embeddings`).
        embeddings: Embeddings computed already (skips the embedding step).
        folds: K of the cross-validation (duplicate groups stay in one fold).
        seed: Seed of the folds (and of the trainings for ``"kfold-train"``).
        C: Inverse regularisation of the linear head.
        min_images: Classes with fewer readable labelled images are left out
            (named in ``attrs["excluded_classes"]``).
        score_method: cleanlab's label-quality score (:data:`SCORE_METHODS`).
        filter_by: cleanlab's flagging rule (:data:`FILTERS`).
        save: Write the per-class noise table to ``runs/<id>/label_noise.csv``
            (and the scan's summary to ``label_issues.json``).
        batch_size: Images per model call.
        progress: Show progress bars.
        max_epochs, patience: Training settings for ``"kfold-train"`` (default: the run's).

    Returns:
        The ranked table (:data:`ISSUE_COLUMNS`), most likely wrong first.
        ``attrs``: ``method``, ``run_id``, ``embeddings_run``,
        ``embeddings_source``, ``n_issues``, ``classes``,
        ``excluded_classes``, and ``noise_file`` when saved. Read the noise
        table back with :func:`~imgcls.cleaning.read_label_noise`.

    Example:
        >>> issues = find_label_issues(ws, "latest")
        >>> issues[issues["is_issue"]].head(20)
    """
    ws = as_workspace(workspace)
    check_choice(method, "method", METHODS)
    check_bool(save, "save")
    min_images = check_int(min_images, "min_images", 2)
    target = load_run("production" if run is None else run, workspace=ws)
    summary: dict[str, Any] = {"created": isoformat(), "method": method, "run_id": target.run_id,
                               "folds": int(folds), "seed": int(seed), "score_method": score_method,
                               "filter_by": filter_by, "embeddings_run": None, "embeddings_source": None}
    if method == "linear-head":
        if embeddings is None:
            embeddings = library_embeddings(ws, target, prefer_parent=prefer_parent, batch_size=batch_size,
                                            progress=progress)
        elif not isinstance(embeddings, Embeddings):
            raise ValueError(f"`embeddings` must be an Embeddings or None. Received: {type(embeddings).__name__}")
        issues, noise = rank_label_issues(embeddings, folds=folds, seed=seed, C=C, min_images=min_images,
                                          score_method=score_method, filter_by=filter_by)
        summary.update(embeddings_run=embeddings.run_id, embeddings_source=embeddings.source)
    else:
        rows = Library(ws).scan()
        rows = rows[rows["readable"].astype(bool) & (rows["label"].astype(str) != UNKNOWN_CLASS)]
        if method == "in-sample":
            rows = rows[rows["label"].astype(str).isin(target.classes)]
        keep, small = _enough(rows["label"], min_images)
        rows = rows[keep].reset_index(drop=True)
        if method == "kfold-train":
            probs, classes = kfold_train_probs(rows, target, folds=folds, seed=seed, max_epochs=max_epochs,
                                               patience=patience, verbose=1 if progress else 0)
            ok = ~np.isnan(probs).any(axis=1)
        else:
            probs, classes, ok = _in_sample_probs(target, rows, batch_size=batch_size)
        rows, probs = rows[ok].reset_index(drop=True), probs[ok]
        issues = label_issue_table(rows, probs, classes, score_method=score_method, filter_by=filter_by)
        flagged = issues.set_index("path").loc[rows["path"].astype(str), "is_issue"].to_numpy()
        noise = noise_table(rows["label"], probs, classes, flagged=flagged)
        issues.attrs.update(excluded_classes=small, folds=int(folds), seed=int(seed))
    summary.update(n=int(len(issues)), n_issues=int(issues["is_issue"].sum()),
                   classes=list(issues.attrs["classes"]), excluded_classes=issues.attrs["excluded_classes"])
    issues.attrs.update(method=method, run_id=target.run_id, embeddings_run=summary["embeddings_run"],
                        embeddings_source=summary["embeddings_source"])
    if save:
        issues.attrs["noise_file"] = str(write_label_noise(target, noise, summary))
    return issues


def _in_sample_probs(run: Run, rows: pd.DataFrame, *, batch_size: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The run's own probabilities for ``rows`` (restricted to the classes present, renormalised)."""
    from imgcls.evaluation import predict_scores

    kept, scores, _ = predict_scores(run, rows.assign(_row=np.arange(len(rows))), batch_size=batch_size)
    present = sorted(set(rows["label"].astype(str)))
    cols = [run.classes.index(c) for c in present]
    probs = np.full((len(rows), len(present)), np.nan)
    sub = scores[:, cols]
    probs[kept["_row"].to_numpy()] = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    return probs, present, ~np.isnan(probs).any(axis=1)
