"""The Beam transforms of bulk identification: decode, RunInference with the run's own handler, rows.

:func:`imgcls.bulk.identify_beam` builds its pipeline from these pieces
(this module imports ``apache_beam``, the ``beam`` extra; nothing imports it
at package import time):

* :class:`DecodeBatch` - a batch of image files in, their pixels out, decoded
  by :func:`imgcls.inputs.load_images` (the training and local-identification
  decode: Pillow, EXIF orientation, turns, the run's input size); an
  unreadable file goes to the ``errors`` output with the same reason as in a
  local job. Files on a non-local Beam filesystem (``gs://``, ``s3://``, ...)
  are read with ``FileSystems.open`` into a temporary file first; their content
  hash is taken from those bytes.
* :class:`RunModelHandler` - a ``ModelHandler`` for Beam's ``RunInference``
  that loads the run folder itself (:meth:`imgcls.runs.Run.load_model`:
  ``keras.saving.load_model`` in safe mode; never Beam's ``TFModelHandler*``,
  which pull in tensorflow-hub and Keras 2) and scores each batch with the
  local path's own code: the same compiled model call, the run's temperature
  (:func:`imgcls.core.scores.calibrate`) and the same row builder
  (:class:`imgcls.bulk.store.ChunkWriter`: top-k, entropy, margin, content
  hash), so a Beam row equals a local row.
* :func:`error_row` - one row of the errors table.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pandas as pd
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from imgcls.bulk.identify import _predict_batch, _predict_function
from imgcls.bulk.store import ChunkWriter
from imgcls.core import ImageError, file_hash, utcnow
from imgcls.core.imagefiles import open_regular_file

__all__ = ["DecodeBatch", "RunModelHandler", "error_row", "is_remote", "ERRORS_TAG", "METRICS_NAMESPACE"]

#: The tagged output of :class:`DecodeImage` that carries unreadable files.
ERRORS_TAG = "errors"
#: Namespace of the job's Beam counters (``identified``, ``unreadable``).
METRICS_NAMESPACE = "imgcls.bulk"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_remote(path: str) -> bool:
    """Whether ``path`` names a file on a non-local Beam filesystem (``scheme://...``)."""
    return bool(_SCHEME.match(path)) and not path.startswith("file://")


def _hash_or_empty(path: str) -> str:
    # As the local job: a symbolic link that is not followed gets no hash; a file
    # that cannot be read at all gets "".
    if os.path.islink(path):
        return ""
    try:
        return file_hash(path)
    except (OSError, ValueError):
        return ""


def error_row(path: str, relpath: str, reason: str, run_id: str, *, digest: str | None = None) -> dict:
    """One row of the errors table (:data:`imgcls.bulk.ERROR_COLUMNS`).

    Args:
        path: The file.
        relpath: Its path relative to the identified folder.
        reason: Why it cannot be read (:attr:`imgcls.core.ImageError.reason`).
        run_id: The run of the job.
        digest: Its content hash when already known (a remote file's bytes);
            else it is taken from the local file ("" for a link or an unreadable file).
    """
    return {
        "path": path,
        "relpath": relpath,
        "hash": _hash_or_empty(path) if digest is None else digest,
        "reason": reason,
        "run_id": run_id,
        "time": pd.Timestamp(utcnow()),
    }


class DecodeBatch(beam.DoFn):
    """A batch of ``(path, relpath, turns)`` -> the list of its decoded images, and error rows.

    The main output is one list per batch (RunInference gets it pre-batched)
    of ``{"path", "relpath", "hash", "image"}`` (``image`` uint8 at the run's
    input size; ``hash`` None for a local file, hashed as locally later); an
    unreadable file goes to the :data:`ERRORS_TAG` output. The batch is
    decoded by one :func:`imgcls.inputs.load_images` call.

    Args:
        image_size: The run's input ``(height, width)``.
        run_id: The run (written into error rows).
        root: For files a pattern found on the local filesystem, the pattern's
            folder: a symbolic link leading out of it is never read (an error
            row with :func:`imgcls.core.open_regular_file`'s reason), as a
            folder listing never follows one.
    """

    def __init__(self, image_size: tuple[int, int], run_id: str, root: str | None = None):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.run_id = run_id
        self.root = root
        self.unreadable = Metrics.counter(METRICS_NAMESPACE, "unreadable")

    def _link_problem(self, path: str) -> str:
        if self.root is None or not os.path.islink(path):
            return ""
        try:
            with open_regular_file(path, root=self.root):
                return ""
        except ImageError as err:
            return err.reason

    def process(self, items: Sequence[Sequence[Any]]) -> Iterator[Any]:
        from imgcls.inputs import load_images

        items = [(str(p), str(r), int(t)) for p, r, t in items]
        with tempfile.TemporaryDirectory(prefix="imgcls-beam-") as tmp:
            names: list[str] = []
            digests: list[str | None] = []
            failed: dict[int, tuple[str, str]] = {}  # remote files that cannot be read at all
            for i, (path, _, _) in enumerate(items):
                if not is_remote(path):
                    problem = self._link_problem(path)
                    if problem:
                        failed[i] = ("", problem)
                    names.append(os.path.join(tmp, "never-read") if problem else path)
                    digests.append(None)
                    continue
                local = os.path.join(tmp, f"{i:06d}{os.path.splitext(path)[1]}")
                try:
                    with FileSystems.open(path) as fh:
                        data = fh.read()
                    Path(local).write_bytes(data)
                    digests.append(hashlib.sha256(data).hexdigest())
                except Exception as err:  # noqa: BLE001 - an unreadable file never stops the job
                    failed[i] = ("", f"cannot read the file ({type(err).__name__}: {err})")
                    digests.append("")
                names.append(local)
            images, ok, errors = load_images(names, self.image_size, turns=[t for _, _, t in items])
        reasons = dict(errors)
        good = []
        for i, (path, relpath, _) in enumerate(items):
            if ok[i]:
                good.append({"path": path, "relpath": relpath, "hash": digests[i], "image": images[i]})
                continue
            self.unreadable.inc()
            digest, reason = failed.get(i, (digests[i], reasons.get(names[i], "")))
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, error_row(path, relpath, reason, self.run_id,
                                                                 digest=digest))
        if good:
            yield good


class RunModelHandler(ModelHandler):
    """Beam ``ModelHandler`` of an ``imgcls`` run: decoded images in, result rows out.

    Each worker loads the run folder once (``Run.load_model(compile=False)``:
    ``keras.saving.load_model(..., safe_mode=True)`` plus the run's own checks),
    so the folder must be readable at ``run_path`` on every worker (a shared
    mount on a cluster). A batch (one element of :class:`DecodeBatch`: use the
    handler ``with_no_batching()``) is scored exactly as by
    :func:`imgcls.bulk.identify`.

    Args:
        run_path: The run folder.
        classes: The run's classes (model output order).
        top_k: Choices per row (already capped at the class count).
        temperature: The run's temperature (``None``: raw scores).
        image_size: The model input ``(height, width)``.
        model_name: Registry name of the model (the ``model`` column).
        run_id: The run id (the ``run_id`` column).
    """

    def __init__(self, run_path: str, *, classes: Sequence[str], top_k: int, temperature: float | None,
                 image_size: tuple[int, int], model_name: str, run_id: str):
        super().__init__()
        self.identified = Metrics.counter(METRICS_NAMESPACE, "identified")
        self.run_path = str(run_path)
        self.classes = list(classes)
        self.top_k = int(top_k)
        self.temperature = temperature
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.model_name = model_name
        self.run_id = run_id

    def load_model(self) -> Any:
        """The run's Keras model, loaded in safe mode."""
        from imgcls.runs import load_run

        return load_run(self.run_path).load_model(compile=False)

    def run_inference(self, batch: Sequence[dict], model: Any,
                      inference_args: dict | None = None) -> Iterable[PredictionResult]:
        """Score one batch of decoded images; one result row (a dict) per image."""
        images = np.stack([e["image"] for e in batch]).astype(np.float32)
        predict = _predict_function(model, self.image_size)
        probs, raw_top1 = _predict_batch(predict, images, self.temperature)
        paths = [e["path"] for e in batch]
        writer = ChunkWriter(Path(tempfile.gettempdir()), top_k=self.top_k, classes=self.classes,
                             model_name=self.model_name, run_id=self.run_id, start_part=0)
        writer.add_batch(paths, [e["relpath"] for e in batch], probs, raw_top1=raw_top1)
        cols = writer.rows[-1]  # the batch's columns, as a local job writes them; never flushed
        names = list(writer.schema.names)
        for i, e in enumerate(batch):
            row = {name: cols[name][i] for name in names}
            if e.get("hash") is not None:  # a remote file: hashed from the bytes read
                row["hash"] = e["hash"]
            yield PredictionResult(e["path"], row, model_id=self.run_id)
        self.identified.inc(len(batch))

    def get_num_bytes(self, batch: Sequence[dict]) -> int:
        """Bytes of a batch (its pixels; Beam's default pickles the whole batch to measure it)."""
        return int(sum(e["image"].nbytes for e in batch))

    def get_metrics_namespace(self) -> str:
        """The namespace of RunInference's own metrics."""
        return METRICS_NAMESPACE
