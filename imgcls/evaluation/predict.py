"""Which images an evaluation uses, and a run's predictions on them.

Which images:

* ``split="train" | "val" | "test"``: the rows of that split in the run's
  library snapshot (``splits.parquet``), i.e. exactly what the run was trained
  and tested on. A file moved since is found again by its content hash.
* ``split="benchmark"``: the benchmark set of the library *now* (images
  flagged ``benchmark``, plus their near duplicates, which
  :func:`imgcls.library.assign_splits` also holds out: the same rule training
  uses for its benchmark metric) whose label is one of the run's classes. The
  set is fixed (it only grows when a new class gets its first benchmark
  images), so every run is measured on the same images.

The workspace is optional wherever a run is given as a :class:`~imgcls.runs.Run`
or a run folder: a run folder lives in ``<workspace>/runs/``. A run id,
``"production"`` or ``"latest"`` needs ``workspace=``.

**Scores are calibrated.** A run that stores a temperature
(:attr:`imgcls.runs.Run.temperature`, fitted on its validation split at the
end of training) has its probabilities shown through
:func:`imgcls.core.scores.calibrate`, so a confidence of 0.9 means right about
9 times in 10; ``raw=True`` (:func:`predict_scores`) and the ``raw_confidence``
column (:func:`predict_table`) keep the model's own scores. Runs without a
temperature show raw scores, as before.

TensorFlow is imported only when a model has to predict (:func:`predict_scores`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.scores import calibrate
from imgcls.core.workspace import UNKNOWN_CLASS, Workspace, as_workspace
from imgcls.evaluation.metrics import top_k_labels
from imgcls.runs import Run, RunNotFoundError, load_run

__all__ = ["SPLIT_CHOICES", "split_rows", "predict_scores", "predict_table"]

#: Where an evaluation can take its images from.
SPLIT_CHOICES = ("train", "val", "test", "benchmark")


def _run_and_workspace(run: Run | str | os.PathLike,
                       workspace: Workspace | str | os.PathLike | None) -> tuple[Run, Workspace]:
    """The run and its workspace; without ``workspace`` the one holding the run folder."""
    if workspace is not None:
        ws = as_workspace(workspace)
        return load_run(run, workspace=ws), ws
    try:
        the_run = load_run(run)
    except RunNotFoundError:
        raise
    except ValueError:
        raise ValueError(
            f"Pass `workspace=` to look up run {run!r} (a run id, 'production' or 'latest' is "
            "resolved in a workspace), or pass the Run or its folder."
        ) from None
    return the_run, as_workspace(the_run.path.parent.parent)  # runs/<run_id>/ lives in <workspace>/runs


def _catalog(ws: Workspace, *, splits: bool = False) -> pd.DataFrame:
    """A fresh library catalog; with ``splits`` its ``split`` column too, for
    callers that evaluate several runs on the benchmark set (assigned once)."""
    from imgcls.library import Library

    catalog = Library(ws).scan()
    if splits:
        from imgcls.library import assign_splits

        catalog = assign_splits(catalog)
    return catalog


def _check_split(split: Any) -> str:
    if split not in SPLIT_CHOICES:
        raise ValueError(
            f"`split` must be one of {list(SPLIT_CHOICES)}. Received: split={split!r}. "
            "To evaluate other images, pass them as `rows` (a DataFrame with path and label)."
        )
    return split


def split_rows(
    run: Run | str | os.PathLike,
    split: str = "test",
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The catalog rows (images) an evaluation of ``run`` on ``split`` uses.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`.
        split: ``"train"``, ``"val"``, ``"test"`` (from the run's snapshot) or
            ``"benchmark"`` (the library's benchmark set now: flagged images
            and their near duplicates, as :func:`imgcls.library.assign_splits`).
        workspace: The workspace; needed when ``run`` is a run id,
            ``"production"`` or ``"latest"`` (default: the one holding the run folder).
        classes: Keep only these true classes (default: the run's classes).
        catalog: A fresh library catalog, to save a scan.

    Returns:
        DataFrame [path, relpath, hash, label, split, turns]; for a
        snapshot split a moved file's ``path`` is its current location (found
        by content hash).
    """
    run, ws = _run_and_workspace(run, workspace)
    split = _check_split(split)
    keep = list(run.classes) if classes is None else [str(c) for c in classes]
    cols = ["path", "relpath", "hash", "label", "split", "turns"]
    if split == "benchmark":
        from imgcls.library import assign_splits

        cat = _catalog(ws) if catalog is None else catalog
        if "split" not in cat:
            cat = assign_splits(cat)
        rows = cat[(cat["split"] == "benchmark") & cat["readable"].astype(bool)
                   & cat["label"].isin(keep) & (cat["label"] != UNKNOWN_CLASS)].copy()
    else:
        snap = run.splits
        rows = snap[(snap["split"] == split) & snap["label"].isin(keep)].copy()
        if len(rows) and "hash" in rows:
            exists = np.array([os.path.exists(p) for p in rows["path"]], dtype=bool)
            if not exists.all() or "turns" not in rows:
                cat = _catalog(ws) if catalog is None else catalog
                by_hash = cat.drop_duplicates("hash").set_index("hash")
                if not exists.all():
                    moved = rows.loc[~exists, "hash"].map(by_hash["path"])
                    rows.loc[~exists, "path"] = moved.fillna(rows.loc[~exists, "path"]).to_numpy()
                if "turns" not in rows:
                    rows["turns"] = rows["hash"].map(by_hash["turns"]).fillna(0).astype(int)
    for col in cols:
        if col not in rows:
            rows[col] = 0 if col == "turns" else ""
    rows["turns"] = pd.to_numeric(rows["turns"], errors="coerce").fillna(0).astype(int)
    return rows[cols].sort_values(["label", "relpath", "path"], kind="stable").reset_index(drop=True)


def _rows_arg(rows: Any) -> pd.DataFrame:
    if not isinstance(rows, pd.DataFrame) or not {"path", "label"} <= set(rows.columns):
        raise ValueError(
            "`rows` must be a DataFrame with columns path and label (the true class). "
            f"Received: {type(rows).__name__}"
            + (f" with columns {list(rows.columns)}" if isinstance(rows, pd.DataFrame) else "")
        )
    out = rows.copy()
    for col in ("relpath", "hash", "split"):
        if col not in out:
            out[col] = ""
    if "turns" not in out:
        out["turns"] = 0
    return out.reset_index(drop=True)


def predict_scores(
    run: Run | str | os.PathLike,
    rows: pd.DataFrame,
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    batch_size: int = 64,
    raw: bool = False,
    runtime: Any = "keras",
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Run the model over ``rows`` and return its class probabilities.

    Args:
        run: The run whose model predicts.
        rows: DataFrame with at least ``path`` (optional ``turns``).
        workspace: Needed when ``run`` is a run id.
        batch_size: Images per batch.
        raw: Return the model's own softmax probabilities instead of the
            calibrated ones (the same for a run without a temperature).
        runtime: What runs the model: ``"keras"`` (the run's model), a
            runtime name for :func:`imgcls.runtimes.load_runtime` (its best
            export for ``"openvino"``), or a loaded :class:`imgcls.runtimes.Runtime`.
            Decoding and calibration are the same whatever runs the model.

    Returns:
        ``(kept, scores, skipped)``: the rows that could be decoded (index
        reset), their ``(len(kept), num_classes)`` probabilities in the order
        of ``run.classes`` (calibrated with the run's temperature unless
        ``raw``), and the files that could not be read [path, reason].
    """
    from imgcls.inputs import make_inference_dataset

    run = load_run(run, workspace=workspace)
    classes = run.classes
    if len(rows) == 0:
        return rows.iloc[:0].reset_index(drop=True), np.zeros((0, len(classes))), \
            pd.DataFrame(columns=["path", "reason"])
    if isinstance(runtime, str) and runtime == "keras":
        model = run.model
        size = run.image_size or tuple(int(s) for s in model.input_shape[1:3])
    else:
        from imgcls.runtimes import load_runtime

        rt = runtime if hasattr(runtime, "predict") else load_runtime(run, runtime, mode="throughput")
        size = rt.input_size

        def model(images: Any, training: bool = False) -> np.ndarray:
            return rt.predict(images)
    skipped: list = []
    turns = rows["turns"].fillna(0).astype(int).tolist() if "turns" in rows else None
    ds = make_inference_dataset(list(rows["path"]), image_size=size, batch_size=batch_size,
                                skipped=skipped, turns=turns)
    out = np.full((len(rows), len(classes)), np.nan, dtype=np.float64)
    seen = np.zeros(len(rows), dtype=bool)
    for images, index in ds:
        probs = np.asarray(model(images, training=False), dtype=np.float64)
        idx = np.asarray(index)
        out[idx] = probs
        seen[idx] = True
    kept = rows[seen].reset_index(drop=True)
    scores = out[seen] if raw else calibrate(out[seen], run.temperature)
    return kept, scores, pd.DataFrame(skipped, columns=["path", "reason"])


def _benchmark_scores(run: Run, catalog: pd.DataFrame, ws: Workspace, batch_size: int,
                      *, raw: bool = False) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """:func:`predict_scores` of ``run`` on its benchmark rows of ``catalog``."""
    rows = split_rows(run, "benchmark", workspace=ws, catalog=catalog)
    return predict_scores(run, rows, batch_size=batch_size, raw=raw)


def _table(kept: pd.DataFrame, raw_scores: np.ndarray, classes: list[str], top_k: int,
           *, temperature: float | None = None) -> pd.DataFrame:
    """The per-image prediction table of :func:`predict_table` from rows and their raw scores."""
    k = min(check_int(top_k, "top_k"), len(classes))
    scores = calibrate(raw_scores, temperature)
    names, values = top_k_labels(scores, classes, top_k=k) if len(kept) else (
        np.empty((0, k), dtype=object), np.empty((0, k)))
    table = pd.DataFrame({
        "path": kept["path"].astype(str).to_numpy(),
        "relpath": kept["relpath"].astype(str).to_numpy() if "relpath" in kept else "",
        "split": kept["split"].astype(str).to_numpy() if "split" in kept else "",
        "label": kept["label"].astype(str).to_numpy(),
    })
    table["predicted"] = names[:, 0] if len(kept) else pd.Series(dtype=object)
    table["confidence"] = values[:, 0] if len(kept) else pd.Series(dtype=float)
    table["raw_confidence"] = (raw_scores[np.arange(len(kept)), np.argmax(scores, axis=1)]
                               if len(kept) else pd.Series(dtype=float))
    table["correct"] = (table["predicted"] == table["label"]).astype(bool)
    idx = {c: i for i, c in enumerate(classes)}
    pos = table["label"].map(idx)
    true_score = np.full(len(table), np.nan)
    ok = pos.notna().to_numpy()
    if ok.any():
        true_score[ok] = scores[np.flatnonzero(ok), pos[ok].astype(int).to_numpy()]
    table["true_score"] = true_score
    for j in range(k):
        table[f"top{j + 1}_class"] = names[:, j] if len(kept) else pd.Series(dtype=object)
        table[f"top{j + 1}_score"] = values[:, j] if len(kept) else pd.Series(dtype=float)
    in_top = np.zeros(len(table), dtype=bool)
    for j in range(k):
        in_top |= (table[f"top{j + 1}_class"] == table["label"]).to_numpy(dtype=bool)
    table["in_top_k"] = in_top
    return table


def predict_table(
    run: Run | str | os.PathLike,
    split: str = "test",
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    top_k: int = 3,
    rows: pd.DataFrame | None = None,
    batch_size: int = 64,
) -> pd.DataFrame:
    """One row per image: its true class and the run's ``top_k`` predictions.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`
            (run id, folder, ``"production"``, ``"latest"``).
        split: Which images (see :func:`split_rows`).
        workspace: The workspace; needed when ``run`` is a run id,
            ``"production"`` or ``"latest"`` (default: the one holding the run folder).
        top_k: Predictions to list per image.
        rows: Predict these images instead of a split: a DataFrame with
            ``path`` and ``label`` (e.g. a labelled batch of new images).
        batch_size: Images per inference batch.

    Returns:
        DataFrame [path, relpath, split, label, predicted, confidence,
        raw_confidence, correct, true_score, top1_class, top1_score, ...,
        topk_class, topk_score, in_top_k]; the scores are calibrated with the
        run's temperature (``raw_confidence`` is the model's own top score;
        equal to ``confidence`` for a run without a temperature);
        ``true_score`` is the probability given to the true class (NaN if the
        run does not know that class). Files that could not be decoded are
        left out and listed in ``table.attrs["skipped"]``; ``attrs`` also
        holds ``run_id`` and ``temperature``.
    """
    run, ws = _run_and_workspace(run, workspace)
    data = _rows_arg(rows) if rows is not None else split_rows(run, split, workspace=ws)
    kept, scores, skipped = predict_scores(run, data, batch_size=batch_size, raw=True)
    table = _table(kept, scores, run.classes, top_k, temperature=run.temperature)
    table.attrs["skipped"] = skipped
    table.attrs["run_id"] = run.run_id
    table.attrs["temperature"] = run.temperature
    return table
