"""Inference runtimes: a run's model on Keras or on OpenVINO (f32 / bf16 / int8) (layer 3).

* :mod:`~imgcls.runtimes.load`: :func:`load_runtime`, the one entry point.
* :mod:`~imgcls.runtimes.base`: :class:`Runtime`, raw pixels in, softmax probabilities out.
* :mod:`~imgcls.runtimes.keras_runtime`: the run's ``model.keras``.
* :mod:`~imgcls.runtimes.openvino_runtime`: the run's OpenVINO export on the CPU plugin.
* :mod:`~imgcls.runtimes.exports`: where exports live in a run folder and what they record
  (written by :func:`imgcls.export.export_run`).

Nothing heavy is imported with this package: TensorFlow when a Keras runtime
is built, ``openvino`` when an OpenVINO one is.
"""

import imgcls.core.quiet  # noqa: F401  (before TensorFlow loads: silences its start-up logging)

from imgcls.runtimes.base import Runtime, runtime_label
from imgcls.runtimes.exports import (
    EXPORT_FILE,
    INFERENCE_PRECISION,
    MODEL_BIN,
    MODEL_XML,
    OPENVINO_DIR,
    PRECISION_PREFERENCE,
    PRECISIONS,
    ExportNotFoundError,
    check_precision,
    export_dir,
    exported_precisions,
    read_export,
    read_export_file,
    refused_file,
)
from imgcls.runtimes.keras_runtime import KerasRuntime
from imgcls.runtimes.load import RUNTIMES, best_runtime, load_runtime, resolve_runtime
from imgcls.runtimes.openvino_runtime import (
    MODES,
    OpenVINORuntime,
    compile_openvino,
    import_openvino,
    openvino_core,
)

__all__ = [
    "RUNTIMES",
    "MODES",
    "PRECISIONS",
    "PRECISION_PREFERENCE",
    "INFERENCE_PRECISION",
    "OPENVINO_DIR",
    "EXPORT_FILE",
    "MODEL_XML",
    "MODEL_BIN",
    "Runtime",
    "KerasRuntime",
    "OpenVINORuntime",
    "ExportNotFoundError",
    "load_runtime",
    "resolve_runtime",
    "best_runtime",
    "runtime_label",
    "check_precision",
    "export_dir",
    "refused_file",
    "read_export",
    "read_export_file",
    "exported_precisions",
    "compile_openvino",
    "import_openvino",
    "openvino_core",
]
