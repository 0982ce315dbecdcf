"""Where a run's exported models live, and what their ``export.json`` says (no TensorFlow).

An export is written by :func:`imgcls.export.export_run` inside the run folder::

    runs/<run_id>/openvino/<precision>/
      model.xml         the OpenVINO IR graph (NHWC float32 input: raw pixels 0-255)
      model.bin         its weights (float32; int8 for an int8 export)
      export.json       precision, versions, calibration image hashes, parity report
    runs/<run_id>/openvino/<precision>.refused.json
                        the report of the last refused export of that precision

``<precision>`` is ``f32``, ``bf16`` or ``int8``. An f32 and a bf16 export hold
the same float32 graph: the precision is the one the CPU plugin computes in
(OpenVINO's ``INFERENCE_PRECISION_HINT``), recorded in export.json. An int8
export holds the graph quantised by NNCF; its non-quantised operations run in
float32.

A folder ``<precision>/`` exists only for an export that passed its parity
check (or was forced): :func:`imgcls.export.export_run` assembles it in a
hidden staging folder and renames it into place as its last step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from imgcls.core.checks import check_choice
from imgcls.core.fileio import read_json
from imgcls.core.workspace import Workspace
from imgcls.runs import Run, load_run

__all__ = [
    "OPENVINO_DIR",
    "EXPORT_FILE",
    "MODEL_XML",
    "MODEL_BIN",
    "PRECISIONS",
    "PRECISION_PREFERENCE",
    "INFERENCE_PRECISION",
    "ExportNotFoundError",
    "check_precision",
    "export_dir",
    "refused_file",
    "read_export",
    "read_export_file",
    "exported_precisions",
]

#: The folder, inside a run folder, of its OpenVINO exports.
OPENVINO_DIR = "openvino"
#: What an export folder says about itself.
EXPORT_FILE = "export.json"
MODEL_XML = "model.xml"
MODEL_BIN = "model.bin"
#: The precisions an OpenVINO export can have.
PRECISIONS = ("f32", "bf16", "int8")
#: Which export :func:`imgcls.runtimes.load_runtime` picks when no precision is asked for.
PRECISION_PREFERENCE = ("int8", "bf16", "f32")
#: OpenVINO's ``INFERENCE_PRECISION_HINT`` for each precision. Always set it:
#: on a CPU with AVX-512 BF16 the plugin's default is bf16, so an "f32" model
#: compiled without the hint silently runs in bf16.
INFERENCE_PRECISION = {"f32": "f32", "bf16": "bf16", "int8": "f32"}


class ExportNotFoundError(FileNotFoundError, ValueError):
    """A run has no (accepted) export of the runtime and precision asked for."""


def check_precision(precision: Any, *, allow_none: bool = False) -> str | None:
    """``precision`` if it is one of :data:`PRECISIONS` (or None when allowed)."""
    if precision is None and allow_none:
        return None
    return check_choice(precision, "precision", PRECISIONS,
                        fix="f32 (exact), bf16 (about 2x faster where the CPU has AVX-512 BF16) or "
                            "int8 (about 4x, calibrated on the run's training images)")


def _run(run: Run | str | os.PathLike, workspace: Workspace | str | os.PathLike | None) -> Run:
    return load_run(run, workspace=workspace)


def export_dir(run: Run | str | os.PathLike, precision: str, *,
               workspace: Workspace | str | os.PathLike | None = None) -> Path:
    """``runs/<run_id>/openvino/<precision>/`` (it may not exist).

    Args:
        run: A :class:`~imgcls.runs.Run` or a reference for :func:`imgcls.runs.load_run`.
        precision: ``"f32"``, ``"bf16"`` or ``"int8"``.
        workspace: Needed when ``run`` is a run id, "production" or "latest".
    """
    return _run(run, workspace).path / OPENVINO_DIR / check_precision(precision)


def refused_file(run: Run | str | os.PathLike, precision: str, *,
                 workspace: Workspace | str | os.PathLike | None = None) -> Path:
    """``runs/<run_id>/openvino/<precision>.refused.json``: the report of the last refused export."""
    return _run(run, workspace).path / OPENVINO_DIR / f"{check_precision(precision)}.refused.json"


def read_export(run: Run | str | os.PathLike, precision: str, *,
                workspace: Workspace | str | os.PathLike | None = None) -> dict | None:
    """The ``export.json`` of a run's accepted export of ``precision``, or None if it has none.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`.
        precision: ``"f32"``, ``"bf16"`` or ``"int8"``.
        workspace: Needed when ``run`` is a run id, "production" or "latest".

    Returns:
        The export record (see :func:`imgcls.export.export_run`), with
        ``"path"`` set to the export folder; None when the folder, its
        model.xml / model.bin or its export.json is missing.
    """
    folder = export_dir(run, precision, workspace=workspace)
    if not all((folder / name).is_file() for name in (MODEL_XML, MODEL_BIN, EXPORT_FILE)):
        return None
    record = read_export_file(folder)
    record["path"] = str(folder)
    return record


def read_export_file(folder: Path) -> dict:
    """The export.json of an export folder ({} when missing or not an object)."""
    record = read_json(folder / EXPORT_FILE, {})
    return dict(record) if isinstance(record, dict) else {}


def exported_precisions(run: Run | str | os.PathLike, *,
                        workspace: Workspace | str | os.PathLike | None = None) -> list[str]:
    """The precisions a run has an accepted OpenVINO export of, in :data:`PRECISION_PREFERENCE` order.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`.
        workspace: Needed when ``run`` is a run id, "production" or "latest".
    """
    the_run = _run(run, workspace)
    return [p for p in PRECISION_PREFERENCE if read_export(the_run, p) is not None]
