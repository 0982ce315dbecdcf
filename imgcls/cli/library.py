"""The library's commands: the sample, scans, duplicates, moves, undo, flags, the benchmark set, review decisions."""

from __future__ import annotations

import argparse
import json
import os

from .common import DEFAULT_CUTOFF, open_ws, print_table


def cmd_sample(args) -> int:
    from imgcls.sample import build_sample

    ws = build_sample(args.workspace, image_size=args.image_size, pool_size=args.pool_size,
                      seed=args.seed, overwrite=args.reuse)
    print(f"Zoo sample workspace ready at {ws.root}")
    return cmd_library(argparse.Namespace(workspace=str(ws.root), cutoff=args.cutoff, json=False))


def cmd_library(args) -> int:
    from imgcls.library import Library, assign_splits, split_sizes

    lib = Library(open_ws(args))
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
    print_table(counts)
    bad = cat[~cat["readable"]]
    if len(bad):
        print("\nUnreadable images:")
        print_table(bad[["relpath", "error"]])
    classes = lib.classes()
    if classes:
        print("\nSplits of the trainable classes:")
        print(split_sizes(assign_splits(cat), classes).to_string())
    return 0


def cmd_duplicates(args) -> int:
    from imgcls.library import Library

    print_table(Library(open_ws(args)).duplicates(near=not args.exact_only)[["group", "kind", "relpath", "label"]],
                 as_json=args.json)
    return 0


def cmd_move(args) -> int:
    from imgcls.library import Library

    # One batch: every source is checked first (nothing moves if one is missing), one undo reverses all.
    news = Library(open_ws(args)).move_many(args.paths, args.to)
    for p, new in zip(args.paths, news):
        print(f"{p} -> {new}")
    if len(news) > 1:
        print(f"{len(news)} images moved as one batch (imgcls undo reverses them all)")
    return 0


def cmd_add(args) -> int:
    from imgcls.library import Library

    for new in Library(open_ws(args)).add(args.paths, args.label, move=args.move):
        print(new)
    return 0


def cmd_undo(args) -> int:
    from imgcls.library import Library

    for p in Library(open_ws(args)).undo(args.steps):
        print(f"restored {p}")
    return 0


def cmd_journal(args) -> int:
    from imgcls.library import Library

    lib = Library(open_ws(args))
    j = lib.journal().tail(args.last)
    if args.json:
        print_table(j[["batch", "time", "op", "src", "dst", "label", "undone"]], as_json=True)
        return 0
    root = str(lib.workspace.root).rstrip(os.sep) + os.sep
    shown = j.assign(batch=j["batch"].str[:8],
                     src=j["src"].str.replace(root, "", regex=False),
                     dst=j["dst"].str.replace(root, "", regex=False))
    print_table(shown[["batch", "time", "op", "src", "dst", "undone"]])
    batches = lib.journal_batches().tail(args.batches)
    if len(batches):
        print(f"\nLast {len(batches)} batches (one `imgcls undo` reverses the newest batch not undone):")
        print_table(batches.assign(batch=batches["batch"].str[:8]))
    return 0


def cmd_rename_class(args) -> int:
    from imgcls.library import Library

    moved = Library(open_ws(args)).rename_class(args.old, args.new)
    print(f"class {args.old!r} renamed to {args.new!r}: {len(moved)} files moved as one batch "
          "(imgcls undo reverses it)")
    return 0


def cmd_merge_class(args) -> int:
    from imgcls.library import Library

    moved = Library(open_ws(args)).merge_class(args.src, into=args.into)
    print(f"class {args.src!r} merged into {args.into!r}: {len(moved)} files moved as one batch "
          "(imgcls undo reverses it)")
    return 0


def cmd_flag(args) -> int:
    from imgcls.library import Library

    kwargs = {}
    if args.staged is not None:
        kwargs["staged"] = args.staged == "yes"
    if args.turns is not None:
        kwargs["turns"] = args.turns
    if args.benchmark is not None:
        kwargs["benchmark"] = args.benchmark == "yes"
    if not kwargs:
        raise ValueError("Nothing to set: give --staged, --turns or --benchmark.")
    Library(open_ws(args)).set_flags(args.paths, **kwargs)
    print(f"flags set on {len(args.paths)} image(s): {kwargs}")
    return 0


def cmd_benchmark(args) -> int:
    from imgcls.evaluation import benchmark_exposure
    from imgcls.library import Library, benchmark_table, choose_benchmark

    lib = Library(open_ws(args))
    cat = lib.scan()
    if args.action in ("init", "extend"):
        if args.action == "init" and cat["benchmark"].any():
            raise ValueError(
                f"A benchmark set exists already ({int(cat['benchmark'].sum())} flagged images); it is never "
                "re-drawn. `imgcls benchmark extend` adds images for classes that have none."
            )
        classes = args.classes or lib.classes(cutoff=args.cutoff)
        added = choose_benchmark(lib, classes=classes).attrs["added"]
        print(f"benchmark {args.action}: " + (", ".join(f"{k} {n}" for k, n in added.items()) if added
                                            else "every class named already has benchmark images; nothing added"))
        cat = lib.scan()
    table = benchmark_table(cat)
    table["classes_cutoff"] = table["images"] >= (args.cutoff or lib.workspace.cutoff)
    exposure = benchmark_exposure(lib.workspace, catalog=cat)
    if args.json:
        print(json.dumps({"classes": table.to_dict(orient="records"), "runs": exposure.to_dict(orient="records")},
                         indent=1, default=str))
        return 0
    n = int(table["benchmark"].sum())
    if not n:
        print("No benchmark set yet: `imgcls benchmark init` (or the first `imgcls train`) chooses it.")
    else:
        print(f"Benchmark set: {n} images of {int((table['benchmark'] > 0).sum())} classes, never trained on "
              "(the cutoff still counts them):")
    print_table(table.rename(columns={"classes_cutoff": "meets_cutoff", "other": "train/val/test"})
                 .assign(share=lambda t: (t["share"] * 100).round(1).astype(str) + "%"))
    seen = exposure[exposure["seen_with_ancestors"] > 0]
    print(f"\n{len(exposure)} run(s); " + (f"{len(seen)} trained on benchmark images (the gate leaves those "
                                           "images out when it measures them):" if len(seen)
                                           else "none trained on any benchmark image."))
    if len(seen):
        print_table(seen)
    return 0


def cmd_apply(args) -> int:
    from imgcls.library import apply_decisions, read_decisions

    ws = open_ws(args)
    decisions = read_decisions(args.decisions, workspace=ws)
    counts = decisions.assign(label=decisions["label"].fillna("")).groupby(["action", "label"]).size()
    if args.dry_run:
        print(f"{len(decisions)} decisions checked; nothing moved (--dry-run):")
        print_table(counts.rename("images").reset_index())
        return 0
    done = apply_decisions(ws, decisions)
    failed = done[done["error"].astype(bool)]
    ok = done[~done["error"].astype(bool)]
    summary = ok.assign(label=ok["label"].fillna("")).groupby(["action", "label"]).size()
    print(f"{len(ok)} of {len(done)} decisions applied in one step"
          + (" (undo it with `imgcls undo`)." if done.attrs.get("batch") else "."))
    print_table(summary.rename("images").reset_index())
    if len(failed):
        print(f"\n{len(failed)} failed:")
        print_table(failed[["path", "action", "label", "error"]])
    return 1 if len(failed) else 0


def register(add) -> None:
    """Add the sample, library, duplicates, move, add, undo, journal, rename-class, merge-class, flag, benchmark, apply sub-commands (``add(name, func, help)`` returns the parser)."""
    p = add("sample", cmd_sample, "build the embedded zoo sample workspace")
    p.add_argument("--image-size", type=int, default=64,
                   help="side of the square sample images in pixels (default %(default)s)")
    p.add_argument("--pool-size", type=int, default=3000,
                   help="unlabelled images in the pool to identify (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the sample (default %(default)s)")
    p.add_argument("--cutoff", type=int, default=DEFAULT_CUTOFF,
                   help="images a class needs to enter training, for the summary (default %(default)s)")
    p.add_argument("--reuse", action="store_true", help="reuse an existing sample workspace")

    p = add("library", cmd_library, "scan the library: counts against the cutoff, unreadable images, splits")
    p.add_argument("--cutoff", type=int, default=DEFAULT_CUTOFF,
                   help="images a class needs to enter training (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")

    p = add("duplicates", cmd_duplicates, "list exact and near duplicate groups")
    p.add_argument("--exact-only", action="store_true",
                   help="only exact duplicates (same content); skip near duplicates")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add("move", cmd_move, "move images to another class, 'unknown' or 'trash' as one journaled batch "
            "(nothing moves if one is missing; one undo reverses all)")
    p.add_argument("paths", nargs="+", help="images under library/ or unlabelled/ (absolute, or relative to "
                   "the current folder, the workspace or library/)")
    p.add_argument("--to", required=True, help="class name, 'unknown', or 'trash'")

    p = add("add", cmd_add, "add images to a class (copies; --move for files inside the workspace)")
    p.add_argument("paths", nargs="+", help="image files to add (anywhere; copied unless --move)")
    p.add_argument("--label", required=True, help="the class to add them to (a new class folder if needed)")
    p.add_argument("--move", action="store_true", help="move instead of copy (only files inside the workspace)")

    p = add("undo", cmd_undo, "undo the last label operation(s)")
    p.add_argument("--steps", type=int, default=1,
                   help="label operations to undo, a batch counting as one (default %(default)s)")

    p = add("journal", cmd_journal, "show the last label operations and their batches")
    p.add_argument("--last", type=int, default=20, help="operations to show (default %(default)s)")
    p.add_argument("--batches", type=int, default=10, help="batches to summarise (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add("rename-class", cmd_rename_class, "rename a class folder: its images move as one journaled, "
            "undoable batch")
    p.add_argument("old", help="the existing class")
    p.add_argument("new", help="the new name (must not exist yet; to combine two classes use merge-class)")

    p = add("merge-class", cmd_merge_class, "merge a class into another (e.g. 'Cat' into 'cat'): one "
            "journaled, undoable batch")
    p.add_argument("src", help="the class whose images move (its folder is removed once empty)")
    p.add_argument("--into", required=True, help="the existing class that receives them")

    p = add("flag", cmd_flag, "set hash-keyed flags on images")
    p.add_argument("paths", nargs="+", help="image files or content hashes")
    p.add_argument("--staged", choices=["yes", "no"], help="staged or synthetic (not a real-world picture)")
    p.add_argument("--turns", type=int, choices=[0, 1, 2, 3],
                   help="quarter turns counter-clockwise the image needs to be upright")
    p.add_argument("--benchmark", choices=["yes", "no"], help="member of the fixed benchmark set")

    p = add("benchmark", cmd_benchmark, "show the fixed benchmark set (per class, and which runs trained on it), "
            "choose it (init) or extend it to classes without one")
    p.add_argument("action", nargs="?", default="show", choices=["show", "init", "extend"],
                   help="show (default); init: choose the set before the first training (refused if one "
                   "exists); extend: add benchmark images for classes that have none")
    p.add_argument("--classes", nargs="+", default=None,
                   help="init/extend only these classes (default: the classes meeting the cutoff)")
    p.add_argument("--cutoff", type=int, default=None,
                   help=f"images a class needs to get a benchmark with init/extend (default {DEFAULT_CUTOFF})")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")

    p = add("apply", cmd_apply, "apply review decisions from a CSV (path, action, label, reason) in one "
            "undoable step")
    p.add_argument("decisions",
                   help="CSV (or .parquet) with columns path (absolute or workspace-relative), action (label, "
                   "unknown, discard or skip; empty with an empty label: skip), label (the class, for action "
                   "label) and optional reason")
    p.add_argument("--dry-run", action="store_true", help="check the file and show what would move; move nothing")
