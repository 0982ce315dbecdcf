"""One served model: a run loaded for inference, with its classes, version label and temperature.

A :class:`ServedModel` is immutable once built: live reload
(:mod:`imgcls.serving.reload`) builds a new one and the
:class:`~imgcls.serving.Predictor` swaps its reference atomically. A request
takes the current model once, at its start, and uses it to the end, so a
request in flight finishes on the model it started with and its log row
names that model. :meth:`ServedModel.hold` counts the requests using a model,
so an old one is closed only once they are done.

The model call is an :mod:`imgcls.runtimes` runtime (``runtime="keras"`` or
``"openvino"``, the run's export, compiled in its latency mode): decoding,
calibration and top-k stay here, the same whatever runs the model. Every
logged row records the runtime as ``"<engine>-<precision>"`` (``"openvino-int8"``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from imgcls.core import Workspace, calibrate
from imgcls.core import top_k as rank_top_k  # `top_k` is also an argument name here
from imgcls.runs import Run, load_run, version_label
from imgcls.runtimes import ExportNotFoundError, load_runtime
from imgcls.serving.batching import InferenceBatcher

__all__ = ["RUNTIME", "ServedModel", "load_served"]

_log = logging.getLogger("imgcls.serving")

#: The default runtime of a served model (see :data:`imgcls.runtimes.RUNTIMES`).
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
        runtime: ``"keras"`` (the run's model.keras) or ``"openvino"`` (the
            run's OpenVINO export, see :func:`imgcls.runtimes.load_runtime`).
        precision: For openvino, which export; None: the run's best.

    Attributes:
        run, run_id, classes, image_size, model_version, temperature (None for
        a run without calibration), runtime (the engine: ``"keras"`` or
        ``"openvino"``), precision, runtime_label (``"openvino-int8"``: what
        logged rows record), model (the ``keras.Model``, loaded on first use).

    Raises:
        imgcls.runtimes.ExportNotFoundError: openvino was asked for and the
            run has no export (the message names ``imgcls export``).
    """

    def __init__(self, workspace: Workspace, run: Run | str | os.PathLike, *,
                 model_version: str | None = None, batch_inference: bool = False,
                 max_batch: int = 32, runtime: str = RUNTIME, precision: str | None = None) -> None:
        self.run = load_run(run, workspace=workspace)
        self.run_id = self.run.run_id
        self.classes = list(self.run.classes)
        # One request at a time on every core (latency mode); a static batch
        # of one unless concurrent requests are batched together.
        self._runtime = load_runtime(self.run, runtime, precision=precision, mode="latency",
                                     batch_size=None if batch_inference or runtime == "keras" else 1)
        self.runtime = self._runtime.name
        self.precision = self._runtime.precision
        self.runtime_label = self._runtime.label
        self.image_size = self._runtime.input_size
        n_out = self.model.output_shape[-1] if self.runtime == "keras" else len(self.classes)
        if n_out != len(self.classes):
            raise ValueError(
                f"Run {self.run_id!r} has {len(self.classes)} classes but its model has "
                f"{n_out} outputs; the run folder is inconsistent. Retrain or re-save it."
            )
        self.model_version = model_version or version_label(workspace, self.run_id)
        self.temperature = self.run.temperature
        self.fallback: str | None = None  # why another runtime than asked for serves (load_served)
        self._users = 0
        self._idle = threading.Condition()
        self.batcher = InferenceBatcher(self.infer, max_batch=max_batch) if batch_inference else None
        self.infer(np.zeros((1, *self.image_size, 3), dtype=np.uint8))

    def __repr__(self) -> str:
        return (f"ServedModel(run={self.run_id!r}, version={self.model_version!r}, "
                f"classes={len(self.classes)}, input={self.image_size}, T={self.temperature}, "
                f"runtime={self.runtime_label!r})")

    @property
    def model(self) -> Any:
        """The run's ``keras.Model`` (loaded on first use; an openvino runtime does not need it)."""
        return self.run.model

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Raw class probabilities (n, num_classes) for uint8 pixels (n, h, w, 3)."""
        # The runtime serialises its calls (Keras model objects are not
        # documented thread-safe; an OpenVINO request runs one call at a time).
        return np.asarray(self._runtime.predict(batch), dtype=np.float64)

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
        """Stop the inference thread and release the runtime (idempotent)."""
        if self.batcher is not None:
            self.batcher.close()
        self._runtime.close()

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
            "precision": self.precision,
            "runtime_label": self.runtime_label,
            "runtime_fallback": self.fallback,
        }


def load_served(workspace: Workspace, run: Run | str | os.PathLike, *, runtime: str = RUNTIME,
                precision: str | None = None, batch_inference: bool = False, max_batch: int = 32) -> ServedModel:
    """The :class:`ServedModel` a live reload swaps to: ``run`` on the runtime being served.

    When the runtime is openvino and the new run has no export of it (of
    ``precision``), the run is served on Keras instead, with a warning on the
    ``imgcls.serving`` logger: the promoted run is served (as the deploy gate
    measured it, since the gate uses an export only where one exists), never an
    old one, and never silently: :meth:`ServedModel.info` says
    ``runtime_fallback`` and every logged row records ``keras-f32``.
    ``imgcls export RUN --runtime openvino`` and a restart (or the next
    promotion) bring the faster runtime back.
    """
    try:
        return ServedModel(workspace, run, runtime=runtime, precision=precision,
                           batch_inference=batch_inference, max_batch=max_batch)
    except ExportNotFoundError as exc:
        _log.warning("serving run %s on keras instead of %s: %s", getattr(run, "run_id", run), runtime, exc)
        served = ServedModel(workspace, run, batch_inference=batch_inference, max_batch=max_batch)
        served.fallback = f"{runtime} asked for; {exc}"
        return served
