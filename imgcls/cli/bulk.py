"""Bulk identification: identify a folder, filter the results."""

from __future__ import annotations

from .common import open_ws, print_table, run_ref


def cmd_identify(args) -> int:
    from imgcls.bulk import identify, identify_beam

    ws = open_ws(args)
    source = args.source or ws.unlabelled
    if args.engine == "beam":
        if args.runtime != "keras" or args.precision:
            raise ValueError("--runtime openvino and --precision need --engine local (Beam workers run Keras).")
        results = identify_beam(ws, source, run=run_ref(args), top_k=args.top_k, batch_size=args.batch_size,
                                runner=args.runner, beam_options=args.beam_option, overwrite=args.no_resume)
    else:
        if args.runner != "FnApiRunner" or args.beam_option:
            raise ValueError("--runner and --beam-option need --engine beam.")
        results = identify(ws, source, run=run_ref(args), top_k=args.top_k, batch_size=args.batch_size,
                           progress=not args.quiet, resume=not args.no_resume, runtime=args.runtime,
                           precision=args.precision)
    n = results.attrs.get("n_results", len(results))
    on = f" ({results.attrs['runtime']})" if results.attrs.get("runtime") else ""
    print(f"{n} images identified{on} -> {results.attrs.get('results_path')}")
    if results.attrs.get("n_errors"):
        print(f"{results.attrs['n_errors']} unreadable files listed beside the results")
    if len(results):
        print_table(results.groupby("top1_class")["top1_score"].agg(["size", "mean"]).reset_index())
    return 0


def latest_results(ws):
    jobs = sorted((p for p in ws.bulk.glob("*.parquet") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    if not jobs:
        raise FileNotFoundError(f"No bulk results in {ws.bulk}: run `imgcls identify` first, or pass --results.")
    return jobs[-1]


def cmd_filter(args) -> int:
    from pathlib import Path

    from imgcls.bulk import filter_results, load_results
    from imgcls.library import Library

    if args.name == "look-alike" and not args.predicted:
        raise ValueError("The look-alike filter needs the predicted class: --class CLASS (repeat for several).")
    ws = open_ws(args)
    source = Path(args.results) if args.results else latest_results(ws)
    results = load_results(source)
    out = filter_results(results, args.name, library=Library(ws), below=args.below, min_share=args.min_share,
                         predicted=args.predicted, min_score=args.min_score, max_score=args.max_score, n=args.n)
    path = Path(args.out) if args.out else ws.reports / f"{source.name.removesuffix('.parquet')}-{args.name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    print(f"{args.name}: {len(out)} of {len(results)} images of {source} -> {path}")
    shown = [c for c in ("relpath", "top1_class", "top1_score", "raw_top1_score", "top2_class", "top2_score",
                         "entropy", "margin", "class_count", "staged_share") if c in out.columns]
    if len(out) and args.show:
        print_table(out[shown].head(args.show).round(3))
    return 0


def register(add) -> None:
    """Add the identify, filter sub-commands (``add(name, func, help)`` returns the parser)."""
    p = add("identify", cmd_identify, "bulk-identify a folder (default: unlabelled/) into a Parquet table")
    p.add_argument("source", nargs="?", default=None,
                   help="folder (searched at any depth) or image file (default: the workspace's unlabelled/)")
    p.add_argument("--run", default=None, help="run id or folder, 'production' or 'latest' (default production)")
    p.add_argument("--top-k", type=int, default=3, help="choices recorded per image (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="images per model call (default %(default)s)")
    p.add_argument("--no-resume", action="store_true",
                   help="start over instead of continuing an interrupted job with the same output "
                   "(--engine beam: replace an output folder that holds another job)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--runtime", default="keras", choices=["keras", "openvino"],
                   help="what runs the model: keras (the run's model.keras) or openvino (the run's export, "
                   "made by `imgcls export RUN --runtime openvino`; same decoding, calibration and top-k) "
                   "(default %(default)s)")
    p.add_argument("--precision", default=None, choices=["f32", "bf16", "int8"],
                   help="--runtime openvino: which export (default: the run's best of int8, bf16, f32)")
    p.add_argument("--engine", default="local", choices=["local", "beam"],
                   help="local: this process, resumable; beam: an Apache Beam pipeline (the beam extra), "
                   "same table, one output folder per job, a rerun replaces it (default %(default)s)")
    p.add_argument("--runner", default="FnApiRunner",
                   help="--engine beam: the Beam runner, e.g. DataflowRunner, FlinkRunner, SparkRunner "
                   "(default %(default)s: in this process, 2 workers, no download)")
    p.add_argument("--beam-option", action="append", default=[], metavar="FLAG",
                   help="--engine beam: one pipeline flag, written with '=', repeatable, e.g. "
                   "--beam-option=--direct_num_workers=4 --beam-option=--project=my-project")

    from imgcls.bulk.filters import FILTER_NAMES

    p = add("filter", cmd_filter, "filter a bulk result (the write-up's five filters, or an uncertainty "
            "sort) and write it as CSV")
    p.add_argument("name", choices=FILTER_NAMES,
                   help="low-count: classes with few library images; staged: classes built mostly from "
                   "staged images; look-alike: a class at middling confidence (--class); unknown: images in "
                   "library/unknown/; lowest: lowest scores first; entropy / margin: most uncertain first")
    p.add_argument("--results", default=None,
                   help="a bulk results folder (bulk/<run_id>-<name>.parquet; default: the newest in bulk/)")
    p.add_argument("--out", default=None,
                   help="the CSV to write (default: reports/<results name>-<filter>.csv)")
    p.add_argument("--below", type=int, default=None,
                   help="low-count: classes with fewer library images than this (default: the cutoff)")
    p.add_argument("--min-share", type=float, default=0.5,
                   help="staged: smallest share of staged images in the class (default %(default)s)")
    p.add_argument("--class", dest="predicted", action="append", default=None,
                   help="look-alike: the predicted class (repeat for several)")
    p.add_argument("--min-score", type=float, default=0.3,
                   help="look-alike: lowest calibrated first-choice score kept (default %(default)s)")
    p.add_argument("--max-score", type=float, default=None,
                   help="look-alike: highest calibrated first-choice score kept (default 0.7); "
                   "lowest: keep scores up to this (default: all)")
    p.add_argument("--n", type=int, default=None, help="keep at most this many images (default: all)")
    p.add_argument("--show", type=int, default=10, help="rows to print (default %(default)s; 0 for none)")
