""":func:`load_runtime`: the one way to get a run's model ready to predict with an engine."""

from __future__ import annotations

import os

from imgcls.core.checks import check_choice
from imgcls.core.workspace import Workspace
from imgcls.runs import Run, load_run
from imgcls.runtimes.base import Runtime
from imgcls.runtimes.exports import ExportNotFoundError, check_precision, exported_precisions

__all__ = ["RUNTIMES", "load_runtime", "resolve_runtime", "best_runtime"]

#: The inference engines :func:`load_runtime` knows.
RUNTIMES = ("keras", "openvino")


def _check_runtime(runtime: object) -> str:
    return check_choice(runtime, "runtime", RUNTIMES,
                        fix="keras (the run's own model) or openvino (after imgcls export RUN --runtime openvino)")


def load_runtime(
    run: Run | str | os.PathLike,
    runtime: str = "keras",
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    precision: str | None = None,
    batch_size: int | None = None,
    mode: str = "latency",
) -> Runtime:
    """A run's model, ready to predict raw pixels with the engine asked for.

    Args:
        run: A :class:`~imgcls.runs.Run`, a run folder, a run id, ``"production"``
            or ``"latest"``.
        runtime: ``"keras"`` (the run's model.keras) or ``"openvino"`` (the run's
            OpenVINO export, written by ``imgcls export RUN --runtime openvino``).
        workspace: Needed when ``run`` is a run id, "production" or "latest".
        precision: For openvino, which export: ``"f32"``, ``"bf16"`` or
            ``"int8"``; None picks the first the run has of int8, bf16, f32.
            For keras only None or ``"f32"``.
        batch_size: The most images per model call; for openvino the model is
            compiled for exactly this batch (static; smaller batches padded).
            None: any batch (dynamic).
        mode: For openvino, ``"latency"`` (serving: one request at a time on
            every core) or ``"throughput"`` (bulk work: parallel requests).
            Keras ignores it.

    Returns:
        A :class:`Runtime`: ``.predict(batch) -> probabilities``, ``.name``,
        ``.precision``, ``.input_size``, ``.classes``, ``.info()``.

    Raises:
        ExportNotFoundError: openvino was asked for and the run has no export
            (of ``precision``); the message names ``imgcls export``.
        ValueError: An unknown runtime or precision.
    """
    _check_runtime(runtime)
    check_precision(precision, allow_none=True)  # both checked before the run is looked up
    the_run = load_run(run, workspace=workspace)
    runtime, precision = resolve_runtime(the_run, runtime, precision=precision)
    if runtime == "keras":
        from imgcls.runtimes.keras_runtime import KerasRuntime

        return KerasRuntime(the_run, batch_size=batch_size)
    from imgcls.runtimes.openvino_runtime import OpenVINORuntime

    return OpenVINORuntime(the_run, precision, batch_size=batch_size, mode=mode)


def resolve_runtime(
    run: Run | str | os.PathLike,
    runtime: str = "keras",
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    precision: str | None = None,
) -> tuple[str, str]:
    """Which engine and precision :func:`load_runtime` would use, checked without loading anything.

    Callers use it to fail early (before any work) and to record the runtime,
    e.g. ``runtime_label(*resolve_runtime(run, "openvino"))`` -> ``"openvino-int8"``.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`.
        runtime: ``"keras"`` or ``"openvino"``.
        workspace: Needed when ``run`` is a run id, "production" or "latest".
        precision: As in :func:`load_runtime`.

    Returns:
        ``(runtime, precision)``, e.g. ``("keras", "f32")`` or ``("openvino", "int8")``.

    Raises:
        ExportNotFoundError: openvino was asked for and the run has no export
            (of ``precision``); the message names ``imgcls export``.
        ValueError: An unknown runtime or precision.
    """
    runtime = _check_runtime(runtime)
    precision = check_precision(precision, allow_none=True)
    the_run = load_run(run, workspace=workspace)
    if runtime == "keras":
        if precision not in (None, "f32"):
            raise ValueError(
                f"`precision` must be None or 'f32' for the keras runtime. Received: precision={precision!r}; "
                f"fix: use runtime='openvino' for bf16 or int8 (after imgcls export {the_run.run_id} "
                f"--runtime openvino --precision {precision})"
            )
        return "keras", "f32"
    available = exported_precisions(the_run)
    if precision is None:
        if not available:
            raise ExportNotFoundError(
                f"Run {the_run.run_id!r} has no OpenVINO export (no {the_run.path / 'openvino'}/<precision>/). "
                f"Export it first: imgcls export {the_run.run_id} --runtime openvino [--precision int8|bf16|f32] "
                "(or imgcls.export.export_run(workspace, run))."
            )
        return "openvino", available[0]
    if precision not in available:
        raise ExportNotFoundError(
            f"Run {the_run.run_id!r} has no OpenVINO {precision} export "
            f"({the_run.path / 'openvino' / precision / 'model.xml'} is missing). Export it first: "
            f"imgcls export {the_run.run_id} --runtime openvino --precision {precision} "
            f"(or imgcls.export.export_run(workspace, {the_run.run_id!r}, precision={precision!r}))."
        )
    return "openvino", precision


def best_runtime(run: Run | str | os.PathLike, *,
                 workspace: Workspace | str | os.PathLike | None = None) -> tuple[str, str]:
    """How a run is served at its fastest: its best accepted OpenVINO export, else Keras.

    The deploy gate measures a candidate this way (as it will be served with
    ``--runtime openvino``): ``("openvino", "int8")`` when the run has an
    accepted int8 export (then bf16, then f32), ``("keras", "f32")`` when it has none.

    Args:
        run: A run or a reference for :func:`imgcls.runs.load_run`.
        workspace: Needed when ``run`` is a run id, "production" or "latest".
    """
    available = exported_precisions(load_run(run, workspace=workspace))
    return ("openvino", available[0]) if available else ("keras", "f32")
