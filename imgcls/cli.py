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

import pandas as pd

from imgcls.core.workspace import DEFAULT_CUTOFF, THROWAWAY_CUTOFF

# TensorFlow's start-up chatter (CUDA probing on a CPU machine) is noise on a terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["main", "build_parser"]


def _print_table(df: pd.DataFrame, *, as_json: bool = False) -> None:
    if as_json:
        print(df.to_json(orient="records", indent=1))
    else:
        with pd.option_context("display.max_rows", 200, "display.width", 160, "display.max_colwidth", 80):
            print(df.to_string(index=False) if len(df) else "(none)")


def _workspace(args, *, create: bool = False):
    from imgcls.core.workspace import open_workspace

    return open_workspace(args.workspace, cutoff=getattr(args, "cutoff", None) or DEFAULT_CUTOFF, create=create)


# ----------------------------------------------------------------- commands
def cmd_sample(args) -> int:
    from imgcls.sample import build_sample

    ws = build_sample(args.workspace, image_size=args.image_size, pool_size=args.pool_size,
                      seed=args.seed, overwrite=args.reuse)
    print(f"Zoo sample workspace ready at {ws.root}")
    return cmd_library(argparse.Namespace(workspace=str(ws.root), cutoff=args.cutoff, json=False))


def cmd_library(args) -> int:
    from imgcls.library import Library, assign_splits, split_sizes

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
    from imgcls.library import Library

    _print_table(Library(_workspace(args)).duplicates(near=not args.exact_only)[["group", "kind", "relpath", "label"]],
                 as_json=args.json)
    return 0


def cmd_move(args) -> int:
    from imgcls.library import Library

    lib = Library(_workspace(args))
    for p in args.paths:
        if args.to == "trash":
            new = lib.discard(p)
        else:
            new = lib.move(p, args.to)
        print(f"{p} -> {new}")
    return 0


def cmd_add(args) -> int:
    from imgcls.library import Library

    for new in Library(_workspace(args)).add(args.paths, args.label, move=args.move):
        print(new)
    return 0


def cmd_undo(args) -> int:
    from imgcls.library import Library

    for p in Library(_workspace(args)).undo(args.steps):
        print(f"restored {p}")
    return 0


def cmd_journal(args) -> int:
    from imgcls.library import Library

    j = Library(_workspace(args)).journal()
    _print_table(j.tail(args.last)[["time", "op", "src", "dst", "undone"]], as_json=args.json)
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
    import imgcls

    parser.add_argument("--version", action="version", version=f"imgcls {imgcls.__version__}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                help="run `imgcls COMMAND --help` for the options of one")

    def add(name, func, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--workspace", "-w", default=os.environ.get("IMGCLS_WORKSPACE", "."),
                       help="workspace folder (default: $IMGCLS_WORKSPACE or the current folder)")
        p.set_defaults(func=func)
        return p

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

    p = add("move", cmd_move, "move images to another class, 'unknown' or 'trash' (journaled)")
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

    p = add("journal", cmd_journal, "show the last label operations")
    p.add_argument("--last", type=int, default=20, help="operations to show (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add("flag", cmd_flag, "set hash-keyed flags on images")
    p.add_argument("paths", nargs="+", help="image files or content hashes")
    p.add_argument("--staged", choices=["yes", "no"], help="staged or synthetic (not a real-world picture)")
    p.add_argument("--turns", type=int, choices=[0, 1, 2, 3],
                   help="quarter turns counter-clockwise the image needs to be upright")
    p.add_argument("--benchmark", choices=["yes", "no"], help="member of the fixed benchmark set")

    _add_model_commands(sub, add)
    return parser


def _run_ref(args):
    return args.run or "production"


def cmd_train(args) -> int:
    from imgcls.training import train

    if args.throwaway and args.cutoff is None:
        args.cutoff = THROWAWAY_CUTOFF
    ws = _workspace(args)
    run = train(ws, model=args.model, cutoff=args.cutoff, max_epochs=args.max_epochs, patience=args.patience,
                batch_size=args.batch_size, seed=args.seed, image_size=args.image_size,
                throwaway=args.throwaway, run_id=args.run_id, resume=not args.no_resume,
                verbose=0 if args.quiet else 1)
    _print_run(run)
    if args.throwaway and not args.no_identify:
        from imgcls.bulk import throwaway_candidates

        cands = throwaway_candidates(ws, run, cutoff=DEFAULT_CUTOFF, progress=not args.quiet)
        targets = cands.attrs["targets"]
        print(f"\n{cands.attrs['n_identified']} pool images identified. Classes under the usual cutoff of "
              f"{DEFAULT_CUTOFF}: {', '.join(targets) or 'none'}; {len(cands)} candidate images"
              f" -> {cands.attrs.get('results_path')}")
        if len(cands):
            table = cands.groupby(["candidate", "choice"]).size().unstack(fill_value=0)
            table = table.reindex(columns=[1, 2], fill_value=0)
            table.columns = ["as first choice", "as second choice"]
            _print_table(table.reset_index())
            print("Review them in the grid (notebook 05), or file them: imgcls add <paths> --label <class> --move")
        elif targets:
            print(f"No pool image has {' or '.join(targets)} as its first or second choice. The run may be "
                  "too weak on them: train it longer (--max-epochs, --patience), or label a few by hand.")
    return 0


def _print_run(run) -> None:
    m = run.metrics
    test = m.get("test", {}) if isinstance(m.get("test"), dict) else {}
    bench = m.get("benchmark", {}) if isinstance(m.get("benchmark"), dict) else {}
    print(f"run {run.run_id} ({run.model_name}, {len(run.classes)} classes"
          f"{', throw-away' if run.throwaway else ''}; parent {run.parent or '-'})")
    print(f"  folder: {run.path}")
    for name, block in (("test", test), ("benchmark", bench)):
        if block.get("accuracy") is not None:
            print(f"  {name} accuracy: {block['accuracy']:.4f} on {block.get('n', '?')} images")
    training = m.get("training", {})
    if training.get("epochs_trained") is not None:
        print(f"  epochs: {training['epochs_trained']} (best after {training.get('epochs_to_plateau')}), "
              f"{training.get('wall_time_s', 0):.0f} s")


def cmd_finetune(args) -> int:
    from imgcls.runs import load_run
    from imgcls.training import next_generation

    ws = _workspace(args)
    parent = load_run(_run_ref(args), workspace=ws)
    run = next_generation(ws, parent, cutoff=args.cutoff, allow_lost_classes=args.allow_lost_classes,
                          seed=args.seed, max_epochs=args.max_epochs, patience=args.patience,
                          verbose=0 if args.quiet else 1)
    _print_run(run)
    return 0


def cmd_models(args) -> int:
    from .models import get_model_spec, list_models

    rows = [{"model": m, "input": "x".join(map(str, get_model_spec(m).default_input_shape[:2])),
             "about": get_model_spec(m).description} for m in list_models()]
    _print_table(pd.DataFrame(rows), as_json=args.json)
    return 0


def cmd_runs(args) -> int:
    from imgcls.runs import list_runs

    _print_table(list_runs(_workspace(args)), as_json=args.json)
    return 0


def cmd_evaluate(args) -> int:
    from imgcls.evaluation import evaluate

    ws = _workspace(args)
    result = evaluate(_run_ref(args), args.split, workspace=ws)
    print(f"{args.split}: accuracy {result['summary']['accuracy']:.4f}, top-{result['summary']['k']} accuracy "
          f"{result['summary']['top_k_accuracy']:.4f}")
    _print_table(result["per_class"])
    return 0


def cmd_promote(args) -> int:
    from imgcls.evaluation import promote

    result = promote(_workspace(args), args.run, margin=args.margin, max_class_drop=args.max_class_drop,
                     reason=args.reason)
    print(("ACCEPTED: " if result.accepted else "REFUSED: ") + result.run_id)
    for r in result.reasons:
        print(f"  - {r}")
    return 0 if result.accepted else 1


def cmd_identify(args) -> int:
    from imgcls.bulk import identify

    ws = _workspace(args)
    source = args.source or ws.unlabelled
    results = identify(ws, source, run=_run_ref(args), top_k=args.top_k, batch_size=args.batch_size,
                       progress=not args.quiet, resume=not args.no_resume)
    print(f"{len(results)} images identified -> {results.attrs.get('results_path')}")
    if results.attrs.get("n_errors"):
        print(f"{results.attrs['n_errors']} unreadable files listed beside the results")
    if len(results):
        _print_table(results.groupby("top1_class")["top1_score"].agg(["size", "mean"]).reset_index())
    return 0


def cmd_serve(args) -> int:
    from imgcls.serving import serve

    serve(_workspace(args), run=_run_ref(args), host=args.host, port=args.port, keep_inputs=args.keep_inputs)
    return 0


def cmd_report(args) -> int:
    from imgcls.reports import export_deck

    written = export_deck(_workspace(args), freq=args.freq)
    print(f"{len(written)} files written")
    _print_table(written)
    return 0


def cmd_demo(args) -> int:
    from imgcls.demo import run_demo

    run_demo(args.workspace, max_epochs=args.max_epochs, pool_size=args.pool_size)
    return 0


def _add_model_commands(sub, add) -> None:
    """Sub-commands that need TensorFlow (imported only when they run)."""
    p = add("train", cmd_train, "train from scratch until plateau (a new run under runs/)")
    p.add_argument("--model", default=None, help="registered model name (imgcls models); default mini_inception")
    p.add_argument("--cutoff", type=int, default=None,
                   help=f"images a class needs to enter training (default {DEFAULT_CUTOFF}; "
                   f"with --throwaway {THROWAWAY_CUTOFF})")
    p.add_argument("--max-epochs", type=int, default=None, help="upper bound on epochs (default 150)")
    p.add_argument("--patience", type=int, default=None,
                   help="epochs without improvement of val accuracy before stopping (default 10)")
    p.add_argument("--batch-size", type=int, default=32, help="images per training step (default %(default)s)")
    p.add_argument("--image-size", type=int, default=None,
                   help="model input side in pixels (default: the model's own, e.g. 64 for mini_inception)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the weights, the shuffle and the augmentation (default %(default)s)")
    p.add_argument("--run-id", default=None, help="resume this run id if it was interrupted")
    p.add_argument("--no-resume", action="store_true",
                   help="with --run-id: delete the interrupted run's checkpoint and start over")
    p.add_argument("--throwaway", action="store_true",
                   help="never to be promoted; bulk-identifies the pool for classes under the usual cutoff")
    p.add_argument("--no-identify", action="store_true", help="with --throwaway: skip the bulk identification")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = add("finetune", cmd_finetune, "next generation by head swap from a run (production by default)")
    p.add_argument("--run", default=None, help="parent run id (default: production)")
    p.add_argument("--cutoff", type=int, default=None,
                   help="images a class needs to enter training (default: the parent run's cutoff)")
    p.add_argument("--max-epochs", type=int, default=None, help="upper bound on epochs (default 150)")
    p.add_argument("--patience", type=int, default=None,
                   help="epochs without improvement of val accuracy before stopping (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--allow-lost-classes", action="store_true",
                   help="train even if classes of the parent would be lost (under the cutoff or removed)")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = add("models", cmd_models, "list the registered model names")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add("runs", cmd_runs, "list the runs of the workspace")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add("evaluate", cmd_evaluate, "evaluate a run on a split or the benchmark set")
    p.add_argument("--run", default=None, help="run id or folder, 'production' or 'latest' (default production)")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "benchmark"],
                   help="the split to evaluate on (default %(default)s)")

    p = add("promote", cmd_promote, "make a run the production model if it passes the deploy gate")
    p.add_argument("run", help="the candidate: run id or folder, or 'latest'")
    p.add_argument("--margin", type=float, default=0.0,
                   help="benchmark accuracy lead required over production, 0.01 = one point (default %(default)s)")
    p.add_argument("--max-class-drop", type=float, default=0.2,
                   help="largest per-class accuracy drop allowed (default %(default)s)")
    p.add_argument("--reason", default=None, help="why: recorded in runs/promotions.jsonl")

    p = add("identify", cmd_identify, "bulk-identify a folder (default: unlabelled/) into a Parquet table")
    p.add_argument("source", nargs="?", default=None,
                   help="folder (searched at any depth) or image file (default: the workspace's unlabelled/)")
    p.add_argument("--run", default=None, help="run id or folder, 'production' or 'latest' (default production)")
    p.add_argument("--top-k", type=int, default=3, help="choices recorded per image (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="images per model call (default %(default)s)")
    p.add_argument("--no-resume", action="store_true",
                   help="start over instead of continuing an interrupted job with the same output")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = add("serve", cmd_serve, "serve a run over HTTP, logging every transaction")
    p.add_argument("--run", default=None, help="run id or folder, 'production' or 'latest' (default production)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    p.add_argument("--keep-inputs", action="store_true",
                   help="store every served image under served/<date>/ and log its path")

    p = add("report", cmd_report, "export the performance report deck into reports/")
    p.add_argument("--freq", default="week", choices=["day", "week", "month"],
                   help="time bucket of the over-time reports (default %(default)s)")

    p = add("demo", cmd_demo, "the whole life cycle on the zoo sample (what make demo runs)")
    p.add_argument("--max-epochs", type=int, default=40,
                   help="upper bound on epochs of each training run (default %(default)s)")
    p.add_argument("--pool-size", type=int, default=3000,
                   help="unlabelled images in the sample's pool (default %(default)s)")


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
