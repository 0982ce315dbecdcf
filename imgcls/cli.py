"""The ``imgcls`` command: the library's functions for scheduled or headless work.

Every sub-command is a thin wrapper around a public function; heavy modules
(TensorFlow) are imported only by the sub-commands that need them, so
``imgcls library`` answers instantly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from .config import DEFAULT_CUTOFF, THROWAWAY_CUTOFF

__all__ = ["main", "build_parser"]


def _print_table(df: pd.DataFrame, *, as_json: bool = False) -> None:
    if as_json:
        print(df.to_json(orient="records", indent=1))
    else:
        with pd.option_context("display.max_rows", 200, "display.width", 160, "display.max_colwidth", 80):
            print(df.to_string(index=False) if len(df) else "(none)")


def _workspace(args, *, create: bool = False):
    from .config import open_workspace

    return open_workspace(args.workspace, cutoff=getattr(args, "cutoff", None) or DEFAULT_CUTOFF, create=create)


# ----------------------------------------------------------------- commands
def cmd_sample(args) -> int:
    from .sample import build_sample

    ws = build_sample(args.workspace, image_size=args.image_size, pool_size=args.pool_size,
                      seed=args.seed, overwrite=args.reuse)
    print(f"Zoo sample workspace ready at {ws.root}")
    return cmd_library(argparse.Namespace(workspace=str(ws.root), cutoff=args.cutoff, json=False))


def cmd_library(args) -> int:
    from .library import Library
    from .splits import assign_splits, split_sizes

    lib = Library(_workspace(args))
    cat = lib.scan()
    counts = lib.counts()
    if args.json:
        print(json.dumps({
            "images": int(len(cat)),
            "unreadable": int((~cat["readable"]).sum()),
            "classes": lib.classes(),
            "counts": counts.to_dict(orient="records"),
        }, indent=1, default=int))
        return 0
    print(f"{len(cat)} image files, {int((~cat['readable']).sum())} unreadable; cutoff {lib.workspace.cutoff}")
    _print_table(counts)
    bad = cat[~cat["readable"]]
    if len(bad):
        print("\nUnreadable images:")
        _print_table(bad[["relpath", "error"]])
    classes = lib.classes()
    if classes:
        print("\nSplits of the trainable classes:")
        print(split_sizes(assign_splits(cat), classes).to_string())
    return 0


def cmd_duplicates(args) -> int:
    from .library import Library

    _print_table(Library(_workspace(args)).duplicates(near=not args.exact_only)[["group", "kind", "relpath", "label"]],
                 as_json=args.json)
    return 0


def cmd_move(args) -> int:
    from .library import Library

    lib = Library(_workspace(args))
    for p in args.paths:
        if args.to == "trash":
            new = lib.discard(p)
        else:
            new = lib.move(p, args.to)
        print(f"{p} -> {new}")
    return 0


def cmd_add(args) -> int:
    from .library import Library

    for new in Library(_workspace(args)).add(args.paths, args.label, move=args.move):
        print(new)
    return 0


def cmd_undo(args) -> int:
    from .library import Library

    for p in Library(_workspace(args)).undo(args.steps):
        print(f"restored {p}")
    return 0


def cmd_journal(args) -> int:
    from .library import Library

    j = Library(_workspace(args)).journal()
    _print_table(j.tail(args.last)[["time", "op", "src", "dst", "undone"]], as_json=args.json)
    return 0


def cmd_flag(args) -> int:
    from .library import Library

    kwargs = {}
    if args.staged is not None:
        kwargs["staged"] = args.staged == "yes"
    if args.turns is not None:
        kwargs["turns"] = args.turns
    if args.benchmark is not None:
        kwargs["benchmark"] = args.benchmark == "yes"
    if not kwargs:
        raise ValueError("Nothing to set: give --staged, --turns or --benchmark.")
    Library(_workspace(args)).set_flags(args.paths, **kwargs)
    print(f"flags set on {len(args.paths)} image(s): {kwargs}")
    return 0


# ------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgcls",
        description="Image-classification product life cycle: library, training, fine-tuning, "
        "bulk identification, serving and reports.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, func, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--workspace", "-w", default=os.environ.get("IMGCLS_WORKSPACE", "."),
                       help="workspace folder (default: $IMGCLS_WORKSPACE or the current folder)")
        p.set_defaults(func=func)
        return p

    p = add("sample", cmd_sample, "build the embedded zoo sample workspace")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--pool-size", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cutoff", type=int, default=DEFAULT_CUTOFF)
    p.add_argument("--reuse", action="store_true", help="reuse an existing sample workspace")

    p = add("library", cmd_library, "scan the library: counts against the cutoff, unreadable images, splits")
    p.add_argument("--cutoff", type=int, default=DEFAULT_CUTOFF)
    p.add_argument("--json", action="store_true")

    p = add("duplicates", cmd_duplicates, "list exact and near duplicate groups")
    p.add_argument("--exact-only", action="store_true")
    p.add_argument("--json", action="store_true")

    p = add("move", cmd_move, "move images to another class, 'unknown' or 'trash' (journaled)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--to", required=True, help="class name, 'unknown', or 'trash'")

    p = add("add", cmd_add, "add images to a class (copies; --move for files inside the workspace)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--label", required=True)
    p.add_argument("--move", action="store_true")

    p = add("undo", cmd_undo, "undo the last label operation(s)")
    p.add_argument("--steps", type=int, default=1)

    p = add("journal", cmd_journal, "show the last label operations")
    p.add_argument("--last", type=int, default=20)
    p.add_argument("--json", action="store_true")

    p = add("flag", cmd_flag, "set hash-keyed flags on images")
    p.add_argument("paths", nargs="+")
    p.add_argument("--staged", choices=["yes", "no"])
    p.add_argument("--turns", type=int, choices=[0, 1, 2, 3])
    p.add_argument("--benchmark", choices=["yes", "no"])

    _add_model_commands(sub, add)
    return parser


def _add_model_commands(sub, add) -> None:
    """Sub-commands that need TensorFlow (imported only when they run)."""
    # Filled in as the training, bulk, serving and report layers land.
    del sub, add


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"imgcls {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"imgcls {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
