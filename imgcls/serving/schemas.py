"""The request and response bodies of the HTTP API, as pydantic models (the OpenAPI schema).

Built on first use (:func:`api_models`), so importing :mod:`imgcls.serving`
does not import pydantic. Every 4xx and 5xx answer has one body shape,
:class:`Error` (``{"detail", "kind", "status", "transaction_id"}``);
:func:`error_responses` documents it for each status an endpoint can answer.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

from imgcls.translog import MAX_ID, MAX_NOTE_CHARS, MAX_REVIEWER_CHARS, VERDICTS

__all__ = ["api_models", "error_responses", "exact_bounds", "ERROR_DESCRIPTIONS"]

#: What each error status means, for the OpenAPI schema.
ERROR_DESCRIPTIONS = {
    400: "Bad request: not an image, truncated, corrupt, no file field, or a refused header",
    401: "No bearer token (the server requires one)",
    403: "Wrong bearer token",
    404: "Unknown transaction id, or no such path",
    405: "Method not allowed on this path",
    413: "Too large: upload over max_bytes, image over max_pixels or max_decode_bytes, "
         "evaluation body over its limit",
    415: "Not multipart/form-data",
    422: "Invalid parameters or body (the detail names the field and the rule)",
    429: "Rate limit: too many requests from this client (see Retry-After)",
    500: "Internal error (logged)",
    503: "Busy (no decode slot or memory within the queue timeout; see Retry-After), "
         "or the log could not be written (nothing was answered)",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying",
                                "schema": {"type": "integer", "minimum": 1}}}


@functools.cache
def api_models() -> SimpleNamespace:
    """The pydantic models of the API: Error, Prediction, PredictionOut, EvaluationIn,
    EvaluationOut, Health, ModelInfo."""
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

    class Error(BaseModel):
        """The body of every 4xx and 5xx answer."""

        detail: str = Field(..., description="What went wrong and how to fix it.")
        kind: str = Field(..., description="A stable code: not_an_image, too_large, validation, "
                          "unauthorized, forbidden, rate_limited, overloaded, not_found, ...")
        status: int = Field(..., description="The HTTP status, repeated.")
        transaction_id: int | None = Field(None, description="The row that logged the refusal "
                                           "(null when the log could not be written).")

    class Prediction(BaseModel):
        class_: str = Field(..., alias="class")
        score: float = Field(..., ge=0, le=1)

    class PredictionOut(BaseModel):
        """A served prediction; scores are calibrated with the run's temperature."""

        transaction_id: int | None
        run_id: str
        model_version: str
        class_: str = Field(..., alias="class")
        score: float = Field(..., ge=0, le=1)
        predictions: list[Prediction]
        raw_score: float = Field(..., ge=0, le=1, description="Top-1 score before calibration.")
        temperature: float | None
        latency_ms: float
        image_hash: str
        image_path: str | None
        time: str

    class EvaluationIn(BaseModel):
        """A person's verdict on a served prediction."""

        model_config = ConfigDict(extra="forbid")
        transaction_id: StrictInt = Field(..., ge=1, le=MAX_ID, description="The id /predict returned.")
        verdict: Literal[VERDICTS] = Field(..., description="correct, wrong or unsure.")  # type: ignore[valid-type]
        reviewer: str = Field(..., min_length=1, max_length=MAX_REVIEWER_CHARS, pattern=r"\S",
                              description="Who judged it.")
        true_class: str | None = Field(
            None, min_length=1, max_length=255,
            description="The real class when known: one of the serving run's classes, or a new "
                        "class name with new_class=true.")
        new_class: StrictBool = Field(False, description="true_class is a class the model does not "
                                      "know yet (it must pass the library's class-name rules).")
        note: str | None = Field(None, max_length=MAX_NOTE_CHARS, description="A free-text note.")

    class EvaluationOut(BaseModel):
        evaluation_id: int
        transaction_id: int
        verdict: Literal[VERDICTS]  # type: ignore[valid-type]

    class Health(BaseModel):
        status: Literal["ok"]
        run_id: str
        model_version: str
        logging: bool
        uptime_s: float

    class ModelInfo(BaseModel):
        run_id: str
        model_version: str
        model: str | None
        classes: list[str]
        num_classes: int
        input_size: list[int]
        generation: int | None
        parent: str | None
        created: str | None
        temperature: float | None
        runtime: str
        precision: str | None = None
        runtime_label: str | None = None
        runtime_fallback: str | None = None
        top_k: int
        logging: bool
        keep_inputs: bool
        follows_production: bool
        max_bytes: int
        max_pixels: int
        max_decode_bytes: int
        decode_memory: int
        max_concurrent: int
        queue_timeout: float

    return SimpleNamespace(Error=Error, Prediction=Prediction, PredictionOut=PredictionOut,
                           EvaluationIn=EvaluationIn, EvaluationOut=EvaluationOut, Health=Health,
                           ModelInfo=ModelInfo)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` documenting the :class:`Error` body for each of ``statuses``."""
    error = api_models().Error
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": error, "description": ERROR_DESCRIPTIONS[status]}
        if status in (429,):
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def exact_bounds(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put back the exact integer bounds of the body models into an OpenAPI schema.

    FastAPI's OpenAPI models hold ``maximum`` as a float, which turns
    ``2**63 - 1`` into ``2**63``: the schema would promise an id the server refuses.
    """
    schemas = openapi.get("components", {}).get("schemas", {})
    for name, model in (("EvaluationIn", api_models().EvaluationIn),):
        props = schemas.get(name, {}).get("properties", {})
        exact = model.model_json_schema()["properties"]
        for field, spec in props.items():
            for key in ("minimum", "maximum"):
                if key in spec and isinstance(exact.get(field, {}).get(key), int):
                    spec[key] = exact[field][key]
    return openapi
