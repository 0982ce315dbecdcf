"""Bulk identification and its filters.

:func:`identify` runs a trained model (the production run by default, or any
run, e.g. a throw-away one) over a folder of images (any depth) or a list of
paths and writes a results table to Parquet as it goes.  Plain filter
functions then cut that table the ways the write-up names:

* :func:`low_count_classes` - predicted class has few library images;
* :func:`staged_classes` - predicted class is built mostly from staged images;
* :func:`look_alike` - class X at middling confidence, with the second choice;
* :func:`in_unknown` / :func:`identify_unknown` - images in ``library/unknown/``;
* :func:`lowest_scores` - lowest scores first, for mass removal;
* :func:`sort_by` - by score, class, entropy or margin;
* :func:`precision_at_thresholds` - precision of accepted predictions against
  known true labels (the sample's hidden pool labels).

Every filter takes a results DataFrame first and returns a new DataFrame
(rows kept, index reset), so filters chain:
``lowest_scores(look_alike(results, "cow"), n=50)``.

**The results table** (one row per image; :data:`RESULT_COLUMNS` for ``k=3``):

=====================  ======================================================
``path``               absolute path of the image file (the key)
``relpath``            path relative to the identified folder (posix)
``hash``               sha256 of the file's bytes (:func:`imgcls.core.file_hash`)
``top1_class``         predicted class; ``top1_score`` its probability
``top2_class`` ...     the next choices, down to ``top{k}_class`` / ``top{k}_score``
``entropy``            entropy of the class probabilities, in nats
                       (0 = certain; ``log(n_classes)`` = uniform)
``margin``             ``top1_score - top2_score`` (small = torn between two)
``model``              registry name of the model, e.g. ``"mini_inception"``
``run_id``             the run that predicted
``time``               when the row was predicted (UTC)
=====================  ======================================================

Unreadable files go to a separate errors table (:data:`ERROR_COLUMNS`: path,
relpath, hash, reason, run_id, time), read with :func:`load_errors`; they never
stop the job.

**On disk** a job is one folder, a Parquet dataset that ``pandas.read_parquet``
reads as it is::

    bulk/<run_id>-<name>.parquet/
      part-00001.parquet     results of the first chunk of images
      part-00002.parquet     ...
      _errors-00001.parquet  unreadable files of the first chunk (if any)
      _meta.json             run id, model, k, source, counts, complete flag

Each chunk (``chunk_size`` images) is written to a hidden temporary file and
renamed into place, so a part file is either complete or absent. A job that
is killed (even with SIGKILL) and started again with the same arguments skips
every path already recorded in a part file and continues; no path is ever
recorded twice. A lock file keeps two jobs from writing into one folder.

**Decoding** is the training pipeline's
(:func:`imgcls.inputs.make_inference_dataset`: Pillow,
:func:`imgcls.core.read_image_resized` at the run's input size, EXIF
orientation), so an image is seen exactly as in training. Images are
decoded in parallel by ``tf.data`` while the model predicts the previous
batch; only one batch of images is in memory at a time.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import re
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.images import file_hash, iter_image_files
from imgcls.core.workspace import (
    DEFAULT_CUTOFF,
    UNKNOWN_CLASS,
    Workspace,
    open_workspace,
)
from imgcls.library import Library

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.runs import Run

__all__ = [
    "throwaway_candidates",
    "identify",
    "identify_unknown",
    "load_results",
    "load_errors",
    "result_columns",
    "RESULT_COLUMNS",
    "ERROR_COLUMNS",
    "SORT_KEYS",
    "DEFAULT_THRESHOLDS",
    "low_count_classes",
    "staged_classes",
    "look_alike",
    "in_unknown",
    "lowest_scores",
    "sort_by",
    "precision_at_thresholds",
]

#: Errors table columns.
ERROR_COLUMNS = ["path", "relpath", "hash", "reason", "run_id", "time"]
#: Keys accepted by :func:`sort_by`.
SORT_KEYS = ("score", "class", "entropy", "margin")
#: Confidence thresholds used by :func:`precision_at_thresholds` by default.
DEFAULT_THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)

_PART_RE = re.compile(r"^part-(\d+)\.parquet$")
_ERR_RE = re.compile(r"^_errors-(\d+)\.parquet$")
_META_FILE = "_meta.json"
_LOCK_FILE = ".lock"


def result_columns(k: int = 3) -> list[str]:
    """Columns of a results table with ``k`` choices per image.

    Example:
        >>> result_columns(2)
        ['path', 'relpath', 'hash', 'top1_class', 'top1_score', 'top2_class',
         'top2_score', 'entropy', 'margin', 'model', 'run_id', 'time']
    """
    top = [c for i in range(1, k + 1) for c in (f"top{i}_class", f"top{i}_score")]
    return ["path", "relpath", "hash", *top, "entropy", "margin", "model", "run_id", "time"]


#: Results table columns for the default ``k=3``.
RESULT_COLUMNS = result_columns(3)


# --------------------------------------------------------------------------
# Argument helpers
# --------------------------------------------------------------------------
def _as_workspace(workspace: Any) -> Workspace | None:
    if workspace is None or isinstance(workspace, Workspace):
        return workspace
    if isinstance(workspace, (str, os.PathLike)):
        return Workspace(Path(os.fspath(workspace)))
    lib_ws = getattr(workspace, "workspace", None)  # a Library
    if isinstance(lib_ws, Workspace):
        return lib_ws
    raise ValueError(
        "`workspace` must be a Workspace, a workspace folder path or None. "
        f"Received: workspace={workspace!r}"
    )


def _abspath(path: str | os.PathLike) -> str:
    return os.path.abspath(os.fspath(path))


def _utcnow() -> pd.Timestamp:
    return pd.Timestamp(_dt.datetime.now(_dt.timezone.utc))


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
        paths = [_abspath(p) for p in source["path"]]
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
            files = sorted(_abspath(p) for p in iter_image_files(folder, recursive=True))
            base = _abspath(folder)
            rel = [Path(os.path.relpath(p, base)).as_posix() for p in files]
            return files, rel, None, _slug(Path(base).name)
        if folder.is_file():
            p = _abspath(folder)
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
            paths.append(_abspath(p))
        return paths, _common_relpaths(paths), None, "paths-" + _digest(paths)
    raise ValueError(
        "`source` must be a folder, an image path, a list of image paths or a DataFrame with a "
        f"`path` column. Received: {type(source).__name__}"
    )


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
# The on-disk job folder
# --------------------------------------------------------------------------
def _part_files(out: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    if not out.is_dir():
        return []
    found = []
    for entry in os.scandir(out):
        m = pattern.match(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def _write_part(out: Path, name: str, table: Any) -> None:
    """Write a pyarrow table as ``out/name`` atomically (temp file + rename)."""
    import pyarrow.parquet as pq

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as f:  # durable before it becomes visible
            os.fsync(f.fileno())
        os.replace(tmp, out / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_meta(out: Path, meta: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{_META_FILE}.", suffix=".tmp", dir=out)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(dict(meta), f, indent=2, default=str)
    os.replace(tmp, out / _META_FILE)


def _read_meta(out: Path) -> dict:
    path = out / _META_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _job_lock(out: Path):
    """An exclusive advisory lock on the job folder (released even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    with open(out / _LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"Another identify job is writing into {str(out)!r} right now. Wait for it to "
                "finish, or pass another `out`."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _recorded_paths(out: Path) -> set[str]:
    import pyarrow.parquet as pq

    done: set[str] = set()
    for pattern in (_PART_RE, _ERR_RE):
        for _, f in _part_files(out, pattern):
            done.update(pq.read_table(f, columns=["path"]).column("path").to_pylist())
    return done


def _clear_job(out: Path) -> None:
    for pattern in (_PART_RE, _ERR_RE):
        for _, f in _part_files(out, pattern):
            f.unlink()
    (out / _META_FILE).unlink(missing_ok=True)


def _clean_temp(out: Path) -> None:
    for entry in os.scandir(out):
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            Path(entry.path).unlink(missing_ok=True)


def _results_schema(k: int):
    import pyarrow as pa

    fields = [pa.field("path", pa.string()), pa.field("relpath", pa.string()), pa.field("hash", pa.string())]
    for i in range(1, k + 1):
        fields += [pa.field(f"top{i}_class", pa.string()), pa.field(f"top{i}_score", pa.float64())]
    fields += [
        pa.field("entropy", pa.float64()),
        pa.field("margin", pa.float64()),
        pa.field("model", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
    ]
    return pa.schema(fields)


def _errors_schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("path", pa.string()),
        pa.field("relpath", pa.string()),
        pa.field("hash", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
    ])


def _safe_hash(path: str) -> str:
    try:
        return file_hash(path)
    except (OSError, ValueError):
        return ""


# --------------------------------------------------------------------------
# identify
# --------------------------------------------------------------------------
def _top_k(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(indices (n, k), scores (n, k), entropy (n,), margin (n,)) of probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(probs, order, axis=1)
    p = np.clip(probs, 1e-12, 1.0)
    entropy = -(probs * np.log(p)).sum(axis=1)
    entropy = np.maximum(entropy, 0.0)
    margin = scores[:, 0] - (scores[:, 1] if k > 1 else 0.0)
    return order, scores, entropy, margin


class _ChunkWriter:
    """Buffers predictions and errors of one chunk and writes them as part files."""

    def __init__(self, out: Path, *, k: int, classes: Sequence[str], model_name: str, run_id: str,
                 start_part: int):
        import pyarrow as pa

        self._pa = pa
        self.out = out
        self.k = k
        self.classes = np.asarray(list(classes), dtype=object)
        self.model_name = model_name
        self.run_id = run_id
        self.part = start_part
        self.schema = _results_schema(k)
        self.err_schema = _errors_schema()
        self.rows: list[dict[str, Any]] = []  # one dict of column arrays per batch
        self.errors: list[tuple[str, str, str]] = []  # (path, relpath, reason)
        self.n_rows = 0
        self.written_rows = 0
        self.written_errors = 0

    def add_batch(self, paths: list[str], rels: list[str], probs: np.ndarray) -> None:
        order, scores, entropy, margin = _top_k(probs, self.k)
        now = _utcnow()
        cols: dict[str, Any] = {
            "path": paths,
            "relpath": rels,
            "hash": [_safe_hash(p) for p in paths],
        }
        for i in range(self.k):
            cols[f"top{i + 1}_class"] = self.classes[order[:, i]].tolist()
            cols[f"top{i + 1}_score"] = scores[:, i]
        cols["entropy"] = entropy
        cols["margin"] = margin
        cols["model"] = [self.model_name] * len(paths)
        cols["run_id"] = [self.run_id] * len(paths)
        cols["time"] = [now] * len(paths)
        self.rows.append(cols)
        self.n_rows += len(paths)

    def add_error(self, path: str, rel: str, reason: str) -> None:
        self.errors.append((path, rel, reason))

    def pending(self) -> int:
        return self.n_rows + len(self.errors)

    def flush(self) -> None:
        if not self.rows and not self.errors:
            return
        pa = self._pa
        self.part += 1
        name = f"{self.part:05d}.parquet"
        # Errors first: if the job dies between the two writes, the chunk's
        # good images are simply identified again on resume (never twice).
        if self.errors:
            now = _utcnow()
            table = pa.table(
                {
                    "path": [e[0] for e in self.errors],
                    "relpath": [e[1] for e in self.errors],
                    "hash": [_safe_hash(e[0]) for e in self.errors],
                    "reason": [e[2] for e in self.errors],
                    "run_id": [self.run_id] * len(self.errors),
                    "time": [now] * len(self.errors),
                },
                schema=self.err_schema,
            )
            _write_part(self.out, f"_errors-{name}", table)
            self.written_errors += len(self.errors)
        if self.rows:
            merged = {
                name_: (np.concatenate([np.asarray(r[name_]) for r in self.rows])
                        if isinstance(self.rows[0][name_], np.ndarray)
                        else [v for r in self.rows for v in r[name_]])
                for name_ in self.schema.names
            }
            table = pa.table(merged, schema=self.schema)
            _write_part(self.out, f"part-{name}", table)
            self.written_rows += self.n_rows
        self.rows, self.errors, self.n_rows = [], [], 0


def _resolve_run(run: Any, ws: Workspace | None) -> "Run":
    from imgcls.runs import Run, load_run

    if isinstance(run, Run):
        return run
    if run is None:
        if ws is None:
            raise ValueError(
                "Pass `workspace` to identify with the production run, or pass `run` "
                "(a Run, a run folder, or a run id with `workspace`)."
            )
        return load_run("production", ws)
    return load_run(run, ws)


def identify(
    source: str | os.PathLike | Iterable[str | os.PathLike] | pd.DataFrame,
    *,
    run: "Run | str | os.PathLike | None" = None,
    workspace: Workspace | str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    k: int = 3,
    batch_size: int = 64,
    chunk_size: int = 1024,
    progress: bool = True,
    resume: bool = True,
) -> pd.DataFrame:
    """Identify many images with a trained run and write the results to Parquet as it goes.

    Args:
        source: A folder (images at any depth, via
            :func:`imgcls.core.iter_image_files`), one image path, a list of
            image paths, or a DataFrame with a ``path`` column (optional
            ``relpath`` and ``turns``, e.g. rows of the library catalog).
        run: A :class:`imgcls.runs.Run`, run folder, or run id (with
            ``workspace``); ``None`` for the production run of ``workspace``.
        workspace: The workspace (needed for ``run=None`` or a run id, and for
            the default ``out``; defaults to the run's own workspace).
        out: The results folder; defaults to
            ``<workspace>/bulk/<run_id>-<name>.parquet`` where ``name`` is the
            source folder's name (``paths-<digest>`` for a list).
        k: Choices recorded per image (capped at the run's class count).
        batch_size: Images per model call.
        chunk_size: Images per part file (the unit of resume), rounded up to
            whole batches.
        progress: Show a tqdm bar with images/s and ETA.
        resume: Continue a job found in ``out`` (skipping every path it has
            recorded, results and errors alike). ``False`` deletes that job's
            part files and starts again.

    Returns:
        The whole results table (see the module notes for the columns),
        including rows of earlier, resumed sessions. ``attrs`` holds
        ``results_path`` (the folder) and ``n_errors``; read the unreadable
        files with :func:`load_errors`.

    Raises:
        ValueError: For invalid options, or if ``out`` holds a job of another
            run or another ``k`` (pass another ``out`` or ``resume=False``).
        FileNotFoundError: If ``source`` does not exist or no run is found.

    Example:
        >>> results = identify(ws.unlabelled, workspace=ws)       # production run
        >>> look_alike(results, "cow", min_score=0.3, max_score=0.7)
    """
    k = check_int(k, "k")
    batch_size = check_int(batch_size, "batch_size")
    chunk_size = check_int(chunk_size, "chunk_size")
    ws = _as_workspace(workspace)
    the_run = _resolve_run(run, ws)
    if ws is None:
        ws = Workspace(the_run.path.parent.parent)  # runs/<run_id>/ lives in <workspace>/runs
    paths, rels, turns, name = _source_items(source)
    classes = list(the_run.classes)
    k_eff = min(k, len(classes))
    if out is None:
        out = ws.bulk / f"{the_run.run_id}-{name}.parquet"
    out = Path(os.fspath(out)).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"`out` must be a folder (a Parquet dataset of part files). {str(out)!r} is a file; "
            "pass another path."
        )
    out.mkdir(parents=True, exist_ok=True)
    model_name = str(the_run.config.get("model") or "")

    with _job_lock(out):
        _clean_temp(out)
        meta = _read_meta(out)
        has_parts = bool(_part_files(out, _PART_RE) or _part_files(out, _ERR_RE))
        if not resume:
            _clear_job(out)
            meta, has_parts = {}, False
        elif has_parts or meta:
            if meta.get("run_id") not in (None, the_run.run_id):
                raise ValueError(
                    f"{str(out)!r} holds results of run {meta.get('run_id')!r}, not "
                    f"{the_run.run_id!r}. Pass another `out`, or resume=False to start it afresh."
                )
            if meta.get("k") not in (None, k_eff):
                raise ValueError(
                    f"{str(out)!r} holds results with k={meta.get('k')}, not k={k_eff}. "
                    "Pass the same `k`, another `out`, or resume=False."
                )
        done = _recorded_paths(out) if has_parts else set()
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
            "source": os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"{len(paths)} paths",
            "created": meta.get("created") or _utcnow().isoformat(),
            "updated": _utcnow().isoformat(),
            "n_requested": len(paths),
            "complete": False,
        }
        _write_meta(out, meta)
        parts = [n for n, _ in _part_files(out, _PART_RE)] + [n for n, _ in _part_files(out, _ERR_RE)]
        writer = _ChunkWriter(out, k=k_eff, classes=classes, model_name=model_name,
                              run_id=the_run.run_id, start_part=max(parts, default=0))
        if todo:
            _run_model(
                the_run,
                [paths[i] for i in todo],
                [rels[i] for i in todo],
                None if turns is None else turns[todo],
                writer,
                batch_size=batch_size,
                chunk_size=chunk_size,
                progress=progress,
            )
        meta.update(updated=_utcnow().isoformat(), complete=True)
        _write_meta(out, meta)
    return load_results(out)


def _run_model(run: "Run", paths: list[str], rels: list[str], turns: np.ndarray | None,
               writer: _ChunkWriter, *, batch_size: int, chunk_size: int, progress: bool) -> None:
    from imgcls.inputs import make_inference_dataset

    model = run.model
    size = run.config.get("input_shape") or list(model.input_shape[1:])
    image_size = (int(size[0]), int(size[1]))
    predict = _predict_function(model, image_size)
    skipped: list[tuple[str, str]] = []
    position = {p: i for i, p in enumerate(paths)}
    ds = make_inference_dataset(
        paths, image_size=image_size, batch_size=batch_size, skipped=skipped,
        turns=None if turns is None else turns.tolist(),
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), desc=f"identify {run.run_id}", unit="img", smoothing=0.1)
    covered = 0  # paths[:covered] are predicted or reported as errors
    errors = _ErrorRouter(skipped, position, rels, writer)
    try:
        for images, index in ds:
            probs = predict(images).numpy()
            idx = index.numpy()
            writer.add_batch([paths[i] for i in idx], [rels[i] for i in idx], probs)
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


class _ErrorRouter:
    """Moves decode errors of paths[:hi] from the pipeline's ``skipped`` list
    into the chunk writer.

    ``tf.data`` decodes ahead of the model and in parallel, so ``skipped`` may
    already hold errors of later paths, in any order; those are held back for
    the chunk that covers them.
    """

    def __init__(self, skipped: list, position: Mapping[str, int], rels: list[str],
                 writer: _ChunkWriter):
        self.skipped = skipped
        self.position = position
        self.rels = rels
        self.writer = writer
        self.consumed = 0
        self.held: list[tuple[int, str, str]] = []

    def route(self, hi: int) -> None:
        new = self.skipped[self.consumed:]
        self.consumed += len(new)
        self.held.extend((self.position.get(path, -1), path, reason) for path, reason in new)
        keep = []
        for pos, path, reason in self.held:
            if pos < hi:
                rel = self.rels[pos] if pos >= 0 else Path(path).name
                self.writer.add_error(path, rel, reason)
            else:
                keep.append((pos, path, reason))
        self.held = keep


# --------------------------------------------------------------------------
# Reading results back
# --------------------------------------------------------------------------
def _results_dir(path: str | os.PathLike) -> Path:
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"No bulk results at {str(p)!r}. Run identify(...) first; results are written to "
            "<workspace>/bulk/<run_id>-<name>.parquet by default."
        )
    return p


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results table written by :func:`identify`.

    Args:
        path: The results folder (``....parquet/`` with part files), or a
            single Parquet file holding a results table.

    Returns:
        The results, parts in the order they were written. ``attrs`` holds
        ``results_path`` and ``n_errors`` (see :func:`load_errors`).
    """
    p = _results_dir(path)
    if p.is_file():
        df = pd.read_parquet(p)
        n_err = 0
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = [pq.read_table(f) for _, f in _part_files(p, _PART_RE)]
        if parts:
            df = pa.concat_tables(parts, promote_options="default").to_pandas()
        else:
            meta = _read_meta(p)
            schema = _results_schema(int(meta.get("k") or 3))
            df = schema.empty_table().to_pandas()
        n_err = sum(pq.ParquetFile(f).metadata.num_rows for _, f in _part_files(p, _ERR_RE))
    df = df.reset_index(drop=True)
    df.attrs = {"results_path": str(p), "n_errors": int(n_err)}
    return df


def load_errors(path: str | os.PathLike) -> pd.DataFrame:
    """The files :func:`identify` could not read: [path, relpath, hash, reason, run_id, time]."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = _results_dir(path)
    parts = [pq.read_table(f) for _, f in _part_files(p, _ERR_RE)] if p.is_dir() else []
    if not parts:
        return _errors_schema().empty_table().to_pandas()
    return pa.concat_tables(parts).to_pandas().reset_index(drop=True)


# --------------------------------------------------------------------------
# Unknown images
# --------------------------------------------------------------------------
def identify_unknown(
    workspace: Workspace | str | os.PathLike,
    run: "Run | str | os.PathLike | None" = None,
    **options: Any,
) -> pd.DataFrame:
    """Identify the images in ``library/unknown/`` (good images nobody has named yet).

    Their predicted classes point at look-alikes of a class still to be
    created (the write-up's wallabies predicted as kangaroo). Turns flagged in
    the library are applied before prediction, as in training.

    Args:
        workspace: The workspace.
        run: As in :func:`identify` (production by default).
        **options: Other :func:`identify` options (``k``, ``batch_size``,
            ``progress``, ``resume``, ``out``). The default ``out`` is
            ``bulk/<run_id>-unknown.parquet``.

    Returns:
        The results table of the unknown images.
    """
    ws = _as_workspace(workspace)
    if ws is None:
        raise ValueError("`workspace` must be a Workspace or a workspace folder path. Received: None")
    the_run = _resolve_run(run, ws)
    cat = Library(ws).scan()
    rows = cat.loc[cat["label"] == UNKNOWN_CLASS, ["path", "relpath", "turns"]]
    if options.get("out") is None:
        options["out"] = ws.bulk / f"{the_run.run_id}-{UNKNOWN_CLASS}.parquet"
    return identify(rows, run=the_run, workspace=ws, **options)


# --------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------
def _check_results(results: Any, needed: Iterable[str], func: str) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise ValueError(
            f"`results` must be a results DataFrame from identify() or load_results(). "
            f"Received: {type(results).__name__}"
        )
    missing = [c for c in needed if c not in results.columns]
    if missing:
        raise ValueError(
            f"{func}() needs results columns {list(needed)}; missing {missing}. "
            "Pass a table from identify() or load_results()."
        )
    return results


def _check_score(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(value) <= 1.0 or math.isnan(float(value)):
        raise ValueError(f"`{name}` must be a number in [0, 1]. Received: {name}={value!r}")
    return float(value)


def _class_counts(counts: Any) -> pd.DataFrame:
    """Normalise a Library / counts table / catalog / mapping to [label, n, staged]."""
    if isinstance(counts, Library):
        counts = counts.counts()
    if isinstance(counts, Mapping):
        return pd.DataFrame({"label": [str(c) for c in counts], "n": [int(v) for v in counts.values()],
                             "staged": 0})
    if isinstance(counts, pd.Series):
        return pd.DataFrame({"label": counts.index.astype(str), "n": counts.to_numpy().astype("int64"),
                             "staged": 0})
    if isinstance(counts, pd.DataFrame):
        if "label" not in counts.columns:
            raise ValueError(
                "`counts` must have a `label` column: Library.counts() [label, n, staged, ...] or a "
                f"catalog [path, label, readable, staged, ...]. Received columns: {list(counts.columns)}"
            )
        if "n" in counts.columns:  # a counts table
            out = counts[["label", "n"]].copy()
            out["staged"] = counts["staged"] if "staged" in counts.columns else 0
            if out["staged"].dtype == bool:  # a per-class flag rather than a count
                out["staged"] = np.where(out["staged"], out["n"], 0)
            out["label"] = out["label"].astype(str)
            return out.reset_index(drop=True)
        cat = counts
        if "readable" in cat.columns:
            cat = cat[cat["readable"].astype(bool)]
        staged = cat["staged"].astype(bool) if "staged" in cat.columns else pd.Series(False, index=cat.index)
        g = pd.DataFrame({"label": cat["label"].astype(str), "staged": staged.astype("int64")})
        out = g.groupby("label", sort=True).agg(n=("staged", "size"), staged=("staged", "sum"))
        return out.reset_index()
    raise ValueError(
        "`counts` must be a Library, a Library.counts() table, a catalog DataFrame or a "
        f"{{class: n}} mapping. Received: {type(counts).__name__}"
    )


def _done(df: pd.DataFrame) -> pd.DataFrame:
    return df.reset_index(drop=True)


def low_count_classes(
    results: pd.DataFrame,
    counts: Library | pd.DataFrame | Mapping[str, int],
    *,
    below: int | None = None,
) -> pd.DataFrame:
    """Images predicted as a class with few library images (to raise its count).

    Adds the column ``class_count`` (library images of ``top1_class``; 0 for
    a class not in ``counts``).

    Args:
        results: A results table.
        counts: A :class:`~imgcls.library.Library`, its ``counts()`` table,
            a catalog, or a ``{class: n}`` mapping.
        below: Keep classes with fewer images than this; defaults to the
            library's cutoff (a Library) or :data:`~imgcls.core.DEFAULT_CUTOFF`.
            A throw-away run (cutoff 35) finds images for the classes that
            just missed 40 this way.

    Returns:
        Rows of those classes, smallest class first, then most confident first.
    """
    _check_results(results, ["top1_class", "top1_score"], "low_count_classes")
    if below is None:
        ws = getattr(counts, "workspace", None)
        below = ws.cutoff if isinstance(ws, Workspace) else DEFAULT_CUTOFF
    below = check_int(below, "below")
    table = _class_counts(counts)
    n = dict(zip(table["label"], table["n"].astype("int64")))
    out = results.copy()
    out["class_count"] = out["top1_class"].astype(str).map(n).fillna(0).astype("int64")
    out = out[out["class_count"] < below]
    out = out.sort_values(["class_count", "top1_class", "top1_score"], ascending=[True, True, False],
                          kind="stable")
    return _done(out)


def staged_classes(
    results: pd.DataFrame,
    counts_or_catalog: Library | pd.DataFrame,
    *,
    min_share: float = 0.5,
) -> pd.DataFrame:
    """Images predicted as a class whose library images are all or mostly staged.

    Real-world images of such classes are the ones to add (the staged ones
    look different from what comes through). Adds ``staged_share`` (share of
    the predicted class's readable library images flagged staged).

    Args:
        results: A results table.
        counts_or_catalog: A Library, its ``counts()`` table ([label, n,
            staged], staged being a count) or a catalog (rows with label,
            staged, readable).
        min_share: Keep classes with at least this share of staged images
            (``1.0``: only classes built entirely from staged images).

    Returns:
        Rows of those classes, highest staged share first, then most
        confident first.
    """
    _check_results(results, ["top1_class", "top1_score"], "staged_classes")
    min_share = _check_score(min_share, "min_share")
    table = _class_counts(counts_or_catalog)
    n = table["n"].astype("float64")
    share = (table["staged"].astype("float64") / n.where(n > 0)).fillna(0.0)
    shares = dict(zip(table["label"], share))
    out = results.copy()
    out["staged_share"] = out["top1_class"].astype(str).map(shares).fillna(0.0).astype("float64")
    out = out[(out["staged_share"] >= min_share) & (out["staged_share"] > 0)]
    out = out.sort_values(["staged_share", "top1_class", "top1_score"], ascending=[False, True, False],
                          kind="stable")
    return _done(out)


def look_alike(
    results: pd.DataFrame,
    predicted: str | Sequence[str],
    *,
    min_score: float = 0.3,
    max_score: float = 0.7,
) -> pd.DataFrame:
    """Images predicted as ``predicted`` at middling confidence, with the second choice.

    "An antelope at lower confidence may be a gazelle": the model's unsure
    antelopes are where a look-alike class it does not know yet hides.
    ``top2_class`` / ``top2_score`` show what else it considered.

    Args:
        results: A results table.
        predicted: The class (or classes) predicted as first choice.
        min_score: Lowest ``top1_score`` kept (inclusive).
        max_score: Highest ``top1_score`` kept (inclusive).

    Returns:
        The rows, least confident first.
    """
    _check_results(results, ["top1_class", "top1_score"], "look_alike")
    if isinstance(predicted, str):
        wanted = [predicted]
    elif isinstance(predicted, Iterable):
        wanted = [str(p) for p in predicted]
    else:
        raise ValueError(f"`predicted` must be a class name or a list of them. Received: {predicted!r}")
    if not wanted:
        raise ValueError("`predicted` must name at least one class. Received: []")
    lo, hi = _check_score(min_score, "min_score"), _check_score(max_score, "max_score")
    if lo > hi:
        raise ValueError(
            f"`min_score` must not exceed `max_score`. Received: min_score={min_score!r}, "
            f"max_score={max_score!r}"
        )
    s = results["top1_score"]
    out = results[results["top1_class"].astype(str).isin(wanted) & (s >= lo) & (s <= hi)]
    return _done(out.sort_values("top1_score", ascending=True, kind="stable"))


def in_unknown(
    results: pd.DataFrame,
    where: Workspace | Library | pd.DataFrame | str | os.PathLike,
) -> pd.DataFrame:
    """Images that are in ``library/unknown/`` (by location or by content).

    A row is kept if its file lies in the unknown folder, or if its content
    hash is that of an image now in the unknown folder (so results of the
    unlabelled pool find images that have since been moved there). Look at
    ``top1_class`` of these to find the look-alike of a class still to be
    named; :func:`identify_unknown` identifies them in the first place.

    Args:
        results: A results table.
        where: A Workspace or workspace folder, a Library, or a catalog
            DataFrame (with path, label, and optionally hash).

    Returns:
        Those rows, grouped by predicted class, most confident first.
    """
    _check_results(results, ["path", "top1_class", "top1_score"], "in_unknown")
    folders: list[str] = []
    hashes: set[str] = set()
    if isinstance(where, pd.DataFrame):
        cat = where
    else:
        lib = where if isinstance(where, Library) else Library(_as_workspace(where))
        folders.append(_abspath(lib.workspace.unknown))
        cat = lib.catalog
    if "label" not in cat.columns or "path" not in cat.columns:
        raise ValueError(
            "`where` catalog must have columns path and label (and optionally hash). "
            f"Received columns: {list(cat.columns)}"
        )
    unk = cat[cat["label"].astype(str) == UNKNOWN_CLASS]
    known_paths = {_abspath(p) for p in unk["path"]}
    if "hash" in unk.columns:
        hashes = {h for h in unk["hash"].astype(str) if h}
    paths = results["path"].astype(str).map(_abspath)
    keep = paths.isin(known_paths)
    for folder in folders:
        prefix = folder.rstrip(os.sep) + os.sep
        keep |= paths.str.startswith(prefix)
    if hashes and "hash" in results.columns:
        keep |= results["hash"].astype(str).isin(hashes)
    out = results[keep.to_numpy()]
    return _done(out.sort_values(["top1_class", "top1_score"], ascending=[True, False], kind="stable"))


def lowest_scores(
    results: pd.DataFrame,
    *,
    n: int | None = None,
    max_score: float | None = None,
) -> pd.DataFrame:
    """Lowest first-choice scores first: candidates for mass removal.

    Args:
        results: A results table.
        n: Keep at most this many rows.
        max_score: Keep rows with ``top1_score <= max_score``.

    Returns:
        The rows, lowest ``top1_score`` first.
    """
    _check_results(results, ["top1_score"], "lowest_scores")
    out = results
    if max_score is not None:
        out = out[out["top1_score"] <= _check_score(max_score, "max_score")]
    out = out.sort_values("top1_score", ascending=True, kind="stable")
    if n is not None:
        out = out.head(check_int(n, "n", 0, " or None"))
    return _done(out)


def sort_by(results: pd.DataFrame, key: str = "score", *, ascending: bool | None = None) -> pd.DataFrame:
    """Sort a results table.

    Args:
        results: A results table.
        key: ``"score"`` (``top1_score``, highest first), ``"class"``
            (``top1_class`` A-Z, then highest score first), ``"entropy"``
            (highest first: most uncertain first) or ``"margin"`` (smallest
            first: most uncertain first).
        ascending: Reverse the default direction by passing the opposite.

    Returns:
        The sorted rows.
    """
    if key not in SORT_KEYS:
        raise ValueError(f"`key` must be one of {list(SORT_KEYS)}. Received: key={key!r}")
    if ascending is not None and not isinstance(ascending, (bool, np.bool_)):
        raise ValueError(f"`ascending` must be True, False or None. Received: ascending={ascending!r}")
    if key == "class":
        _check_results(results, ["top1_class", "top1_score"], "sort_by")
        asc = True if ascending is None else bool(ascending)
        out = results.sort_values(["top1_class", "top1_score"], ascending=[asc, False], kind="stable")
        return _done(out)
    column, default = {"score": ("top1_score", False), "entropy": ("entropy", False),
                       "margin": ("margin", True)}[key]
    _check_results(results, [column], "sort_by")
    asc = default if ascending is None else bool(ascending)
    return _done(results.sort_values(column, ascending=asc, kind="stable"))


def precision_at_thresholds(
    results: pd.DataFrame,
    truth: pd.DataFrame,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> pd.DataFrame:
    """Precision of the accepted predictions at several confidence thresholds.

    A prediction is accepted at threshold ``t`` when ``top1_score >= t`` and
    correct when ``top1_class`` equals the true label. Only images with a
    known true label count (empty labels, e.g. the sample's bad files, are
    left out).

    Args:
        results: A results table.
        truth: True labels: [path, label] (matched on the absolute path) or
            [relpath, label] (matched on ``relpath``), e.g.
            :func:`imgcls.sample.sample_truth`.
        thresholds: Confidence thresholds in [0, 1].

    Returns:
        DataFrame [threshold, n_accepted, share, n_correct, precision]:
        ``share`` = accepted / images with a true label; ``precision`` =
        correct / accepted (NaN when nothing is accepted).
    """
    _check_results(results, ["top1_class", "top1_score"], "precision_at_thresholds")
    if not isinstance(truth, pd.DataFrame) or "label" not in truth.columns or not (
        {"path", "relpath"} & set(truth.columns)
    ):
        raise ValueError(
            "`truth` must be a DataFrame with columns label and path (or relpath), e.g. "
            "imgcls.sample.sample_truth(workspace)."
        )
    ts = [_check_score(t, "thresholds") for t in thresholds]
    labelled = truth[truth["label"].astype(str) != ""]
    key = None
    if "path" in labelled.columns and "path" in results.columns:
        labels = dict(zip(labelled["path"].astype(str).map(_abspath), labelled["label"].astype(str)))
        key = results["path"].astype(str).map(_abspath)
        true = key.map(labels)
        if true.isna().all() and "relpath" in labelled.columns and "relpath" in results.columns:
            key = None
    if key is None:
        if "relpath" not in labelled.columns or "relpath" not in results.columns:
            raise ValueError("`truth` and `results` share no key column (path or relpath).")
        labels = dict(zip(labelled["relpath"].astype(str), labelled["label"].astype(str)))
        true = results["relpath"].astype(str).map(labels)
    scored = true.notna().to_numpy()
    score = results["top1_score"].to_numpy(dtype=np.float64)[scored]
    correct = (results["top1_class"].astype(str).to_numpy()[scored] == true.to_numpy()[scored])
    n_scored = int(scored.sum())
    rows = []
    for t in ts:
        acc = score >= t
        n_acc = int(acc.sum())
        n_ok = int(correct[acc].sum())
        rows.append({
            "threshold": t,
            "n_accepted": n_acc,
            "share": n_acc / n_scored if n_scored else float("nan"),
            "n_correct": n_ok,
            "precision": n_ok / n_acc if n_acc else float("nan"),
        })
    return pd.DataFrame(rows, columns=["threshold", "n_accepted", "share", "n_correct", "precision"])


def throwaway_candidates(
    run: "Run | str | os.PathLike",
    workspace: Workspace | str | os.PathLike,
    *,
    source: str | os.PathLike | None = None,
    cutoff: int = DEFAULT_CUTOFF,
    progress: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """The throw-away run's purpose: pool images for classes just under the cutoff.

    Identifies ``source`` (default the workspace's ``unlabelled/``) with the
    throw-away ``run`` and keeps the images whose first or second choice is
    one of the run's classes that are still under the usual ``cutoff`` in
    the library, ready for the review grid. A throw-away model is weak on
    exactly these classes (it saw few of their images), so second choices
    count too. Three columns are added: ``candidate`` (the target class),
    ``candidate_score`` (its score) and ``choice`` (1 when it is the first
    choice, 2 when the second). First-choice candidates come first, each
    group best score first. Images no longer at their path (moved since an
    earlier identification of the same pool) are left out.

    Args:
        run: The throw-away run (any run works; the filter is what matters).
        workspace: The workspace.
        source: Folder or paths to identify.
        cutoff: The usual cutoff the targets are under (default 40).
        progress: Progress bar.
        **options: Passed to :func:`identify`.

    Returns:
        The filtered results; ``attrs["targets"]`` lists the target classes
        (empty, and so no rows, when every class of the run makes ``cutoff``)
        and ``attrs["n_identified"]`` counts the pool images identified.
    """
    ws = open_workspace(workspace)
    run = _resolve_run(run, ws)
    counts = Library(ws).counts(cutoff=cutoff).set_index("label")["n"]
    targets = [c for c in run.classes if int(counts.get(c, 0)) < cutoff]
    results = identify(source if source is not None else ws.unlabelled, run=run, workspace=ws,
                       progress=progress, **options)
    results = results[[os.path.exists(p) for p in results["path"]]]  # moved out since: nothing to review
    top2 = results["top2_class"] if "top2_class" in results else pd.Series(None, index=results.index, dtype=object)
    top2_score = results["top2_score"] if "top2_score" in results else pd.Series(0.0, index=results.index)
    first = results["top1_class"].isin(targets)
    keep = first | top2.isin(targets)
    out = results[keep].copy()
    out["candidate"] = results["top1_class"].where(first, top2)[keep]
    out["candidate_score"] = results["top1_score"].where(first, top2_score)[keep].astype(float)
    out["choice"] = np.where(first[keep], 1, 2)
    out = out.sort_values(["choice", "candidate_score", "path"], ascending=[True, False, True]).reset_index(drop=True)
    out.attrs.update(results.attrs)
    out.attrs["targets"] = targets
    out.attrs["n_identified"] = len(results)
    return out
