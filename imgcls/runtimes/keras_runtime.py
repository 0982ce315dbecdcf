"""The Keras runtime: the run's own ``model.keras`` (float32; TensorFlow's oneDNN kernels)."""

from __future__ import annotations

import numpy as np

from imgcls.runs import Run
from imgcls.runtimes.base import Runtime

__all__ = ["KerasRuntime"]


class KerasRuntime(Runtime):
    """The run's Keras model, called as ``model(x, training=False)`` in one traced graph.

    The graph has a free batch dimension (traced once, whatever the batch
    size), so it gives exactly ``model.predict_on_batch``'s probabilities
    without retracing when the last batch of a job is smaller.

    Args:
        run: The run (its model is loaded on first use of ``run.model``).
        batch_size: The most images per model call (a larger batch is cut
            into calls of this size); None for any number.
    """

    name = "keras"

    def __init__(self, run: Run, *, batch_size: int | None = None):
        from imgcls.core.quiet import start_tensorflow

        tf = start_tensorflow()  # TensorFlow's start-up lines stay off stderr

        model = run.model
        size = run.image_size or tuple(int(s) for s in model.input_shape[1:3])
        super().__init__(run_id=run.run_id, precision="f32", classes=run.classes, input_size=size,
                         batch_size=batch_size)
        self._model = model
        self._forward = tf.function(
            lambda x: model(x, training=False), autograph=False,
            input_signature=[tf.TensorSpec([None, *self.input_size, 3], tf.float32)])

    def settings(self) -> dict:
        """``{"engine": "tensorflow <version>", "batch": "dynamic"}``."""
        import tensorflow as tf

        return {"engine": f"tensorflow {tf.__version__}", "batch": "dynamic"}

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x).numpy()
