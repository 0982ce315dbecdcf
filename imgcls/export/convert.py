"""Keras model -> OpenVINO IR, and NNCF's post-training int8 quantisation.

The conversion is Keras 3's own ``model.export(path, format="openvino")``
(``tf2onnx`` does not handle Keras 3 models): an NHWC float32 input with a
dynamic batch, taking the raw 0-255 pixels the model normalises itself.
Weights are kept in float32 (``compress_to_fp16=False``): bf16 is a choice of
the CPU plugin at compile time, not of the file.

``openvino`` and ``nncf`` are imported only when these functions run.
"""

from __future__ import annotations

import io
import logging
import os
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgcls.runtimes import import_openvino, openvino_core

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["QUANTIZATION_PRESET", "to_openvino", "quantize_int8", "save_openvino"]

#: NNCF's preset for int8: symmetric weights and activations (the fastest kernels).
QUANTIZATION_PRESET = "performance"


def to_openvino(model: "keras.Model", xml_path: str | os.PathLike) -> Any:
    """Convert a Keras model to OpenVINO IR at ``xml_path`` (+ its .bin) and read it back.

    Args:
        model: The trained Keras model (float32 NHWC input).
        xml_path: Where to write; must end in ``.xml``.

    Returns:
        The ``openvino.Model`` read from the written files.
    """
    xml_path = Path(os.fspath(xml_path))
    if xml_path.suffix != ".xml":
        raise ValueError(f"`xml_path` must end in .xml. Received: xml_path={str(xml_path)!r}")
    import_openvino()
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    with redirect_stdout(io.StringIO()):  # Keras prints "Saved OpenVINO IR at ..."
        model.export(str(xml_path), format="openvino", verbose=False)
    return openvino_core().read_model(str(xml_path))


def _import_nncf() -> Any:
    try:
        import nncf
    except ImportError as exc:  # pragma: no cover - the extra is installed in the dev venv
        raise ImportError(
            "An int8 export needs NNCF: pip install 'imgcls[openvino]' (openvino and nncf)."
        ) from exc
    logging.getLogger("nncf").setLevel(logging.ERROR)
    return nncf


def quantize_int8(ov_model: Any, images: np.ndarray) -> Any:
    """Post-training int8 quantisation of an OpenVINO model with NNCF.

    Args:
        ov_model: The float32 ``openvino.Model``.
        images: Calibration images, ``(n, h, w, 3)`` raw pixels 0-255 as the
            model takes them (decoded as inference decodes them).

    Returns:
        The quantised ``openvino.Model`` (int8 convolutions and matrix
        multiplications; the rest stays float).
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"`images` must be a non-empty (n, h, w, 3) batch. Received: shape {x.shape}")
    nncf = _import_nncf()
    dataset = nncf.Dataset([x[i:i + 1] for i in range(len(x))])
    with redirect_stdout(io.StringIO()):  # NNCF's progress bars
        return nncf.quantize(ov_model, dataset, preset=nncf.QuantizationPreset.PERFORMANCE,
                             subset_size=len(x))


def save_openvino(ov_model: Any, xml_path: str | os.PathLike) -> Path:
    """Write ``ov_model`` as ``xml_path`` + .bin, weights as they are (no fp16 compression)."""
    ov = import_openvino()
    xml_path = Path(os.fspath(xml_path))
    ov.save_model(ov_model, str(xml_path), compress_to_fp16=False)
    return xml_path
