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

from imgcls.core.checks import check_int, check_number
from imgcls.runtimes import compile_openvino, import_openvino, openvino_core

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["QUANTIZATION_PRESET", "QUANTIZATION_SETTINGS", "DEFAULT_MAX_DROP", "DEFAULT_MAX_ITERATIONS",
           "to_openvino", "quantize_int8", "quantize_int8_controlled", "int8_operations", "check_max_drop",
           "save_openvino"]

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

#: :func:`quantize_int8_controlled`: how far below 100% top-1 agreement with float the
#: validation images may stay (half of the export's 1% margin, for the parity images' noise).
DEFAULT_MAX_DROP = 0.005
#: :func:`quantize_int8_controlled`: the most groups of operations put back in float.
DEFAULT_MAX_ITERATIONS = 20


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
    x = _batch(images, "images")
    preset, options = _quantization_options(variant, fast)
    nncf = _import_nncf()
    dataset = nncf.Dataset([x[i:i + 1] for i in range(len(x))])
    with redirect_stdout(io.StringIO()):  # NNCF's progress bars
        return nncf.quantize(ov_model, dataset, preset=preset, subset_size=len(x), **options)


def quantize_int8_controlled(ov_model: Any, images: np.ndarray, validation_images: np.ndarray, *,
                             max_drop: float = DEFAULT_MAX_DROP, max_iterations: int = DEFAULT_MAX_ITERATIONS,
                             ranking_images: int = 100) -> tuple[Any, dict]:
    """int8 with NNCF's accuracy control: the most sensitive layers are put back in float.

    Quantises as :func:`quantize_int8`, then measures the top-1 agreement of
    the int8 model with the float one on ``validation_images``; while it is
    more than ``max_drop`` below 100%, NNCF's
    ``quantize_with_accuracy_control`` ranks the quantised operations by how
    much each costs (on ``ranking_images`` of them) and reverts the worst to
    float, one group at a time, for at most ``max_iterations`` groups. A model
    already within ``max_drop`` costs a few passes over the validation images
    (float, int8, and the check of the result) and comes back as plain int8.
    NNCF returns its last model when it runs out of iterations or of
    operations to revert: ``info["reached"]`` says whether the target was met.

    Use images the parity report does not (the run's validation split, say):
    what is tuned on must not be what is measured.

    Args:
        ov_model: The float32 ``openvino.Model``.
        images: Calibration images, as for :func:`quantize_int8`.
        validation_images: Images the agreement is measured on while
            reverting, ``(n, h, w, 3)`` raw pixels 0-255.
        max_drop: How far below 100% top-1 agreement with float may stay, in [0, 1).
        max_iterations: Most groups of operations reverted to float.
        ranking_images: Validation images each ranking of the operations uses
            (fewer: a quicker, noisier ranking).

    Returns:
        ``(model, info)``: the ``openvino.Model`` and a dict with
        ``"validation_images"``, ``"max_drop"``, ``"max_iterations"``,
        ``"ranking_images"``, ``"validation_agreement"`` (of the returned
        model with float), ``"reached"`` (it is within ``max_drop``),
        ``"int8_operations"`` and ``"operations"`` (weighted operations
        computed in int8, of all of them): what the export record keeps.
    """
    x = _batch(images, "images")
    v = _batch(validation_images, "validation_images")
    max_drop = check_max_drop(max_drop)
    max_iterations = check_int(max_iterations, "max_iterations", 1)
    ranking_images = check_int(ranking_images, "ranking_images", 1)
    preset, options = _quantization_options(None, False)
    nncf = _import_nncf()
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    def top1(model: Any, precision: str) -> np.ndarray:  # int8's float layers in f32, as NNCF and the runtime
        compiled = compile_openvino(model, precision)
        return np.concatenate([compiled(v[i:i + 32])[0] for i in range(0, len(v), 32)]).argmax(1)

    expected = top1(ov_model, "f32")

    def agreement(compiled: Any, items: Any) -> tuple[float, list[float]]:
        hits = [float(compiled(image)[0].argmax(1)[0] == label) for image, label in items]
        return float(np.mean(hits)), hits

    calibration = nncf.Dataset([x[i:i + 1] for i in range(len(x))])
    validation = nncf.Dataset([(v[i:i + 1], int(expected[i])) for i in range(len(v))], lambda item: item[0])
    advanced_options = options.pop("advanced_parameters")
    restorer = AdvancedAccuracyRestorerParameters(max_num_iterations=max_iterations,
                                                  ranking_subset_size=min(ranking_images, len(v)),
                                                  num_ranking_workers=1)
    with redirect_stdout(io.StringIO()):  # NNCF's progress bars
        model = nncf.quantize_with_accuracy_control(
            ov_model, calibration, validation, agreement, max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE,
            preset=preset, subset_size=len(x), advanced_quantization_parameters=advanced_options,
            advanced_accuracy_restorer_parameters=restorer, **options)
    int8, total = int8_operations(model)
    reached = float((top1(model, "int8") == expected).mean())
    return model, {"validation_images": int(len(v)), "max_drop": max_drop, "max_iterations": max_iterations,
                   "ranking_images": min(ranking_images, len(v)), "validation_agreement": round(reached, 6),
                   "reached": bool(reached >= 1 - max_drop - 1e-12),
                   "int8_operations": int8, "operations": total}


def check_max_drop(max_drop: Any) -> float:
    """``max_drop`` as a float in [0, 1), or a ValueError saying what it takes."""
    return check_number(max_drop, "max_drop", 0, 1, high_open=True,
                        fix="a share of images, e.g. 0.005 for half a percent (1 would accept any model)")


def int8_operations(ov_model: Any) -> tuple[int, int]:
    """(weighted operations whose weights are int8, all weighted operations) of an OpenVINO model.

    Weighted operations are convolutions and matrix products. NNCF stores an
    int8 one's weights as an int8 constant scaled back (Constant i8 -> Convert
    -> [Subtract] -> Multiply) or, before compression, behind a FakeQuantize.
    """
    def quantised(op: Any) -> bool:
        node = op.input_value(1).get_node()
        for _ in range(5):
            kind = node.get_type_name()
            if kind == "FakeQuantize" or (kind == "Constant" and node.get_output_element_type(0).get_type_name()
                                          in ("i8", "u8")):
                return True
            if node.get_input_size() == 0:
                return False
            node = node.input_value(0).get_node()
        return False

    weighted = [op for op in ov_model.get_ops()
                if op.get_type_name() in ("Convolution", "GroupConvolution", "MatMul")]
    return sum(1 for op in weighted if quantised(op)), len(weighted)


def _batch(images: Any, name: str) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"`{name}` must be a non-empty (n, h, w, 3) batch. Received: shape {x.shape}")
    return x


def _quantization_options(variant: Mapping[str, str] | None, fast: bool) -> tuple[Any, dict]:
    """NNCF's preset and ``nncf.quantize`` keyword arguments for :data:`QUANTIZATION_SETTINGS` (+ ``variant``)."""
    variant = dict(variant or {})
    unknown = sorted(set(variant) - {"ranges", "overflow_fix", "preset"})
    if unknown or (variant and fast):
        raise ValueError(f"`variant` takes 'ranges', 'overflow_fix' and 'preset', and not with fast=True. "
                         f"Received: variant={variant!r}, fast={fast!r}")
    nncf = _import_nncf()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    preset = _nncf_member(nncf.QuantizationPreset, variant.get("preset", QUANTIZATION_PRESET.upper()), "preset")
    if fast:
        return preset, {}
    advanced: dict[str, Any] = {"activations_range_estimator_params": _nncf_member(
        RangeEstimatorParametersSet, variant.get("ranges", "MINMAX"), "ranges")}
    if "overflow_fix" in variant:
        advanced["overflow_fix"] = _nncf_member(OverflowFix, variant["overflow_fix"], "overflow_fix")
    return preset, {
        "fast_bias_correction": False,
        "ignored_scope": nncf.IgnoredScope(types=["MatMul"], validate=False),
        "advanced_parameters": AdvancedQuantizationParameters(**advanced),
    }


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
