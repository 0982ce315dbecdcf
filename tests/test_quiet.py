"""TensorFlow's start-up lines never reach stderr, unless the user chose a log level."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)


def test_level_3_unless_the_user_set_one():
    code = ("import logging, os, sys\n"
            "import imgcls.core.quiet as q\n"
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], logging.getLogger('absl').level,\n"
            "      'tensorflow' in sys.modules, q.quiet_tensorflow())\n")
    quiet = _run(code, TF_CPP_MIN_LOG_LEVEL=None)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.split() == ["3", "40", "False", "True"]  # ERROR for absl; TF not loaded by the module
    mine = _run(code, TF_CPP_MIN_LOG_LEVEL="1")
    assert mine.stdout.split() == ["1", "0", "False", "False"]  # the user's own setting wins, untouched


def test_cli_and_makefile_agree_on_the_level():
    cli = _run("import os, imgcls.cli; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])", TF_CPP_MIN_LOG_LEVEL=None)
    assert cli.stdout.strip() == "3"
    assert "export TF_CPP_MIN_LOG_LEVEL ?= 3" in (ROOT / "Makefile").read_text()


@pytest.mark.slow
def test_tensorflow_starts_silently():
    """Importing a TF-starting package and running an op prints nothing on stderr (cuInit, oneDNN, absl)."""
    code = ("import imgcls.models, imgcls.training\n"
            "import tensorflow as tf\n"
            "print(int(tf.constant(1) + 1), len(tf.config.list_physical_devices()) > 0)\n")
    quiet = _run(code, TF_CPP_MIN_LOG_LEVEL=None)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout.split() == ["2", "True"]
    assert quiet.stderr == ""
    loud = _run(code, TF_CPP_MIN_LOG_LEVEL="0")  # a user debugging TF sees its lines again
    assert loud.returncode == 0 and loud.stderr != ""
