"""Quiet TensorFlow: its start-up chatter is not a failure, so it is not shown.

TensorFlow's C++ logging prints, on every CPU-only machine, lines such as
"failed call to cuInit" at ERROR level: in a notebook they appear as red
stderr boxes that look like failures, and ``TF_CPP_MIN_LOG_LEVEL=2`` lets the
ERROR lines through. This module is the one place that silences them:

* importing it sets ``TF_CPP_MIN_LOG_LEVEL=3`` **when the user has not set
  it** (TensorFlow reads the variable once, when it loads) and turns absl's
  and TensorFlow's Python loggers down to errors;
* :func:`start_tensorflow` imports TensorFlow and lets it probe its devices
  with the process's stderr pointed at ``/dev/null`` for that moment: since
  TensorFlow 2.19 the lines written while its libraries load ("All log
  messages before absl::InitializeLog() ...", oneDNN, cudart, cuInit) ignore
  ``TF_CPP_MIN_LOG_LEVEL`` (tensorflow/tensorflow#100442).

The ``__init__`` of every package that starts TensorFlow calls
:func:`start_tensorflow` before any ``import tensorflow`` or ``import keras``
of its own. A user who sets ``TF_CPP_MIN_LOG_LEVEL`` themselves (e.g. ``0``
to debug a GPU) keeps every message: nothing is changed or muted then.

Importing this module never imports TensorFlow (absl's Python logging is
only adjusted when absl is installed).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["QUIET_LEVEL", "ENV_VAR", "quiet_tensorflow", "start_tensorflow"]

#: The variable TensorFlow's C++ logging reads once, when it loads.
ENV_VAR = "TF_CPP_MIN_LOG_LEVEL"
#: 3 hides INFO, WARNING and ERROR lines (FATAL still shows).
QUIET_LEVEL = "3"
_SET_HERE = False  # True once this module chose the level (a second call then repeats it)


def quiet_tensorflow() -> bool:
    """Silence TensorFlow's start-up logging unless the user chose a level.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` to :data:`QUIET_LEVEL` and the Python
    loggers ``absl`` and ``tensorflow`` to ERROR, only when
    ``TF_CPP_MIN_LOG_LEVEL`` is not set in the environment. Called when this
    module is imported; calling it again is harmless.

    Returns:
        True when it quieted the logging, False when the user's own setting was kept.
    """
    global _SET_HERE
    if os.environ.get(ENV_VAR, "") != "" and not _SET_HERE:
        return False
    os.environ[ENV_VAR] = QUIET_LEVEL
    _SET_HERE = True
    for name in ("absl", "tensorflow"):
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET, logging.DEBUG, logging.INFO, logging.WARNING):
            logger.setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to quiet
        return True
    absl_logging.set_verbosity(absl_logging.ERROR)
    return True



@contextmanager
def _stderr_muted() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (C++ libraries write there directly)."""
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to mute
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_tensorflow() -> ModuleType:
    """Import TensorFlow (once) without its start-up lines on stderr, and return it.

    When the level in effect is :data:`QUIET_LEVEL` (set by
    :func:`quiet_tensorflow`, or 3 chosen by the user), the import and the
    first device probe run with stderr muted: nothing TensorFlow prints while
    it loads reaches a terminal or a notebook. Errors still raise as Python
    exceptions. With a lower level of the user's own (0-2: they want to see
    messages), TensorFlow is imported plainly.

    Returns:
        The ``tensorflow`` module.
    """
    global _STARTED
    quiet_tensorflow()
    # Muted when the level in effect asks for silence: set here, or 3 chosen by the user or inherited
    # from a parent process (a notebook kernel started by a process that imported imgcls).
    if _STARTED or os.environ.get(ENV_VAR) != QUIET_LEVEL:
        import tensorflow as tf

        _STARTED = True
        return tf
    with _stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the device probe ("failed call to cuInit") happens here
    _STARTED = True
    return tf


_STARTED = False
quiet_tensorflow()
