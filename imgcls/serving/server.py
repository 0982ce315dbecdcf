"""Running the HTTP app: :func:`serve` (until interrupted) and :func:`start_server` (in a thread).

One uvicorn worker holds one model, bound to 127.0.0.1 unless told
otherwise; see :func:`~imgcls.serving.create_app` for the endpoints and
:class:`~imgcls.serving.Predictor` for the options.
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
from imgcls.serving.predictor import DEFAULT_TOP_K, Predictor
from imgcls.serving.uploads import DEFAULT_MAX_BYTES

__all__ = ["serve", "start_server", "RunningServer"]


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
    model_version: str | None = None,
    group_commit: bool = False,
    batch_inference: bool = True,
    allow_simulated: bool = False,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve a run over HTTP until interrupted (Ctrl-C / SIGTERM).

    One uvicorn worker holds one model; see :func:`create_app` for the
    endpoints and :class:`Predictor` for the options.

    Args:
        workspace: The workspace.
        run: The run to serve (default the production run).
        host: Interface to bind. The default, 127.0.0.1, is reachable from
            this machine only; pass ``"0.0.0.0"`` deliberately to expose it.
        port: TCP port.
        top_k, keep_inputs, max_bytes, max_pixels, model_version, group_commit:
            See :class:`Predictor`.
        batch_inference: See :class:`Predictor`; on by default here (measured
            to raise throughput under concurrent clients, see :mod:`imgcls.serving`).
        allow_simulated: See :func:`create_app` (demo servers only).
        log_level: uvicorn's log level.
        access_log: Also print uvicorn's access log (every request is in the
            transaction log anyway).
    """
    import uvicorn

    predictor = Predictor(
        workspace, run=run, top_k=top_k, keep_inputs=keep_inputs, max_bytes=max_bytes,
        max_pixels=max_pixels, source=HTTP_SOURCE, model_version=model_version,
        group_commit=group_commit, batch_inference=batch_inference)
    try:
        app = create_app(predictor, allow_simulated=allow_simulated)
        uvicorn.Server(_uvicorn_config(app, host, port, log_level, access_log)).run()
    finally:
        predictor.close()


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

    Returns:
        A :class:`RunningServer`; call ``.stop()`` (or use ``with``).
    """
    import uvicorn

    app = predictor_or_app
    if isinstance(predictor_or_app, Predictor):
        app = create_app(predictor_or_app, allow_simulated=allow_simulated)
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
