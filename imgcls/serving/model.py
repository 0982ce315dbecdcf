"""One served model: a run loaded for inference, with its classes, version label and temperature.

A :class:`ServedModel` is immutable once built: live reload
(:mod:`imgcls.serving.reload`) builds a new one and the
:class:`~imgcls.serving.Predictor` swaps its reference atomically. A request
takes the current model once, at its start, and uses it to the end, so a
request in flight finishes on the model it started with and its log row
names that model. :meth:`ServedModel.hold` counts the requests using a model,
so an old one is closed only once they are done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from imgcls.core import Workspace, calibrate
from imgcls.core import top_k as rank_top_k  # `top_k` is also an argument name here
from imgcls.runs import Run, load_run, version_label
from imgcls.serving.batching import InferenceBatcher

__all__ = ["RUNTIME", "ServedModel"]

#: The runtime a served model runs on (``imgcls.runtimes`` adds others later).
RUNTIME = "keras"


class ServedModel:
    """A run's model ready for inference: the model, its classes, version label and temperature.

    Args:
        workspace: The workspace.
        run: The run (anything :func:`imgcls.runs.load_run` takes).
        model_version: The version label (default :func:`imgcls.runs.version_label`).
        batch_inference: Run the images of concurrent requests together from
            one inference thread (see :class:`~imgcls.serving.batching.InferenceBatcher`).
        max_batch: Largest batch formed.

    Attributes:
        run, run_id, classes, image_size, model_version, temperature (None for
        a run without calibration), runtime, model.
    """

    def __init__(self, workspace: Workspace, run: Run | str | os.PathLike, *,
                 model_version: str | None = None, batch_inference: bool = False,
                 max_batch: int = 32) -> None:
        self.run = load_run(run, workspace=workspace)
        self.run_id = self.run.run_id
        self.classes = list(self.run.classes)
        self.model = self.run.model
        size = self.run.image_size
        if size is None or None in size:
            shape = self.model.input_shape
            size = (int(shape[1]), int(shape[2]))
        self.image_size = (int(size[0]), int(size[1]))
        n_out = self.model.output_shape[-1]
        if n_out != len(self.classes):
            raise ValueError(
                f"Run {self.run_id!r} has {len(self.classes)} classes but its model has "
                f"{n_out} outputs; the run folder is inconsistent. Retrain or re-save it."
            )
        self.model_version = model_version or version_label(workspace, self.run_id)
        self.temperature = self.run.temperature
        self.runtime = RUNTIME
        self._lock = threading.Lock()
        self._users = 0
        self._idle = threading.Condition()
        # One traced graph for any batch size (Keras' predict_on_batch traces
        # twice before it generalises the batch dimension), built now rather
        # than on the first request.
        import tensorflow as tf

        model = self.model
        self._forward = tf.function(
            lambda x: model(x, training=False), autograph=False,
            input_signature=[tf.TensorSpec([None, *self.image_size, 3], tf.float32)])
        self.batcher = InferenceBatcher(self.infer, max_batch=max_batch) if batch_inference else None
        self.infer(np.zeros((1, *self.image_size, 3), dtype=np.uint8))

    def __repr__(self) -> str:
        return (f"ServedModel(run={self.run_id!r}, version={self.model_version!r}, "
                f"classes={len(self.classes)}, input={self.image_size}, T={self.temperature})")

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Raw class probabilities (n, num_classes) for uint8 pixels (n, h, w, 3)."""
        x = np.asarray(batch, dtype=np.float32)
        with self._lock:  # Keras model objects are not documented thread-safe
            probs = self._forward(x).numpy()
        return np.asarray(probs, dtype=np.float64)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Raw probabilities of one image (through the batcher when there is one)."""
        if self.batcher is not None:
            return self.batcher.submit(pixels)
        return self.infer(pixels[None])[0]

    def ranked(self, probs: np.ndarray, k: int) -> tuple[list[dict], float]:
        """(the ``k`` best classes with calibrated scores, best first; the raw top-1 score).

        Scores are :func:`imgcls.core.calibrate`-d with the run's temperature
        (unchanged for a run without one), rounded to 6 decimals.
        """
        calibrated = calibrate(probs, self.temperature)
        indices, scores = rank_top_k(calibrated, k)
        top = [{"class": self.classes[i], "score": round(float(s), 6)}
               for i, s in zip(indices.tolist(), scores.tolist())]
        return top, round(float(np.asarray(probs)[indices[0]]), 6)

    @contextmanager
    def hold(self) -> Iterator["ServedModel"]:
        """Count a request using this model for its duration (see :meth:`close_when_idle`)."""
        with self._idle:
            self._users += 1
        try:
            yield self
        finally:
            with self._idle:
                self._users -= 1
                self._idle.notify_all()

    def close_when_idle(self, timeout: float = 300.0) -> None:
        """Wait until no request holds this model (at most ``timeout`` s), then stop its batcher."""
        with self._idle:
            self._idle.wait_for(lambda: self._users == 0, timeout)
        self.close()

    def close(self) -> None:
        """Stop the inference thread (idempotent)."""
        if self.batcher is not None:
            self.batcher.close()

    def info(self) -> dict[str, Any]:
        """What this model is: run id, version, classes, input size, temperature, runtime."""
        created = self.run.created
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "model": self.run.model_name,
            "classes": list(self.classes),
            "num_classes": len(self.classes),
            "input_size": list(self.image_size),
            "generation": self.run.generation,
            "parent": self.run.parent,
            "created": None if created is None else created.isoformat(),
            "temperature": self.temperature,
            "runtime": self.runtime,
        }
