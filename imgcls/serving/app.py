"""The HTTP face of a :class:`~imgcls.serving.Predictor`: a FastAPI app.

:func:`create_app` wraps a predictor in a FastAPI app (``POST /predict``,
``POST /evaluations``, ``GET /health``, ``GET /model``);
:mod:`imgcls.serving.server` runs it with uvicorn.

**Limits.** An upload larger than ``max_bytes`` is refused with 413 while it
is being received (the body is counted, not trusted from Content-Length);
an image whose header claims more than ``max_pixels`` pixels is refused with
413 before any pixel is decoded (decompression bombs); anything that is not
a readable image gets 400 with the reason. All of them are logged as
``status="failed"`` transactions with the reason in ``error``.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint
# annotations (Request, Query, the EvaluationIn model) at runtime.
import time as _time

from imgcls.serving.predictor import LogWriteError, Predictor, as_utc
from imgcls.serving.uploads import RejectedImage
from imgcls.translog import VERDICTS, UnknownTransactionError

__all__ = ["SIMULATED_TIME_HEADER", "HTTP_SOURCE", "create_app"]

#: Request header carrying the time of a simulated request (accepted only by
#: an app created with ``allow_simulated=True``).
SIMULATED_TIME_HEADER = "X-Imgcls-Simulated-Time"
#: The ``source`` logged for requests that came over HTTP.
HTTP_SOURCE = "http"
_MULTIPART_SLACK = 64 * 1024  # multipart framing and form fields beside the file


class _TooLarge(Exception):
    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def create_app(predictor: Predictor, *, allow_simulated: bool = False, title: str = "imgcls"):
    """A FastAPI app serving ``predictor``.

    Endpoints:

    * ``POST /predict`` — multipart form with the image in a ``file`` field
      (optional query ``top_k``). 200: ``{"transaction_id", "run_id",
      "model_version", "class", "score", "predictions": [{"class", "score"}],
      "latency_ms", "image_hash", "time"}``. 400 (not an image, truncated,
      corrupt, no file), 413 (over ``max_bytes``, or over ``max_pixels``):
      ``{"detail": reason, "kind", "transaction_id"}``, logged as failed.
      503: the log could not be written (nothing is acknowledged).
    * ``POST /evaluations`` — JSON ``{"transaction_id", "verdict"
      ("correct"/"wrong"/"unsure"), "reviewer", "true_class"?}``.
      201: ``{"evaluation_id", "transaction_id", "verdict"}``; 404 unknown
      transaction; 422 invalid verdict or inconsistent true class.
    * ``GET /health`` — ``{"status": "ok", "run_id", "model_version", "logging", "uptime_s"}``.
    * ``GET /model`` — :meth:`Predictor.info`.

    Args:
        predictor: The predictor (it is not closed by the app).
        allow_simulated: Accept the :data:`SIMULATED_TIME_HEADER` header, which
            logs the request as simulated traffic at the given time (for
            :func:`imgcls.demo.simulate_traffic` through HTTP). Off by default: a
            production server refuses it with 400.
        title: The app's title (OpenAPI docs at ``/docs``).

    Returns:
        A ``fastapi.FastAPI`` app (``app.state.predictor`` is the predictor).
    """
    from fastapi import FastAPI, Query, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    if not isinstance(predictor, Predictor):
        raise ValueError(
            f"`predictor` must be an imgcls.serving.Predictor. Received: {type(predictor).__name__}"
        )
    started = _time.monotonic()
    body_limit = predictor.max_bytes + _MULTIPART_SLACK
    app = FastAPI(title=title, version="1", description=(
        f"Image classification with run {predictor.run_id} ({predictor.model_version}); "
        "every prediction is logged."))
    app.state.predictor = predictor

    def error(status: int, detail: str, **extra) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail, **extra})

    def simulated_time(request: Request):
        """(time, simulated) from the header; raises ValueError if it is refused."""
        value = request.headers.get(SIMULATED_TIME_HEADER)
        if value is None:
            return None, False
        if not allow_simulated:
            raise ValueError(
                f"This server does not accept simulated traffic ({SIMULATED_TIME_HEADER} "
                "header). Start it with allow_simulated=True for a demo."
            )
        return as_utc(value, SIMULATED_TIME_HEADER), True

    async def reject(name: str, reason: str, kind: str, *, status: int | None = None,
                     when=None, simulated=False) -> JSONResponse:
        try:
            rejected = await run_in_threadpool(
                predictor._log_rejection, name, reason, kind, source=HTTP_SOURCE,
                simulated=simulated, time=when)
        except LogWriteError as exc:
            return error(503, str(exc))
        return error(status or rejected.status_code, rejected.reason, kind=kind,
                     transaction_id=rejected.transaction_id)

    async def limited_stream(request: Request):
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise _TooLarge(received)
            yield chunk

    @app.post(
        "/predict",
        summary="Predict the top-k classes of an uploaded image (logged)",
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": ["file"],
                       "properties": {"file": {"type": "string", "format": "binary"}}}}}}},
    )
    async def predict(request: Request, top_k: int | None = Query(None, ge=1, le=1000)):
        try:
            when, simulated = simulated_time(request)
        except ValueError as exc:
            return error(400, str(exc))
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit:
            return await reject(
                "<upload>", f"the request has {int(declared):,} bytes, more than the limit of "
                f"{predictor.max_bytes:,} bytes per image; send a smaller image",
                "too_large", when=when, simulated=simulated)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return await reject(
                "<upload>", "send the image as multipart/form-data in a field named 'file' "
                f"(received content-type {content_type or 'none'!r})", "no_file",
                status=415, when=when, simulated=simulated)
        parser = MultiPartParser(request.headers, limited_stream(request), max_files=1, max_fields=20)
        try:
            form = await parser.parse()
        except _TooLarge as exc:
            return await reject(
                "<upload>", f"the upload exceeds {predictor.max_bytes:,} bytes "
                f"(received {exc.received:,} so far); send a smaller image",
                "too_large", when=when, simulated=simulated)
        except MultiPartException as exc:
            return await reject("<upload>", f"malformed multipart body: {exc.message}",
                                "no_file", when=when, simulated=simulated)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                upload = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
            if upload is None:
                return await reject("<upload>", "no image in the request: send it as a "
                                    "multipart file field named 'file'", "no_file",
                                    when=when, simulated=simulated)
            data = await upload.read()
        finally:
            await form.close()
        try:
            return await run_in_threadpool(
                predictor.predict, data, top_k=top_k, source=HTTP_SOURCE, time=when,
                simulated=simulated)
        except RejectedImage as exc:
            name = upload.filename or "<upload>"
            return error(exc.status_code, f"{name}: {exc.reason}", kind=exc.kind,
                         transaction_id=exc.transaction_id)
        except LogWriteError as exc:
            return error(503, str(exc))

    class EvaluationIn(BaseModel):
        transaction_id: int = Field(..., ge=1, description="The id /predict returned.")
        verdict: str = Field(..., description=f"One of {', '.join(VERDICTS)}.")
        reviewer: str = Field(..., min_length=1)
        true_class: str | None = Field(None, description="The real class, when known.")

    @app.post("/evaluations", status_code=201, summary="Record a manual verdict on a prediction")
    async def evaluations(body: EvaluationIn, request: Request):
        try:
            when, simulated = simulated_time(request)
        except ValueError as exc:
            return error(400, str(exc))
        try:
            eid = await run_in_threadpool(
                predictor.record_verdict, body.transaction_id, body.verdict, reviewer=body.reviewer,
                true_class=body.true_class, time=when, simulated=simulated)
        except LogWriteError as exc:
            return error(503, str(exc))
        except UnknownTransactionError as exc:
            return error(404, str(exc))
        except ValueError as exc:
            return error(422, str(exc))
        return {"evaluation_id": eid, "transaction_id": body.transaction_id,
                "verdict": body.verdict.strip().lower()}

    @app.get("/health", summary="Liveness and what is served")
    async def health():
        return {"status": "ok", "run_id": predictor.run_id,
                "model_version": predictor.model_version,
                "logging": predictor.log is not None,
                "uptime_s": round(_time.monotonic() - started, 3)}

    @app.get("/model", summary="The served run: id, version, classes, input size")
    async def model():
        return predictor.info()

    return app
