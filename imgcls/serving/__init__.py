"""Serving (layer 6): the predictor, batching, the HTTP app and the server.

* :mod:`~imgcls.serving.predictor` — :class:`Predictor`: a run's model that
  predicts the top-k classes of an image and logs every transaction through
  :class:`imgcls.translog.TransactionLog` (from a notebook or behind HTTP);
  :meth:`Predictor.record_verdict` records a person's verdict on a served prediction.
* :mod:`~imgcls.serving.uploads` — decoding an input as training does;
  :class:`RejectedImage`.
* :mod:`~imgcls.serving.batching` — the group-commit writer and the inference batcher.
* :mod:`~imgcls.serving.app` — :func:`create_app`, the FastAPI app
  (``POST /predict``, ``POST /evaluations``, ``GET /health``, ``GET /model``).
* :mod:`~imgcls.serving.server` — :func:`serve` (uvicorn, one worker,
  127.0.0.1 unless told otherwise) and :func:`start_server` (a background
  thread, for notebooks and tests).

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
"""

from imgcls.serving.app import SIMULATED_TIME_HEADER, create_app
from imgcls.serving.predictor import DEFAULT_TOP_K, LogWriteError, Predictor
from imgcls.serving.server import RunningServer, serve, start_server
from imgcls.serving.uploads import DEFAULT_MAX_BYTES, SERVED_DIR, RejectedImage

__all__ = [
    "DEFAULT_TOP_K",
    "DEFAULT_MAX_BYTES",
    "SERVED_DIR",
    "SIMULATED_TIME_HEADER",
    "Predictor",
    "RejectedImage",
    "LogWriteError",
    "create_app",
    "serve",
    "start_server",
    "RunningServer",
]
