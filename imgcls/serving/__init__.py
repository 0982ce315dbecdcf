"""The predictor, batching and the HTTP app (layer 6)."""

from imgcls.serving.app import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TOP_K,
    SERVED_DIR,
    SIMULATED_TIME_HEADER,
    LogWriteError,
    Predictor,
    RejectedImage,
    RunningServer,
    create_app,
    serve,
    simulate_traffic,
    start_server,
)

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
    "simulate_traffic",
]
