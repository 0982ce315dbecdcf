"""Training and the model's life: train, finetune, models, runs, evaluate, promote, export."""

from __future__ import annotations


import pandas as pd

from .common import DEFAULT_CUTOFF, THROWAWAY_CUTOFF, open_ws, print_table, run_ref


def cmd_train(args) -> int:
    from imgcls.training import train

    if args.throwaway and args.cutoff is None:
        args.cutoff = THROWAWAY_CUTOFF
    ws = open_ws(args)
    run = train(ws, model=args.model, cutoff=args.cutoff, max_epochs=args.max_epochs, patience=args.patience,
                min_epochs=args.min_epochs, batch_size=args.batch_size, seed=args.seed, image_size=args.image_size,
                throwaway=args.throwaway, run_id=args.run_id, resume=not args.no_resume,
                verbose=0 if args.quiet else 1)
    print_run(run)
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
            print_table(table.reset_index())
            print("Review them in the grid (notebook 06), or file them: imgcls add <paths> --label <class> --move")
        elif targets:
            print(f"No pool image has {' or '.join(targets)} as its first or second choice. The run may be "
                  "too weak on them: train it longer (--max-epochs, --patience), or label a few by hand.")
    return 0


def print_run(run) -> None:
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

    ws = open_ws(args)
    parent = load_run(run_ref(args), workspace=ws)
    run = next_generation(ws, parent, cutoff=args.cutoff, allow_lost_classes=args.allow_lost_classes,
                          seed=args.seed, max_epochs=args.max_epochs, patience=args.patience,
                          min_epochs=args.min_epochs,
                          verbose=0 if args.quiet else 1)
    print_run(run)
    return 0


def cmd_models(args) -> int:
    from imgcls.models import get_model_spec, list_models

    rows = [{"model": m, "input": "x".join(map(str, get_model_spec(m).default_input_shape[:2])),
             "about": get_model_spec(m).description} for m in list_models()]
    print_table(pd.DataFrame(rows), as_json=args.json)
    return 0


def cmd_runs(args) -> int:
    from imgcls.runs import list_runs

    print_table(list_runs(open_ws(args)), as_json=args.json)
    return 0


def cmd_evaluate(args) -> int:
    from pathlib import Path

    from imgcls.evaluation import evaluate, evaluation_text, plot_calibration, plot_confusion

    ws = open_ws(args)
    result = evaluate(run_ref(args), args.split, workspace=ws)
    print(evaluation_text(result))
    if not args.no_figures:
        out = Path(args.out) if args.out else ws.reports
        out.mkdir(parents=True, exist_ok=True)
        import matplotlib.pyplot as plt

        print()
        for name, plot in (("confusion", plot_confusion), ("calibration", plot_calibration)):
            fig = plot(result)
            path = out / f"evaluate-{result['run_id']}-{result['split']}-{name}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            print(f"{name} figure -> {path}")
    return 0


def cmd_promote(args) -> int:
    from imgcls.evaluation import promote

    result = promote(open_ws(args), args.run, alpha=args.alpha, margin=args.margin,
                     max_class_drop=None if args.max_class_drop < 0 else args.max_class_drop,
                     min_class_n=args.min_class_n, override=args.override, reason=args.reason)
    verdict = "ACCEPTED (override)" if result.override is not None else "ACCEPTED" if result.accepted else "REFUSED"
    print(f"{verdict}: {result.run_id}")
    print(result.explain())
    return 0 if result.accepted else 1


def cmd_export(args) -> int:
    from imgcls.export import DEFAULT_CALIBRATION_IMAGES, export_run, parity_table

    record = export_run(open_ws(args), args.run, runtime=args.runtime, precision=args.precision,
                        calibration_images=(DEFAULT_CALIBRATION_IMAGES if args.calibration_images is None
                                            else args.calibration_images),
                        min_agreement=args.min_agreement, force=args.force,
                        accuracy_control=args.accuracy_control, max_drop=args.max_drop)
    verdict = "FORCED" if record["forced"] else ("ACCEPTED" if record["accepted"] else "REFUSED")
    print(f"{verdict}: {record['run_id']} {record['runtime']} {record['precision']} -> {record['path']}")
    control = (record.get("calibration") or {}).get("accuracy_control")
    if control:
        print(f"accuracy control: {control['int8_operations']} of {control['operations']} weighted operations "
              f"left in int8, the others put back in float; agreement with float on {control['validation_images']} "
              f"validation images {control['validation_agreement']:.2%} "
              + ("(target reached)" if control["reached"] else
                 f"(target {1 - control['max_drop']:.2%} NOT reached: nothing more NNCF could revert within its "
                 f"{control['max_iterations']} iterations)"))
    for r in record["reasons"]:
        print(f"  - {r}")
    print_table(parity_table(record["parity"]).round(6))
    return 0 if record["accepted"] else 1


def register(add) -> None:
    """Add the train, finetune, models, runs, evaluate, promote, export sub-commands (``add(name, func, help)`` returns the parser)."""
    p = add("train", cmd_train, "train from scratch until plateau (a new run under runs/)")
    p.add_argument("--model", default=None, help="registered model name (imgcls models); default mini_inception")
    p.add_argument("--cutoff", type=int, default=None,
                   help=f"images a class needs to enter training (default {DEFAULT_CUTOFF}; "
                   f"with --throwaway {THROWAWAY_CUTOFF})")
    p.add_argument("--max-epochs", type=int, default=None, help="upper bound on epochs (default 150)")
    p.add_argument("--patience", type=int, default=None,
                   help="epochs without improvement of val accuracy before stopping (default 10)")
    p.add_argument("--min-epochs", type=int, default=None,
                   help="no early stop before this many epochs; the best epoch still wins (default 0)")
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
    p.add_argument("--min-epochs", type=int, default=None,
                   help="no early stop before this many epochs; the best epoch still wins (default 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--allow-lost-classes", action="store_true",
                   help="train even if classes of the parent would be lost (under the cutoff or removed)")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = add("models", cmd_models, "list the registered model names")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add("runs", cmd_runs, "list the runs of the workspace")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add("evaluate", cmd_evaluate, "evaluate a run: per-class precision/recall/F1, confused pairs, "
            "confusion matrix, calibration; writes the figures")
    p.add_argument("run", nargs="?", default=None,
                   help="run id or folder, 'production' or 'latest' (default production)")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "benchmark"],
                   help="the split to evaluate on (default %(default)s)")
    p.add_argument("--out", default=None,
                   help="folder for the confusion and calibration figures (default: the workspace's reports/)")
    p.add_argument("--no-figures", action="store_true", help="print the report only; write no figure")

    p = add("promote", cmd_promote, "make a run the production model if it passes the deploy gate "
            "(prints every check; exit 0 accepted, 1 refused)")
    p.add_argument("run", help="the candidate: run id or folder, or 'latest'")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="chance of refusing a candidate truly as good as production; 80%% of it goes to the "
                   "overall exact McNemar test, 20%% to the per-class tests (Holm) (default %(default)s)")
    p.add_argument("--margin", type=float, default=None,
                   help="also refuse a candidate whose benchmark accuracy is below production's by more than "
                   "this share, 0.02 = two points (default: no margin check)")
    p.add_argument("--max-class-drop", type=float, default=0.2,
                   help="largest accuracy drop allowed for a class with at least --min-class-n benchmark "
                   "images; negative: skip the check (default %(default)s)")
    p.add_argument("--min-class-n", type=int, default=150,
                   help="benchmark images a class needs for --max-class-drop to apply (default %(default)s)")
    p.add_argument("--override", default=None, metavar="REASON",
                   help="promote even if checks fail, for this reason (recorded with the failed checks and "
                   "your user name; never for a throw-away run)")
    p.add_argument("--reason", default=None, help="why: recorded in runs/promotions.jsonl")

    p = add("export", cmd_export, "export a run for a faster runtime, kept only if it agrees with Keras")
    p.add_argument("run", help="run id or folder, 'production' or 'latest'")
    p.add_argument("--runtime", default="openvino", choices=["openvino"],
                   help="the inference engine to export for (default %(default)s)")
    p.add_argument("--precision", default="int8", choices=["f32", "bf16", "int8"],
                   help="f32 (exact), bf16 (same file, computed in bf16) or int8 (quantised on the run's "
                   "training images) (default %(default)s)")
    p.add_argument("--min-agreement", type=float, default=0.99,
                   help="top-1 agreement with Keras on the run's test and benchmark images an export needs "
                   "to be kept (default %(default)s)")
    p.add_argument("--calibration-images", type=int, default=None,
                   help="int8: training images, chosen by content hash, that calibrate it (default: every one "
                   "up to 1,000, imgcls.export.DEFAULT_CALIBRATION_IMAGES)")
    p.add_argument("--force", action="store_true",
                   help="keep the export even below --min-agreement (the report says so)")
    p.add_argument("--accuracy-control", action="store_true",
                   help="int8: put the layers that cost most agreement back in float until it agrees with the "
                   "float model on the run's validation images within --max-drop (slower to export and to run)")
    p.add_argument("--max-drop", type=float, default=0.005,
                   help="--accuracy-control: agreement below 100%% allowed on the validation images "
                   "(default %(default)s)")
