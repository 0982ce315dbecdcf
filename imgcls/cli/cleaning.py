"""Cleaning the library with the model: ``imgcls label-issues`` writes the ranked table to review elsewhere."""

from __future__ import annotations

from .common import open_ws, print_table, run_ref


def cmd_label_issues(args) -> int:
    from pathlib import Path

    from imgcls.cleaning import find_label_issues, read_label_noise, review_table, write_review_table

    ws = open_ws(args)
    issues = find_label_issues(ws, run_ref(args), method=args.method, prefer_parent=args.prefer_parent,
                               folds=args.folds, seed=args.seed, min_images=args.min_images,
                               batch_size=args.batch_size, progress=not args.quiet)
    table = review_table(issues, ws, flagged_only=not args.all)
    run_id = issues.attrs["run_id"]
    out = Path(args.out) if args.out else ws.reports / f"label_issues-{run_id}.csv"
    path = write_review_table(table, out)
    n_issues = int(issues["is_issue"].sum())
    print(f"{n_issues} of {len(issues)} labelled images flagged as label issues (run {run_id}, "
          f"{issues.attrs['method']}" + (f", embeddings of {issues.attrs['embeddings_run']}"
                                         if issues.attrs.get("embeddings_run") else "") + ")")
    if issues.attrs.get("excluded_classes"):
        print(f"left out (fewer than {args.min_images} images): "
              + ", ".join(f"{k} ({v})" for k, v in issues.attrs["excluded_classes"].items()))
    print(f"{len(table)} rows -> {path}")
    if args.show and len(table):
        print_table(table[["rank", "path", "given_label", "suggested_label", "label_quality"]]
                    .head(args.show).round(3))
    noise = read_label_noise(run_id, workspace=ws) if "noise_file" in issues.attrs else None
    if noise is not None and len(noise):
        print(f"\nestimated label noise per class (-> {issues.attrs['noise_file']}):")
        print_table(noise[["label", "n", "flagged", "noise_rate"]].head(args.show or 10).round(3))
    print(f"\nFill `action` (skip = keep, label + the class in `label`, unknown, discard) in the rows you "
          f"decide (an empty row is skipped), then: imgcls apply {path} -w {args.workspace}")
    return 0


def register(add) -> None:
    """Add the label-issues sub-command (``add(name, func, help)`` returns the parser)."""
    from imgcls.cleaning import DEFAULT_FOLDS, METHODS, MIN_CLASS_IMAGES

    p = add("label-issues", cmd_label_issues,
            "rank the library's images by how likely their label is wrong (cleanlab on out-of-sample "
            "probabilities) and write the table, with empty action/label columns, for `imgcls apply`")
    p.add_argument("--run", default=None, help="run id or folder, 'production' or 'latest' (default production)")
    p.add_argument("--out", default=None,
                   help="CSV or Parquet file to write (.csv / .parquet; default "
                   "WORKSPACE/reports/label_issues-RUN.csv)")
    p.add_argument("--all", action="store_true",
                   help="write every ranked image, most likely wrong first (default: only the flagged ones)")
    p.add_argument("--method", default="linear-head", choices=METHODS,
                   help="linear-head: K-fold linear head on the run's embeddings (default, seconds once cached); "
                   "kfold-train: K full trainings (small libraries); in-sample: the run's own softmax (comparison)")
    p.add_argument("--prefer-parent", action="store_true",
                   help="embed with the parent generation's model when the run has one (default: the run's own)")
    p.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="K of the cross-validation (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds (default %(default)s)")
    p.add_argument("--min-images", type=int, default=MIN_CLASS_IMAGES,
                   help="classes with fewer images are left out of the ranking (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="images per model call (default %(default)s)")
    p.add_argument("--show", type=int, default=10, help="rows of the table printed (default %(default)s; 0: none)")
    p.add_argument("--quiet", action="store_true", help="no progress bar while embedding")
