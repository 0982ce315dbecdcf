"""One training run on disk: the :class:`Run`, the names of its files, its id.

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
      metrics.json      test / benchmark / training metrics (see :meth:`Run.update_metrics`)
      skipped.csv       files the input pipeline could not decode (path, reason, split)
      checkpoints/      the last epoch checkpoint and the best weights (see imgcls.training)
      logs/             TensorBoard event files

    runs/<run_id>.partial/   a run being trained (or interrupted); never listed as a run
                             (its config is config.partial.json until it is complete)

Run ids sort by creation time and read as what they are:
``20261128-224512-mini_inception-g1-3fa9`` is a generation-1 (from scratch)
``mini_inception`` run created at 22:45:12 UTC on 2026-11-28; ``g2`` and up are
head-swap fine-tuning generations (:func:`new_run_id`).

This module imports Keras only when a model is loaded, so reading run
metadata (e.g. for reports) works without TensorFlow.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from imgcls.core import Workspace, as_workspace, check_int, utcnow
from imgcls.core.fileio import read_json, write_json
from imgcls.runs.integrity import (
    CLASSES_HASH_KEY,
    classes_digest,
    keras_archive_problem,
    output_units,
    read_json_object,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
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
    "check_run_id",
    "partial_dir",
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
    generation = check_int(generation, "generation")
    now = (now or utcnow()).astimezone(_dt.timezone.utc)
    name = re.sub(r"[^A-Za-z0-9_]+", "_", str(model_name)).strip("_") or "model"
    return f"{now:%Y%m%d-%H%M%S}-{name}-g{generation}-{secrets.token_hex(2)}"


def check_run_id(run_id: str) -> str:
    """``run_id`` if it can name a run folder, else ``ValueError``.

    A run id is folder-safe (letters, digits, ``_``, ``-``, ``.``), is not
    ``"production"`` or ``"latest"`` and does not end in ``.partial``.
    """
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
    """The folder of a run that is being trained: ``runs/<run_id>.partial/``.

    Args:
        workspace: The workspace (or its folder; it need not exist yet).
        run_id: The run's id (folder-safe; not "production" or "latest").

    Raises:
        ValueError: ``run_id`` is not a folder-safe run id.
    """
    ws = as_workspace(workspace, must_exist=False)
    return ws.runs / f"{check_run_id(run_id)}{PARTIAL_SUFFIX}"


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
                f"{CLASSES_FILE} inside. Use load_run(run_id, workspace=workspace) or list_runs(workspace)."
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
            self._config = read_json_object(self.path / CONFIG_FILE, dict, "a JSON object")
        return self._config

    @property
    def classes(self) -> list[str]:
        """Ordered class list: output unit ``i`` predicts ``classes[i]``.

        Checked against the hash of the class list recorded in config.json
        when the run was saved (``classes_sha256``), so a classes.json edited
        or swapped afterwards is refused instead of labelling predictions
        wrongly. A run saved before the hash existed loads with a warning.

        Raises:
            ValueError: classes.json is damaged or does not match the recorded hash.
        """
        if self._classes is None:
            classes = read_json_object(self.path / CLASSES_FILE, list, "a JSON list of class names")
            if not all(isinstance(c, str) for c in classes):
                raise ValueError(f"Run {self.run_id!r} is damaged: {CLASSES_FILE} must list class names (strings).")
            recorded = self.config.get(CLASSES_HASH_KEY)
            if recorded is None:
                warnings.warn(
                    f"Run {self.run_id!r} was saved before class lists were bound to the model: its "
                    f"{CLASSES_FILE} cannot be checked against the model. Make sure it is the list the "
                    "model was trained with.",
                    UserWarning,
                    stacklevel=2,
                )
            elif recorded != classes_digest(classes):
                raise ValueError(
                    f"Run {self.run_id!r} is damaged: {CLASSES_FILE} is not the class list its model was "
                    f"trained with (its hash differs from {CLASSES_HASH_KEY} in {CONFIG_FILE}); it was "
                    "edited or replaced, so predictions would get the wrong names. Restore the original "
                    f"{CLASSES_FILE} (output unit i predicts classes[i]) or retrain."
                )
            self._classes = classes
        return self._classes

    @property
    def num_classes(self) -> int:
        """Number of classes (output units)."""
        return len(self.classes)

    @property
    def model_name(self) -> str | None:
        """Registry name of the model (``config["model"]``)."""
        return self.config.get("model")

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        """``(height, width, channels)`` of the model's input."""
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
        """1 for a run from scratch, the parent's generation + 1 for a fine-tuned run."""
        return int(self.config.get("generation") or 1)

    @property
    def throwaway(self) -> bool:
        """True for a throw-away run (never to be promoted to production)."""
        return bool(self.config.get("throwaway", False))

    @property
    def calibration(self) -> dict | None:
        """The temperature scaling fitted at the end of training (``config["calibration"]``), or None.

        ``{"temperature", "fitted_on", "n", "nll_before", "nll_after",
        "ece_before", "ece_after"}``; see :func:`imgcls.core.calibration.fit_temperature`.
        """
        cal = self.config.get("calibration")
        return dict(cal) if isinstance(cal, Mapping) else None

    @property
    def temperature(self) -> float | None:
        """The run's fitted temperature (> 0), or None for a run without one (scores shown raw).

        Apply it with ``imgcls.core.scores.calibrate(probs, run.temperature)``.
        """
        temperature = (self.calibration or {}).get("temperature")
        try:
            temperature = float(temperature)
        except (TypeError, ValueError):
            return None
        return temperature if temperature > 0 and temperature == temperature else None

    @property
    def created(self) -> pd.Timestamp | None:
        """When the run was created (UTC), from config.json."""
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
        """Folder of the epoch checkpoints and best weights."""
        return self.path / CHECKPOINTS_DIR

    @property
    def logs_dir(self) -> Path:
        """TensorBoard log folder (``tensorboard --logdir <this>``)."""
        return self.path / LOGS_DIR

    @property
    def model_path(self) -> Path:
        """The model file (model.keras)."""
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

        A model.keras that is not a Keras archive is refused with that reason
        (before TensorFlow is imported), and the model's output width must
        match the run's class list.

        Args:
            compile: Restore the training configuration (optimizer state,
                loss, metrics) as well. ``False`` is lighter for inference.
        """
        if not self.model_path.is_file():
            raise RunNotFoundError(
                f"Run {self.run_id!r} has no {MODEL_FILE} at {str(self.model_path)!r}."
            )
        problem = keras_archive_problem(self.model_path)
        if problem:
            raise ValueError(f"Run {self.run_id!r}: {str(self.model_path)!r} {problem}. Retrain the run or "
                             "restore the file from a backup.")
        from imgcls.core.quiet import start_tensorflow

        start_tensorflow()  # TensorFlow's start-up lines stay off stderr (a notebook's red boxes)
        import keras

        try:
            model = keras.saving.load_model(self.model_path, compile=compile, safe_mode=True)
        except (zipfile.BadZipFile, KeyError, EOFError) as err:
            raise ValueError(
                f"Run {self.run_id!r}: {str(self.model_path)!r} is not a valid Keras archive "
                f"({type(err).__name__}: it is damaged). Retrain the run or restore the file."
            ) from None
        units = output_units(model)
        if units is not None and units != len(self.classes):
            raise ValueError(
                f"Run {self.run_id!r} is damaged: its model has {units} outputs but {CLASSES_FILE} "
                f"lists {len(self.classes)} classes. Restore the run's own {CLASSES_FILE} or retrain."
            )
        return model

    # --- writing ------------------------------------------------------------
    def update_metrics(self, updates: Mapping[str, Any]) -> dict:
        """Merge ``updates`` into metrics.json (atomically) and return the result.

        Top-level keys are sections (``"test"``, ``"benchmark"``, ``"training"``,
        ...). A section that is a dict in both the file and ``updates`` is
        merged key by key; anything else is replaced.

        Args:
            updates: ``{section: {metric: value}}``.

        Returns:
            The merged metrics.
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
