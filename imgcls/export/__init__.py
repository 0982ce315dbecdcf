"""Export a run for a faster inference runtime, with a parity report against Keras (layer 5).

* :mod:`~imgcls.export.exporter`: :func:`export_run`, the one entry point
  (``imgcls export RUN --runtime openvino --precision int8``).
* :mod:`~imgcls.export.convert`: Keras -> OpenVINO IR, NNCF int8 quantisation.
* :mod:`~imgcls.export.calibration`: the run's training images that calibrate int8, chosen by hash.
* :mod:`~imgcls.export.parity`: top-1 agreement, accuracy and score differences against Keras.

The exported files live in the run folder; :func:`imgcls.runtimes.load_runtime`
loads them (``runtime="openvino"``).
"""

from imgcls.core.quiet import start_tensorflow

start_tensorflow()  # before any TensorFlow import below: loads it without its start-up lines on stderr

from imgcls.export.calibration import DEFAULT_CALIBRATION_IMAGES, calibration_images, calibration_rows
from imgcls.export.convert import (
    DEFAULT_MAX_DROP,
    DEFAULT_MAX_ITERATIONS,
    QUANTIZATION_PRESET,
    QUANTIZATION_SETTINGS,
    int8_operations,
    quantize_int8,
    quantize_int8_controlled,
    save_openvino,
    to_openvino,
)
from imgcls.export.exporter import DEFAULT_MIN_AGREEMENT, EXPORT_RUNTIMES, export_run
from imgcls.export.parity import MAX_LISTED, PARITY_SPLITS, parity_report, parity_rows, parity_table

__all__ = [
    "EXPORT_RUNTIMES",
    "DEFAULT_MIN_AGREEMENT",
    "DEFAULT_CALIBRATION_IMAGES",
    "QUANTIZATION_PRESET",
    "QUANTIZATION_SETTINGS",
    "DEFAULT_MAX_DROP",
    "DEFAULT_MAX_ITERATIONS",
    "PARITY_SPLITS",
    "MAX_LISTED",
    "export_run",
    "to_openvino",
    "quantize_int8",
    "quantize_int8_controlled",
    "int8_operations",
    "save_openvino",
    "calibration_rows",
    "calibration_images",
    "parity_rows",
    "parity_report",
    "parity_table",
]
