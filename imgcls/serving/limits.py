"""Every limit of the server, its default, and the text that documents them (``imgcls serve --help``).

The limits fall in three groups:

* **one upload**: ``max_bytes`` (the file), ``max_pixels`` (the header's
  pixel count; the workspace's, 64 MP by default) and ``max_decode_bytes``
  (the decode cost in bytes, :func:`imgcls.core.decode_cost`: pixels times
  the working bytes per pixel of the colour mode). Over any of them: 413.
* **all requests at once** (:class:`~imgcls.serving.budget.DecodeBudget`):
  ``max_concurrent`` requests decode or infer at once and their decodes hold
  at most ``decode_memory`` bytes; a request that waits longer than
  ``queue_timeout`` for both gets 503 with ``Retry-After``.
* **HTTP** (:func:`~imgcls.serving.create_app`): ``max_evaluation_bytes``
  per evaluation body (413), reviewer and note lengths (422), and a per-client
  token bucket (``rate_limit`` requests a second, bursts of ``rate_burst``;
  429 with ``Retry-After``), off by default on a loopback address. The rate
  limit is kept per server process: several processes serving one log each
  count their own clients.
"""

from __future__ import annotations

import ipaddress
import os

from imgcls.core import DEFAULT_MAX_PIXELS
from imgcls.core.decode_budget import RGB_BYTES_PER_PIXEL
from imgcls.translog import MAX_NOTE_CHARS, MAX_REVIEWER_CHARS

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_QUEUE_TIMEOUT",
    "DEFAULT_MAX_EVALUATION_BYTES",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_RATE_BURST",
    "default_max_decode_bytes",
    "default_decode_memory",
    "default_max_concurrent",
    "is_loopback",
    "limits_help",
]

#: Largest accepted upload (bytes of the image file).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Seconds a request may wait for a decode slot and decode memory before a 503.
DEFAULT_QUEUE_TIMEOUT = 30.0
#: Largest ``POST /evaluations`` body (bytes).
DEFAULT_MAX_EVALUATION_BYTES = 16 * 1024
#: Requests a second per client when the rate limit is on.
DEFAULT_RATE_LIMIT = 20.0
#: Requests a client may send at once before the rate applies.
DEFAULT_RATE_BURST = 40
_FALLBACK_MEMORY = 4 * 1024**3  # when the available memory cannot be read


def default_max_decode_bytes(max_pixels: int) -> int:
    """An 8-bit RGB image at the pixel limit just fits: ``max_pixels * 4.5`` bytes."""
    return int(max_pixels * RGB_BYTES_PER_PIXEL)


def _available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no psutil or no /proc: a conservative guess
        return _FALLBACK_MEMORY


def default_decode_memory(max_decode_bytes: int) -> int:
    """``min(available memory / 4, cores * max_decode_bytes)``, at least ``max_decode_bytes``."""
    cores = os.cpu_count() or 1
    return int(max(max_decode_bytes, min(_available_memory() // 4, cores * max_decode_bytes)))


def default_max_concurrent() -> int:
    """Four requests per core decode or wait for the model at once (at least 4)."""
    return max(4, 4 * (os.cpu_count() or 1))


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost`` (reachable from this machine only)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: The endpoints, for ``imgcls serve --help`` and the app's description.
ENDPOINTS_HELP = """endpoints:
  POST /predict       multipart image in a field named 'file' (query top_k): the top-k
                      classes, logged; 400 not an image, 413 over a limit, 415 not multipart,
                      422 bad top_k, 503 busy (Retry-After) or log not writable
  POST /evaluations   JSON {transaction_id, verdict (correct|wrong|unsure), reviewer,
                      true_class?, new_class?, note?}: a verdict on a served prediction;
                      404 unknown transaction, 413 body too large, 422 invalid
  GET  /model         what is served: run id, version, classes, temperature, runtime
  GET  /health        liveness (never needs the token)
  GET  /docs, /openapi.json   the API (needs the token when one is set)
every request is logged (refusals too, with status and reason; never an upload's bytes);
with a token every endpoint but /health needs 'Authorization: Bearer <token>' (401/403)"""


def limits_help() -> str:
    """The limits and their defaults, as ``imgcls serve --help`` shows them."""
    max_decode = default_max_decode_bytes(DEFAULT_MAX_PIXELS)
    return f"""limits (defaults):
  upload size        --max-bytes {DEFAULT_MAX_BYTES:,} bytes (413 over it)
  pixels             --max-pixels {DEFAULT_MAX_PIXELS:,} (the workspace's; 413 over it)
  decode cost        --max-decode-bytes {max_decode:,} bytes = max-pixels x 4.5: an 8-bit RGB
                     image at the pixel limit fits; RGBA / 16-bit costs more per pixel (413)
  concurrency        --max-concurrent {default_max_concurrent()} (4 per core) requests decode or infer
                     at once; --decode-memory {default_decode_memory(max_decode):,} bytes of
                     decoding in flight (min(available/4, cores x decode cost))
  queueing           --queue-timeout {DEFAULT_QUEUE_TIMEOUT:g} s, then 503 with Retry-After
  evaluations        {DEFAULT_MAX_EVALUATION_BYTES:,} bytes a body (413), reviewer <= {MAX_REVIEWER_CHARS}
                     and note <= {MAX_NOTE_CHARS} characters, true_class one of the run's
                     classes or new_class=true with a valid class name (422)
  rate limit         --rate-limit {DEFAULT_RATE_LIMIT:g}/s per client, bursts of --rate-burst
                     {DEFAULT_RATE_BURST} (429 with Retry-After); off by default on 127.0.0.1,
                     on elsewhere; counted per server process
  auth               --token-file PATH or $IMGCLS_TOKEN; a non-loopback --host needs a token
                     unless --insecure"""
