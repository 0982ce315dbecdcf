"""The OpenVINO runtime: a run's exported model on OpenVINO's CPU plugin (f32, bf16 or int8).

Settings that matter on a CPU (measured in ``benchmarks/bench_runtime.py``):

* ``INFERENCE_PRECISION_HINT`` is always set (:data:`~imgcls.runtimes.INFERENCE_PRECISION`):
  where the CPU has AVX-512 BF16 the plugin's default is bf16, so an f32 model
  compiled without it silently computes in bf16.
* ``mode="latency"`` (one request using every core) suits one request at a
  time (serving); ``mode="throughput"`` (the plugin's streams, each call's
  batch spread over parallel requests with ``AsyncInferQueue``) suits bulk work.
* ``batch_size`` compiles the model for exactly that batch (a static shape,
  about 20% faster at batch 1); smaller batches are padded. Without it the
  batch dimension stays dynamic.

``openvino`` is imported only when a runtime is built (``pip install 'imgcls[openvino]'``).
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from imgcls.core.checks import check_choice, check_int
from imgcls.runs import Run
from imgcls.runtimes.base import Runtime
from imgcls.runtimes.exports import (
    INFERENCE_PRECISION,
    MODEL_XML,
    ExportNotFoundError,
    check_precision,
    read_export,
    read_export_file,
)

__all__ = ["OpenVINORuntime", "MODES", "import_openvino", "openvino_core", "compile_openvino"]

#: The performance modes of :class:`OpenVINORuntime`.
MODES = ("latency", "throughput")

_CORE: list = []


def import_openvino() -> Any:
    """The ``openvino`` module, or an ImportError that says how to install it."""
    try:
        import openvino
    except ImportError as exc:  # pragma: no cover - the extra is installed in the dev venv
        raise ImportError(
            "The openvino runtime needs the OpenVINO packages: pip install 'imgcls[openvino]' "
            "(openvino, and nncf for int8 exports)."
        ) from exc
    return openvino


def openvino_core() -> Any:
    """The process's one ``openvino.Core`` (created on first use)."""
    if not _CORE:
        _CORE.append(import_openvino().Core())
    return _CORE[0]


def compile_openvino(model: Any, precision: str, *, mode: str = "latency", batch_size: int | None = None,
                     streams: int | None = None, threads: int | None = None) -> Any:
    """Compile an OpenVINO model (or a model.xml path) for the CPU with the settings that matter.

    Args:
        model: An ``openvino.Model`` or the path of a model.xml.
        precision: ``"f32"``, ``"bf16"`` or ``"int8"`` (what the model is);
            sets ``INFERENCE_PRECISION_HINT`` (f32 for int8's float operations).
        mode: ``"latency"`` or ``"throughput"`` (``PERFORMANCE_HINT``).
        batch_size: Reshape to this static batch first; None keeps the batch dynamic.
        streams: ``NUM_STREAMS`` (default: what the hint chooses).
        threads: ``INFERENCE_NUM_THREADS`` (default: every core).

    Returns:
        The ``openvino.CompiledModel``.
    """
    precision = check_precision(precision)
    mode = check_choice(mode, "mode", MODES, fix="latency for one request at a time, throughput for bulk work")
    batch_size = check_int(batch_size, "batch_size", allow_none=True)
    streams = check_int(streams, "streams", allow_none=True)
    threads = check_int(threads, "threads", allow_none=True)
    core = openvino_core()
    if isinstance(model, (str, os.PathLike)):
        model = core.read_model(os.fspath(model))
    if batch_size is not None:
        model = model.clone()
        shape = model.input(0).get_partial_shape()
        shape[0] = batch_size
        model.reshape({model.input(0): shape})
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[precision],
                              "PERFORMANCE_HINT": mode.upper()}
    if streams is not None:
        config["NUM_STREAMS"] = streams
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    return core.compile_model(model, "CPU", config)


def _type_name(value: Any) -> str:
    name = getattr(value, "get_type_name", None)
    return name() if callable(name) else str(value)


class OpenVINORuntime(Runtime):
    """A run's OpenVINO export, compiled for the CPU.

    Args:
        run: The run; it must have an accepted export of ``precision``
            (``imgcls export RUN --runtime openvino --precision PRECISION``).
        precision: ``"f32"``, ``"bf16"`` or ``"int8"``.
        batch_size: Compile for this static batch (smaller batches are padded,
            larger ones cut); None keeps the batch dynamic.
        mode: ``"latency"`` (one request on every core: serving) or
            ``"throughput"`` (parallel requests: bulk work).
        streams: ``NUM_STREAMS`` (default: the mode's choice).
        threads: ``INFERENCE_NUM_THREADS`` (default: every core).
        folder: Load the model.xml of this folder instead of the run's
            accepted export (:func:`imgcls.export.export_run` checks a staged
            export this way before accepting it).

    Raises:
        ExportNotFoundError: The run has no export of ``precision`` (or
            ``folder`` holds no model.xml).
    """

    name = "openvino"

    def __init__(self, run: Run, precision: str, *, batch_size: int | None = None, mode: str = "latency",
                 streams: int | None = None, threads: int | None = None,
                 folder: str | os.PathLike | None = None):
        precision = check_precision(precision)
        if folder is not None:
            record = {**read_export_file(Path(folder)), "path": os.fspath(folder)}
            if not (Path(folder) / MODEL_XML).is_file():
                raise ExportNotFoundError(f"`folder` must hold an OpenVINO {MODEL_XML}. Received: folder={str(folder)!r}")
        else:
            record = read_export(run, precision)
        if record is None:
            raise ExportNotFoundError(
                f"Run {run.run_id!r} has no OpenVINO {precision} export "
                f"({run.path / 'openvino' / precision / MODEL_XML} is missing). Export it first: "
                f"imgcls export {run.run_id} --runtime openvino --precision {precision} "
                f"(or imgcls.export.export_run(workspace, {run.run_id!r}, precision={precision!r}))."
            )
        size = run.image_size or tuple(record.get("input_shape", [None, None])[:2])
        super().__init__(run_id=run.run_id, precision=precision, classes=run.classes, input_size=size,
                         batch_size=batch_size)
        self.mode = check_choice(mode, "mode", MODES)
        self.export_path = Path(record["path"])
        ov = import_openvino()
        self._compiled = compile_openvino(self.export_path / MODEL_XML, precision, mode=self.mode,
                                          batch_size=self.batch_size, streams=streams, threads=threads)
        self._requests = 1
        self._queue = None
        self._request = None
        if self.mode == "throughput":
            self._requests = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            self._queue = ov.AsyncInferQueue(self._compiled, self._requests)
            self._results: dict[int, np.ndarray] = {}
            self._queue.set_callback(self._collect)
        else:
            self._request = self._compiled.create_infer_request()

    def settings(self) -> dict:
        """Engine settings as compiled: version, precision hint, performance hint, streams, threads."""
        c = self._compiled
        return {
            "engine": f"openvino {metadata.version('openvino')}",
            "mode": self.mode,
            "batch": "dynamic" if self.batch_size is None else "static",
            "inference_precision": _type_name(c.get_property("INFERENCE_PRECISION_HINT")),
            "performance_hint": str(c.get_property("PERFORMANCE_HINT")),
            "streams": int(c.get_property("NUM_STREAMS")),
            "threads": int(c.get_property("INFERENCE_NUM_THREADS")),
            "requests": self._requests,
            "export": str(self.export_path),
        }

    def close(self) -> None:
        """Drop the compiled model and its requests (after a call in flight ends)."""
        with self._lock:
            if self._queue is not None:
                self._queue.wait_all()
            self._queue = self._request = self._compiled = None

    # --- inference ---------------------------------------------------------
    def _padded(self, x: np.ndarray) -> np.ndarray:
        if self.batch_size is None or len(x) == self.batch_size:
            return x
        pad = np.zeros((self.batch_size - len(x), *x.shape[1:]), dtype=x.dtype)
        return np.concatenate([x, pad])

    def _collect(self, request: Any, index: int) -> None:
        self._results[index] = np.array(request.get_output_tensor(0).data)

    def _check_open(self) -> None:
        if self._compiled is None:
            raise ValueError(f"{self!r} is closed; load the runtime again with load_runtime(...).")

    def _predict(self, x: np.ndarray) -> np.ndarray:
        self._check_open()
        self._request.infer({0: self._padded(x)})
        return np.array(self._request.get_output_tensor(0).data[:len(x)])

    def _predict_batches(self, x: np.ndarray) -> np.ndarray:
        if self._queue is None:
            return super()._predict_batches(x)
        self._check_open()
        # Throughput: the batch spread over the parallel requests (a static
        # batch is the unit; a dynamic batch is cut into one part per request).
        n = len(x)
        step = self.batch_size or max(1, -(-n // self._requests))
        self._results = {}
        starts = range(0, n, step)
        for index, start in enumerate(starts):
            self._queue.start_async({0: self._padded(x[start:start + step])}, index)
        self._queue.wait_all()
        return np.concatenate([self._results[i][:min(step, n - start)] for i, start in enumerate(starts)])
