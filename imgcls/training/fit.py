"""Fitting: the resumable fit-and-save of a run, and a brief fit for side-by-side comparisons.

:func:`imgcls.training.train` prepares a run (or reloads an interrupted one)
and hands it to ``_fit_and_save``: fit until the validation metric plateaus
with a checkpoint after every epoch, then evaluate the best weights on the
test split and the benchmark set, fit the temperature that calibrates their
scores on the validation split (``config.json["calibration"]``, see
:func:`imgcls.core.calibration.fit_calibration`) and save the run folder.

:func:`fit_epochs` fits a compiled model for a fixed number of epochs on a
snapshot's train split, validating on its val split, and saves nothing (the
model bake-off in :mod:`imgcls.experiments` uses it).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from imgcls.core.calibration import fit_calibration
from imgcls.core.checks import check_int
from imgcls.inputs import make_dataset
from imgcls.runs import CHECKPOINTS_DIR, LOGS_DIR, Run, save_run
from imgcls.training.callbacks import (
    _EpochCheckpoint,
    _EpochScalars,
    _EpochTimer,
    _order_history,
    _ProgressBar,
    _ResumableEarlyStopping,
    _skipped_records,
    print_progress,
)
from imgcls.training.data import _split_rows
from imgcls.training.metrics import labelled_scores, model_metrics
from imgcls.training.options import DEFAULT_TOP_K, _augmentation_arg, _model_input_size, check_verbose

__all__ = ["fit_epochs"]

SKIPPED_COLUMNS = ["path", "reason", "split"]


@contextlib.contextmanager
def _quiet_fit_warnings():
    """Hide Keras' per-epoch "input ran out of data" warning.

    The pipelines drop unreadable files, so their length is unknown to Keras
    and it warns at the end of every epoch although nothing is wrong.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        yield


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
    min_epochs = int(config.get("min_epochs") or 0)  # runs saved before the option: 0
    early = _ResumableEarlyStopping(
        monitor=config["monitor"], mode="max" if config["monitor"].endswith("accuracy") else "min",
        patience=patience, min_delta=min_delta, initial_state=early_state,
        initial_best_weights=best_weights, min_epochs=min_epochs,
    )
    if early_state and early_state.get("wait", 0) >= patience and state["epoch"] >= max(1, min_epochs):
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
    test = model_metrics(net, _split_rows(snapshot, "test"), classes, image_size=size,
                         batch_size=batch_size, top_k=k, skipped=skipped["test"])
    bench = model_metrics(net, _split_rows(snapshot, "benchmark"), classes, image_size=size,
                          batch_size=batch_size, top_k=k, skipped=skipped["benchmark"])
    val_labels, val_probs = labelled_scores(net, _split_rows(snapshot, "val"), classes, image_size=size,
                                            batch_size=batch_size)
    config["calibration"] = fit_calibration(val_probs, val_labels, fitted_on="val") if len(val_labels) else None
    wall = checkpoint.wall_before + (time.perf_counter() - session_start)
    cpu = checkpoint.cpu_before + (time.process_time() - checkpoint.cpu_start)
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
            "cpu_time_s": round(cpu, 3),
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
        print_progress(message, verbose=verbose)
    run = save_run(ws, net, classes=classes, config=config, history=history, splits=snapshot,
                   metrics=metrics, skipped=skipped_df, run_id=config["run_id"], staging=folder)
    print_progress(_finish_text(run, metrics), verbose=verbose)
    if config["calibration"]:
        c = config["calibration"]
        print_progress(f"Scores calibrated: temperature {c['temperature']:.2f} fitted on {c['n']} val images "
                       f"(calibration error {c['ece_before']:.1%} -> {c['ece_after']:.1%}).", verbose=verbose)
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


def fit_epochs(
    model: keras.Model,
    snapshot: pd.DataFrame,
    classes: Sequence[str],
    *,
    epochs: int,
    image_size: tuple[int, int] | None = None,
    batch_size: int = 32,
    augmentation: bool | Mapping[str, Any] | Any = True,
    seed: int = 0,
    cache: bool | str = "auto",
    verbose: int = 0,
    desc: str = "fit",
) -> dict[str, Any]:
    """Fit a compiled model for ``epochs`` epochs on a snapshot; nothing is saved.

    Trains on the snapshot's ``train`` rows (shuffled, augmented) and
    validates on its ``val`` rows after every epoch, with the pipelines and
    settings :func:`imgcls.training.train` uses, but no early stopping,
    checkpoint or run folder.

    Args:
        model: A model compiled with :func:`imgcls.training.compile_model`.
        snapshot: Rows with a ``split`` column, e.g. from
            :func:`imgcls.training.prepare_training_data`.
        classes: Class names in the model's output order.
        epochs: Number of epochs.
        image_size: Input ``(height, width)``; default the model's input size.
        batch_size: Images per training step.
        augmentation: As in :func:`imgcls.training.train`.
        seed: Seed of the shuffle and the augmentation.
        cache: Keep decoded images in memory across epochs: ``"auto"``,
            ``True`` or ``False`` (see :func:`imgcls.training.train`).
        verbose: 0 quiet, 1 a progress bar over epochs, 2 Keras' progress bar.
        desc: Label of the progress bar.

    Returns:
        ``{"history": {metric: [value per epoch]}, "best_epoch" (1-based, by
        validation accuracy), "val_accuracy", "val_top_k_accuracy",
        "val_loss" (at the best epoch), "train_accuracy" (last epoch),
        "mean_epoch_time_s" (excluding the first epoch, which includes graph
        tracing, when there are two or more), "epoch_times", "skipped"}``;
        metrics ``None`` when not finite. ``skipped`` lists the
        ``(path, reason)`` of files that could not be decoded.
    """
    epochs = check_int(epochs, "epochs", 1)
    verbose = check_verbose(verbose)
    size = image_size or _model_input_size(model)
    aug_layer, _ = _augmentation_arg(augmentation, seed)
    skipped: list = []
    train_ds = make_dataset(_split_rows(snapshot, "train"), classes, image_size=size, batch_size=batch_size,
                            training=True, augmentation=aug_layer, seed=seed, cache=cache, skipped=skipped)
    val_ds = make_dataset(_split_rows(snapshot, "val"), classes, image_size=size, batch_size=batch_size,
                          training=False, cache=cache, skipped=skipped)
    timer = _EpochTimer()
    cbs: list = [timer]
    bar = None
    if verbose == 1:
        bar = _ProgressBar(epochs, 0, desc=desc)
        cbs.append(bar)
    try:
        with _quiet_fit_warnings():
            hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=cbs,
                             verbose=1 if verbose == 2 else 0, shuffle=False).history
    finally:
        if bar is not None:
            bar.close()
    val_acc = np.asarray(hist.get("val_accuracy", [np.nan]), dtype=float)
    best = int(np.nanargmax(val_acc)) if np.isfinite(val_acc).any() else len(val_acc) - 1
    times = timer.times[1:] if len(timer.times) > 1 else timer.times
    return {
        "history": hist,
        "best_epoch": best + 1,
        "val_accuracy": _float(val_acc[best]),
        "val_top_k_accuracy": _float(hist.get("val_top_k_accuracy", [np.nan] * (best + 1))[best]),
        "val_loss": _float(hist.get("val_loss", [np.nan] * (best + 1))[best]),
        "train_accuracy": _float(hist.get("accuracy", [np.nan])[-1]),
        "mean_epoch_time_s": float(np.mean(times)),
        "epoch_times": list(timer.times),
        "skipped": skipped,
    }
