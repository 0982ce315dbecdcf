""":func:`export_run`: a run's model converted for a faster runtime, accepted only if it agrees with Keras.

Steps: convert the run's model.keras to OpenVINO IR (:mod:`~imgcls.export.convert`);
for int8, quantise it with NNCF on a few hundred of the run's own training
images chosen by content hash (:mod:`~imgcls.export.calibration`); predict
the run's test and benchmark images with both the Keras model and the export
(:mod:`~imgcls.export.parity`); keep the export only if their top-1 agreement
reaches ``min_agreement`` (or ``force=True``).

Everything is assembled in a hidden staging folder inside
``runs/<run_id>/openvino/`` and renamed to ``<precision>/`` as the last step,
replacing an earlier export of that precision; a refused export leaves any
earlier one in place and its report in ``<precision>.refused.json``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path

from imgcls.core.checks import check_bool, check_choice, check_fraction, check_int
from imgcls.core.clock import isoformat
from imgcls.core.fileio import write_json
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.export.calibration import DEFAULT_CALIBRATION_IMAGES, calibration_rows
from imgcls.export.calibration import calibration_images as decode_calibration_images
from imgcls.export.convert import (
    DEFAULT_MAX_DROP,
    QUANTIZATION_SETTINGS,
    check_max_drop,
    quantize_int8,
    quantize_int8_controlled,
    save_openvino,
    to_openvino,
)
from imgcls.export.parity import PARITY_SPLITS, parity_report, parity_rows
from imgcls.runs import Run, load_run
from imgcls.runtimes import (
    EXPORT_FILE,
    INFERENCE_PRECISION,
    MODEL_XML,
    OPENVINO_DIR,
    OpenVINORuntime,
    check_precision,
    load_runtime,
    refused_file,
)

__all__ = ["EXPORT_RUNTIMES", "DEFAULT_MIN_AGREEMENT", "export_run"]

#: The runtimes a run can be exported for.
EXPORT_RUNTIMES = ("openvino",)
#: The top-1 agreement with the Keras model an export needs to be kept.
DEFAULT_MIN_AGREEMENT = 0.99

_VERSIONED = ("imgcls", "openvino", "nncf", "keras", "tensorflow", "numpy")


def _versions(precision: str) -> dict:
    out = {}
    for dist in _VERSIONED:
        if dist == "nncf" and precision != "int8":
            continue
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _verdict(parity: dict, min_agreement: float, *, controllable: bool = False) -> list[str]:
    """Why the export must be refused ([] when it may be kept); ``controllable``: int8 without accuracy control."""
    overall = parity["overall"]
    if not overall["n"]:
        return [f"no {' or '.join(PARITY_SPLITS)} image of the run could be predicted, so parity with "
                "Keras is unmeasured; pass force=True (--force) to keep the export anyway"]
    if overall["top1_agreement"] < min_agreement:
        return [f"top-1 agreement with Keras {overall['top1_agreement']:.2%} "
                f"({overall['disagreements']} of {overall['n']} images differ) is below "
                f"min_agreement {min_agreement:.2%}; keep a higher precision"
                + (", put its most sensitive layers back in float with accuracy_control=True "
                   "(--accuracy-control)" if controllable else "")
                + ", or pass force=True (--force)"]
    return []


def _put_in_place(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``, replacing an earlier export (never half of one)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.rename(final, old)
    try:
        os.rename(staging, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_run(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike,
    *,
    runtime: str = "openvino",
    precision: str = "int8",
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    force: bool = False,
    batch_size: int = 32,
    accuracy_control: bool = False,
    max_drop: float = DEFAULT_MAX_DROP,
) -> dict:
    """Export a run's model for a faster runtime, with a parity report against its Keras model.

    Writes ``runs/<run_id>/openvino/<precision>/model.xml``, ``model.bin`` and
    ``export.json`` (see :mod:`imgcls.runtimes.exports`); then
    ``load_runtime(run, "openvino")`` serves it.

    Args:
        workspace: The workspace holding the run.
        run: A :class:`~imgcls.runs.Run`, run folder, run id, ``"production"`` or ``"latest"``.
        runtime: The engine to export for: ``"openvino"``.
        precision: ``"f32"`` (exact), ``"bf16"`` (same file, computed in bf16)
            or ``"int8"`` (quantised by NNCF).
        calibration_images: For int8: how many of the run's training images
            (lowest content hashes) calibrate the quantisation.
        min_agreement: Top-1 agreement with Keras on the run's test and
            benchmark images the export needs, in [0, 1].
        force: Keep the export even when its agreement is below
            ``min_agreement`` (or unmeasured); the record says it was forced.
        batch_size: Images per batch while measuring parity.
        accuracy_control: For int8: put the layers that cost most agreement
            back in float until the export agrees with the float model on the
            run's validation images (up to ``calibration_images`` of them,
            chosen by hash) within ``max_drop``
            (:func:`~imgcls.export.convert.quantize_int8_controlled`). Slower
            to export (minutes to hours on a large model) and to run (the
            reverted layers); the record's ``calibration.accuracy_control``
            says how many operations stayed int8. Parity is still measured on
            the test and benchmark splits, which the control never sees.
        max_drop: With ``accuracy_control``: the agreement below 100% allowed
            on the validation images, in [0, 1).

    Returns:
        The export record (what export.json holds), with ``"accepted"``
        (kept as the run's export), ``"forced"``, ``"reasons"`` (why it was
        refused, or why it would have been when forced), ``"parity"`` (see
        :func:`imgcls.export.parity_report`), ``"calibration"`` (int8: the
        image hashes), ``"versions"``, ``"timings_s"`` and ``"path"`` (the
        export folder, or the refusal report when refused).

    Raises:
        ValueError: A bad argument, or an int8 export of a run without readable training images.
    """
    ws = as_workspace(workspace)
    runtime = check_choice(runtime, "runtime", EXPORT_RUNTIMES, fix="only OpenVINO exports exist so far")
    precision = check_precision(precision)
    n_calibration = check_int(calibration_images, "calibration_images", 1)
    min_agreement = check_fraction(min_agreement, "min_agreement",
                                   fix="a share of images, e.g. 0.99 for 99% (1.0: every image alike)")
    force = check_bool(force, "force")
    batch_size = check_int(batch_size, "batch_size")
    accuracy_control = check_bool(accuracy_control, "accuracy_control")
    max_drop = check_max_drop(max_drop)
    if accuracy_control and precision != "int8":
        raise ValueError(f"`accuracy_control` applies to int8 exports only: {precision} is not quantised. "
                         f"Received: precision={precision!r}, accuracy_control=True")
    if not accuracy_control and max_drop != DEFAULT_MAX_DROP:
        raise ValueError(f"`max_drop` is the target of accuracy control: pass accuracy_control=True "
                         f"(--accuracy-control) with it, or leave it out. Received: max_drop={max_drop!r}")
    the_run = load_run(run, workspace=ws)
    if accuracy_control and calibration_rows(ws, the_run, "val").empty:
        raise ValueError(f"Run {the_run.run_id!r} has no 'val' images for accuracy control to measure agreement on. "
                         f"Export int8 without accuracy control instead.")
    folder = the_run.path / OPENVINO_DIR
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{precision}.staging-", dir=folder))
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        # int8 is converted beside and saved over nothing: OpenVINO maps the
        # float .bin into memory, so it must not be overwritten while read.
        float_xml = staging / ("float" if precision == "int8" else "") / MODEL_XML
        ov_model = to_openvino(the_run.model, float_xml)
        timings["convert"] = round(time.perf_counter() - t0, 2)
        calibration = None
        if precision == "int8":
            t0 = time.perf_counter()
            images, hashes = decode_calibration_images(ws, the_run, n_calibration)
            control = None
            if accuracy_control:
                checked, checked_hashes = decode_calibration_images(ws, the_run, n_calibration, split="val")
                quantized, control = quantize_int8_controlled(ov_model, images, checked, max_drop=max_drop)
                reverted = control["operations"] - control["int8_operations"]
                control = {"split": "val", "chosen": "lowest content hashes", **control,
                           "kept_in_float": f"{reverted} weighted operations (MatMul included)",
                           "hashes": checked_hashes}
            else:
                quantized = quantize_int8(ov_model, images)
            save_openvino(quantized, staging / MODEL_XML)
            del ov_model, quantized
            shutil.rmtree(float_xml.parent, ignore_errors=True)
            timings["quantize"] = round(time.perf_counter() - t0, 2)
            calibration = {"split": "train", "chosen": "lowest content hashes", "n": len(hashes),
                           **QUANTIZATION_SETTINGS, "accuracy_control": control, "hashes": hashes}
        record = {
            "run_id": the_run.run_id,
            "runtime": runtime,
            "precision": precision,
            "inference_precision": INFERENCE_PRECISION[precision],
            "input_shape": list(the_run.input_shape or (*the_run.image_size, 3)),
            "classes": list(the_run.classes),
            "files": [MODEL_XML, "model.bin", EXPORT_FILE],
            "created": isoformat(timespec="seconds"),
            "versions": _versions(precision),
            "calibration": calibration,
            "min_agreement": min_agreement,
        }
        write_json(staging / EXPORT_FILE, record)
        t0 = time.perf_counter()
        keras_rt = load_runtime(the_run, "keras")
        with OpenVINORuntime(the_run, precision, folder=staging) as candidate:
            parity = parity_report(keras_rt, candidate, parity_rows(ws, the_run), batch_size=batch_size)
        timings["parity"] = round(time.perf_counter() - t0, 2)
        reasons = _verdict(parity, min_agreement, controllable=precision == "int8" and not accuracy_control)
        accepted = not reasons or force
        record.update({"accepted": accepted, "forced": bool(reasons) and force, "reasons": reasons,
                       "parity": parity, "timings_s": timings})
        write_json(staging / EXPORT_FILE, record)
        if accepted:
            final = folder / precision
            _put_in_place(staging, final)
            refused_file(the_run, precision).unlink(missing_ok=True)
            return {**record, "path": str(final)}
        shutil.rmtree(staging, ignore_errors=True)
        report = refused_file(the_run, precision)
        write_json(report, record)
        return {**record, "path": str(report)}
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

