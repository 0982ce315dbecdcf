"""Serving (layer 6): the predictor, batching, the HTTP app and the server.

* :mod:`~imgcls.serving.predictor` — :class:`Predictor`: a run's model that
  predicts the top-k classes of an image and logs every transaction through
  :class:`imgcls.translog.TransactionLog` (from a notebook or behind HTTP);
  :meth:`Predictor.record_verdict` records a person's verdict on a served prediction
  (:mod:`~imgcls.serving.verdicts`: the rules), :meth:`Predictor.predict_many`
  (:mod:`~imgcls.serving.many`), :meth:`Predictor.reload`.
* :mod:`~imgcls.serving.model` — :class:`ServedModel`: one run loaded for
  inference, its version label, calibration temperature and runtime.
* :mod:`~imgcls.serving.reload` — following ``runs/production.json``: live
  reload after ``promote`` / ``rollback``, swapped atomically.
* :mod:`~imgcls.serving.uploads` — decoding an input as training does, within
  its decode cost; :class:`RejectedImage`.
* :mod:`~imgcls.serving.budget` — :class:`DecodeBudget`: concurrent decodes and
  their memory; :mod:`~imgcls.serving.limits` — every limit and its default.
* :mod:`~imgcls.serving.records` — the row every request leaves in the log.
* :mod:`~imgcls.serving.batching` — the group-commit writer and the inference batcher.
* :mod:`~imgcls.serving.app` — :func:`create_app`, the FastAPI app;
  :mod:`~imgcls.serving.routes` (``POST /predict``, ``POST /evaluations``,
  ``GET /health``, ``GET /model``), :mod:`~imgcls.serving.schemas` (the
  OpenAPI bodies, one error body), :mod:`~imgcls.serving.guards` (token,
  rate limit, evaluation body limit).
* :mod:`~imgcls.serving.server` — :func:`serve` (uvicorn, one worker,
  127.0.0.1 unless told otherwise; a token to bind elsewhere) and
  :func:`start_server` (a background thread, for notebooks and tests).

Simulated traffic for demos lives in :func:`imgcls.demo.simulate_traffic`.

**Durability.** A transaction id reaches a client only after its row is
committed (:meth:`TransactionLog.log_transaction` commits before it returns).
If the write fails, the request fails with :class:`LogWriteError` (HTTP 503)
and the prediction is not returned: the log never misses an acknowledged
request. In WAL mode with ``synchronous=NORMAL`` a commit survives the death
of the process (``SIGKILL``); ``benchmarks/bench_serving_concurrency.py``
checks it by killing a loaded server.

**Concurrency.** uvicorn runs one worker process with one model. Request
bodies are parsed in the event loop; the blocking work (decode, model call,
log write) runs in Starlette's thread pool. The model runs as one traced
``tf.function`` (any batch size) and its calls are serialised by a lock
(TensorFlow already spreads one call over the cores); decoding runs in
parallel (Pillow releases the GIL). Two options gather the work of
concurrent requests (:mod:`imgcls.serving.batching`), measured side by side
in ``benchmarks/bench_serving_concurrency.py`` (8 clients, mini_inception at
64x64, 2 cores):

* ``batch_inference=True``: one inference thread runs the model on the
  images of all waiting requests at once: 1.3-1.6x the throughput and
  0.55-0.75x the p95 latency of one model call per request (two runs on a
  shared, busy machine), with no measurable cost for a lone client, so
  :func:`serve` turns it on.
* ``group_commit=True``: one writer thread commits the rows of all waiting
  requests in one SQLite transaction, then releases them. It did not help
  (0.94-1.04x, i.e. noise): a WAL commit takes ~0.1-0.3 ms beside a 5-20 ms
  prediction, so :func:`serve` leaves it off. Either way no
  request is answered before its row is committed.

**Hostile clients.** The decode budget (:mod:`imgcls.serving.budget`) bounds
how many requests decode at once and the memory their decoding holds, with
a decode cost per image read from its header; the token and the rate limit
guard the endpoints (:mod:`imgcls.serving.guards`); every refusal is a row.
``benchmarks/bench_serving_hostile.py`` measures it: 8 concurrent 8000x8000
16-bit RGBA uploads beside 8 valid clients, big legitimate images, and a
promote under load (results in ``benchmarks/results/serving_hostile.json``).
"""

import imgcls.core.quiet  # noqa: F401  (before TensorFlow loads: silences its start-up logging)

from imgcls.serving.app import HTTP_SOURCE, SIMULATED_TIME_HEADER, create_app
from imgcls.serving.budget import DecodeBudget, Overloaded
from imgcls.serving.guards import TOKEN_ENV, TokenBucket, read_token
from imgcls.serving.limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_EVALUATION_BYTES,
    DEFAULT_QUEUE_TIMEOUT,
    DEFAULT_RATE_BURST,
    DEFAULT_RATE_LIMIT,
    ENDPOINTS_HELP,
    limits_help,
)
from imgcls.serving.model import ServedModel
from imgcls.serving.predictor import DEFAULT_TOP_K, LogWriteError, Predictor
from imgcls.serving.server import RunningServer, check_exposure, serve, start_server
from imgcls.serving.uploads import SERVED_DIR, RejectedImage

__all__ = [
    "DEFAULT_TOP_K",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EVALUATION_BYTES",
    "DEFAULT_QUEUE_TIMEOUT",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_RATE_BURST",
    "ENDPOINTS_HELP",
    "SERVED_DIR",
    "SIMULATED_TIME_HEADER",
    "HTTP_SOURCE",
    "TOKEN_ENV",
    "Predictor",
    "ServedModel",
    "DecodeBudget",
    "Overloaded",
    "TokenBucket",
    "RejectedImage",
    "LogWriteError",
    "create_app",
    "serve",
    "start_server",
    "check_exposure",
    "read_token",
    "limits_help",
    "RunningServer",
]
