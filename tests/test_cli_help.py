"""The `imgcls` command documents itself: help on every option and sub-command, and --version."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import imgcls
from imgcls.cli import build_parser

BIN = Path(sys.executable).parent / "imgcls"  # the console script pip installed beside this Python


def walk(parser: argparse.ArgumentParser, path: str = "imgcls"):
    """(where, action) for every action of ``parser`` and of its sub-parsers, recursively."""
    for action in parser._actions:
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # one pseudo-action per sub-command, carrying its help
                yield f"{path} {choice.dest}", choice
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")


def _label(action: argparse.Action) -> str:
    return "/".join(action.option_strings) or action.dest


def test_every_option_and_subcommand_has_help():
    actions = list(walk(build_parser()))
    assert len(actions) > 50  # the walk reached the sub-commands' options
    missing = [f"{where}: {_label(a)}" for where, a in actions
               if not isinstance(a, argparse._HelpAction)
               and (not isinstance(a.help, str) or not a.help.strip() or a.help == argparse.SUPPRESS)]
    assert not missing, "options or sub-commands without help:\n" + "\n".join(missing)


def test_every_subcommand_is_walked():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest for c in sub._choices_actions} == set(sub.choices)
    for name in ("sample", "library", "train", "finetune", "identify", "serve", "report", "demo"):
        assert name in sub.choices


def test_help_renders_for_every_subcommand(capsys):
    """%-formatting in help strings (e.g. %(default)s) is valid everywhere."""
    parser = build_parser()
    parser.format_help()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert name in p.format_help()


def test_version_through_the_installed_command():
    assert BIN.exists(), f"no console script at {BIN}: pip install -e . first"
    proc = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"imgcls {imgcls.__version__}"
    assert imgcls.__version__ and imgcls.__version__[0].isdigit()
