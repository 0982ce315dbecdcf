"""Train a model until the validation metric plateaus; the model bake-off; history plots.

:func:`train` turns the library into a run folder (see :mod:`imgcls.runs`):

1. scan the library (or take the given ``catalog``), pick the classes with at
   least ``cutoff`` readable images, assign the stable hash-based splits;
2. build the input pipelines (train with augmentation, val / test without);
3. build the model from the registry, or take ``initial_model`` (the head-swap
   fine-tuning loop passes its model and the parent run id here);
4. compile (Adam, sparse categorical cross-entropy, accuracy + top-k) and fit
   until the validation metric stops improving for ``patience`` epochs
   (``EarlyStopping(restore_best_weights=True)``);
5. evaluate the best weights on the test split and the fixed benchmark set and
   save everything as ``runs/<run_id>/``.

**Checkpoints and resuming.** A run in progress lives in
``runs/<run_id>.partial/``. At the start it holds ``config.partial.json``,
``classes.json`` and ``splits.parquet`` (the library snapshot), and after every
epoch ``checkpoints/`` gets:

* ``epoch-NNNN.keras`` — the model *with its optimizer state* after epoch NNNN;
* ``best-epoch-NNNN.weights.h5`` — the weights of the best epoch so far;
* ``state.json`` — the commit point, written last and atomically: epochs done,
  the names of the two files above, the early-stopping state (best value, best
  epoch, epochs without improvement), the history rows, files skipped so far,
  and the wall time. Older checkpoint files are deleted after it is written.

``history.csv`` and the TensorBoard ``logs/`` grow beside them. If training
is interrupted (Ctrl-C, a crash, a killed kernel), call ``train(workspace,
run_id=<the same id>)`` again: with ``resume=True`` (the default) it reloads
the last checkpoint, restores the optimizer and the early-stopping state and
continues at the next epoch with the saved classes, splits snapshot and
settings (only ``max_epochs``, ``patience`` and ``min_delta`` may be changed
on resume). The history never repeats an epoch. When training is done the
partial folder is completed and renamed to ``runs/<run_id>/`` in one step, so
a run folder without ``.partial`` is always complete. ``resume=False`` deletes
an unfinished folder of that id and starts over. Data order and augmentation
draws after a resume are not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from imgcls.core.checks import check_int
from imgcls.core.clock import utcnow
from imgcls.core.fileio import read_json, write_csv, write_json, write_parquet
from imgcls.core.workspace import UNKNOWN_CLASS, Workspace, as_workspace
from imgcls.inputs import (
    make_augmentation,
    make_dataset,
    parse_image_size,
    resolve_cache,
)
from imgcls.library import Library, assign_splits, training_rows
from imgcls.models import DEFAULT_MODEL, create_model, get_model_spec, list_models
from imgcls.runs import (
    CHECKPOINTS_DIR,
    CLASSES_FILE,
    HISTORY_FILE,
    LOGS_DIR,
    PARTIAL_CONFIG_FILE,
    SPLITS_FILE,
    Run,
    library_summary,
    load_run,
    new_run_id,
    output_units,
    partial_dir,
    save_run,
    splits_table,
    versions,
)

__all__ = [
    "DEFAULT_MAX_EPOCHS",
    "DEFAULT_PATIENCE",
    "DEFAULT_MIN_DELTA",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_TOP_K",
    "train",
    "bakeoff",
    "plot_bakeoff",
    "plot_history",
    "evaluate_rows",
]

#: Upper bound on epochs; the write-up's from-scratch runs plateau after ~120.
DEFAULT_MAX_EPOCHS = 150
#: Epochs without improvement of the validation metric before stopping.
DEFAULT_PATIENCE = 10
#: Smallest change of the validation metric that counts as an improvement.
DEFAULT_MIN_DELTA = 0.0
DEFAULT_LEARNING_RATE = 1e-3
#: k of the top-k accuracy (capped at the number of classes).
DEFAULT_TOP_K = 5

STATE_FILE = "state.json"
SKIPPED_COLUMNS = ["path", "reason", "split"]


# =========================================================================== checks
def _check_float(value: Any, name: str, low: float, *, strict: bool = False, hint: str = "") -> float:
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if ok:
        ok = math.isfinite(float(value)) and (float(value) > low if strict else float(value) >= low)
    if not ok:
        op = ">" if strict else ">="
        raise ValueError(f"`{name}` must be a number {op} {low}{hint}. Received: {name}={value!r}")
    return float(value)


def _check_verbose(verbose: Any) -> int:
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(
            "`verbose` must be 0 (quiet), 1 (one progress bar over epochs; a widget in notebooks) "
            f"or 2 (Keras' per-batch progress bar). Received: verbose={verbose!r}"
        )
    return int(verbose)


def _image_size_arg(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    try:
        return parse_image_size(image_size)  # the pipeline's parsing: one int, (h, w) or (h, w, 3)
    except ValueError:
        raise ValueError(
            "`image_size` must be None (the model's default), one int for a square, or "
            f"(height, width). Received: image_size={image_size!r}"
        ) from None


def _augmentation_arg(augmentation: Any, seed: int) -> tuple[Any, dict | None]:
    """Return (augmentation layer or None, JSON-able settings or None)."""
    if augmentation is None or augmentation is False:
        return None, None
    params = inspect.signature(make_augmentation).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    if augmentation is True:
        settings = {**defaults, "seed": seed}
        return make_augmentation(**settings), settings
    if isinstance(augmentation, Mapping):
        unknown = sorted(set(augmentation) - set(params))
        if unknown:
            raise ValueError(
                f"Unknown augmentation setting(s) {unknown}. Accepted: {sorted(params)} "
                "(see imgcls.inputs.make_augmentation)."
            )
        settings = {**defaults, "seed": seed, **dict(augmentation)}
        return make_augmentation(**settings), settings
    if callable(augmentation):
        return augmentation, {"custom": getattr(augmentation, "name", type(augmentation).__name__)}
    raise ValueError(
        "`augmentation` must be True (flip, slight rotation, slight zoom), False (none), a dict of "
        "imgcls.inputs.make_augmentation settings (e.g. {'rotation': 5, 'zoom': 0.05}) or a "
        f"keras layer. Received: augmentation={augmentation!r}"
    )




def _say(verbose: int, message: str) -> None:
    if verbose:
        try:
            from tqdm.auto import tqdm

            tqdm.write(message)
        except Exception:  # noqa: BLE001
            print(message)


# =========================================================================== data
def _counts_table(catalog: pd.DataFrame) -> pd.Series:
    cat = catalog[catalog["label"] != UNKNOWN_CLASS]
    if "readable" in cat.columns:
        cat = cat[cat["readable"].astype(bool)]
    return cat["label"].value_counts().sort_values(ascending=False)


def _no_classes_error(counts: pd.Series, cutoff: int, n_found: int) -> ValueError:
    if len(counts) == 0:
        listing = "the library has no readable labelled images"
    else:
        shown = ", ".join(f"{label} {n}" for label, n in counts.head(15).items())
        more = f" (and {len(counts) - 15} more classes)" if len(counts) > 15 else ""
        listing = f"readable images per class: {shown}{more}"
    suggestion = ""
    if len(counts) >= 2:
        lower = int(counts.iloc[1])
        suggestion = f" Lower the cutoff, e.g. train(workspace, cutoff={lower}) trains the top {int((counts >= lower).sum())} classes;"
    what = "No class has" if n_found == 0 else f"Only {n_found} class has"
    return ValueError(
        f"{what} at least cutoff={cutoff} readable images, and training needs 2 or more classes "
        f"({listing}).{suggestion} add images to the library; or try the zoo sample "
        "(imgcls.sample.build_sample(path), or `imgcls sample --workspace PATH`)."
    )


def _prepare_data(
    ws: Workspace,
    *,
    catalog: pd.DataFrame | None,
    classes: Sequence[str] | None,
    cutoff: int | None,
) -> tuple[pd.DataFrame, list[str], int]:
    """Catalog -> (snapshot rows with split, ordered classes, cutoff used)."""
    if cutoff is not None:
        cutoff = check_int(cutoff, "cutoff", 1, " (minimum readable images for a class to train)")
    used_cutoff = ws.cutoff if cutoff is None else cutoff
    if catalog is None:
        catalog = Library(ws).scan()
    elif not isinstance(catalog, pd.DataFrame):
        raise ValueError(f"`catalog` must be a DataFrame from Library.scan(). Received: {type(catalog).__name__}")
    missing = [c for c in ("path", "label", "hash") if c not in catalog.columns]
    if missing:
        raise ValueError(
            f"`catalog` must have the columns of Library.scan(); missing {missing}. "
            f"Received columns: {list(catalog.columns)}"
        )
    counts = _counts_table(catalog)
    if classes is None:
        chosen = sorted(counts[counts >= used_cutoff].index.astype(str).tolist())
        if len(chosen) < 2:
            raise _no_classes_error(counts, used_cutoff, len(chosen))
    else:
        if isinstance(classes, str):
            raise ValueError(f"`classes` must be a list of class names, not one string. Received: classes={classes!r}")
        chosen = [str(c) for c in classes]
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"`classes` must not repeat names. Received: classes={chosen!r}")
        if UNKNOWN_CLASS in chosen:
            raise ValueError(f"{UNKNOWN_CLASS!r} is not a trainable class; remove it from `classes`.")
        absent = [c for c in chosen if c not in counts.index]
        if absent:
            raise ValueError(
                f"`classes` names classes with no readable images in the library: {absent}. "
                f"Classes with images: {sorted(counts.index.astype(str))}."
            )
        if len(chosen) < 2:
            raise ValueError(f"Training needs at least 2 classes. Received: classes={chosen!r}")
    with_split = catalog if "split" in catalog.columns else assign_splits(catalog)
    rows = training_rows(with_split, chosen).copy()
    if "turns" not in rows.columns:
        rows["turns"] = 0
    rows["turns"] = rows["turns"].fillna(0).astype(int)
    return rows.reset_index(drop=True), list(chosen), int(used_cutoff)


def _split_rows(snapshot: pd.DataFrame, split: str) -> pd.DataFrame:
    return snapshot[snapshot["split"] == split].reset_index(drop=True)


def _check_split_sizes(snapshot: pd.DataFrame, classes: list[str]) -> None:
    train_rows = _split_rows(snapshot, "train")
    val_rows = _split_rows(snapshot, "val")
    sizes = snapshot.groupby("split").size().to_dict()
    if len(train_rows) == 0 or len(val_rows) == 0:
        which = "training" if len(train_rows) == 0 else "validation"
        raise ValueError(
            f"The {which} split is empty (images per split: {sizes}; classes: {classes}). "
            "Training needs images in both train and val: add images to the classes, or "
            "lower the cutoff to include larger classes."
        )


# =========================================================================== model
def _compile(model: keras.Model, *, learning_rate: float, num_classes: int, top_k: int) -> int:
    k = max(1, min(int(top_k), num_classes))
    model.compile(
        # XLA off: on CPU its compile time (tens of seconds for Inception-style
        # graphs) outweighs any gain per step.
        jit_compile=False,
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=k, name="top_k_accuracy"),
        ],
    )
    return k


def _model_input_size(model: keras.Model) -> tuple[int, int] | None:
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[2]:
        return int(shape[1]), int(shape[2])
    return None


@contextlib.contextmanager
def _quiet_fit_warnings():
    """Hide Keras' per-epoch "input ran out of data" warning.

    The pipelines drop unreadable files, so their length is unknown to Keras
    and it warns at the end of every epoch although nothing is wrong.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        yield


def _learning_rate(model: keras.Model) -> float | None:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # noqa: BLE001 - a schedule or no optimizer
        return None


# =========================================================================== callbacks
class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras EarlyStopping whose state can be saved and restored across sessions."""

    def __init__(self, *, initial_state: dict | None = None, initial_best_weights=None, **kwargs):
        super().__init__(restore_best_weights=True, **kwargs)
        self._initial_state = initial_state
        self._initial_best_weights = initial_best_weights

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        state = self._initial_state
        if state and state.get("best") is not None:
            self.best = float(state["best"])
            self.best_epoch = int(state["best_epoch"]) - 1  # stored 1-based
            self.wait = int(state.get("wait", 0))
            self.best_weights = self._initial_best_weights

    def state(self) -> dict:
        best = None if self.best is None else float(self.best)
        return {"best": best, "best_epoch": int(self.best_epoch) + 1, "wait": int(self.wait)}


class _EpochScalars(keras.callbacks.Callback):
    """TensorBoard scalars per epoch (``logs/train``, ``logs/validation``; tags ``epoch_<metric>``).

    Written with ``tf.summary.write`` and the scalars plugin metadata, so it
    works whether or not the ``tensorboard`` package is installed (Keras'
    TensorBoard callback needs it); view with ``tensorboard --logdir <run>/logs``.
    """

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def write(self, epoch: int, values: Mapping[str, float]) -> None:
        from tensorflow.core.framework import summary_pb2

        meta = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        for key, value in values.items():
            if value is None or not np.isfinite(value):
                continue
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self._writer(split).as_default():
                tf.summary.write(f"epoch_{name}", tf.constant(float(value), tf.float32), step=epoch, metadata=meta)

    def close(self) -> None:
        for w in self._writers.values():
            w.flush()
            w.close()
        self._writers.clear()

    def on_train_end(self, logs=None):
        self.close()


class _EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: history row, checkpoint (model + optimizer), best weights, state.json."""

    def __init__(self, folder: Path, *, early: _ResumableEarlyStopping, state: dict,
                 skipped: dict[str, list], scalars: _EpochScalars | None, session_start: float):
        super().__init__()
        self.folder = Path(folder)
        self.ckpt = self.folder / CHECKPOINTS_DIR
        self.early = early
        self.state = state
        self.skipped = skipped
        self.scalars = scalars
        self.session_start = session_start
        self.wall_before = float(state.get("wall_time_s", 0.0))
        self._t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        number = epoch + 1
        row = {"epoch": number}
        row.update({k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0})
        row["learning_rate"] = _learning_rate(self.model)
        row["epoch_time_s"] = round(elapsed, 4)
        history = [r for r in self.state.get("history", []) if int(r["epoch"]) < number]
        history.append(row)
        self.ckpt.mkdir(parents=True, exist_ok=True)

        model_file = f"epoch-{number:04d}.keras"
        self.model.save(self.ckpt / model_file)
        early = self.early.state()
        if early["best_epoch"] == number:
            best_file = f"best-epoch-{number:04d}.weights.h5"
            self.model.save_weights(self.ckpt / best_file)
        else:
            best_file = self.state.get("best_weights")
        self.state.update({
            "epoch": number,
            "checkpoint": model_file,
            "best_weights": best_file,
            "early_stopping": early,
            "stopped": bool(self.model.stop_training),
            "history": history,
            "skipped": _skipped_records(self.skipped),
            "wall_time_s": round(self.wall_before + time.perf_counter() - self.session_start, 3),
        })
        write_json(self.ckpt / STATE_FILE, self.state)  # the commit point
        write_csv(self.folder / HISTORY_FILE, _order_history(pd.DataFrame(history)))
        keep = {STATE_FILE, model_file, best_file}
        for p in self.ckpt.iterdir():
            if p.name not in keep:
                p.unlink(missing_ok=True) if p.is_file() else shutil.rmtree(p, ignore_errors=True)
        if self.scalars is not None:
            values = {k: v for k, v in row.items() if k != "epoch" and v is not None}
            self.scalars.write(number, values)


class _ProgressBar(keras.callbacks.Callback):
    """One tqdm bar over epochs (a widget in notebooks, a text bar in terminals)."""

    def __init__(self, total: int, initial: int, desc: str):
        super().__init__()
        self.total, self.initial, self.desc = total, initial, desc
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=self.initial, desc=self.desc, unit="epoch", dynamic_ncols=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is None:
            return
        logs = logs or {}
        shown = {}
        for key, label in (("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val_loss"), ("val_accuracy", "val_acc")):
            if key in logs:
                shown[label] = f"{float(logs[key]):.4f}"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_train_end(self, logs=None):
        self.close()


_HISTORY_ORDER = ["epoch", "loss", "accuracy", "top_k_accuracy", "val_loss", "val_accuracy",
                  "val_top_k_accuracy", "learning_rate", "epoch_time_s"]


def _order_history(df: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in _HISTORY_ORDER if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def _skipped_records(skipped: Mapping[str, list]) -> list[list[str]]:
    out, seen = [], set()
    for split, pairs in skipped.items():
        for path, reason in pairs:
            if (path, split) not in seen:
                seen.add((path, split))
                out.append([str(path), str(reason), split])
    return out


# =========================================================================== evaluation
def evaluate_rows(
    model: keras.Model,
    rows: pd.DataFrame,
    classes: Sequence[str],
    *,
    image_size: tuple[int, int] | None = None,
    batch_size: int = 32,
    top_k: int = DEFAULT_TOP_K,
    skipped: list | None = None,
) -> dict:
    """Accuracy, top-k accuracy and loss of ``model`` on catalog ``rows``.

    Rows whose label is not in ``classes`` are left out; files that cannot be
    decoded are skipped (appended to ``skipped``) and not counted in ``n``.

    Returns:
        ``{"n", "accuracy", "top_k_accuracy", "top_k", "loss"}`` (metrics
        ``None`` when ``n == 0``).
    """
    classes = [str(c) for c in classes]
    k = max(1, min(int(top_k), len(classes)))
    rows = rows[rows["label"].astype(str).isin(classes)].reset_index(drop=True)
    empty = {"n": 0, "accuracy": None, "top_k_accuracy": None, "top_k": k, "loss": None}
    if len(rows) == 0:
        return empty
    size = image_size or _model_input_size(model)
    ds = make_dataset(rows, classes, image_size=size, batch_size=batch_size, training=False,
                      skipped=skipped if skipped is not None else [])
    ys, ps = [], []
    for x, y in ds:
        ps.append(np.asarray(model.predict_on_batch(x)))
        ys.append(np.asarray(y))
    if not ys:
        return empty
    y = np.concatenate(ys).astype(int)
    p = np.concatenate(ps).astype(np.float64)
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return {
        "n": int(len(y)),
        "accuracy": float(np.mean(top[:, 0] == y)),
        "top_k_accuracy": float(np.mean((top == y[:, None]).any(axis=1))),
        "top_k": k,
        "loss": float(np.mean(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)))),
    }


# =========================================================================== train
def train(
    workspace: Workspace | str | os.PathLike,
    *,
    model: str | None = None,
    cutoff: int | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
    min_delta: float | None = None,
    monitor: str = "val_accuracy",
    batch_size: int = 32,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    seed: int = 0,
    image_size: int | tuple[int, int] | None = None,
    augmentation: bool | Mapping[str, Any] | Any = True,
    dropout: float | None = None,
    top_k: int = DEFAULT_TOP_K,
    throwaway: bool = False,
    initial_model: keras.Model | None = None,
    parent: Run | str | None = None,
    classes: Sequence[str] | None = None,
    catalog: pd.DataFrame | None = None,
    run_id: str | None = None,
    resume: bool = True,
    cache: bool | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    verbose: int = 1,
) -> Run:
    """Train until the validation metric plateaus and save the run.

    Args:
        workspace: The workspace (or its folder).
        model: Registry name (:func:`imgcls.models.list_models`); default
            ``DEFAULT_MODEL`` ("mini_inception"), or the parent run's model
            when ``initial_model`` and ``parent`` are given.
        cutoff: Minimum readable images per class; default ``workspace.cutoff``
            (40). A throw-away run uses a lower one (35).
        max_epochs: Upper bound on epochs (default 150).
        patience: Epochs without improvement of ``monitor`` before stopping
            (default 10); the best epoch's weights are kept.
        min_delta: Smallest change of ``monitor`` counted as improvement (default 0).
        monitor: ``"val_accuracy"`` (default) or ``"val_loss"``.
        batch_size: Images per training step.
        learning_rate: Adam learning rate.
        seed: Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``),
            the weight initialisation, the shuffle and the augmentation.
        image_size: Model input ``(height, width)`` or one int; default the
            model's own input size (e.g. 64 for mini_inception, 299 for inception_v4).
        augmentation: ``True`` (flip, +-10 degrees rotation, +-10% zoom;
            small subjects zoomed in only), ``False``, a dict of
            :func:`imgcls.inputs.make_augmentation` settings, or a keras layer.
        dropout: Dropout before the output layer (model's default when None).
        top_k: k of the top-k accuracy (capped at the number of classes).
        throwaway: Mark the run as throw-away (never promoted to production).
        initial_model: Start from this model instead of building one (the
            fine-tuning loop passes the parent's model with a new head). Its
            output size must equal the number of classes. It is recompiled
            (fresh Adam); all its weights are trained.
        parent: The run ``initial_model`` came from (a :class:`Run` or run id);
            recorded as lineage (generation = parent's + 1).
        classes: Train on exactly these classes (in this order) instead of
            the ones meeting the cutoff.
        catalog: A catalog from ``Library.scan()`` to use instead of scanning;
            an existing ``split`` column is kept (same splits across runs).
        run_id: Folder name of the run; generated when None. Give the id of
            an interrupted run to resume it.
        resume: Resume ``runs/<run_id>.partial/`` if it has a checkpoint;
            ``False`` deletes it and starts over.
        cache: Keep the decoded train and val images in memory after the
            first epoch, so later epochs skip the decode: ``"auto"`` (default)
            when they fit in :data:`imgcls.inputs.AUTO_CACHE_BYTES` (1 GiB)
            and a quarter of the free memory, ``True`` always, ``False``
            never. They need ``n * h * w * 3`` bytes (the sample: 37 MB).
            The choice made is kept in the run's config.
        callbacks: Extra Keras callbacks (called after the built-in ones).
        verbose: 0 quiet; 1 one progress bar over epochs (default); 2 Keras'
            own per-batch progress bar.

    Returns:
        The saved :class:`~imgcls.runs.Run` (model loaded), with test and
        benchmark metrics in ``run.metrics`` and unreadable files in ``run.skipped``.

    Raises:
        ValueError: Bad arguments, fewer than 2 classes meeting the cutoff
            (the message lists the counts), an empty train or val split, or a
            resume that conflicts with the saved run.
        FileExistsError: ``run_id`` names a finished run.
        KeyboardInterrupt: Re-raised after noting how to resume.
    """
    session_start = time.perf_counter()
    ws = as_workspace(workspace)
    verbose = _check_verbose(verbose)
    seed = check_int(seed, "seed", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    learning_rate = _check_float(learning_rate, "learning_rate", 0.0, strict=True, hint=", e.g. 1e-3")
    top_k = check_int(top_k, "top_k", 1)
    if monitor not in ("val_accuracy", "val_loss"):
        raise ValueError(f"`monitor` must be 'val_accuracy' or 'val_loss'. Received: monitor={monitor!r}")
    if not (isinstance(cache, bool) or (isinstance(cache, str) and cache == "auto")):
        raise ValueError(f"`cache` must be True, False or 'auto'. Received: cache={cache!r}")
    if max_epochs is not None:
        max_epochs = check_int(max_epochs, "max_epochs", 1)
    if patience is not None:
        patience = check_int(patience, "patience", 0)
    if min_delta is not None:
        min_delta = _check_float(min_delta, "min_delta", 0.0)
    if model is not None:
        get_model_spec(model)  # fails early with the known names
    if initial_model is not None and not isinstance(initial_model, keras.Model):
        raise ValueError(f"`initial_model` must be a keras.Model. Received: {type(initial_model).__name__}")
    size_arg = _image_size_arg(image_size)
    extra_callbacks = list(callbacks or [])

    keras.utils.set_random_seed(seed)

    # ---------------------------------------------------------------- resume?
    state: dict | None = None
    if run_id is not None:
        folder = partial_dir(ws, run_id)  # validates the id
        if (ws.runs / run_id).exists():
            raise FileExistsError(
                f"Run {run_id!r} is finished already (runs/{run_id}/). Open it with "
                f"load_run({run_id!r}, workspace), or pass another run_id (or None) to train a new run."
            )
        if folder.exists():
            saved_state = read_json(folder / CHECKPOINTS_DIR / STATE_FILE, None)
            if resume and saved_state and (folder / PARTIAL_CONFIG_FILE).is_file():
                state = saved_state
            else:
                why = "resume=False" if not resume else "it has no finished epoch to resume from"
                _say(verbose, f"Starting run {run_id} over: deleting {folder} ({why}).")
                shutil.rmtree(folder)
    if state is not None:
        return _resume(ws, folder, state, model=model, max_epochs=max_epochs, patience=patience,
                       min_delta=min_delta, extra_callbacks=extra_callbacks, verbose=verbose,
                       session_start=session_start, initial_model=initial_model, classes=classes)

    # ---------------------------------------------------------------- new run
    snapshot, classes, used_cutoff = _prepare_data(ws, catalog=catalog, classes=classes, cutoff=cutoff)
    _check_split_sizes(snapshot, classes)
    snapshot = splits_table(snapshot)  # exactly what splits.parquet holds (and a resume reads)

    parent_id, generation, parent_model = None, 1, None
    if parent is not None:
        parent_run = load_run(parent, ws)
        parent_id, generation, parent_model = parent_run.run_id, parent_run.generation + 1, parent_run.model_name
    if model is not None:
        model_name = model
    elif initial_model is not None:
        model_name = parent_model or getattr(initial_model, "name", None) or "model"
    else:
        model_name = DEFAULT_MODEL

    if initial_model is not None:
        n_out = output_units(initial_model)
        if n_out != len(classes):
            raise ValueError(
                f"`initial_model` has {n_out} outputs but {len(classes)} classes are being trained "
                f"({classes}). Swap its head first: imgcls.training.swap_head(model, {len(classes)}), "
                "or pass `classes=` matching its outputs."
            )
        model_size = _model_input_size(initial_model)
        if size_arg is not None and model_size is not None and size_arg != model_size:
            raise ValueError(
                f"`image_size`={size_arg} differs from the input size of `initial_model` {model_size}. "
                "Leave image_size=None to use the model's size."
            )
        size = size_arg or model_size
        if size is None:
            raise ValueError("`initial_model` accepts any image size; pass image_size=(height, width).")
        net = initial_model
    else:
        spec = get_model_spec(model_name)
        size = size_arg or tuple(spec.default_input_shape[:2])
        net = create_model(model_name, len(classes), input_shape=(size[0], size[1], 3),
                           dropout=dropout, seed=seed)
    aug_layer, aug_settings = _augmentation_arg(augmentation, seed)
    k = _compile(net, learning_rate=learning_rate, num_classes=len(classes), top_k=top_k)

    use_cache = bool(resolve_cache(cache, int(snapshot["split"].isin(["train", "val"]).sum()), size))

    run_id = run_id or new_run_id(model_name, generation=generation)
    folder = partial_dir(ws, run_id)
    folder.mkdir(parents=True, exist_ok=False)
    config = {
        "run_id": run_id,
        "model": model_name,
        "input_shape": [int(size[0]), int(size[1]), 3],
        "num_classes": len(classes),
        "cutoff": used_cutoff,
        "seed": seed,
        "batch_size": batch_size,
        "max_epochs": max_epochs if max_epochs is not None else DEFAULT_MAX_EPOCHS,
        "patience": patience if patience is not None else DEFAULT_PATIENCE,
        "min_delta": min_delta if min_delta is not None else DEFAULT_MIN_DELTA,
        "monitor": monitor,
        "optimizer": {"name": "adam", "learning_rate": learning_rate},
        "loss": "sparse_categorical_crossentropy",
        "top_k": k,
        "dropout": dropout,
        "augmentation": aug_settings,
        "cache": use_cache,
        "initial_model": None if initial_model is None else getattr(initial_model, "name", "model"),
        "parent": parent_id,
        "generation": generation,
        "throwaway": bool(throwaway),
        "created": utcnow().isoformat(timespec="seconds"),
        "workspace": str(ws.root),
        "library": library_summary(snapshot, library=ws.library),
        "versions": versions(),
    }
    write_json(folder / CLASSES_FILE, classes)
    write_parquet(folder / SPLITS_FILE, snapshot)
    write_json(folder / PARTIAL_CONFIG_FILE, config)
    (folder / CHECKPOINTS_DIR).mkdir(exist_ok=True)
    (folder / LOGS_DIR).mkdir(exist_ok=True)
    state = {"epoch": 0, "history": [], "skipped": [], "wall_time_s": 0.0, "sessions": 0}
    _say(verbose, f"Run {run_id}: {model_name} on {len(classes)} classes, {len(snapshot)} images "
                  f"({_split_text(snapshot)}), input {size[0]}x{size[1]}; folder {folder}")
    return _fit_and_save(ws, folder, config, classes, snapshot, net, aug_layer, state,
                         max_epochs=config["max_epochs"], patience=config["patience"],
                         min_delta=config["min_delta"], extra_callbacks=extra_callbacks,
                         verbose=verbose, session_start=session_start)


def _split_text(snapshot: pd.DataFrame) -> str:
    sizes = snapshot.groupby("split").size()
    order = ["train", "val", "test", "benchmark"]
    return ", ".join(f"{s} {int(sizes[s])}" for s in order if s in sizes.index)


def _resume(ws, folder, state, *, model, max_epochs, patience, min_delta, extra_callbacks, verbose,
            session_start, initial_model, classes):
    config = read_json(folder / PARTIAL_CONFIG_FILE)
    saved_classes = list(read_json(folder / CLASSES_FILE))
    if model is not None and model != config.get("model"):
        raise ValueError(
            f"Run {config['run_id']!r} was started with model={config.get('model')!r}, not {model!r}. "
            "Resume it without `model=`, or pass resume=False to start this run id over."
        )
    if classes is not None and [str(c) for c in classes] != saved_classes:
        raise ValueError(
            f"Run {config['run_id']!r} was started with classes {saved_classes}; resuming keeps them. "
            "Pass resume=False to start over with other classes."
        )
    if initial_model is not None:
        warnings.warn("Resuming from the last checkpoint; `initial_model` is ignored.", stacklevel=3)
    snapshot = pd.read_parquet(folder / SPLITS_FILE)
    if "turns" in snapshot.columns:
        snapshot["turns"] = snapshot["turns"].fillna(0).astype(int)
    ckpt = folder / CHECKPOINTS_DIR
    net = keras.saving.load_model(ckpt / state["checkpoint"], safe_mode=True)
    for key, value in (("max_epochs", max_epochs), ("patience", patience), ("min_delta", min_delta)):
        if value is not None:
            config[key] = value
    aug_settings = config.get("augmentation")
    if aug_settings and "custom" in aug_settings:
        warnings.warn(
            f"Run {config['run_id']!r} used a custom augmentation layer that cannot be restored; "
            "resuming with the default augmentation.", stacklevel=3)
        aug_settings = True
    aug_layer, _ = _augmentation_arg(aug_settings or False, int(config["seed"]))
    keras.utils.set_random_seed(int(config["seed"]) + int(state["epoch"]))
    _say(verbose, f"Resuming run {config['run_id']} after epoch {state['epoch']} "
                  f"(best {config['monitor']} {state.get('early_stopping', {}).get('best')} at epoch "
                  f"{state.get('early_stopping', {}).get('best_epoch')}).")
    return _fit_and_save(ws, folder, config, saved_classes, snapshot, net, aug_layer, state,
                         max_epochs=int(config["max_epochs"]), patience=int(config["patience"]),
                         min_delta=float(config["min_delta"]), extra_callbacks=extra_callbacks,
                         verbose=verbose, session_start=session_start)


def _fit_and_save(ws, folder: Path, config: dict, classes: list[str], snapshot: pd.DataFrame,
                  net: keras.Model, aug_layer, state: dict, *, max_epochs: int, patience: int,
                  min_delta: float, extra_callbacks: list, verbose: int, session_start: float) -> Run:
    size = (int(config["input_shape"][0]), int(config["input_shape"][1]))
    batch_size = int(config["batch_size"])
    seed = int(config["seed"])
    cache = bool(config.get("cache", False))
    skipped: dict[str, list] = {"train": [], "val": [], "test": [], "benchmark": []}
    for path, reason, split in state.get("skipped", []):
        skipped.setdefault(split, []).append((path, reason))
    state["sessions"] = int(state.get("sessions", 0)) + 1
    state.setdefault("resumed_at", [])
    if state["epoch"]:
        state["resumed_at"].append(int(state["epoch"]))

    train_ds = make_dataset(_split_rows(snapshot, "train"), classes, image_size=size, batch_size=batch_size,
                            training=True, augmentation=aug_layer, seed=seed, cache=cache,
                            skipped=skipped["train"])
    val_ds = make_dataset(_split_rows(snapshot, "val"), classes, image_size=size, batch_size=batch_size,
                          training=False, cache=cache, skipped=skipped["val"])

    ckpt = folder / CHECKPOINTS_DIR
    early_state = state.get("early_stopping")
    best_weights = None
    if early_state and state.get("best_weights") and (ckpt / state["best_weights"]).is_file():
        current = net.get_weights()
        net.load_weights(ckpt / state["best_weights"])
        best_weights = net.get_weights()
        net.set_weights(current)
    early = _ResumableEarlyStopping(
        monitor=config["monitor"], mode="max" if config["monitor"].endswith("accuracy") else "min",
        patience=patience, min_delta=min_delta, initial_state=early_state,
        initial_best_weights=best_weights,
    )
    if early_state and early_state.get("wait", 0) >= patience and state["epoch"] > 0:
        state["stopped"] = True  # a smaller patience given on resume stops at once
    scalars = _EpochScalars(folder / LOGS_DIR)
    checkpoint = _EpochCheckpoint(folder, early=early, state=state, skipped=skipped, scalars=scalars,
                                  session_start=session_start)
    cbs: list = [early, checkpoint]
    bar = None
    if verbose == 1:
        bar = _ProgressBar(max_epochs, int(state["epoch"]), desc=config["run_id"])
        cbs.append(bar)
    cbs.extend(extra_callbacks)

    initial_epoch = int(state["epoch"])
    fit_needed = initial_epoch < max_epochs and not state.get("stopped")
    try:
        if fit_needed:
            with _quiet_fit_warnings():
                net.fit(train_ds, validation_data=val_ds, epochs=max_epochs, initial_epoch=initial_epoch,
                        callbacks=cbs, verbose=1 if verbose == 2 else 0, shuffle=False)
    except KeyboardInterrupt as exc:
        done = int(state.get("epoch", 0))
        note = (
            f"Training of run {config['run_id']!r} was interrupted after epoch {done}; its checkpoint is in "
            f"{folder}. Resume with train(workspace, run_id={config['run_id']!r})."
        )
        exc.add_note(note)
        if bar is not None:
            bar.close()
        if verbose:
            print(note, file=sys.stderr)
        raise
    finally:
        scalars.close()
        if bar is not None:
            bar.close()

    # ------------------------------------------------------------ finish
    history = _order_history(pd.DataFrame(state.get("history", [])))
    if len(history) == 0:
        raise RuntimeError(f"Run {config['run_id']!r} finished without any epoch; nothing to save.")
    if state.get("best_weights") and (ckpt / state["best_weights"]).is_file():
        net.load_weights(ckpt / state["best_weights"])
    early_state = state.get("early_stopping") or {}
    best_epoch = int(early_state.get("best_epoch") or history["epoch"].iloc[-1])
    best_row = history[history["epoch"] == best_epoch]
    best_row = best_row.iloc[0] if len(best_row) else history.iloc[-1]
    epochs_trained = int(history["epoch"].max())
    stopped_early = bool(state.get("stopped")) and epochs_trained < max_epochs

    k = int(config.get("top_k", DEFAULT_TOP_K))
    test = evaluate_rows(net, _split_rows(snapshot, "test"), classes, image_size=size,
                         batch_size=batch_size, top_k=k, skipped=skipped["test"])
    bench = evaluate_rows(net, _split_rows(snapshot, "benchmark"), classes, image_size=size,
                          batch_size=batch_size, top_k=k, skipped=skipped["benchmark"])
    wall = checkpoint.wall_before + (time.perf_counter() - session_start)
    epoch_times = history["epoch_time_s"].astype(float) if "epoch_time_s" in history else pd.Series(dtype=float)
    skipped_df = pd.DataFrame(_skipped_records(skipped), columns=SKIPPED_COLUMNS)
    sizes = snapshot.groupby("split").size()
    metrics = {
        "training": {
            "epochs_trained": epochs_trained,
            "best_epoch": best_epoch,
            "epochs_to_plateau": best_epoch,
            "stopped_early": stopped_early,
            "monitor": config["monitor"],
            "best_val_accuracy": _float(best_row.get("val_accuracy")),
            "best_val_loss": _float(best_row.get("val_loss")),
            "best_val_top_k_accuracy": _float(best_row.get("val_top_k_accuracy")),
            "train_accuracy_at_best": _float(best_row.get("accuracy")),
            "wall_time_s": round(wall, 3),
            "mean_epoch_time_s": _float(epoch_times.mean()) if len(epoch_times) else None,
            "sessions": int(state["sessions"]),
            "resumed_at_epochs": list(state.get("resumed_at", [])),
        },
        "test": test,
        "benchmark": bench,
        "data": {
            "n_train": int(sizes.get("train", 0)),
            "n_val": int(sizes.get("val", 0)),
            "n_test": int(sizes.get("test", 0)),
            "n_benchmark": int(sizes.get("benchmark", 0)),
            "n_skipped": int(len(skipped_df)),
        },
    }
    if len(skipped_df):
        shown = "; ".join(f"{Path(p).name} ({r})" for p, r, _ in skipped_df.head(5).itertuples(index=False))
        more = f" and {len(skipped_df) - 5} more" if len(skipped_df) > 5 else ""
        message = (
            f"{len(skipped_df)} image file(s) could not be read during run {config['run_id']} and were "
            f"skipped: {shown}{more}. See run.skipped; rescan the library (Library.scan) to see them "
            "as unreadable."
        )
        warnings.warn(message, stacklevel=3)
        _say(verbose, message)
    run = save_run(ws, net, classes=classes, config=config, history=history, splits=snapshot,
                   metrics=metrics, skipped=skipped_df, run_id=config["run_id"], staging=folder)
    _say(verbose, _finish_text(run, metrics))
    return run


def _float(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _finish_text(run: Run, metrics: dict) -> str:
    t, te, be = metrics["training"], metrics["test"], metrics["benchmark"]

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    return (
        f"Run {run.run_id} saved: {t['epochs_trained']} epochs (best epoch {t['best_epoch']}), "
        f"val acc {pct(t['best_val_accuracy'])}, test acc {pct(te['accuracy'])} (n={te['n']}), "
        f"benchmark acc {pct(be['accuracy'])} (n={be['n']}), {t['wall_time_s']:.0f} s."
    )


# =========================================================================== bake-off
BAKEOFF_COLUMNS = [
    "model", "input_size", "params", "epochs", "val_accuracy", "val_top_k_accuracy", "val_loss",
    "train_accuracy", "mean_epoch_time_s", "images_per_s_batch1", "images_per_s_batch32",
]


def _inference_speed(net: keras.Model, size: tuple[int, int], batch: int, *, min_time: float,
                     seed: int) -> float:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, size=(batch, size[0], size[1], 3)).astype(np.float32)
    with tf.device("/CPU:0"):
        for _ in range(2):  # trace + warm up
            net.predict_on_batch(x)
        n, start = 0, time.perf_counter()
        while True:
            net.predict_on_batch(x)
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time and n >= 3:
                break
    return batch * n / elapsed


def bakeoff(
    workspace: Workspace | str | os.PathLike,
    models: Sequence[str] | None = None,
    *,
    epochs: int = 3,
    cutoff: int | None = None,
    batch_size: int = 32,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    seed: int = 0,
    image_size: int | tuple[int, int] | None = None,
    augmentation: bool | Mapping[str, Any] = True,
    classes: Sequence[str] | None = None,
    catalog: pd.DataFrame | None = None,
    cache: bool | str = "auto",
    timing_seconds: float = 1.0,
    verbose: int = 1,
) -> pd.DataFrame:
    """Train each candidate model briefly on the same data and splits; tabulate the trade-offs.

    Nothing is saved as a run. Each model is trained from scratch with the
    same seed for ``epochs`` epochs at its own default input size (or
    ``image_size`` for all), then timed for inference on the CPU.

    Args:
        workspace: The workspace.
        models: Registry names; default every registered model (inception_v4
            at 299x299 is slow on CPU: pass a list to leave it out).
        epochs: Epochs per model.
        cutoff, classes, catalog, batch_size, learning_rate, seed, image_size,
            augmentation: As in :func:`train`.
        cache: Keep decoded images in memory across epochs: ``"auto"``
            (default, when they fit), ``True`` or ``False`` (see :func:`train`).
        timing_seconds: Minimum time each inference measurement runs.
        verbose: 0 quiet, 1 progress bar per model, 2 Keras' progress bar.

    Returns:
        One row per model: model, input_size ("HxW"), params, epochs,
        val_accuracy (best epoch), val_top_k_accuracy, val_loss (at the best
        epoch), train_accuracy (last epoch), mean_epoch_time_s (excluding the
        first epoch, which includes graph tracing, when there are two or
        more), images_per_s_batch1, images_per_s_batch32 (CPU inference).
    """
    ws = as_workspace(workspace)
    verbose = _check_verbose(verbose)
    epochs = check_int(epochs, "epochs", 1)
    seed = check_int(seed, "seed", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    learning_rate = _check_float(learning_rate, "learning_rate", 0.0, strict=True)
    timing_seconds = _check_float(timing_seconds, "timing_seconds", 0.0)
    size_arg = _image_size_arg(image_size)
    if models is None:
        models = list_models()
    if isinstance(models, str):
        models = [models]
    models = list(models)
    if not models:
        raise ValueError(f"`models` must name at least one model. Known models: {', '.join(list_models())}")
    specs = [get_model_spec(m) for m in models]  # unknown names fail before any training

    snapshot, classes, _ = _prepare_data(ws, catalog=catalog, classes=classes, cutoff=cutoff)
    _check_split_sizes(snapshot, classes)
    train_rows, val_rows = _split_rows(snapshot, "train"), _split_rows(snapshot, "val")
    rows = []
    for spec in specs:
        size = size_arg or tuple(spec.default_input_shape[:2])
        keras.utils.set_random_seed(seed)
        net = create_model(spec.name, len(classes), input_shape=(size[0], size[1], 3), seed=seed)
        _compile(net, learning_rate=learning_rate, num_classes=len(classes), top_k=DEFAULT_TOP_K)
        aug_layer, _ = _augmentation_arg(augmentation, seed)
        skipped: list = []
        train_ds = make_dataset(train_rows, classes, image_size=size, batch_size=batch_size, training=True,
                                augmentation=aug_layer, seed=seed, cache=cache, skipped=skipped)
        val_ds = make_dataset(val_rows, classes, image_size=size, batch_size=batch_size, training=False,
                              cache=cache, skipped=skipped)
        timer = _EpochTimer()
        cbs: list = [timer]
        bar = None
        if verbose == 1:
            bar = _ProgressBar(epochs, 0, desc=f"bake-off {spec.name}")
            cbs.append(bar)
        try:
            with _quiet_fit_warnings():
                hist = net.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=cbs,
                               verbose=1 if verbose == 2 else 0, shuffle=False).history
        finally:
            if bar is not None:
                bar.close()
        val_acc = np.asarray(hist.get("val_accuracy", [np.nan]), dtype=float)
        best = int(np.nanargmax(val_acc)) if np.isfinite(val_acc).any() else len(val_acc) - 1
        times = timer.times[1:] if len(timer.times) > 1 else timer.times
        rows.append({
            "model": spec.name,
            "input_size": f"{size[0]}x{size[1]}",
            "params": int(net.count_params()),
            "epochs": epochs,
            "val_accuracy": _float(val_acc[best]),
            "val_top_k_accuracy": _float(hist.get("val_top_k_accuracy", [np.nan] * (best + 1))[best]),
            "val_loss": _float(hist.get("val_loss", [np.nan] * (best + 1))[best]),
            "train_accuracy": _float(hist.get("accuracy", [np.nan])[-1]),
            "mean_epoch_time_s": float(np.mean(times)),
            "images_per_s_batch1": _inference_speed(net, size, 1, min_time=timing_seconds, seed=seed),
            "images_per_s_batch32": _inference_speed(net, size, 32, min_time=timing_seconds, seed=seed),
        })
        _say(verbose, f"{spec.name}: val acc {rows[-1]['val_accuracy']}, "
                      f"{rows[-1]['mean_epoch_time_s']:.1f} s/epoch, "
                      f"{rows[-1]['images_per_s_batch1']:.0f} img/s @1, {rows[-1]['images_per_s_batch32']:.0f} img/s @32")
        if skipped:
            warnings.warn(f"bake-off {spec.name}: {len(skipped)} unreadable file(s) skipped: "
                          f"{[Path(p).name for p, _ in skipped[:5]]}", stacklevel=2)
        del net
    return pd.DataFrame(rows, columns=BAKEOFF_COLUMNS)


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)


# =========================================================================== plots
_SLIDE_RC = {
    "font.size": 13,
    "axes.titlesize": 15,
    "axes.titleweight": "bold",
    "axes.labelsize": 13,
    "legend.fontsize": 12,
    "legend.frameon": False,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 2.5,
}
_TRAIN_COLOR, _VAL_COLOR, _ACCENT = "#1f77b4", "#ff7f0e", "#2ca02c"


def _history_frame(run_or_history: Any) -> tuple[pd.DataFrame, str, int | None]:
    title, best = "Training history", None
    obj = run_or_history
    if isinstance(obj, (str, os.PathLike)):
        obj = load_run(obj)
    if isinstance(obj, Run):
        title = f"{obj.run_id}"
        best = (obj.metrics.get("training") or {}).get("best_epoch")
        df = obj.history
    elif isinstance(obj, keras.callbacks.History):
        df = pd.DataFrame(obj.history)
        df.insert(0, "epoch", np.asarray(obj.epoch, dtype=int) + 1)
    elif isinstance(obj, pd.DataFrame):
        df = obj.copy()
    elif isinstance(obj, Mapping):
        df = pd.DataFrame(dict(obj))
    else:
        raise ValueError(
            "`run_or_history` must be a Run, a run folder path, a history DataFrame (history.csv), "
            f"a dict of metric lists or a keras History. Received: {type(run_or_history).__name__}"
        )
    if len(df) == 0:
        raise ValueError("The history is empty: there is no epoch to plot.")
    if "epoch" not in df.columns:
        df.insert(0, "epoch", np.arange(1, len(df) + 1))
    return df, title, best


def plot_history(run_or_history: Any, *, title: str | None = None):
    """Loss and accuracy per epoch, train vs validation, slide-styled.

    Args:
        run_or_history: A :class:`Run`, a run folder path, a history
            DataFrame (``run.history``), a dict of lists, or a keras ``History``.
        title: Figure title (default: the run id).

    Returns:
        A ``matplotlib.figure.Figure`` (not registered with pyplot; a notebook
        shows it as the cell's value; ``fig.savefig(path)`` writes it).
    """
    import matplotlib
    from matplotlib.figure import Figure

    df, default_title, best = _history_frame(run_or_history)
    if best is None and "val_accuracy" in df and df["val_accuracy"].notna().any():
        best = int(df.loc[df["val_accuracy"].idxmax(), "epoch"])
    with matplotlib.rc_context(_SLIDE_RC):
        fig = Figure(figsize=(12, 4.8), layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, metric, label in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
            plotted = False
            for key, name, color in ((metric, "train", _TRAIN_COLOR), (f"val_{metric}", "validation", _VAL_COLOR)):
                if key in df and df[key].notna().any():
                    ax.plot(df["epoch"], df[key], label=name, color=color,
                            marker="o" if len(df) <= 30 else None, markersize=4)
                    plotted = True
            if best is not None:
                ax.axvline(best, color="grey", linestyle="--", linewidth=1.5, label=f"best epoch ({best})")
            ax.set_title(label)
            ax.set_xlabel("Epoch")
            if metric == "accuracy":
                ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
            if plotted:
                ax.legend(loc="best")
            else:
                ax.text(0.5, 0.5, f"no {metric} recorded", ha="center", va="center", transform=ax.transAxes)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        fig.suptitle(title or default_title, fontsize=16, fontweight="bold")
    return fig


def plot_bakeoff(df: pd.DataFrame, *, title: str = "Model bake-off"):
    """Validation accuracy, CPU inference speed and epoch time per model, slide-styled.

    Args:
        df: The table from :func:`bakeoff`.
        title: Figure title.

    Returns:
        A ``matplotlib.figure.Figure`` with three panels.
    """
    import matplotlib
    from matplotlib.figure import Figure

    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"`df` must be the DataFrame returned by bakeoff(). Received: {type(df).__name__}")
    need = ["model", "val_accuracy", "images_per_s_batch1", "images_per_s_batch32", "mean_epoch_time_s"]
    missing = [c for c in need if c not in df.columns]
    if missing or len(df) == 0:
        raise ValueError(
            f"`df` must be a non-empty table from bakeoff() with columns {need}. "
            f"Missing: {missing}; rows: {len(df)}"
        )
    names = df["model"].astype(str).tolist()
    x = np.arange(len(names))
    with matplotlib.rc_context(_SLIDE_RC):
        fig = Figure(figsize=(15, 5), layout="constrained")
        ax_acc, ax_speed, ax_time = fig.subplots(1, 3)

        acc = df["val_accuracy"].astype(float).to_numpy()
        bars = ax_acc.bar(x, acc, color=_ACCENT)
        ax_acc.bar_label(bars, labels=[f"{100 * v:.0f}%" if np.isfinite(v) else "n/a" for v in acc], padding=3)
        ax_acc.set_ylim(0, 1.1)
        ax_acc.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        ax_acc.set_title("Validation accuracy")

        width = 0.38
        b1 = ax_speed.bar(x - width / 2, df["images_per_s_batch1"].astype(float), width, label="batch 1",
                          color=_TRAIN_COLOR)
        b32 = ax_speed.bar(x + width / 2, df["images_per_s_batch32"].astype(float), width, label="batch 32",
                           color=_VAL_COLOR)
        for bars_ in (b1, b32):
            ax_speed.bar_label(bars_, fmt="%.0f", padding=3, fontsize=10)
        ax_speed.set_yscale("log")
        ax_speed.set_title("CPU inference (images/s)")
        ax_speed.legend(loc="upper right")

        t = df["mean_epoch_time_s"].astype(float)
        bars = ax_time.bar(x, t, color="#9467bd")
        ax_time.bar_label(bars, fmt="%.1f s", padding=3)
        ax_time.set_title("Training time per epoch")
        ax_time.set_ylabel("seconds")

        for ax in (ax_acc, ax_speed, ax_time):
            ax.set_xticks(x, names, rotation=20, ha="right")
            ax.grid(axis="x", visible=False)
        fig.suptitle(title, fontsize=17, fontweight="bold")
    return fig
