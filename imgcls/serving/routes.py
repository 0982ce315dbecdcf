"""The endpoints of the HTTP app and what the OpenAPI schema says about them.

:func:`add_routes` adds ``POST /predict``, ``POST /evaluations``,
``GET /health`` and ``GET /model`` to an app made by
:func:`~imgcls.serving.create_app`, each with its request body, its response
body and every status it can answer (documented with the one ``Error``
body of :mod:`imgcls.serving.schemas`).
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint
# annotations (Request, Query, the body models) at runtime.
import time as _time
from typing import Any

from imgcls.serving.predictor import Predictor
from imgcls.serving.records import LogWriteError
from imgcls.serving.schemas import api_models, error_responses
from imgcls.serving.uploads import RejectedImage
from imgcls.translog import UnknownTransactionError

__all__ = ["add_routes"]

_MULTIPART_SLACK = 64 * 1024  # multipart framing and form fields beside the file
_SOURCE = "http"


class _TooLarge(Exception):
    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def add_routes(app: Any, predictor: Predictor, *, refuse, error, simulated_time, started: float,
               auth: bool, rate_limited: bool) -> None:
    """Add the four endpoints to ``app`` (see :func:`~imgcls.serving.create_app`)."""
    from fastapi import Depends, Query, Request
    from fastapi.security import HTTPBearer
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    models = api_models()
    guarded = ([401, 403] if auth else []) + ([429] if rate_limited else [])
    deps = [Depends(HTTPBearer(auto_error=False, description="The server's token"))] if auth else []
    body_limit = predictor.max_bytes + _MULTIPART_SLACK

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
        response_model=models.PredictionOut, response_model_by_alias=True, dependencies=deps,
        responses=error_responses(400, *guarded, 413, 415, 422, 503),
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": ["file"],
                       "properties": {"file": {"type": "string", "format": "binary",
                                               "description": "The image (JPEG, PNG, GIF, BMP, "
                                               "WebP or TIFF)"}}}}}}},
    )
    async def predict(request: Request, top_k: int | None = Query(
            None, ge=1, le=1000, description="Classes to return (default the server's)")):
        try:
            when, simulated = simulated_time(request)
        except ValueError as exc:
            return await refuse(request, 400, str(exc), kind="bad_header")
        sim = {"when": when, "simulated": simulated}
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit:
            return await refuse(
                request, 413, f"the request has {int(declared):,} bytes, more than the limit of "
                f"{predictor.max_bytes:,} bytes per image; send a smaller image", kind="too_large", **sim)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return await refuse(
                request, 415, "send the image as multipart/form-data in a field named 'file' "
                f"(received content-type {content_type[:80] or 'none'!r})", kind="no_file", **sim)
        parser = MultiPartParser(request.headers, limited_stream(request), max_files=1, max_fields=20)
        try:
            form = await parser.parse()
        except _TooLarge as exc:
            return await refuse(
                request, 413, f"the upload exceeds {predictor.max_bytes:,} bytes "
                f"(received {exc.received:,} so far); send a smaller image", kind="too_large", **sim)
        except MultiPartException as exc:
            return await refuse(request, 400, f"malformed multipart body: {exc.message}",
                                kind="no_file", **sim)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                upload = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
            if upload is None:
                return await refuse(request, 400, "no image in the request: send it as a "
                                    "multipart file field named 'file'", kind="no_file", **sim)
            data = await upload.read()
        finally:
            await form.close()
        try:
            return await run_in_threadpool(
                predictor.predict, data, top_k=top_k, source=_SOURCE, time=when,
                simulated=simulated, http=True)
        except RejectedImage as exc:
            name = (upload.filename or "<upload>")[:200]
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            return error(exc.status_code, f"{name}: {exc.reason}", kind=exc.kind,
                         transaction_id=exc.transaction_id, headers=headers)
        except LogWriteError as exc:
            return error(503, str(exc), kind="log_unavailable")

    EvaluationIn = models.EvaluationIn

    @app.post("/evaluations", status_code=201, summary="Record a manual verdict on a prediction",
              response_model=models.EvaluationOut, dependencies=deps,
              responses=error_responses(400, *guarded, 404, 413, 422, 503))
    async def evaluations(body: EvaluationIn, request: Request):
        try:
            when, simulated = simulated_time(request)
        except ValueError as exc:
            return await refuse(request, 400, str(exc), kind="bad_header")
        try:
            eid = await run_in_threadpool(
                predictor.record_verdict, body.transaction_id, body.verdict, reviewer=body.reviewer,
                true_class=body.true_class, new_class=body.new_class, note=body.note, time=when,
                simulated=simulated)
        except LogWriteError as exc:
            return error(503, str(exc), kind="log_unavailable")
        except UnknownTransactionError as exc:
            return await refuse(request, 404, str(exc), kind="unknown_transaction",
                                when=when, simulated=simulated)
        except ValueError as exc:
            return await refuse(request, 422, str(exc), kind="validation", when=when,
                                simulated=simulated)
        return {"evaluation_id": eid, "transaction_id": body.transaction_id, "verdict": body.verdict}

    @app.get("/health", summary="Liveness and what is served (never needs the token)",
             response_model=models.Health)
    async def health():
        return {"status": "ok", "run_id": predictor.run_id,
                "model_version": predictor.model_version,
                "logging": predictor.log is not None,
                "uptime_s": round(_time.monotonic() - started, 3)}

    @app.get("/model", summary="The served run: id, version, classes, temperature, runtime, limits",
             response_model=models.ModelInfo, dependencies=deps,
             responses=error_responses(*guarded) if guarded else None)
    async def model():
        return predictor.info()
