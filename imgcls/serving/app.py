"""The HTTP face of a :class:`~imgcls.serving.Predictor`: a FastAPI app.

:func:`create_app` wraps a predictor in a FastAPI app (``POST /predict``,
``POST /evaluations``, ``GET /model``, ``GET /health``);
:mod:`imgcls.serving.server` runs it with uvicorn.

**Every request is a row.** A prediction, and every refused request (a bad
upload, a parameter or body that fails validation, a refused header, a
missing or wrong token, the rate limit, an overloaded server, an unknown
path) is logged as a transaction with its status, the kind of failure and
the reason, never the bytes of an upload. A successful evaluation is a row of
the evaluations table. Successful reads (``/health``, ``/model``, ``/docs``,
``/openapi.json``) are not logged.

**Limits.** An upload larger than ``max_bytes`` is refused with 413 while it
is being received (the body is counted, not trusted from Content-Length);
an image whose header claims more than ``max_pixels`` pixels, or whose
decode cost is over ``max_decode_bytes``, is refused with 413 before any
pixel is decoded; a request that waits too long for the decode budget gets
503 with ``Retry-After``; anything that is not a readable image gets 400 with
the reason. See :mod:`imgcls.serving.limits` for every limit and its default.

**One error body.** Every 4xx and 5xx answer is
``{"detail", "kind", "status", "transaction_id"}`` (the ``Error`` schema).
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint
# annotations (Request, Query, the body models) at runtime.
import time as _time

from imgcls.serving.guards import GuardMiddleware, TokenBucket, endpoint_of
from imgcls.serving.limits import DEFAULT_MAX_EVALUATION_BYTES, DEFAULT_RATE_BURST, ENDPOINTS_HELP
from imgcls.serving.predictor import Predictor
from imgcls.serving.records import LogWriteError, as_utc
from imgcls.serving.routes import add_routes
from imgcls.serving.schemas import exact_bounds

__all__ = ["SIMULATED_TIME_HEADER", "HTTP_SOURCE", "create_app"]

#: Request header carrying the time of a simulated request (accepted only by
#: an app created with ``allow_simulated=True``).
SIMULATED_TIME_HEADER = "X-Imgcls-Simulated-Time"
#: The ``source`` logged for requests that came over HTTP.
HTTP_SOURCE = "http"
_KINDS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
          422: "validation", 429: "rate_limited", 500: "internal", 503: "unavailable"}


def create_app(
    predictor: Predictor,
    *,
    allow_simulated: bool = False,
    title: str = "imgcls",
    token: str | None = None,
    rate_limit: float | None = None,
    rate_burst: int = DEFAULT_RATE_BURST,
    max_evaluation_bytes: int = DEFAULT_MAX_EVALUATION_BYTES,
):
    """A FastAPI app serving ``predictor``.

    Endpoints (every 4xx / 5xx body is ``{"detail", "kind", "status", "transaction_id"}``):

    * ``POST /predict`` — multipart form with the image in a ``file`` field
      (optional query ``top_k``). 200: ``{"transaction_id", "run_id",
      "model_version", "class", "score", "predictions": [{"class", "score"}],
      "raw_score", "temperature", "latency_ms", "image_hash", "image_path",
      "time"}`` (scores calibrated). 400 (not an image, truncated, corrupt,
      no file), 413 (over ``max_bytes``, ``max_pixels`` or
      ``max_decode_bytes``), 415 (not multipart), 422 (bad ``top_k``), 503
      (busy, with ``Retry-After``; or the log could not be written: nothing is
      acknowledged).
    * ``POST /evaluations`` — JSON ``{"transaction_id", "verdict"
      ("correct"/"wrong"/"unsure"), "reviewer", "true_class"?, "new_class"?,
      "note"?}`` (see :meth:`Predictor.record_verdict`). 201:
      ``{"evaluation_id", "transaction_id", "verdict"}``; 404 unknown
      transaction; 413 body over ``max_evaluation_bytes``; 422 invalid.
    * ``GET /health`` — ``{"status": "ok", "run_id", "model_version", "logging", "uptime_s"}``.
    * ``GET /model`` — :meth:`Predictor.info` (run, version, classes, temperature, runtime, limits).

    Args:
        predictor: The predictor (it is not closed by the app).
        allow_simulated: Accept the :data:`SIMULATED_TIME_HEADER` header, which
            logs the request as simulated traffic at the given time (for
            :func:`imgcls.demo.simulate_traffic` through HTTP). Off by default: a
            production server refuses it with 400.
        title: The app's title (OpenAPI docs at ``/docs``).
        token: Require ``Authorization: Bearer <token>`` on every endpoint
            but ``/health`` (None: no auth).
        rate_limit: Requests a second per client (token bucket, 429 with
            ``Retry-After``); None: no rate limit. Kept per process.
        rate_burst: Requests a client may send at once.
        max_evaluation_bytes: Largest ``POST /evaluations`` body.

    Returns:
        A ``fastapi.FastAPI`` app (``app.state.predictor`` is the predictor).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    if not isinstance(predictor, Predictor):
        raise ValueError(
            f"`predictor` must be an imgcls.serving.Predictor. Received: {type(predictor).__name__}"
        )
    started = _time.monotonic()
    app = FastAPI(title=title, version="1", description=(
        f"Image classification with run {predictor.run_id} ({predictor.model_version}); every "
        "request is logged.\n\n```\n" + ENDPOINTS_HELP + "\n```"))
    app.state.predictor = predictor
    app.state.started = started
    app.state.token_required = token is not None

    async def refuse(request: Request, status: int, reason: str, *, kind: str | None = None,
                     headers: dict | None = None, when=None, simulated: bool = False) -> JSONResponse:
        """Log a refused request, then answer it with the one error body."""
        kind = kind or _KINDS.get(status, "error")
        try:
            tid = await run_in_threadpool(
                predictor.log_failure, reason, kind, endpoint=endpoint_of(request.url.path),
                http_status=status, source=HTTP_SOURCE, time=when, simulated=simulated)
        except LogWriteError as exc:
            return error(503, str(exc), kind="log_unavailable")
        return error(status, reason, kind=kind, transaction_id=tid, headers=headers)

    def error(status: int, detail: str, *, kind: str, transaction_id=None, headers=None) -> JSONResponse:
        return JSONResponse(status_code=status, headers=headers, content={
            "detail": detail, "kind": kind, "status": status, "transaction_id": transaction_id})

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

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return await refuse(request, 422, "; ".join(parts) or "invalid request", kind="validation")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return await refuse(request, exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        return await refuse(request, 500, f"internal error ({type(exc).__name__}); it was logged",
                            kind="internal")

    add_routes(app, predictor, refuse=refuse, error=error, simulated_time=simulated_time,
               started=started, auth=token is not None, rate_limited=rate_limit is not None)
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = exact_bounds(generate())
        return app.openapi_schema

    app.openapi = openapi
    limiter = None if rate_limit is None else TokenBucket(rate_limit, rate_burst)
    app.add_middleware(GuardMiddleware, log_failure=predictor.log_failure, token=token,
                       limiter=limiter, max_evaluation_bytes=max_evaluation_bytes, source=HTTP_SOURCE)
    return app
