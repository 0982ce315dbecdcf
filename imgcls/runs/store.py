"""Saving, finding and listing runs: the ``runs/`` folder of a workspace.

A run is one folder ``runs/<run_id>/`` (see :mod:`imgcls.runs.run` for what it
holds); ``runs/<run_id>.partial/`` is a run being trained (or interrupted),
never listed as a run; ``runs/production.json`` names the run in production
(read and written only through :mod:`imgcls.runs.production`).

Writing is atomic: a run is assembled in a temporary folder and renamed into
place as the last step, so a folder ``runs/<run_id>/`` is always complete.

A run is referred to as ``run``: a :class:`~imgcls.runs.Run`, a run folder
path, a run id, ``"production"`` or ``"latest"`` (:func:`load_run`).

This module imports Keras only when a model is saved or loaded, so listing and
reading run metadata (e.g. for reports) works without TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from imgcls.core import Workspace, as_workspace, isoformat
from imgcls.core.checks import shown
from imgcls.core.fileio import read_json, write_csv, write_json, write_parquet
from imgcls.runs.production import production_run_id
from imgcls.runs.provenance import library_summary, versions
from imgcls.runs.run import (
    CHECKPOINTS_DIR,
    CLASSES_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    LOGS_DIR,
    METRICS_FILE,
    MODEL_FILE,
    PARTIAL_CONFIG_FILE,
    PARTIAL_SUFFIX,
    SKIPPED_FILE,
    SPLITS_COLUMNS,
    SPLITS_FILE,
    Run,
    RunNotFoundError,
    check_run_id,
    new_run_id,
)
from imgcls.runs.integrity import CLASSES_HASH_KEY, classes_digest, keras_archive_problem, output_units

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "splits_table",
    "save_run",
    "load_run",
    "list_runs",
    "update_metrics",
    "production_run",
    "run_problem",
    "LIST_COLUMNS",
]

def update_metrics(run: Run | str | os.PathLike, updates: Mapping[str, Any], *,
                   workspace: Workspace | str | os.PathLike | None = None) -> dict:
    """Merge ``updates`` into a run's metrics.json; see :meth:`Run.update_metrics`.

    Args:
        run: A :class:`Run`, or a reference accepted by :func:`load_run`.
        updates: ``{section: {metric: value}}``, e.g. ``{"test": {"accuracy": 0.93, "n": 120}}``.
        workspace: Needed when ``run`` is a run id.

    Returns:
        The merged metrics.
    """
    return load_run(run, workspace=workspace).update_metrics(updates)


# --------------------------------------------------------------------------- save
def save_run(
    workspace: Workspace | str | os.PathLike,
    model: "keras.Model",
    *,
    classes: Iterable[str],
    config: Mapping[str, Any] | None = None,
    history: pd.DataFrame | None = None,
    splits: pd.DataFrame | None = None,
    metrics: Mapping[str, Any] | None = None,
    skipped: pd.DataFrame | None = None,
    run_id: str | None = None,
    parent: "Run | str | None" = None,
    throwaway: bool | None = None,
    staging: str | os.PathLike | None = None,
) -> Run:
    """Write a trained model and everything about it as a new run folder, atomically.

    The run is assembled in ``staging`` (by default a fresh hidden folder in
    ``runs/``; :func:`imgcls.training.train` passes its ``<run_id>.partial``
    folder, which already holds checkpoints/ and logs/) and renamed to
    ``runs/<run_id>/`` as the last step.

    Args:
        workspace: The workspace (or its root folder).
        model: The trained model.
        classes: Ordered class list matching the model's outputs.
        config: What produced the run. Known keys are filled in when missing:
            ``run_id``, ``model`` (defaults to ``model.name``), ``input_shape``,
            ``num_classes``, ``parent``, ``generation``, ``throwaway``,
            ``created`` (UTC ISO time), ``library`` (snapshot summary), ``versions``.
        history: One row per epoch (written to history.csv).
        splits: Library snapshot (path, relpath, hash, label, split, ...).
        metrics: Initial metrics.json content.
        skipped: Files the pipeline could not read (path, reason, split).
        run_id: Folder name; generated with :func:`new_run_id` when None.
        parent: Parent run (or its id) for a fine-tuned run.
        throwaway: Mark a throw-away run (never promoted).
        staging: Folder to assemble the run in (moved into place).

    Returns:
        The saved :class:`Run`, with the given model already attached.

    Raises:
        FileExistsError: ``runs/<run_id>/`` exists already.
    """
    ws = as_workspace(workspace, must_exist=False)
    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("`classes` must name at least one class. Received: classes=[]")
    n_out = output_units(model)
    if n_out is not None and n_out != len(classes):
        raise ValueError(
            f"The model has {n_out} outputs but {len(classes)} classes were given. "
            "Pass the ordered class list the model was trained on."
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"`classes` has duplicates: {classes!r}")

    if splits is not None:
        splits = splits_table(splits)  # validates the columns before anything is written
    config = dict(config or {})
    if isinstance(parent, Run):
        parent = parent.run_id
    if parent is not None:
        config["parent"] = str(parent)
    config.setdefault("parent", None)
    if throwaway is not None:
        config["throwaway"] = bool(throwaway)
    config.setdefault("throwaway", False)
    if "generation" not in config:
        config["generation"] = _generation_after(ws, config["parent"])
    config.setdefault("model", getattr(model, "name", "model"))
    run_id = check_run_id(run_id or config.get("run_id") or new_run_id(
        config["model"], generation=int(config["generation"])))
    config["run_id"] = run_id
    config.setdefault("created", isoformat(timespec="seconds"))
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4:
        config.setdefault("input_shape", [int(s) if s is not None else None for s in shape[1:]])
    config["num_classes"] = len(classes)
    config[CLASSES_HASH_KEY] = classes_digest(classes)  # binds classes.json to this model
    if splits is not None:
        config.setdefault("library", library_summary(splits, library=ws.library))
    config.setdefault("versions", versions())

    final = ws.runs / run_id
    if final.exists():
        raise FileExistsError(
            f"Run folder {str(final)!r} exists already. Pass another `run_id` or None for a new one."
        )
    ws.runs.mkdir(parents=True, exist_ok=True)
    if staging is None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.saving-", dir=ws.runs))
        own_tmp = True
    else:
        tmp = Path(os.fspath(staging))
        tmp.mkdir(parents=True, exist_ok=True)
        own_tmp = False
    try:
        (tmp / CHECKPOINTS_DIR).mkdir(exist_ok=True)
        (tmp / LOGS_DIR).mkdir(exist_ok=True)
        model.save(tmp / MODEL_FILE)
        write_json(tmp / CLASSES_FILE, classes)
        if history is not None:
            write_csv(tmp / HISTORY_FILE, pd.DataFrame(history))
        elif not (tmp / HISTORY_FILE).exists():
            write_csv(tmp / HISTORY_FILE, pd.DataFrame({"epoch": pd.Series(dtype="int64")}))
        if splits is not None:
            write_parquet(tmp / SPLITS_FILE, splits)
        elif not (tmp / SPLITS_FILE).exists():
            write_parquet(tmp / SPLITS_FILE, pd.DataFrame(columns=SPLITS_COLUMNS).astype(str))
        if skipped is not None:
            write_csv(tmp / SKIPPED_FILE, pd.DataFrame(skipped))
        write_json(tmp / METRICS_FILE, dict(metrics or {}))
        # config.json last: inside the staging folder it marks "assembled".
        write_json(tmp / CONFIG_FILE, config)
        (tmp / PARTIAL_CONFIG_FILE).unlink(missing_ok=True)
        os.rename(tmp, final)
    except BaseException:
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    run = Run(final)
    run._model = model
    return run


def splits_table(splits: pd.DataFrame) -> pd.DataFrame:
    """The library snapshot as a run stores it (splits.parquet).

    Args:
        splits: Rows with at least ``path``, ``label`` and ``split``
            (``relpath`` and ``hash`` are filled with "" when missing).

    Returns:
        :data:`SPLITS_COLUMNS` as text, then the flag columns present
        (``turns``, ``staged``, ``benchmark``, ``small_subject``).

    Raises:
        ValueError: A required column is missing.
    """
    missing = [c for c in ("path", "label", "split") if c not in splits.columns]
    if missing:
        raise ValueError(
            f"`splits` must have columns path, label, split (and relpath, hash). Missing: {missing}"
        )
    out = splits.copy()
    for col in ("relpath", "hash"):
        if col not in out.columns:
            out[col] = ""
    first = [c for c in SPLITS_COLUMNS]
    keep = first + [c for c in ("turns", "staged", "benchmark", "small_subject") if c in out.columns]
    out = out[keep].reset_index(drop=True)
    for col in first:
        out[col] = out[col].astype(str)
    return out


def _generation_after(ws: Workspace, parent: str | None) -> int:
    if not parent:
        return 1
    folder = ws.runs / str(parent)
    cfg = read_json(folder / CONFIG_FILE, None)
    if cfg is None:
        return 2
    return int(cfg.get("generation") or 1) + 1


# --------------------------------------------------------------------------- load / list
def _run_ids(ws: Workspace) -> list[str]:
    if not ws.runs.is_dir():
        return []
    return sorted(
        p.name for p in ws.runs.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not p.name.endswith(PARTIAL_SUFFIX)
        and (p / CONFIG_FILE).is_file()
    )


def _run_folders(ws: Workspace) -> list[str]:
    """Every folder of runs/ that should be a finished run (hidden and .partial ones left out)."""
    if not ws.runs.is_dir():
        return []
    return sorted(
        p.name for p in ws.runs.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not p.name.endswith(PARTIAL_SUFFIX)
    )


def _partial_ids(ws: Workspace) -> list[str]:
    if not ws.runs.is_dir():
        return []
    return sorted(
        p.name[: -len(PARTIAL_SUFFIX)] for p in ws.runs.iterdir()
        if p.is_dir() and p.name.endswith(PARTIAL_SUFFIX)
    )


def _available(ws: Workspace, limit: int = 15) -> str:
    ids = _run_ids(ws)
    if not ids:
        text = f"There are no runs in {str(ws.runs)!r} yet; train one with imgcls.training.train(workspace)."
    else:
        shown = ids[-limit:]
        more = f" (and {len(ids) - limit} older)" if len(ids) > limit else ""
        text = f"Available run ids{more}: {', '.join(shown)}."
    partial = _partial_ids(ws)
    if partial:
        text += (
            " Unfinished (interrupted) runs, resumable with "
            f"train(workspace, run_id=...): {', '.join(partial)}."
        )
    return text


def load_run(
    run: "Run | str | os.PathLike",
    *,
    workspace: Workspace | str | os.PathLike | None = None,
) -> Run:
    """Open a run.

    Args:
        run: A :class:`Run` (returned as is), a run folder path, a run id,
            ``"production"`` (the run named in ``runs/production.json``) or
            ``"latest"`` (the most recently created run).
        workspace: The workspace; required for a run id, "production" and "latest".

    Returns:
        The :class:`Run`.

    Raises:
        RunNotFoundError: (a ``ValueError`` and ``FileNotFoundError``) naming
            the available run ids.
    """
    if isinstance(run, Run):
        return run
    if isinstance(run, os.PathLike) or (isinstance(run, str) and os.sep in run):
        path = Path(os.fspath(run)).expanduser()
        if (path / CONFIG_FILE).is_file():
            return Run(path)
        if path.name.endswith(PARTIAL_SUFFIX):
            raise RunNotFoundError(
                f"{str(path)!r} is an unfinished run. Resume it with "
                f"train(workspace, run_id={path.name[:-len(PARTIAL_SUFFIX)]!r})."
            )
        if workspace is None or not isinstance(run, str):
            raise RunNotFoundError(
                f"{str(path)!r} is not a run folder (no {CONFIG_FILE} inside)."
            )
    if not isinstance(run, str) or not run:
        raise ValueError(
            "`run` must be a run id, a run folder path, 'production' or 'latest'. "
            f"Received: run={shown(run)}"
        )
    if workspace is None:
        # A bare run folder name relative to the current directory.
        if Path(run).is_dir() and (Path(run) / CONFIG_FILE).is_file():
            return Run(Path(run))
        raise ValueError(
            f"Pass the workspace to resolve run id {run!r}: load_run({run!r}, workspace=workspace)."
        )
    ws = as_workspace(workspace, must_exist=False)
    if run == "production":
        run_id = production_run_id(ws)
        if run_id is None:
            raise RunNotFoundError(
                f"No run is in production: {str(ws.production_file)!r} does not exist. "
                "Promote a run first (imgcls.evaluation.promote). " + _available(ws)
            )
        if not (ws.runs / run_id / CONFIG_FILE).is_file():
            raise RunNotFoundError(
                f"{str(ws.production_file)!r} names run {run_id!r}, but runs/{run_id}/ is missing. "
                + _available(ws)
            )
        return Run(ws.runs / run_id)
    if run == "latest":
        ids = _run_ids(ws)
        if not ids:
            raise RunNotFoundError(_available(ws))
        runs = [Run(ws.runs / i) for i in ids]
        return max(runs, key=lambda r: (str(_created_or_empty(r)), r.run_id))
    folder = ws.runs / run
    if (folder / CONFIG_FILE).is_file():
        return Run(folder)
    if (ws.runs / f"{run}{PARTIAL_SUFFIX}").is_dir():
        raise RunNotFoundError(
            f"Run {run!r} never finished (its folder is runs/{run}{PARTIAL_SUFFIX}/). "
            f"Resume it with train(workspace, run_id={run!r})."
        )
    raise RunNotFoundError(f"No run {run!r} in {str(ws.runs)!r}. " + _available(ws))


def run_problem(path: str | os.PathLike) -> str:
    """Why the folder is not a sound run ("" when it is), reading metadata only (no TensorFlow).

    Checks that config.json is a JSON object, that classes.json lists class
    names matching the hash recorded when the run was saved, and that
    model.keras is a Keras archive (its ZIP directory is read, not the weights).

    Args:
        path: A run folder.
    """
    folder = Path(os.fspath(path))
    for name in (CONFIG_FILE, CLASSES_FILE, MODEL_FILE):
        if not (folder / name).is_file():
            return f"{name} is missing"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a run saved before the hash existed is sound
            Run(folder).classes
    except ValueError as err:
        return str(err).split(": ", 1)[-1] if str(err).startswith("Run ") else str(err)
    problem = keras_archive_problem(folder / MODEL_FILE)
    return f"{MODEL_FILE} {problem}" if problem else ""


def _created_or_empty(run: Run) -> str:
    try:
        return str(run.config.get("created", ""))
    except ValueError:  # a damaged config.json: never "latest"
        return ""


def production_run(workspace: Workspace | str | os.PathLike) -> "Run | None":
    """The run in production (``runs/production.json``), or None if none is.

    Args:
        workspace: The workspace (an existing folder).

    Raises:
        RunNotFoundError: The pointer names a run whose folder is missing.
    """
    ws = as_workspace(workspace)
    if production_run_id(ws) is None:
        return None
    return load_run("production", workspace=ws)


#: Columns of :func:`list_runs`, in order.
LIST_COLUMNS = [
    "run_id", "created", "model", "n_classes", "parent", "generation", "throwaway",
    "epochs", "best_val_accuracy", "test_accuracy", "benchmark_accuracy", "production", "damaged",
]


def list_runs(workspace: Workspace | str | os.PathLike) -> pd.DataFrame:
    """One row per finished run, oldest first.

    Columns: run_id, created (UTC timestamp), model, n_classes, parent,
    generation, throwaway, epochs, best_val_accuracy, test_accuracy,
    benchmark_accuracy, production (bool), damaged. Unfinished ``.partial``
    runs are not listed. A damaged run folder (config.json that is not a JSON
    object, classes.json missing or not the model's class list, a
    model.keras that is not a Keras archive, a run folder without
    config.json) never stops the listing: it is listed with the reason in
    ``damaged`` ("" for a sound run), named in ``attrs["damaged"]`` and in a
    warning.

    Args:
        workspace: The workspace (its folder need not exist: no runs then).

    Returns:
        One row per run folder, columns :data:`LIST_COLUMNS`.
    """
    ws = as_workspace(workspace, must_exist=False)
    try:
        prod = production_run_id(ws)
    except ValueError as exc:  # a damaged pointer must not hide the runs
        warnings.warn(f"Ignoring the production pointer: {exc}", stacklevel=2)
        prod = None
    rows, damaged = [], {}
    for run_id in _run_folders(ws):
        folder = ws.runs / run_id
        reason = run_problem(folder)
        row = {"run_id": run_id}
        if not reason:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # runs saved before the class hash: listed as sound
                    row = Run(folder).summary()
            except (ValueError, OSError, TypeError, AttributeError) as exc:  # unreadable metadata
                reason, row = str(exc), {"run_id": run_id}
        if reason:
            damaged[run_id] = reason
        row["production"] = run_id == prod
        row["damaged"] = reason
        rows.append(row)
    if damaged:
        warnings.warn(
            f"{len(damaged)} damaged run folder(s) in {str(ws.runs)!r}, listed with the reason in the "
            "`damaged` column: " + "; ".join(f"{k}: {v}" for k, v in damaged.items()),
            UserWarning,
            stacklevel=2,
        )
    df = pd.DataFrame(rows, columns=LIST_COLUMNS)
    if len(df):
        df["created"] = pd.to_datetime(df["created"], utc=True, errors="coerce")
        df = df.sort_values(["created", "run_id"], kind="stable").reset_index(drop=True)
    df["production"] = df["production"].astype(bool)
    df["throwaway"] = df["throwaway"].fillna(False).astype(bool)
    df["damaged"] = df["damaged"].fillna("").astype(str)
    df.attrs["damaged"] = damaged
    return df
