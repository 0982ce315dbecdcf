"""The ``imgcls`` command: the library's functions for scheduled or headless work.

Every sub-command is a thin wrapper around a public function; heavy modules
(TensorFlow) are imported only by the sub-commands that need them, so
``imgcls library`` answers instantly. One module per group of commands:
``library`` (the images and their labels), ``models`` (train, fine-tune,
evaluate, promote, export), ``bulk`` (identify, filter), ``serving`` (serve,
rollback, log) and ``reports`` (the deck, the demo).
"""

from __future__ import annotations

import argparse
import sys

# TensorFlow's start-up chatter (CUDA probing on a CPU machine) is noise on a terminal: the one
# quiet module sets TF_CPP_MIN_LOG_LEVEL=3 unless the user set it, before any sub-command loads TF.
import imgcls.core.quiet  # noqa: E402,F401

from . import bulk, cleaning, library, lineage, models, reports, serving  # noqa: E402
from .common import add_workspace_option  # noqa: E402

__all__ = ["main", "build_parser"]

_LIFE_CYCLE = """the life cycle, as commands (-w WORKSPACE on each):
  imgcls sample                     build the zoo sample workspace (or bring your own library/)
  imgcls library                    counts against the cutoff, unreadable images, splits
  imgcls benchmark init             fix the benchmark set before any training (train does it too)
  imgcls train                      train a run until plateau
  imgcls evaluate --run RUN         per-class metrics on a split or the benchmark set
  imgcls promote RUN                the deploy gate: every check printed; exit 0 accepted, 1 refused
  imgcls finetune                   next generation by head swap from production; promote it the same way
  imgcls identify                   bulk-identify unlabelled/ into a results table
  imgcls filter NAME / apply FILE   filter the results to CSV; apply review decisions (undo: imgcls undo)
  imgcls label-issues               rank likely wrong labels to CSV; fill action/label, then imgcls apply
  imgcls serve / imgcls report      serve production with a transaction log; the management deck
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``imgcls`` argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="imgcls",
        description="Image-classification product life cycle: library, training, fine-tuning, "
        "bulk identification, serving and reports.",
        epilog=_LIFE_CYCLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    import imgcls

    parser.add_argument("--version", action="version", version=f"imgcls {imgcls.__version__}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                help="run `imgcls COMMAND --help` for the options of one")

    def add(name, func, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        add_workspace_option(p)
        p.set_defaults(func=func)
        return p

    library.register(add)
    models.register(add)
    bulk.register(add)
    cleaning.register(add)
    serving.register(add, sub)
    reports.register(add)
    lineage.register(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``imgcls`` command; returns its exit code (2 for an error the user can act on)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, TimeoutError, ConnectionError) as exc:
        print(f"imgcls {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"imgcls {args.command}: interrupted", file=sys.stderr)
        return 130
