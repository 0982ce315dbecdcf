"""Train a model until the validation metric plateaus, and resume an interrupted run.

:func:`train` turns the library into a run folder (see :mod:`imgcls.runs`):

1. scan the library (or take the given ``catalog``), pick the classes with at
   least ``cutoff`` readable images, assign the stable hash-based splits;
2. build the input pipelines (train with augmentation, val / test without);
3. build the model from the registry, or take ``initial_model`` (the head-swap
   fine-tuning loop passes its model and the parent run id here);
4. compile (:func:`imgcls.training.compile_model`: Adam, sparse categorical
   cross-entropy, accuracy + top-k) and fit until the validation metric stops
   improving for ``patience`` epochs (``EarlyStopping(restore_best_weights=True)``);
5. evaluate the best weights on the test split and the fixed benchmark set
   (:func:`imgcls.training.model_metrics`) and save everything as
   ``runs/<run_id>/``.

The data step is :mod:`imgcls.training.data`, the fit and save
:mod:`imgcls.training.fit`, the per-epoch callbacks
:mod:`imgcls.training.callbacks`.

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
settings (only ``max_epochs``, ``patience``, ``min_epochs`` and ``min_delta`` may be changed
on resume). The history never repeats an epoch. When training is done the
partial folder is completed and renamed to ``runs/<run_id>/`` in one step, so
a run folder without ``.partial`` is always complete. ``resume=False`` deletes
an unfinished folder of that id and starts over. Data order and augmentation
draws after a resume are not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import pandas as pd

from imgcls.core.checks import check_int, check_number
from imgcls.core.clock import utcnow
from imgcls.core.fileio import read_json, write_json, write_parquet
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.inputs import resolve_cache
from imgcls.models import DEFAULT_MODEL, create_model, get_model_spec
from imgcls.runs import (
    CHECKPOINTS_DIR,
    CLASSES_FILE,
    LOGS_DIR,
    PARTIAL_CONFIG_FILE,
    SPLITS_FILE,
    Run,
    library_summary,
    load_run,
    new_run_id,
    output_units,
    partial_dir,
    splits_table,
    versions,
)
from imgcls.training.callbacks import STATE_FILE, print_progress
from imgcls.training.data import _split_text, prepare_training_data
from imgcls.training.fit import _fit_and_save
from imgcls.training.options import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MIN_DELTA,
    DEFAULT_PATIENCE,
    DEFAULT_TOP_K,
    _augmentation_arg,
    _model_input_size,
    check_image_size,
    check_verbose,
    compile_model,
)

__all__ = ["train"]


def train(
    workspace: Workspace | str | os.PathLike,
    *,
    model: str | None = None,
    cutoff: int | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
    min_epochs: int | None = None,
    min_delta: float | None = None,
    monitor: str = "val_accuracy",
    batch_size: int = 32,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    seed: int = 0,
    image_size: int | tuple[int, int] | None = None,
    augmentation: bool | Mapping[str, Any] | Any = True,
    dropout: float | None = None,
    model_options: Mapping[str, Any] | None = None,
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
        min_epochs: Train at least this many epochs before early stopping may
            stop (default 0): a from-scratch start is noisy, and a lucky early
            epoch followed by ``patience`` worse ones would otherwise end the
            run long before it plateaus. Every epoch still counts for the best
            one; the cap ``max_epochs`` wins over it.
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
        model_options: Extra keyword arguments of the model family's builder
            (:func:`imgcls.models.create_model`), e.g. ``{"bn_momentum": 0.9}``
            for an Inception-v4 trained briefly on a small library; recorded
            in the run's config. Not with ``initial_model`` (already built).
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
    verbose = check_verbose(verbose)
    seed = check_int(seed, "seed", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    learning_rate = check_number(learning_rate, "learning_rate", 0.0, low_open=True, fix="e.g. learning_rate=1e-3")
    top_k = check_int(top_k, "top_k", 1)
    if monitor not in ("val_accuracy", "val_loss"):
        raise ValueError(f"`monitor` must be 'val_accuracy' or 'val_loss'. Received: monitor={monitor!r}")
    if not (isinstance(cache, bool) or (isinstance(cache, str) and cache == "auto")):
        raise ValueError(f"`cache` must be True, False or 'auto'. Received: cache={cache!r}")
    if max_epochs is not None:
        max_epochs = check_int(max_epochs, "max_epochs", 1)
    if patience is not None:
        patience = check_int(patience, "patience", 0)
    if min_epochs is not None:
        min_epochs = check_int(min_epochs, "min_epochs", 0)
    if min_delta is not None:
        min_delta = check_number(min_delta, "min_delta", 0.0)
    if model is not None:
        get_model_spec(model)  # fails early with the known names
    if initial_model is not None and not isinstance(initial_model, keras.Model):
        raise ValueError(f"`initial_model` must be a keras.Model. Received: {type(initial_model).__name__}")
    if model_options is not None and not isinstance(model_options, Mapping):
        raise ValueError("`model_options` must be a dict of the model builder's keyword arguments, e.g. "
                         f"{{'bn_momentum': 0.9}}. Received: {type(model_options).__name__}")
    model_options = dict(model_options or {})
    if model_options and initial_model is not None:
        raise ValueError("`model_options` builds a new model; `initial_model` is already built. Pass one of them "
                         "(build the initial model with imgcls.models.create_model(..., **options)).")
    size_arg = check_image_size(image_size)
    extra_callbacks = list(callbacks or [])

    keras.utils.set_random_seed(seed)

    # ---------------------------------------------------------------- resume?
    state: dict | None = None
    if run_id is not None:
        folder = partial_dir(ws, run_id)  # validates the id
        if (ws.runs / run_id).exists():
            raise FileExistsError(
                f"Run {run_id!r} is finished already (runs/{run_id}/). Open it with "
                f"load_run({run_id!r}, workspace=workspace), or pass another run_id (or None) to train a new run."
            )
        if folder.exists():
            saved_state = read_json(folder / CHECKPOINTS_DIR / STATE_FILE, None)
            if resume and saved_state and (folder / PARTIAL_CONFIG_FILE).is_file():
                state = saved_state
            else:
                why = "resume=False" if not resume else "it has no finished epoch to resume from"
                print_progress(f"Starting run {run_id} over: deleting {folder} ({why}).", verbose=verbose)
                shutil.rmtree(folder)
    if state is not None:
        return _resume(ws, folder, state, model=model, max_epochs=max_epochs, patience=patience,
                       min_epochs=min_epochs,
                       min_delta=min_delta, extra_callbacks=extra_callbacks, verbose=verbose,
                       session_start=session_start, initial_model=initial_model, classes=classes)

    # ---------------------------------------------------------------- new run
    snapshot, classes, used_cutoff = prepare_training_data(ws, catalog=catalog, classes=classes, cutoff=cutoff)
    snapshot = splits_table(snapshot)  # exactly what splits.parquet holds (and a resume reads)

    parent_id, generation, parent_model = None, 1, None
    if parent is not None:
        parent_run = load_run(parent, workspace=ws)
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
                           dropout=dropout, seed=seed, **model_options)
    aug_layer, aug_settings = _augmentation_arg(augmentation, seed)
    k = compile_model(net, learning_rate=learning_rate, num_classes=len(classes), top_k=top_k)

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
        "min_epochs": min_epochs or 0,
        "min_delta": min_delta if min_delta is not None else DEFAULT_MIN_DELTA,
        "monitor": monitor,
        "optimizer": {"name": "adam", "learning_rate": learning_rate},
        "loss": "sparse_categorical_crossentropy",
        "top_k": k,
        "dropout": dropout,
        "model_options": model_options,
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
    print_progress(f"Run {run_id}: {model_name} on {len(classes)} classes, {len(snapshot)} images "
                   f"({_split_text(snapshot)}), input {size[0]}x{size[1]}; folder {folder}", verbose=verbose)
    return _fit_and_save(ws, folder, config, classes, snapshot, net, aug_layer, state,
                         max_epochs=config["max_epochs"], patience=config["patience"],
                         min_delta=config["min_delta"], extra_callbacks=extra_callbacks,
                         verbose=verbose, session_start=session_start)


def _resume(ws, folder, state, *, model, max_epochs, patience, min_epochs, min_delta, extra_callbacks, verbose,
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
    for key, value in (("max_epochs", max_epochs), ("patience", patience), ("min_epochs", min_epochs),
                       ("min_delta", min_delta)):
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
    print_progress(f"Resuming run {config['run_id']} after epoch {state['epoch']} "
                   f"(best {config['monitor']} {state.get('early_stopping', {}).get('best')} at epoch "
                   f"{state.get('early_stopping', {}).get('best_epoch')}).", verbose=verbose)
    return _fit_and_save(ws, folder, config, saved_classes, snapshot, net, aug_layer, state,
                         max_epochs=int(config["max_epochs"]), patience=int(config["patience"]),
                         min_delta=float(config["min_delta"]), extra_callbacks=extra_callbacks,
                         verbose=verbose, session_start=session_start)
