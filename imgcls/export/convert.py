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
from collections.abc import Mapping
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgcls.runtimes import import_openvino, openvino_core

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["QUANTIZATION_PRESET", "QUANTIZATION_SETTINGS", "to_openvino", "quantize_int8", "save_openvino"]

#: NNCF's preset for int8: symmetric weights and activations (the fastest kernels).
QUANTIZATION_PRESET = "performance"

#: How :func:`quantize_int8` quantises (recorded in each int8 export). Measured on the
#: sample's default model over its 3,000-image pool (top-1 agreement with Keras):
#: NNCF defaults (fast bias correction, mean-min-max ranges) 96.2%; full bias correction
#: 98.8%; plus min-max activation ranges 99.0%; plus the dense head kept in float 99.1%.
#: None of these changes the int8 kernels used, so speed is the same.
QUANTIZATION_SETTINGS = {
    "preset": QUANTIZATION_PRESET,
    "bias_correction": "full",
    "activation_ranges": "min-max over the calibration images",
    "kept_in_float": "MatMul (dense layers: the classifier head)",
}


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


def quantize_int8(ov_model: Any, images: np.ndarray, *, fast: bool = False,
                  variant: Mapping[str, str] | None = None) -> Any:
    """Post-training int8 quantisation of an OpenVINO model with NNCF.

    With :data:`QUANTIZATION_SETTINGS`: symmetric int8 (NNCF's performance
    preset), full bias correction, activation ranges from the min and max
    seen over the calibration images, dense layers (the classifier head)
    kept in float. NNCF's defaults flip about 4% of top-1s on a small
    trained CNN; these settings stay within 1%.

    Args:
        ov_model: The float32 ``openvino.Model``.
        images: Calibration images, ``(n, h, w, 3)`` raw pixels 0-255 as the
            model takes them (decoded as inference decodes them).
        fast: NNCF's defaults (fast bias correction, mean min-max ranges,
            every layer quantised): a few times quicker to quantise a large
            model, same int8 kernels, but less faithful. For speed
            measurements on random weights, never for an export to serve.
        variant: Settings changed from these, to compare them
            (``benchmarks/bench_runtime.py``): any of ``"ranges"`` (a member
            of NNCF's ``RangeEstimatorParametersSet``, e.g. ``"HISTOGRAM"``),
            ``"overflow_fix"`` (of ``OverflowFix``, e.g. ``"DISABLE"``: all 8
            bits in the first layer, right only on CPUs with VNNI) and
            ``"preset"`` (of ``QuantizationPreset``, e.g. ``"MIXED"``).

    Returns:
        The quantised ``openvino.Model`` (int8 convolutions; the rest stays float).
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"`images` must be a non-empty (n, h, w, 3) batch. Received: shape {x.shape}")
    variant = dict(variant or {})
    unknown = sorted(set(variant) - {"ranges", "overflow_fix", "preset"})
    if unknown or (variant and fast):
        raise ValueError(f"`variant` takes 'ranges', 'overflow_fix' and 'preset', and not with fast=True. "
                         f"Received: variant={variant!r}, fast={fast!r}")
    nncf = _import_nncf()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    dataset = nncf.Dataset([x[i:i + 1] for i in range(len(x))])
    preset = _nncf_member(nncf.QuantizationPreset, variant.get("preset", QUANTIZATION_PRESET.upper()), "preset")
    options: dict[str, Any] = {}
    if not fast:
        advanced: dict[str, Any] = {"activations_range_estimator_params": _nncf_member(
            RangeEstimatorParametersSet, variant.get("ranges", "MINMAX"), "ranges")}
        if "overflow_fix" in variant:
            advanced["overflow_fix"] = _nncf_member(OverflowFix, variant["overflow_fix"], "overflow_fix")
        options = {
            "fast_bias_correction": False,
            "ignored_scope": nncf.IgnoredScope(types=["MatMul"], validate=False),
            "advanced_parameters": AdvancedQuantizationParameters(**advanced),
        }
    with redirect_stdout(io.StringIO()):  # NNCF's progress bars
        return nncf.quantize(ov_model, dataset, preset=preset, subset_size=len(x), **options)


def _nncf_member(kind: Any, name: str, key: str) -> Any:
    """``kind.<name>`` (an NNCF enum member or parameter set), or an error naming the accepted ones."""
    accepted = sorted(a for a in dir(kind) if a.isupper())
    if not isinstance(name, str) or name not in accepted:
        raise ValueError(f"`variant['{key}']` must be one of {accepted}. Received: {name!r}")
    return getattr(kind, name)


def save_openvino(ov_model: Any, xml_path: str | os.PathLike) -> Path:
    """Write ``ov_model`` as ``xml_path`` + .bin, weights as they are (no fp16 compression)."""
    ov = import_openvino()
    xml_path = Path(os.fspath(xml_path))
    ov.save_model(ov_model, str(xml_path), compress_to_fp16=False)
    return xml_path
