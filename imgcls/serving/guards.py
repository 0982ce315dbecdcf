"""What stands before the endpoints: the bearer token, the rate limit and the evaluation body limit.

:class:`GuardMiddleware` is a plain ASGI middleware in front of the app:

* **Token** (optional): with a token every request but ``GET /health`` needs
  ``Authorization: Bearer <token>``, ``/docs`` and ``/openapi.json`` too (they
  reveal the class list). No or malformed header: 401 with
  ``WWW-Authenticate: Bearer``; a wrong token: 403. Tokens are compared in
  constant time (:func:`hmac.compare_digest`).
* **Rate limit** (optional): a token bucket per client, keyed by the token's
  digest when a token is in use, else the client address: ``rate`` requests
  a second, ``burst`` at once; over it, 429 with ``Retry-After``. The buckets
  live in this process: several server processes on one log each keep their own.
* **Evaluation bodies**: ``POST /evaluations`` bodies are read up to
  ``max_evaluation_bytes`` before the app parses them; larger: 413.

Every refusal is logged as a failed request (``unauthorized``,
``forbidden``, ``rate_limited``, ``too_large``) with its status, through
``log_failure(reason, failure, endpoint=..., http_status=...)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import threading
import time as _time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["TOKEN_ENV", "TokenBucket", "GuardMiddleware", "read_token", "endpoint_of"]

#: Environment variable holding the bearer token when no token file is given.
TOKEN_ENV = "IMGCLS_TOKEN"
_OPEN_PATHS = frozenset({"/health"})
_ENDPOINTS = {"/predict": "predict", "/evaluations": "evaluations", "/model": "model",
              "/health": "health", "/docs": "docs", "/redoc": "docs", "/openapi.json": "openapi"}


def endpoint_of(path: str) -> str:
    """The log's ``endpoint`` for a request path (``other`` for unknown paths)."""
    return _ENDPOINTS.get(path, "other")


def read_token(token_file: str | os.PathLike | None = None, *, env: str = TOKEN_ENV) -> str | None:
    """The bearer token from ``token_file`` (first line), else ``$IMGCLS_TOKEN``, else None.

    Raises:
        ValueError: The file is missing or empty, or the token is shorter than 16 characters.
    """
    if token_file is not None:
        path = Path(os.fspath(token_file)).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"Cannot read the token file {str(path)!r}: {exc}") from None
        token = (text.strip().splitlines() or [""])[0].strip()
        where = f"the token file {str(path)!r}"
    else:
        token = os.environ.get(env, "").strip()
        if not token:
            return None
        where = f"${env}"
    if len(token) < 16:
        raise ValueError(
            f"The token in {where} is {len(token)} characters; use at least 16 (e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`).")
    return token


class TokenBucket:
    """Per-client token buckets: ``rate`` tokens a second, at most ``burst`` stored.

    Args:
        rate: Requests a second each client may sustain.
        burst: Requests a client may send at once.
        max_clients: Buckets kept; idle full buckets are dropped beyond it.
    """

    def __init__(self, rate: float, burst: int, *, max_clients: int = 10_000) -> None:
        if not (rate > 0 and burst >= 1):
            raise ValueError(f"A rate limit needs rate > 0 and burst >= 1. Received: rate={rate!r}, "
                             f"burst={burst!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._max = int(max_clients)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is free."""
        now = _time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self._buckets) > self._max:
                self._prune(now)
            return wait

    def _prune(self, now: float) -> None:
        full = [k for k, (t, last) in self._buckets.items()
                if t + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]


class GuardMiddleware:
    """ASGI middleware: bearer token, per-client rate limit, evaluation body limit (see module doc).

    Args:
        app: The ASGI app behind.
        log_failure: ``log_failure(reason, failure, *, endpoint, http_status, source)``
            -> transaction id; called in a worker thread; may raise (the
            answer is then 503: nothing is refused unlogged).
        token: The bearer token, or None (no auth).
        limiter: A :class:`TokenBucket`, or None (no rate limit).
        max_evaluation_bytes: Largest ``POST /evaluations`` body.
        source: The ``source`` logged.
    """

    def __init__(self, app: Any, *, log_failure: Callable[..., int | None], token: str | None,
                 limiter: TokenBucket | None, max_evaluation_bytes: int, source: str) -> None:
        self.app = app
        self._log_failure = log_failure
        self._token = None if token is None else token.encode("utf-8")
        self._limiter = limiter
        self._max_eval = int(max_evaluation_bytes)
        self._source = source

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        client_key = None
        if path not in _OPEN_PATHS:
            if self._token is not None:
                refused = self._auth(headers.get("authorization"))
                if refused is not None:
                    await self._refuse(scope, send, *refused)
                    return
                client_key = "token:" + hashlib.sha256(self._token).hexdigest()[:16]
            if self._limiter is not None:
                client = scope.get("client") or ("unknown", 0)
                wait = self._limiter.take(client_key or f"addr:{client[0]}")
                if wait > 0:
                    retry = max(1, math.ceil(wait))
                    await self._refuse(scope, send, 429, "rate_limited",
                                       f"too many requests: at most {self._limiter.rate:g} a second "
                                       f"(bursts of {self._limiter.burst}) per client; retry in "
                                       f"{retry} s", {"retry-after": str(retry)})
                    return
        if path == "/evaluations" and scope.get("method") == "POST":
            receive = await self._bounded_body(scope, receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)

    def _auth(self, header: bytes | None) -> tuple | None:
        """None when the token matches, else the refusal (status, failure, reason, headers)."""
        challenge = {"www-authenticate": 'Bearer realm="imgcls"'}
        if not header or not header[:7].lower() == b"bearer ":
            return (401, "unauthorized", "this server needs 'Authorization: Bearer <token>' "
                    "(every endpoint but /health)", challenge)
        if not hmac.compare_digest(header[7:].strip(), self._token):
            return (403, "forbidden", "the bearer token is not the server's token", {})
        return None

    async def _bounded_body(self, scope: dict, receive: Callable, send: Callable) -> Callable | None:
        """Read the body up to the limit; a replaying ``receive``, or None after answering 413."""
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self._max_eval:
            await self._refuse(scope, send, 413, "too_large",
                               f"the evaluation body has {int(declared):,} bytes, more than the "
                               f"limit of {self._max_eval:,} bytes; send only the evaluation fields", {})
            return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_eval:
                await self._refuse(scope, send, 413, "too_large",
                                   f"the evaluation body exceeds the limit of {self._max_eval:,} "
                                   f"bytes (received {size:,} so far); send only the evaluation fields", {})
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _refuse(self, scope: dict, send: Callable, status: int, failure: str, reason: str,
                      headers: dict[str, str]) -> None:
        from starlette.concurrency import run_in_threadpool

        tid = None
        try:
            tid = await run_in_threadpool(
                self._log_failure, reason, failure, endpoint=endpoint_of(scope.get("path", "")),
                http_status=status, source=self._source)
        except Exception as exc:  # noqa: BLE001 - a refusal is answered only once it is logged
            status, failure, headers = 503, "log_unavailable", {}
            reason = f"the request was refused but the refusal could not be logged ({exc})"
        body = json.dumps({"detail": reason, "kind": failure, "status": status,
                           "transaction_id": tid}).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
