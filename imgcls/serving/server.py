"""Running the HTTP app: :func:`serve` (until interrupted) and :func:`start_server` (in a thread).

One uvicorn worker holds one model, bound to 127.0.0.1 unless told
otherwise; see :func:`~imgcls.serving.create_app` for the endpoints,
:class:`~imgcls.serving.Predictor` for the options and
:mod:`imgcls.serving.limits` for every limit. :func:`serve` refuses to bind
to anything but a loopback address without a token (``token_file`` or
``$IMGCLS_TOKEN``) unless ``insecure=True``, turns the rate limit on by
default off loopback, and follows the production pointer when it serves the
production run.
"""

from __future__ import annotations

import os
import socket
import threading
import time as _time
from typing import Any

from imgcls.core import Workspace
from imgcls.runs import Run
from imgcls.serving.app import HTTP_SOURCE, create_app
from imgcls.serving.guards import TOKEN_ENV, read_token
from imgcls.serving.limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_EVALUATION_BYTES,
    DEFAULT_QUEUE_TIMEOUT,
    DEFAULT_RATE_BURST,
    DEFAULT_RATE_LIMIT,
    is_loopback,
)
from imgcls.serving.predictor import DEFAULT_TOP_K, Predictor
from imgcls.translog import TransactionLog

__all__ = ["serve", "start_server", "RunningServer", "check_exposure"]


def _uvicorn_config(app, host: str, port: int, log_level: str, access_log: bool):
    import uvicorn

    return uvicorn.Config(
        app, host=host, port=port, workers=1, log_level=log_level, access_log=access_log,
        timeout_graceful_shutdown=5, lifespan="off",
    )


def serve(
    workspace: Workspace | str | os.PathLike,
    *,
    run: Run | str | os.PathLike = "production",
    host: str = "127.0.0.1",
    port: int = 8000,
    top_k: int = DEFAULT_TOP_K,
    keep_inputs: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int | None = None,
    max_decode_bytes: int | None = None,
    decode_memory: int | None = None,
    max_concurrent: int | None = None,
    queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
    model_version: str | None = None,
    group_commit: bool = False,
    batch_inference: bool = True,
    allow_simulated: bool = False,
    token_file: str | os.PathLike | None = None,
    insecure: bool = False,
    rate_limit: float | str | None = "auto",
    rate_burst: int = DEFAULT_RATE_BURST,
    max_evaluation_bytes: int = DEFAULT_MAX_EVALUATION_BYTES,
    follow_production: bool | None = None,
    runtime: str = "keras",
    precision: str | None = None,
    log_level: str = "info",
    access_log: bool = False,
    log_url: str | None = None,
) -> None:
    """Serve a run over HTTP until interrupted (Ctrl-C / SIGTERM).

    One uvicorn worker holds one model; see :func:`create_app` for the
    endpoints, :class:`Predictor` for the options and
    :mod:`imgcls.serving.limits` for the limits and their defaults.

    Args:
        workspace: The workspace.
        run: The run to serve (default the production run).
        host: Interface to bind. The default, 127.0.0.1, is reachable from
            this machine only. Any other address needs a token (or ``insecure=True``).
        port: TCP port.
        top_k, keep_inputs, max_bytes, max_pixels, max_decode_bytes,
            decode_memory, max_concurrent, queue_timeout, model_version,
            group_commit: See :class:`Predictor`.
        batch_inference: See :class:`Predictor`; on by default here (measured
            to raise throughput under concurrent clients, see :mod:`imgcls.serving`).
        allow_simulated: See :func:`create_app` (demo servers only).
        token_file: A file whose first line is the bearer token; default
            ``$IMGCLS_TOKEN``; neither: no auth (loopback only, unless ``insecure``).
        insecure: Allow a non-loopback ``host`` without a token.
        rate_limit: Requests a second per client; ``"auto"`` (default): off
            on a loopback host, :data:`~imgcls.serving.limits.DEFAULT_RATE_LIMIT`
            elsewhere; None: off. Counted per process.
        rate_burst, max_evaluation_bytes: See :func:`create_app`.
        follow_production: Swap to the run ``runs/production.json`` names
            when it changes (``promote``, ``rollback``); default: when ``run``
            is ``"production"``.
        runtime, precision: What runs the model (``"keras"`` or ``"openvino"``,
            the run's export) and which export; see :class:`Predictor`.
        log_level: uvicorn's log level.
        access_log: Also print uvicorn's access log (every request is in the
            transaction log anyway).
        log_url: Where to log: ``postgresql://USER@HOST:PORT/DB`` (one log
            that several serving processes and hosts write; every id is
            committed before its response) or ``sqlite:///PATH``. Default:
            the workspace's ``serving.sqlite``.

    Raises:
        ValueError: A non-loopback ``host`` without a token and without
            ``insecure``; an unreadable or short token.
    """
    import uvicorn

    token = read_token(token_file)
    check_exposure(host, token=token, insecure=insecure)
    if rate_limit == "auto":
        rate_limit = None if is_loopback(host) else DEFAULT_RATE_LIMIT
    if follow_production is None:
        follow_production = isinstance(run, str) and run == "production"
    log = True if log_url is None else TransactionLog(log_url)  # a URL's log: opened and closed here
    try:
        predictor = Predictor(
            workspace, run=run, log=log, top_k=top_k, keep_inputs=keep_inputs, max_bytes=max_bytes,
            max_pixels=max_pixels, max_decode_bytes=max_decode_bytes, decode_memory=decode_memory,
            max_concurrent=max_concurrent, queue_timeout=queue_timeout, source=HTTP_SOURCE,
            model_version=model_version, group_commit=group_commit, batch_inference=batch_inference,
            follow_production=follow_production, runtime=runtime, precision=precision)
        try:
            app = create_app(predictor, allow_simulated=allow_simulated, token=token,
                             rate_limit=rate_limit, rate_burst=rate_burst,
                             max_evaluation_bytes=max_evaluation_bytes)
            uvicorn.Server(_uvicorn_config(app, host, port, log_level, access_log)).run()
        finally:
            predictor.close()
    finally:
        if log is not True:
            log.close()


def check_exposure(host: str, *, token: str | None, insecure: bool) -> None:
    """Refuse to expose a server beyond this machine without a token (unless ``insecure``).

    Raises:
        ValueError: ``host`` is not a loopback address, there is no token,
            and ``insecure`` is False.
    """
    if token is None and not insecure and not is_loopback(host):
        raise ValueError(
            f"Refusing to serve on {host!r} without a token: anyone who can reach it could read "
            f"the class list and fill the log. Give a token (--token-file PATH, or ${TOKEN_ENV}), "
            "bind to 127.0.0.1, or pass --insecure if the network is trusted.")


class RunningServer:
    """An HTTP server running in a background thread (see :func:`start_server`).

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        host, port: Where it listens.
        app: The FastAPI app.
    """

    def __init__(self, app, server, thread: threading.Thread, host: str, port: int) -> None:
        self.app = app
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish (it completes the requests in flight) and wait."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningServer({self.url!r}, running={self.running})"


def start_server(
    predictor_or_app: "Predictor | Any",
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_simulated: bool = False,
    timeout: float = 30.0,
    insecure: bool = False,
    **app_options: Any,
) -> RunningServer:
    """Start the HTTP server in a background thread and return once it accepts requests.

    For notebooks and tests: the kernel stays free, and the same predictor
    can be used from Python and over HTTP at once.

    Args:
        predictor_or_app: A :class:`Predictor` (an app is created) or an app
            from :func:`create_app`.
        host: Interface to bind (default 127.0.0.1).
        port: TCP port; 0 picks a free one (see ``.port``).
        allow_simulated: See :func:`create_app`.
        timeout: Seconds to wait for the server to start.
        insecure: Allow a non-loopback ``host`` without a token (see :func:`check_exposure`).
        **app_options: ``token``, ``rate_limit``, ``rate_burst``,
            ``max_evaluation_bytes`` for :func:`create_app` (with a predictor).

    Returns:
        A :class:`RunningServer`; call ``.stop()`` (or use ``with``).
    """
    import uvicorn

    app = predictor_or_app
    if isinstance(predictor_or_app, Predictor):
        app = create_app(predictor_or_app, allow_simulated=allow_simulated, **app_options)
    elif app_options:
        raise ValueError(f"Options {sorted(app_options)} need a Predictor, not an app.")
    guarded = getattr(getattr(app, "state", None), "token_required", False)
    check_exposure(host, token="set" if guarded else None, insecure=insecure)
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that
    # say so, and without it every keep-alive response waits ~40 ms (Nagle +
    # delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(app, host, port, "warning", False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"imgcls-server-{port}", daemon=True)
    thread.start()
    deadline = _time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or _time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"The server on {host}:{port} did not start within {timeout} s.")
        _time.sleep(0.02)
    return RunningServer(app, server, thread, host, port)
