"""The metrics of a run on a split, and of several runs side by side.

:func:`evaluate` runs a model over a split of its library snapshot or the
fixed benchmark set (see :mod:`imgcls.evaluation.predict` for which images)
and returns every metric of :mod:`imgcls.evaluation.metrics` in one dict;
:func:`compare_runs` does it for several runs on the same benchmark images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.workspace import Workspace
from imgcls.evaluation.metrics import DEFAULT_CALIBRATION_BINS, _jsonable, _sub_accuracy, metrics_from_scores
from imgcls.evaluation.predict import (
    SPLIT_CHOICES,
    _benchmark_scores,
    _catalog,
    _check_split,
    _rows_arg,
    _run_and_workspace,
    _table,
    predict_scores,
    split_rows,
)
from imgcls.runs import Run, load_run

__all__ = ["evaluate", "compare_runs"]


def evaluate(
    run: Run | str | os.PathLike,
    split: str = "test",
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    top_k: int = 3,
    rows: pd.DataFrame | None = None,
    classes: Sequence[str] | None = None,
    bins: Any = DEFAULT_CALIBRATION_BINS,
    top_pairs: int | None = 10,
    save: bool = False,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Evaluate a run on a split of its snapshot or on the benchmark set.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`.
        split: ``"test"`` (default), ``"val"``, ``"train"`` or ``"benchmark"``.
        workspace: The workspace; needed when ``run`` is a run id,
            ``"production"`` or ``"latest"`` (default: the one holding the run folder).
        top_k: For top-k accuracy and the prediction table.
        rows: Evaluate these images (DataFrame with path, label) instead.
        classes: Only images whose true class is in this list (e.g. the
            classes two runs share). Default: all of the run's classes.
        bins: Calibration buckets (see :func:`imgcls.evaluation.calibration_table`).
        top_pairs: Most-confused pairs to keep.
        save: Store the summary in the run's metrics.json under ``split``.
        batch_size: Images per inference batch.

    Returns:
        A dict: ``run_id``, ``split``, ``classes`` (the run's),
        ``summary`` (dict: n, accuracy, top_k_accuracy, k, macro_precision,
        macro_recall, macro_f1, ece, ece_raw, temperature, n_skipped,
        n_unknown_class) and the DataFrames ``per_class``, ``confusion``,
        ``confused_pairs``, ``calibration``, ``calibration_raw``,
        ``predictions`` (see :func:`imgcls.evaluation.predict_table`) and
        ``skipped``. Scores are calibrated with the run's temperature
        (:attr:`imgcls.runs.Run.temperature`): ``calibration`` and ``ece``
        describe the calibrated scores, ``calibration_raw`` and ``ece_raw``
        the model's own (the same tables for a run without a temperature,
        whose ``temperature`` is None). Images whose true class the run does not know (only
        possible with ``rows``) count as wrong in accuracy and are left out of
        the per-class tables.

    Raises:
        ValueError: For a bad option, or when there is no image to evaluate.
    """
    run, ws = _run_and_workspace(run, workspace)
    split_name = "custom" if rows is not None else _check_split(split)
    data = _rows_arg(rows) if rows is not None else split_rows(run, split, workspace=ws)
    if classes is not None:
        data = data[data["label"].isin([str(c) for c in classes])].reset_index(drop=True)
    if len(data) == 0:
        hint = (
            "Choose benchmark images first: `imgcls benchmark init` (or imgcls.library.choose_benchmark(Library(workspace)))."
            if split_name == "benchmark" else
            "Check that the run's snapshot has images in this split (run.splits)."
        )
        raise ValueError(
            f"No images to evaluate run {run.run_id!r} on (split={split_name!r}, "
            f"classes={list(classes) if classes is not None else run.classes}). {hint}"
        )
    kept, scores, skipped = predict_scores(run, data, batch_size=batch_size, raw=True)
    return _evaluation(run, split_name, kept, scores, skipped, top_k=top_k, bins=bins,
                       top_pairs=top_pairs, save=save)


def _evaluation(run: Run, split: str, kept: pd.DataFrame, scores: np.ndarray, skipped: pd.DataFrame,
                *, top_k: int, bins: Any, top_pairs: int | None, save: bool) -> dict[str, Any]:
    """The :func:`evaluate` dict from a run's raw scores on ``kept`` (calibrated here)."""
    classes = run.classes
    temperature = run.temperature
    table = _table(kept, scores, classes, top_k, temperature=temperature)
    table.attrs["skipped"] = skipped
    table.attrs["temperature"] = temperature
    known = table["label"].isin(classes).to_numpy()
    result = metrics_from_scores(table["label"][known], scores[known], classes, top_k=top_k, bins=bins,
                                 top_pairs=top_pairs, temperature=temperature)
    summary = result["summary"]
    if temperature is None:  # the same shape for every run: nothing to calibrate
        summary["ece_raw"], summary["temperature"] = summary["ece"], None
        result["calibration_raw"] = result["calibration"]
    if not known.all():  # unknown true classes: always wrong
        summary["accuracy"] = float(table["correct"].mean())
        summary["top_k_accuracy"] = float(table["in_top_k"].mean())
        summary["n"] = int(len(table))
    summary["n_skipped"] = int(len(skipped))
    summary["n_unknown_class"] = int((~known).sum())
    out = {"run_id": run.run_id, "split": split, "classes": list(classes), "summary": summary,
           **{key: result[key] for key in ("per_class", "confusion", "confused_pairs", "calibration",
                                           "calibration_raw")},
           "predictions": table, "skipped": skipped}
    if save and split in SPLIT_CHOICES:
        run.update_metrics({split: {key: _jsonable(v) for key, v in summary.items()}})
    return out


def _runs_arg(runs: Any, workspace: Workspace | str | os.PathLike | None) -> tuple[list[Run], Workspace]:
    """The runs of :func:`compare_runs` and their workspace."""
    if isinstance(runs, (Run, str, os.PathLike)):
        runs = [runs]
    try:
        runs = list(runs)
    except TypeError:
        raise ValueError(f"`runs` must be a list of runs or run ids. Received: {runs!r}") from None
    if not runs:
        raise ValueError("`runs` must name at least one run. Received: []")
    first, ws = _run_and_workspace(runs[0], workspace)
    try:
        out = [first] + [load_run(r, workspace=ws) for r in runs[1:]]
    except TypeError:
        raise ValueError(f"`runs` must be a list of runs or run ids. Received: {runs!r}") from None
    ids = [r.run_id for r in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"`runs` lists a run twice: {ids}")
    return out, ws


def compare_runs(
    runs: Sequence[Run | str | os.PathLike],
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    top_k: int = 3,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Compare runs side by side and per class on the same fixed benchmark set.

    Each run is measured on the benchmark images of its own classes
    (``accuracy``) and, so the numbers are comparable, on the benchmark images
    of the classes *all* runs share (``accuracy_common``). When the class
    lists differ, ``note`` says so and names the classes left out.

    Args:
        runs: Runs or run references (ids, folders, ``"production"``).
        workspace: The workspace whose benchmark set is used; needed when
            the first run is a run id, ``"production"`` or ``"latest"``
            (default: the one holding the first run's folder).
        top_k: For top-k accuracy.
        batch_size: Images per inference batch.

    Returns:
        A dict: ``summary`` (DataFrame, one row per run: run_id, generation,
        parent, throwaway, n_classes, n_images, accuracy, top_k_accuracy,
        macro_f1, n_common, accuracy_common, best_val_accuracy,
        test_accuracy), ``per_class`` (DataFrame indexed by class: the recall
        of each run on that class, one column per run id, NaN where a run does
        not know the class, plus ``support``), ``common_classes`` (list),
        ``note`` (str) and ``evaluations`` (run_id -> :func:`evaluate` dict).
    """
    runs, ws = _runs_arg(runs, workspace)
    catalog = _catalog(ws, splits=True)
    common = sorted(set.intersection(*(set(r.classes) for r in runs)))
    union = sorted(set().union(*(set(r.classes) for r in runs)))
    summary, evals = [], {}
    per_class = pd.DataFrame(index=pd.Index(union, name="class"))
    for run in runs:
        kept, scores, skipped = _benchmark_scores(run, catalog, ws, batch_size, raw=True)
        if len(kept) == 0:
            raise ValueError(
                f"Run {run.run_id!r} has no benchmark images for its classes. Choose them with "
                "`imgcls benchmark init` (a new class: `imgcls benchmark extend`)."
            )
        ev = _evaluation(run, "benchmark", kept, scores, skipped, top_k=top_k,
                         bins=DEFAULT_CALIBRATION_BINS, top_pairs=10, save=False)
        evals[run.run_id] = ev
        acc_common, n_common = _sub_accuracy(kept, scores, run.classes, common)
        info = run.summary()
        summary.append({
            "run_id": run.run_id,
            "generation": run.generation,
            "parent": run.parent,
            "throwaway": run.throwaway,
            "n_classes": run.num_classes,
            "n_images": ev["summary"]["n"],
            "accuracy": ev["summary"]["accuracy"],
            "top_k_accuracy": ev["summary"]["top_k_accuracy"],
            "macro_f1": ev["summary"]["macro_f1"],
            "n_common": n_common,
            "accuracy_common": acc_common,
            "best_val_accuracy": info.get("best_val_accuracy"),
            "test_accuracy": info.get("test_accuracy"),
        })
        per_class[run.run_id] = ev["per_class"]["recall"].where(ev["per_class"]["support"] > 0)
        sup = ev["per_class"]["support"]
        per_class.loc[sup.index, "support"] = sup.where(sup > 0)
    if "support" in per_class:
        per_class["support"] = per_class["support"].fillna(0).astype("int64")
    differing = [c for c in union if c not in common]
    if differing:
        note = (
            f"The runs' class lists differ: accuracy_common compares them on the "
            f"{len(common)} shared classes only; left out: {', '.join(differing)}."
        )
    else:
        note = f"All runs have the same {len(common)} classes; accuracy and accuracy_common agree."
    return {"summary": pd.DataFrame(summary), "per_class": per_class, "common_classes": common,
            "note": note, "evaluations": evals}
