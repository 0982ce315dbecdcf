"""What every sub-command shares: the workspace option, opening it, the run argument, printing tables."""

from __future__ import annotations

import os

import pandas as pd

from imgcls.core.workspace import DEFAULT_CUTOFF, THROWAWAY_CUTOFF

__all__ = ["DEFAULT_CUTOFF", "THROWAWAY_CUTOFF", "add_workspace_option", "open_ws", "print_table", "run_ref"]


def print_table(df: pd.DataFrame, *, as_json: bool = False) -> None:
    """Print a table for a terminal (at most 200 rows), or as JSON records."""
    if as_json:
        print(df.to_json(orient="records", indent=1))
    else:
        with pd.option_context("display.max_rows", 200, "display.width", 160, "display.max_colwidth", 80):
            print(df.to_string(index=False) if len(df) else "(none)")


def add_workspace_option(parser) -> None:
    """The ``--workspace/-w`` option every sub-command takes."""
    parser.add_argument("--workspace", "-w", default=os.environ.get("IMGCLS_WORKSPACE", "."),
                        help="workspace folder (default: $IMGCLS_WORKSPACE or the current folder)")


def open_ws(args, *, create: bool = False):
    """The workspace named by ``args.workspace`` (with ``args.cutoff`` when the command has one)."""
    from imgcls.core.workspace import open_workspace

    return open_workspace(args.workspace, cutoff=getattr(args, "cutoff", None) or DEFAULT_CUTOFF, create=create)


def run_ref(args) -> str:
    """The run a command works on: ``--run`` or the positional run, production by default."""
    return args.run or "production"
