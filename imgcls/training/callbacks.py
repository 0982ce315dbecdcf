"""What runs around every epoch: resumable early stopping, checkpoints, scalars, progress.

* :class:`_ResumableEarlyStopping` — Keras ``EarlyStopping`` whose state
  (best value, best epoch, epochs without improvement, best weights) is saved
  after every epoch and restored on resume.
* :class:`_EpochCheckpoint` — after every epoch, the history row, the model
  with its optimizer state, the best weights and ``state.json`` (the commit
  point of a resumable run; see :mod:`imgcls.training.train`).
* :class:`_EpochScalars` — TensorBoard scalars per epoch, without needing the
  ``tensorboard`` package.
* :class:`_ProgressBar` and :class:`_EpochTimer` — one tqdm bar over epochs;
  epoch wall times.
* :func:`print_progress` — a progress message that does not break a tqdm bar.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from imgcls.core.fileio import write_csv, write_json
from imgcls.runs import CHECKPOINTS_DIR, HISTORY_FILE

__all__ = ["print_progress"]

#: The commit point of a run in progress (in ``checkpoints/``).
STATE_FILE = "state.json"


def print_progress(message: str, *, verbose: int = 1) -> None:
    """Print a progress message when ``verbose`` (through ``tqdm.write``, so a bar stays intact).

    Args:
        message: The line to print.
        verbose: Print only when true (a training function's verbosity).
    """
    if verbose:
        try:
            from tqdm.auto import tqdm

            tqdm.write(message)
        except Exception:  # noqa: BLE001
            print(message)


def _learning_rate(model: keras.Model) -> float | None:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # noqa: BLE001 - a schedule or no optimizer
        return None


class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras EarlyStopping whose state can be saved and restored across sessions.

    ``min_epochs``: no stop before that many epochs, while every epoch still
    counts for the best one (Keras' ``start_from_epoch`` would ignore them).
    """

    def __init__(self, *, initial_state: dict | None = None, initial_best_weights=None, min_epochs: int = 0,
                 **kwargs):
        super().__init__(restore_best_weights=True, **kwargs)
        self._initial_state = initial_state
        self._initial_best_weights = initial_best_weights
        self.min_epochs = int(min_epochs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.model.stop_training and epoch + 1 < self.min_epochs:
            self.model.stop_training = False  # patience ran out, but the floor is not reached: go on
            self.stopped_epoch = 0

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
        # CPU seconds of this process (all its threads) while training: the cost table's compute hours.
        self.cpu_before = float(state.get("cpu_time_s", 0.0))
        self.cpu_start = time.process_time()
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
            "cpu_time_s": round(self.cpu_before + time.process_time() - self.cpu_start, 3),
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


class _EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch, in seconds (``times``)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)
