"""Bulk identification: a trained run over many images, results to Parquet as it goes.

:func:`identify` runs a trained model (the production run by default, or any
run, e.g. a throw-away one) over a folder of images (any depth; by default
the workspace's ``unlabelled/``) or a list of paths, and writes a results
table into a resumable job folder (:mod:`imgcls.bulk.store` describes the
table and the folder). :func:`identify_unknown` does the same for the images
in ``library/unknown/``.

**Decoding** is the training pipeline's
(:func:`imgcls.inputs.make_inference_dataset`: Pillow,
:func:`imgcls.core.read_image_resized` at the run's input size, EXIF
orientation), so an image is seen exactly as in training. Images are
decoded in parallel by ``tf.data`` while the model predicts the previous
batch; only one batch of images is in memory at a time. Classes are ranked
with :func:`imgcls.core.scores.top_k`.

**Scores are calibrated** with the run's temperature
(:attr:`imgcls.runs.Run.temperature`, fitted on its validation split;
:func:`imgcls.core.scores.calibrate`): ``top{i}_score``, ``entropy`` and
``margin`` come from the calibrated probabilities, so the filters'
thresholds mean what they say (a 0.7 is right about 7 times in 10), and
``raw_top1_score`` keeps the model's own score. The job's ``_meta.json``
records the temperature; a job is never resumed with another one, so one
table never mixes calibrated and raw scores.

**The runtime** (``runtime="keras"`` or ``"openvino"``, see
:func:`imgcls.runtimes.load_runtime`) replaces only the model call: decoding,
calibration and top-k are the same code whatever runs the model. OpenVINO
runs the run's export (``imgcls export RUN --runtime openvino``) in its
throughput mode (parallel requests). ``_meta.json`` records the runtime
(``"runtime": "openvino-int8"``, ``runtime_info`` its settings) and the
returned table's ``attrs["runtime"]`` says it; a job is never resumed with
another runtime.
"""

from __future__ import annotations

import hashlib
import os
import re
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.bulk.store import ChunkWriter, ErrorRouter, JobStore, load_results
from imgcls.core import (
    UNKNOWN_CLASS,
    Workspace,
    as_workspace,
    calibrate,
    check_int,
    isoformat,
    iter_image_files,
)
from imgcls.core.imagefiles import iter_image_entries
from imgcls.library import Library
from imgcls.runs import load_run
from imgcls.runtimes import load_runtime, resolve_runtime, runtime_label

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.runs import Run

__all__ = ["identify", "identify_unknown"]

Source = str | os.PathLike | Iterable[str | os.PathLike] | pd.DataFrame


# --------------------------------------------------------------------------
# Listing the source
# --------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("_.") or "images"


def _source_items(source: Any) -> tuple[list[str], list[str], np.ndarray | None, str]:
    """Resolve ``source`` to (paths, relpaths, turns or None, name)."""
    if isinstance(source, pd.DataFrame):
        if "path" not in source.columns:
            raise ValueError(
                "A DataFrame `source` must have a `path` column (and optionally relpath, turns). "
                f"Received columns: {list(source.columns)}"
            )
        paths = [os.path.abspath(p) for p in source["path"]]
        if "relpath" in source.columns:
            rel = [str(r) for r in source["relpath"]]
        else:
            rel = _common_relpaths(paths)
        turns = None
        if "turns" in source.columns:
            turns = source["turns"].fillna(0).astype("int64").to_numpy()
        return paths, rel, turns, "paths-" + _digest(paths)
    if isinstance(source, pd.Series):
        source = source.tolist()
    if isinstance(source, (str, os.PathLike)):
        folder = Path(os.fspath(source)).expanduser()
        if folder.is_dir():
            files = sorted(os.path.abspath(p) for p in iter_image_files(folder, recursive=True))
            base = os.path.abspath(folder)
            rel = [Path(os.path.relpath(p, base)).as_posix() for p in files]
            return files, rel, None, _slug(Path(base).name)
        if folder.is_file():
            p = os.path.abspath(folder)
            return [p], [folder.name], None, _slug(folder.stem)
        raise FileNotFoundError(
            f"`source` {str(source)!r} is neither a folder nor a file. Pass a folder of images "
            "(searched at any depth), an image path, or a list of image paths."
        )
    if isinstance(source, Iterable):
        paths = []
        for p in source:
            if not isinstance(p, (str, os.PathLike)):
                raise ValueError(
                    f"`source` must hold image paths (str or Path). Received an item {p!r}"
                )
            paths.append(os.path.abspath(p))
        return paths, _common_relpaths(paths), None, "paths-" + _digest(paths)
    raise ValueError(
        "`source` must be a folder, an image path, a list of image paths or a DataFrame with a "
        f"`path` column. Received: {type(source).__name__}"
    )


def _unfollowed_links(source: Any) -> list[tuple[str, str, str]]:
    """(path, relpath, reason) of the symbolic links in a folder ``source`` that are not followed
    (leaving the folder, dangling): they go to the errors table instead of vanishing."""
    if not isinstance(source, (str, os.PathLike)) or not Path(os.fspath(source)).expanduser().is_dir():
        return []
    base = os.path.abspath(Path(os.fspath(source)).expanduser())
    return [(os.path.abspath(p), Path(os.path.relpath(p, base)).as_posix(), problem)
            for p, problem in iter_image_entries(base, recursive=True) if problem]


def _common_relpaths(paths: Sequence[str]) -> list[str]:
    if not paths:
        return []
    try:
        base = os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:  # different drives
        return [Path(p).name for p in paths]
    return [Path(os.path.relpath(p, base)).as_posix() for p in paths]


def _digest(paths: Sequence[str]) -> str:
    h = hashlib.sha1()
    for p in sorted(set(paths)):
        h.update(p.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:8]


# --------------------------------------------------------------------------
# identify
# --------------------------------------------------------------------------
def identify(
    workspace: Workspace | str | os.PathLike,
    source: Source | None = None,
    *,
    run: Run | str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    top_k: int = 3,
    batch_size: int = 64,
    chunk_size: int = 1024,
    progress: bool = True,
    resume: bool = True,
    runtime: str = "keras",
    precision: str | None = None,
) -> pd.DataFrame:
    """Identify many images with a trained run and write the results to Parquet as it goes.

    Args:
        workspace: The workspace (a :class:`~imgcls.core.Workspace` or its
            folder): it resolves ``run`` and holds the default ``source`` and ``out``.
        source: A folder (images at any depth, via
            :func:`imgcls.core.iter_image_files`), one image path, a list of
            image paths, or a DataFrame with a ``path`` column (optional
            ``relpath`` and ``turns``, e.g. rows of the library catalog).
            Defaults to the workspace's ``unlabelled/``.
        run: A :class:`imgcls.runs.Run`, run folder, run id, ``"production"``
            or ``"latest"``; ``None`` for the production run.
        out: The results folder; defaults to
            ``<workspace>/bulk/<run_id>-<name>.parquet`` where ``name`` is the
            source folder's name (``paths-<digest>`` for a list).
        top_k: Choices recorded per image (capped at the run's class count).
        batch_size: Images per model call.
        chunk_size: Images per part file (the unit of resume), rounded up to
            whole batches.
        progress: Show a tqdm bar with images/s and ETA.
        resume: Continue a job found in ``out`` (skipping every path it has
            recorded, results and errors alike). ``False`` deletes that job's
            part files and starts again.
        runtime: What runs the model: ``"keras"`` (the run's model.keras) or
            ``"openvino"`` (the run's OpenVINO export, after ``imgcls export``).
        precision: For openvino, which export (``"f32"``, ``"bf16"``,
            ``"int8"``); None: the run's best (int8, then bf16, then f32).

    Returns:
        The whole results table (:data:`~imgcls.bulk.RESULT_COLUMNS`),
        including rows of earlier, resumed sessions. ``attrs`` holds
        ``results_path`` (the folder), ``n_errors`` and ``runtime`` (e.g.
        ``"openvino-int8"``); read the unreadable files with
        :func:`~imgcls.bulk.load_errors`.

    Raises:
        ValueError: For invalid options, or if ``out`` holds a job of another
            run, another ``top_k``, another temperature or another runtime
            (pass another ``out`` or ``resume=False``).
        imgcls.runtimes.ExportNotFoundError: ``runtime="openvino"`` and the
            run has no export (the message names ``imgcls export``).
        FileNotFoundError: If the workspace or ``source`` does not exist, or
            no run is found.

    Example:
        >>> results = identify(ws)                          # unlabelled/, production run
        >>> look_alike(results, "cow", min_score=0.3, max_score=0.7)
    """
    top_k = check_int(top_k, "top_k")
    batch_size = check_int(batch_size, "batch_size")
    chunk_size = check_int(chunk_size, "chunk_size")
    ws = as_workspace(workspace)
    the_run = load_run("production" if run is None else run, workspace=ws)
    engine, precision = resolve_runtime(the_run, runtime, precision=precision)  # fails before any work
    label = runtime_label(engine, precision)
    if source is None:
        source = ws.unlabelled
    paths, rels, turns, name = _source_items(source)
    classes = list(the_run.classes)
    k_eff = min(top_k, len(classes))
    if out is None:
        out = ws.bulk / f"{the_run.run_id}-{name}.parquet"
    store = JobStore(Path(os.fspath(out)).expanduser())
    store.create()
    model_name = str(the_run.config.get("model") or "")
    temperature = the_run.temperature

    with store.lock():
        store.clean_temp()
        meta = store.read_meta()
        has_parts = store.has_parts()
        if not resume:
            store.clear()
            meta, has_parts = {}, False
        elif has_parts or meta:
            if meta.get("run_id") not in (None, the_run.run_id):
                raise ValueError(
                    f"{str(store.out)!r} holds results of run {meta.get('run_id')!r}, not "
                    f"{the_run.run_id!r}. Pass another `out`, or resume=False to start it afresh."
                )
            if meta.get("k") not in (None, k_eff):
                raise ValueError(
                    f"{str(store.out)!r} holds results with top_k={meta.get('k')}, not top_k={k_eff}. "
                    "Pass the same `top_k`, another `out`, or resume=False."
                )
            if has_parts and meta.get("temperature") != temperature:
                raise ValueError(
                    f"{str(store.out)!r} holds scores calibrated with temperature {meta.get('temperature')}, "
                    f"but run {the_run.run_id!r} now has temperature {temperature}; one table must not mix "
                    "the two. Pass another `out`, or resume=False to identify everything again."
                )
            if has_parts and meta.get("runtime", "keras-f32") != label:
                raise ValueError(
                    f"{str(store.out)!r} holds results predicted with the {meta.get('runtime', 'keras-f32')} "
                    f"runtime, not {label}; one table must not mix runtimes. Pass the same runtime, "
                    "another `out`, or resume=False to identify everything again."
                )
        done = store.recorded_paths() if has_parts else set()
        seen: set[str] = set(done)
        todo: list[int] = []
        for i, p in enumerate(paths):
            if p not in seen:
                seen.add(p)
                todo.append(i)
        meta = {
            "run_id": the_run.run_id,
            "model": model_name,
            "k": k_eff,
            "classes": classes,
            "temperature": temperature,
            "runtime": label,
            "source": os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"{len(paths)} paths",
            "created": meta.get("created") or isoformat(),
            "updated": isoformat(),
            "n_requested": len(paths),
            "complete": False,
        }
        store.write_meta(meta)
        writer = ChunkWriter(store.out, top_k=k_eff, classes=classes, model_name=model_name,
                             run_id=the_run.run_id, start_part=max(store.part_numbers(), default=0))
        for link, rel, reason in _unfollowed_links(source):  # listed as errors, never followed
            if link not in done:
                writer.add_error(link, rel, reason)
        if todo:
            rt = load_runtime(the_run, engine, precision=precision, mode="throughput")
            meta["runtime_info"] = {k: v for k, v in rt.info().items() if k != "run_id"}
            store.write_meta(meta)
            with rt:  # released when the job ends
                _run_model(
                    the_run,
                    rt,
                    [paths[i] for i in todo],
                    [rels[i] for i in todo],
                    None if turns is None else turns[todo],
                    writer,
                    batch_size=batch_size,
                    chunk_size=chunk_size,
                    progress=progress,
                )
        meta.update(updated=isoformat(), complete=True)
        store.write_meta(meta)
    results = load_results(store.out)
    results.attrs["runtime"] = label
    return results


def _run_model(run: Run, runtime: Any, paths: list[str], rels: list[str], turns: np.ndarray | None,
               writer: ChunkWriter, *, batch_size: int, chunk_size: int, progress: bool) -> None:
    from imgcls.inputs import make_inference_dataset

    image_size = runtime.input_size
    predict = runtime.predict  # the only step a runtime replaces
    skipped: list[tuple[str, str]] = []
    position = {p: i for i, p in enumerate(paths)}
    ds = make_inference_dataset(
        paths, image_size=image_size, batch_size=batch_size, skipped=skipped,
        turns=None if turns is None else turns.tolist(),
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), desc=f"identify {run.run_id} ({runtime.label})", unit="img",
                   smoothing=0.1)
    covered = 0  # paths[:covered] are predicted or reported as errors
    errors = ErrorRouter(skipped, position, rels, writer)
    try:
        for images, index in ds:
            probs, raw_top1 = _predict_batch(predict, images, run.temperature)
            idx = index.numpy()
            writer.add_batch([paths[i] for i in idx], [rels[i] for i in idx], probs, raw_top1=raw_top1)
            top = int(idx.max()) + 1
            errors.route(top)
            if bar is not None:
                bar.update(top - covered)
            covered = top
            if writer.pending() >= chunk_size:
                writer.flush()
        # Files after the last decoded image (all of them failed).
        errors.route(len(paths))
        if bar is not None:
            bar.update(len(paths) - covered)
        writer.flush()
    finally:
        if bar is not None:
            bar.close()


def _predict_batch(predict: Any, images: Any, temperature: float | None) -> tuple[np.ndarray, np.ndarray]:
    """One batch through the model: ``(calibrated probabilities (n, n_classes), raw score of
    each row's first choice (n,))``. The one scoring step of every engine (local, Beam).

    Args:
        predict: The model call: :func:`_predict_function`'s, or a
            :meth:`imgcls.runtimes.Runtime.predict` (tensor or array out).
        images: float32 ``(n, h, w, 3)`` in 0..255 (a tensor or an array), decoded by
            :mod:`imgcls.inputs`.
        temperature: The run's temperature (``None``: scores stay raw).
    """
    raw = predict(images)
    raw = raw.numpy() if hasattr(raw, "numpy") else np.asarray(raw)
    probs = calibrate(raw, temperature)
    raw_top1 = raw[np.arange(len(raw)), np.argmax(probs, axis=1)]
    return probs, raw_top1


def _predict_function(model: Any, image_size: tuple[int, int]):
    """``model(images, training=False)`` as one ``tf.function`` traced once for
    any batch size (so the short last batch costs no retrace), kept per model."""
    key = (id(model), image_size)
    cached = _PREDICT_FUNCTIONS.get(key)
    if cached is not None and cached[0]() is model:
        return cached[1]
    import tensorflow as tf

    spec = tf.TensorSpec((None, image_size[0], image_size[1], 3), tf.float32)

    @tf.function(input_signature=[spec])
    def predict(images):
        return model(images, training=False)

    for stale in [k for k, (ref, _) in _PREDICT_FUNCTIONS.items() if ref() is None]:
        del _PREDICT_FUNCTIONS[stale]
    _PREDICT_FUNCTIONS[key] = (weakref.ref(model), predict)
    return predict


_PREDICT_FUNCTIONS: dict[tuple[int, tuple[int, int]], tuple[Any, Any]] = {}


# --------------------------------------------------------------------------
# Unknown images
# --------------------------------------------------------------------------
def identify_unknown(
    workspace: Workspace | str | os.PathLike,
    *,
    run: Run | str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    top_k: int = 3,
    batch_size: int = 64,
    chunk_size: int = 1024,
    progress: bool = True,
    resume: bool = True,
    runtime: str = "keras",
    precision: str | None = None,
) -> pd.DataFrame:
    """Identify the images in ``library/unknown/`` (good images nobody has named yet).

    Their predicted classes point at look-alikes of a class still to be
    created (the write-up's wallabies predicted as kangaroo). Turns flagged in
    the library are applied before prediction, as in training.

    Args:
        workspace: The workspace.
        run: As in :func:`identify` (production by default).
        out: The results folder; defaults to ``bulk/<run_id>-unknown.parquet``.
        top_k, batch_size, chunk_size, progress, resume, runtime, precision: As in :func:`identify`.

    Returns:
        The results table of the unknown images.
    """
    ws = as_workspace(workspace)
    the_run = load_run("production" if run is None else run, workspace=ws)
    cat = Library(ws).scan()
    rows = cat.loc[cat["label"] == UNKNOWN_CLASS, ["path", "relpath", "turns"]]
    if out is None:
        out = ws.bulk / f"{the_run.run_id}-{UNKNOWN_CLASS}.parquet"
    return identify(ws, rows, run=the_run, out=out, top_k=top_k, batch_size=batch_size,
                    chunk_size=chunk_size, progress=progress, resume=resume, runtime=runtime,
                    precision=precision)
