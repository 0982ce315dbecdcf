"""A trained model on disk: model, classes, config, history, splits, metrics, lineage.

Every training run is one folder under ``<workspace>/runs/``::

    runs/<run_id>/
      model.keras       the trained model (native Keras format, optimizer state included)
      classes.json      the ordered class list: output unit i predicts classes[i]
      config.json       everything that produced the run (model name, input_shape, cutoff,
                        seed, batch size, epochs, patience, augmentation, parent run id,
                        generation, throwaway flag, created time UTC, library snapshot
                        summary, imgcls / keras / tensorflow versions)
      splits.parquet    the library snapshot: path, relpath, hash, label, split of every
                        image the run saw (split in train / val / test / benchmark)
      history.csv       one row per epoch (epoch is 1-based; metrics, learning rate, epoch time)
      metrics.json      test / benchmark / training metrics (see :func:`update_metrics`)
      skipped.csv       files the input pipeline could not decode (path, reason, split)
      checkpoints/      the last epoch checkpoint and the best weights (see imgcls.training)
      logs/             TensorBoard event files

    runs/<run_id>.partial/   a run being trained (or interrupted); never listed as a run
                             (its config is config.partial.json until it is complete)
    runs/production.json     {"run_id": ...}: the production pointer (written by the deploy gate)

Run ids sort by creation time and read as what they are:
``20261128-224512-mini_inception-g1-3fa9`` is a generation-1 (from scratch)
``mini_inception`` run created at 22:45:12 UTC on 2026-11-28; ``g2`` and up are
head-swap fine-tuning generations.

Writing is atomic: a run is assembled in a temporary folder and renamed into
place as the last step, so a folder ``runs/<run_id>/`` is always complete.

This module imports Keras only when a model is saved or loaded, so listing and
reading run metadata (e.g. for reports) works without TensorFlow.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import secrets
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import pandas as pd

from imgcls.core.clock import utcnow
from imgcls.core.fileio import read_json, write_csv, write_json, write_parquet
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.runs.production import production_run_id

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "output_units",
    "splits_table",
    "Run",
    "RunNotFoundError",
    "MODEL_FILE",
    "CLASSES_FILE",
    "CONFIG_FILE",
    "HISTORY_FILE",
    "SPLITS_FILE",
    "METRICS_FILE",
    "SKIPPED_FILE",
    "CHECKPOINTS_DIR",
    "LOGS_DIR",
    "SPLITS_COLUMNS",
    "PARTIAL_SUFFIX",
    "PARTIAL_CONFIG_FILE",
    "new_run_id",
    "partial_dir",
    "save_run",
    "load_run",
    "list_runs",
    "lineage",
    "update_metrics",
    "production_run",
    "library_summary",
    "versions",
]

MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.json"
#: The config of a run still being trained (inside ``<run_id>.partial/``); it
#: becomes config.json when the run is complete, so nothing that looks for
#: ``runs/*/config.json`` ever sees an unfinished run.
PARTIAL_CONFIG_FILE = "config.partial.json"
HISTORY_FILE = "history.csv"
SPLITS_FILE = "splits.parquet"
METRICS_FILE = "metrics.json"
SKIPPED_FILE = "skipped.csv"
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"
#: Suffix of the folder of a run that is being trained (or was interrupted).
PARTIAL_SUFFIX = ".partial"

SPLITS_COLUMNS = ["path", "relpath", "hash", "label", "split"]
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_RESERVED_REFS = {"production", "latest"}


class RunNotFoundError(FileNotFoundError, ValueError):
    """A run reference (id, path, "production", "latest") that resolves to no run."""


# --------------------------------------------------------------------------- helpers


def versions() -> dict[str, str]:
    """Versions of imgcls, Keras, TensorFlow, numpy, pandas and Python (for config.json)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("imgcls", "keras", "tensorflow", "numpy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def library_summary(splits: pd.DataFrame | None, *, library: str | os.PathLike | None = None) -> dict:
    """A small JSON-able summary of a library snapshot (for config.json).

    Args:
        splits: Rows with at least ``label`` and ``split`` columns.
        library: The library folder the snapshot was taken from.

    Returns:
        ``{"library", "n_images", "n_classes", "per_split": {split: n},
        "per_class": {label: {split: n}}}``.
    """
    if splits is None or len(splits) == 0:
        return {"library": os.fspath(library) if library else None, "n_images": 0,
                "n_classes": 0, "per_split": {}, "per_class": {}}
    per_split = {str(k): int(v) for k, v in splits["split"].value_counts().sort_index().items()}
    table = pd.crosstab(splits["label"], splits["split"])
    per_class = {
        str(label): {str(s): int(n) for s, n in row.items() if n}
        for label, row in table.iterrows()
    }
    return {
        "library": os.fspath(library) if library else None,
        "n_images": int(len(splits)),
        "n_classes": int(splits["label"].nunique()),
        "per_split": per_split,
        "per_class": per_class,
    }


# --------------------------------------------------------------------------- run ids
def new_run_id(model_name: str, *, generation: int = 1, now: _dt.datetime | None = None) -> str:
    """A new sortable, readable, unique run id.

    Args:
        model_name: Registry name of the model (e.g. ``"mini_inception"``).
        generation: 1 for a run from scratch, parent's generation + 1 for a
            head-swap fine-tuning run.
        now: Creation time (UTC); defaults to the current time.

    Returns:
        e.g. ``"20261128-224512-mini_inception-g1-3fa9"``.
    """
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
        raise ValueError(f"`generation` must be an int >= 1. Received: generation={generation!r}")
    now = (now or utcnow()).astimezone(_dt.timezone.utc)
    name = re.sub(r"[^A-Za-z0-9_]+", "_", str(model_name)).strip("_") or "model"
    return f"{now:%Y%m%d-%H%M%S}-{name}-g{generation}-{secrets.token_hex(2)}"


def _check_run_id(run_id: str) -> str:
    if (
        not isinstance(run_id, str)
        or not _RUN_ID_RE.match(run_id)
        or run_id.endswith(PARTIAL_SUFFIX)
        or run_id in _RESERVED_REFS
    ):
        raise ValueError(
            "`run_id` must be a folder-safe name (letters, digits, '_', '-', '.'; not "
            f"'production'/'latest'; not ending in {PARTIAL_SUFFIX!r}). Received: run_id={run_id!r}. "
            "Leave it as None to get a generated id."
        )
    return run_id


def partial_dir(workspace: Workspace | str | os.PathLike, run_id: str) -> Path:
    """The folder of a run that is being trained: ``runs/<run_id>.partial/``."""
    ws = as_workspace(workspace, must_exist=False)
    return ws.runs / f"{_check_run_id(run_id)}{PARTIAL_SUFFIX}"


# --------------------------------------------------------------------------- Run
class Run:
    """One finished training run on disk (a ``runs/<run_id>/`` folder).

    Metadata is read from the folder on access; the model is loaded on first
    use of :attr:`model` with ``keras.saving.load_model(..., safe_mode=True)``
    and then kept.

    Args:
        path: The run folder.

    Attributes:
        path: The run folder.
        run_id: The folder name.
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(os.fspath(path)).expanduser()
        if not (path / CONFIG_FILE).is_file() or not (path / CLASSES_FILE).is_file():
            raise RunNotFoundError(
                f"{str(path)!r} is not a run folder: expected {CONFIG_FILE} and "
                f"{CLASSES_FILE} inside. Use load_run(run_id, workspace) or list_runs(workspace)."
            )
        self.path = path
        self.run_id = path.name
        self._model = None
        self._config: dict | None = None
        self._classes: list[str] | None = None

    # --- metadata -----------------------------------------------------------
    @property
    def config(self) -> dict:
        """The config that produced the run (config.json)."""
        if self._config is None:
            self._config = read_json(self.path / CONFIG_FILE, {})
        return self._config

    @property
    def classes(self) -> list[str]:
        """Ordered class list: output unit ``i`` predicts ``classes[i]``."""
        if self._classes is None:
            self._classes = list(read_json(self.path / CLASSES_FILE, []))
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def model_name(self) -> str | None:
        return self.config.get("model")

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        shape = self.config.get("input_shape")
        return tuple(shape) if shape else None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(height, width)`` the model expects."""
        shape = self.input_shape
        return (shape[0], shape[1]) if shape else None

    @property
    def parent(self) -> str | None:
        """Run id of the run this one was fine-tuned from (None for a root run)."""
        return self.config.get("parent")

    @property
    def generation(self) -> int:
        return int(self.config.get("generation") or 1)

    @property
    def throwaway(self) -> bool:
        """True for a throw-away run (never to be promoted to production)."""
        return bool(self.config.get("throwaway", False))

    @property
    def created(self) -> pd.Timestamp | None:
        created = self.config.get("created")
        return pd.Timestamp(created) if created else None

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch (``epoch`` is 1-based)."""
        path = self.path / HISTORY_FILE
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        return pd.read_csv(path)

    @property
    def metrics(self) -> dict:
        """Contents of metrics.json (re-read on every access)."""
        return read_json(self.path / METRICS_FILE, {}) or {}

    @property
    def splits(self) -> pd.DataFrame:
        """The library snapshot: path, relpath, hash, label, split of every image used."""
        path = self.path / SPLITS_FILE
        if not path.is_file():
            return pd.DataFrame(columns=SPLITS_COLUMNS)
        return pd.read_parquet(path)

    @property
    def skipped(self) -> pd.DataFrame:
        """Files the input pipeline could not decode during the run (path, reason, split)."""
        path = self.path / SKIPPED_FILE
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame(columns=["path", "reason", "split"])
        return pd.read_csv(path, keep_default_na=False)

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def logs_dir(self) -> Path:
        """TensorBoard log folder (``tensorboard --logdir <this>``)."""
        return self.path / LOGS_DIR

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    # --- model --------------------------------------------------------------
    @property
    def model(self) -> "keras.Model":
        """The trained model, loaded on first access (``safe_mode=True``)."""
        if self._model is None:
            self._model = self.load_model()
        return self._model

    def load_model(self, *, compile: bool = True) -> "keras.Model":
        """Load a fresh copy of the model from model.keras (not cached).

        Args:
            compile: Restore the training configuration (optimizer state,
                loss, metrics) as well. ``False`` is lighter for inference.
        """
        import keras

        if not self.model_path.is_file():
            raise RunNotFoundError(
                f"Run {self.run_id!r} has no {MODEL_FILE} at {str(self.model_path)!r}."
            )
        return keras.saving.load_model(self.model_path, compile=compile, safe_mode=True)

    # --- writing ------------------------------------------------------------
    def update_metrics(self, updates: Mapping[str, Any]) -> dict:
        """Merge ``updates`` into metrics.json (atomically) and return the result.

        Top-level keys are sections (``"test"``, ``"benchmark"``, ``"training"``,
        ...). A section that is a dict in both the file and ``updates`` is
        merged key by key; anything else is replaced.
        """
        if not isinstance(updates, Mapping):
            raise ValueError(
                f"`updates` must be a dict of metric sections. Received: {type(updates).__name__}"
            )
        merged = self.metrics
        for key, value in updates.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        write_json(self.path / METRICS_FILE, merged)
        return merged

    def summary(self) -> dict:
        """One row of :func:`list_runs` for this run (without the production flag)."""
        metrics = self.metrics
        training = metrics.get("training", {}) or {}
        test = metrics.get("test", {}) or {}
        bench = metrics.get("benchmark", {}) or {}
        best_val = training.get("best_val_accuracy")
        if best_val is None:
            hist = self.history
            if "val_accuracy" in hist and len(hist):
                best_val = float(hist["val_accuracy"].max())
        return {
            "run_id": self.run_id,
            "created": self.created,
            "model": self.model_name,
            "n_classes": self.num_classes,
            "parent": self.parent,
            "generation": self.generation,
            "throwaway": self.throwaway,
            "epochs": training.get("epochs_trained"),
            "best_val_accuracy": best_val,
            "test_accuracy": test.get("accuracy"),
            "benchmark_accuracy": bench.get("accuracy"),
        }

    def __repr__(self) -> str:
        return (
            f"Run({self.run_id!r}, model={self.model_name!r}, classes={self.num_classes}, "
            f"parent={self.parent!r}, throwaway={self.throwaway})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.path.resolve() == other.path.resolve()

    def __hash__(self) -> int:
        return hash(str(self.path.resolve()))


def update_metrics(run: Run | str | os.PathLike, updates: Mapping[str, Any], *,
                   workspace: Workspace | str | os.PathLike | None = None) -> dict:
    """Merge ``updates`` into a run's metrics.json; see :meth:`Run.update_metrics`.

    Args:
        run: A :class:`Run`, or a reference accepted by :func:`load_run`.
        updates: ``{section: {metric: value}}``, e.g. ``{"test": {"accuracy": 0.93, "n": 120}}``.
        workspace: Needed when ``run`` is a run id.
    """
    return load_run(run, workspace).update_metrics(updates)


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
    run_id = _check_run_id(run_id or config.get("run_id") or new_run_id(
        config["model"], generation=int(config["generation"])))
    config["run_id"] = run_id
    config.setdefault("created", utcnow().isoformat(timespec="seconds"))
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4:
        config.setdefault("input_shape", [int(s) if s is not None else None for s in shape[1:]])
    config["num_classes"] = len(classes)
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


def output_units(model: Any) -> int | None:
    shape = getattr(model, "output_shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[-1], int):
        return shape[-1]
    return None


def splits_table(splits: pd.DataFrame) -> pd.DataFrame:
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
    ref: "Run | str | os.PathLike",
    workspace: Workspace | str | os.PathLike | None = None,
) -> Run:
    """Open a run.

    Args:
        ref: A :class:`Run` (returned as is), a run folder path, a run id,
            ``"production"`` (the run named in ``runs/production.json``) or
            ``"latest"`` (the most recently created run).
        workspace: The workspace; required for a run id, "production" and "latest".

    Raises:
        RunNotFoundError: (a ``ValueError`` and ``FileNotFoundError``) naming
            the available run ids.
    """
    if isinstance(ref, Run):
        return ref
    if isinstance(ref, os.PathLike) or (isinstance(ref, str) and os.sep in ref):
        path = Path(os.fspath(ref)).expanduser()
        if (path / CONFIG_FILE).is_file():
            return Run(path)
        if path.name.endswith(PARTIAL_SUFFIX):
            raise RunNotFoundError(
                f"{str(path)!r} is an unfinished run. Resume it with "
                f"train(workspace, run_id={path.name[:-len(PARTIAL_SUFFIX)]!r})."
            )
        if workspace is None or not isinstance(ref, str):
            raise RunNotFoundError(
                f"{str(path)!r} is not a run folder (no {CONFIG_FILE} inside)."
            )
    if not isinstance(ref, str) or not ref:
        raise ValueError(
            "`ref` must be a run id, a run folder path, 'production' or 'latest'. "
            f"Received: ref={ref!r}"
        )
    if workspace is None:
        # A bare run folder name relative to the current directory.
        if Path(ref).is_dir() and (Path(ref) / CONFIG_FILE).is_file():
            return Run(Path(ref))
        raise ValueError(
            f"Pass the workspace to resolve run id {ref!r}: load_run({ref!r}, workspace)."
        )
    ws = as_workspace(workspace, must_exist=False)
    if ref == "production":
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
    if ref == "latest":
        ids = _run_ids(ws)
        if not ids:
            raise RunNotFoundError(_available(ws))
        runs = [Run(ws.runs / i) for i in ids]
        return max(runs, key=lambda r: (str(r.config.get("created", "")), r.run_id))
    folder = ws.runs / ref
    if (folder / CONFIG_FILE).is_file():
        return Run(folder)
    if (ws.runs / f"{ref}{PARTIAL_SUFFIX}").is_dir():
        raise RunNotFoundError(
            f"Run {ref!r} never finished (its folder is runs/{ref}{PARTIAL_SUFFIX}/). "
            f"Resume it with train(workspace, run_id={ref!r})."
        )
    raise RunNotFoundError(f"No run {ref!r} in {str(ws.runs)!r}. " + _available(ws))


def production_run(workspace: Workspace | str | os.PathLike) -> "Run | None":
    """The run in production (``runs/production.json``), or None if none is.

    Raises:
        RunNotFoundError: The pointer names a run whose folder is missing.
    """
    ws = as_workspace(workspace)
    if production_run_id(ws) is None:
        return None
    return load_run("production", ws)


LIST_COLUMNS = [
    "run_id", "created", "model", "n_classes", "parent", "generation", "throwaway",
    "epochs", "best_val_accuracy", "test_accuracy", "benchmark_accuracy", "production",
]


def list_runs(workspace: Workspace | str | os.PathLike) -> pd.DataFrame:
    """One row per finished run, oldest first.

    Columns: run_id, created (UTC timestamp), model, n_classes, parent,
    generation, throwaway, epochs, best_val_accuracy, test_accuracy,
    benchmark_accuracy, production (bool). Unfinished ``.partial`` runs are
    not listed.
    """
    ws = as_workspace(workspace, must_exist=False)
    try:
        prod = production_run_id(ws)
    except ValueError as exc:  # a damaged pointer must not hide the runs
        warnings.warn(f"Ignoring the production pointer: {exc}", stacklevel=2)
        prod = None
    rows = []
    for run_id in _run_ids(ws):
        try:
            row = Run(ws.runs / run_id).summary()
        except (ValueError, OSError):  # unreadable metadata: still list it
            row = {"run_id": run_id}
        row["production"] = run_id == prod
        rows.append(row)
    df = pd.DataFrame(rows, columns=LIST_COLUMNS)
    if len(df):
        df["created"] = pd.to_datetime(df["created"], utc=True, errors="coerce")
        df = df.sort_values(["created", "run_id"], kind="stable").reset_index(drop=True)
    df["production"] = df["production"].astype(bool)
    df["throwaway"] = df["throwaway"].fillna(False).astype(bool)
    return df


def lineage(run: "Run | str | os.PathLike", workspace: Workspace | str | os.PathLike | None = None) -> list[str]:
    """Run ids from ``run`` back to its root: ``[run, parent, grandparent, ..., root]``.

    Parents are looked up in the same ``runs/`` folder. If an ancestor's
    folder was deleted, its id is still listed and the walk stops there.
    """
    run = load_run(run, workspace)
    chain = [run.run_id]
    runs_dir = run.path.parent
    parent = run.parent
    while parent:
        if parent in chain:
            raise ValueError(f"Run lineage has a cycle: {' -> '.join(chain + [parent])}")
        chain.append(parent)
        cfg = read_json(runs_dir / parent / CONFIG_FILE, None)
        if cfg is None:
            break
        parent = cfg.get("parent")
    return chain
