"""What every runtime is: raw pixels in, the model's softmax probabilities out.

A :class:`Runtime` runs one run's model with one inference engine at one
precision. It does only the model call: decoding (:mod:`imgcls.inputs`),
temperature calibration (:func:`imgcls.core.scores.calibrate` with
``run.temperature``) and top-k (:func:`imgcls.core.scores.top_k`) stay with
the callers, so every runtime shares them.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from imgcls.core.checks import check_int

__all__ = ["Runtime", "runtime_label"]


def runtime_label(runtime: str, precision: str) -> str:
    """The one spelling of a runtime and its precision: ``"openvino-int8"``, ``"keras-f32"``.

    Bulk metadata, logged transactions and reports use it to tell runtimes apart.
    """
    return f"{runtime}-{precision}"


class Runtime:
    """One run's model, ready to predict with one engine at one precision.

    Build one with :func:`imgcls.runtimes.load_runtime`. A runtime is safe to
    share between threads (calls are serialised; an OpenVINO runtime in
    ``"throughput"`` mode spreads each call over its parallel requests).

    Attributes:
        name: The engine: ``"keras"`` or ``"openvino"``.
        precision: What the model computes in: ``"f32"``, ``"bf16"`` or ``"int8"``.
        run_id: The run whose model this is.
        classes: Ordered class list: column ``i`` of :meth:`predict` is ``classes[i]``.
        input_size: ``(height, width)`` of the images the model takes.
        batch_size: The most images one model call takes (None: any number).
        label: ``"<name>-<precision>"`` (e.g. ``"openvino-int8"``, ``"keras-f32"``):
            what bulk results and the transaction log record as the runtime.
    """

    name: str = ""

    def __init__(self, *, run_id: str, precision: str, classes: list[str],
                 input_size: tuple[int, int], batch_size: int | None):
        self.run_id = run_id
        self.precision = precision
        self.classes = list(classes)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.batch_size = check_int(batch_size, "batch_size", allow_none=True)
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        """``"<name>-<precision>"``, e.g. ``"openvino-int8"`` (see :func:`runtime_label`)."""
        return runtime_label(self.name, self.precision)

    # --- the one public call ---------------------------------------------------
    def predict(self, batch: Any) -> np.ndarray:
        """Class probabilities of a batch of images.

        Args:
            batch: ``(n, height, width, 3)`` RGB pixels in 0..255 (uint8 or
                float), NHWC, decoded and resized as :mod:`imgcls.inputs` does;
                ``height, width`` must be :attr:`input_size`.

        Returns:
            float32 ``(n, len(classes))`` softmax probabilities, not calibrated.

        Raises:
            ValueError: ``batch`` is not a batch of images of :attr:`input_size`.
        """
        x = self._as_batch(batch)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        with self._lock:
            probs = self._predict_batches(x)
        return np.asarray(probs, dtype=np.float32)

    def info(self) -> dict:
        """What runs the model: ``{"runtime", "precision", "run_id", ...settings}`` (plain JSON).

        This is what bulk metadata and logged transactions record about the runtime.
        """
        return {"runtime": self.name, "precision": self.precision, "label": self.label, "run_id": self.run_id,
                "batch_size": self.batch_size, **self.settings()}

    def settings(self) -> dict:
        """The engine settings (plain JSON); see :meth:`info`."""
        return {}

    def close(self) -> None:
        """Release the engine's resources (the runtime cannot predict afterwards)."""

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(run={self.run_id!r}, precision={self.precision!r}, "
                f"classes={len(self.classes)}, input={self.input_size}, batch_size={self.batch_size})")

    # --- for subclasses --------------------------------------------------------
    def _predict_batches(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of ``x`` (float32, any number of images), one model call per
        :attr:`batch_size` images; called under the lock."""
        if self.batch_size is None or len(x) <= self.batch_size:
            return self._predict(x)
        return np.concatenate([self._predict(x[i:i + self.batch_size])
                               for i in range(0, len(x), self.batch_size)])

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of ``x`` (float32, at most :attr:`batch_size` images)."""
        raise NotImplementedError

    def _as_batch(self, batch: Any) -> np.ndarray:
        try:
            x = np.asarray(batch, dtype=np.float32)
        except (TypeError, ValueError):
            x = None
        h, w = self.input_size
        if x is None or x.ndim != 4 or x.shape[1:] != (h, w, 3):
            got = "not numeric" if x is None else f"shape {x.shape}"
            raise ValueError(
                f"`batch` must be images of shape (n, {h}, {w}, 3) (RGB pixels 0-255, NHWC). "
                f"Received: {got}; fix: decode and resize with imgcls.inputs (load_images or "
                f"make_inference_dataset with image_size={self.input_size})"
            )
        return x
