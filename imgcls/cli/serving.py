"""Serving: serve, rollback, and the transaction log's purge, harvest and migrate."""

from __future__ import annotations

import argparse

from .common import add_workspace_option, open_ws, print_table, run_ref


def cmd_serve(args) -> int:
    from imgcls.serving import serve

    rate = None if args.no_rate_limit else (args.rate_limit if args.rate_limit is not None else "auto")
    serve(open_ws(args), run=run_ref(args), host=args.host, port=args.port, keep_inputs=args.keep_inputs,
          max_bytes=args.max_bytes, max_pixels=args.max_pixels, max_decode_bytes=args.max_decode_bytes,
          decode_memory=args.decode_memory, max_concurrent=args.max_concurrent,
          queue_timeout=args.queue_timeout, token_file=args.token_file, insecure=args.insecure,
          rate_limit=rate, rate_burst=args.rate_burst, follow_production=False if args.no_follow else None,
          runtime=args.runtime, precision=args.precision, log_url=args.log_url or _env_log_url())
    return 0


def _env_log_url():
    import os

    return os.environ.get("IMGCLS_LOG_URL") or None


def cmd_log_migrate(args) -> int:
    from imgcls.translog import copy_log

    result = copy_log(args.source, args.target, batch_size=args.batch_size)
    print(f"copied {result['source']} -> {result['target']}")
    for table, t in result["tables"].items():
        print(f"  {table:<15} {t['rows_source']:>12,} rows -> {t['rows_target']:>12,}   "
              f"checksum {t['checksum_source'][:16]} {'==' if t['ok'] else '!='} {t['checksum_target'][:16]}")
    print("OK: row counts and checksums match. Serve with --log-url to write to the new log.")
    return 0


def cmd_rollback(args) -> int:
    from imgcls.runs import rollback, version_label

    ws = open_ws(args)
    entry = rollback(ws, reason=args.reason)
    print(f"ROLLED BACK: {entry['previous_run_id']} -> {entry['run_id']} "
          f"({version_label(ws, entry['run_id'])}); recorded in runs/promotions.jsonl")
    print("A server following production (imgcls serve) swaps to it by itself.")
    return 0


def cmd_log_purge(args) -> int:
    from imgcls.translog import purge

    result = purge(open_ws(args), before=args.before, log=not args.inputs_only,
                   inputs=args.inputs or args.inputs_only, dry_run=args.dry_run,
                   log_url=args.log_url or _env_log_url())
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb}: {result['transactions']:,} transactions, {result['evaluations']:,} evaluations, "
          f"{result['inputs']:,} stored inputs ({result['input_bytes']:,} bytes) from before {result['before']}")
    if not args.dry_run:
        print("Reports say that data before this date was purged.")
    return 0


def cmd_log_harvest(args) -> int:
    from imgcls.translog import harvest

    out = harvest(open_ws(args), include_simulated=args.include_simulated, dry_run=args.dry_run,
                  log_url=args.log_url or _env_log_url())
    added = out.attrs["added"]
    print(f"{'would add' if args.dry_run else 'added'} {added} judged served image(s) to the library"
          + (f" as one batch ({out.attrs['batch']}; `imgcls undo` takes it back)" if out.attrs["batch"] else ""))
    skipped = out[out["action"] == "skipped"]
    if len(skipped):
        reasons = skipped["reason"].str.split(":").str[0].value_counts()
        print("skipped: " + ", ".join(f"{n} {why}" for why, n in reasons.items()))
    for name, why in out.attrs["bad_classes"].items():
        print(f"  class {name!r} refused: {why}")
    if args.json:
        print_table(out, as_json=True)
    return 0


def register(add, sub) -> None:
    """Add serve, rollback and the ``log`` group (purge, harvest)."""
    from imgcls.serving import ENDPOINTS_HELP, limits_help

    p = add("serve", cmd_serve, "serve a run over HTTP, logging every request (follows production: "
            "promote or rollback and it swaps models without a restart)")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ENDPOINTS_HELP + "\n\n" + limits_help()
    p.add_argument("--run", default=None, help="run id or folder, 'production' or 'latest' (default production)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only; any other "
                   "address needs a token or --insecure)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    p.add_argument("--keep-inputs", action="store_true",
                   help="store every served image under served/<date>/ and log its path")
    p.add_argument("--token-file", default=None,
                   help="file whose first line is the bearer token every endpoint but /health needs "
                   "(default: $IMGCLS_TOKEN; none: no auth)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without a token")
    p.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024,
                   help="largest upload in bytes (default %(default)s)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="largest image in pixels, from its header (default: the workspace's, 64,000,000)")
    p.add_argument("--max-decode-bytes", type=int, default=None,
                   help="largest decode cost of one image in bytes (default: max-pixels x 4.5)")
    p.add_argument("--decode-memory", type=int, default=None,
                   help="decode cost of all images decoded at once, bytes (default: "
                   "min(available memory / 4, cores x max-decode-bytes))")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="requests decoding or inferring at once (default: 4 per core)")
    p.add_argument("--queue-timeout", type=float, default=30.0,
                   help="seconds a request may wait for the decode budget before a 503 (default %(default)s)")
    p.add_argument("--rate-limit", type=float, default=None,
                   help="requests a second per client (default: off on 127.0.0.1, 20 elsewhere; "
                   "counted per server process)")
    p.add_argument("--rate-burst", type=int, default=40,
                   help="requests a client may send at once (default %(default)s)")
    p.add_argument("--no-rate-limit", action="store_true", help="no rate limit, whatever the host")
    p.add_argument("--log-url", default=None,
                   help="where to log: postgresql://USER@HOST:PORT/DB (one log for several serving "
                   "processes or hosts) or sqlite:///PATH (default: $IMGCLS_LOG_URL, else the "
                   "workspace's serving.sqlite)")
    p.add_argument("--no-follow", action="store_true",
                   help="keep serving the run it started with when runs/production.json changes")
    p.add_argument("--runtime", default="keras", choices=["keras", "openvino"],
                   help="what runs the model: keras, or openvino (the run's export: `imgcls export RUN "
                   "--runtime openvino`; a newly promoted run without one is served on keras, with a "
                   "warning, and logged as keras-f32) (default %(default)s)")
    p.add_argument("--precision", default=None, choices=["f32", "bf16", "int8"],
                   help="--runtime openvino: which export (default: the run's best of int8, bf16, f32)")

    p = add("rollback", cmd_rollback, "make the previous production run current again (no gate: it "
            "was production before); recorded in runs/promotions.jsonl")
    p.add_argument("--reason", default=None, help="why: recorded in runs/promotions.jsonl")

    log = sub.add_parser("log", help="the transaction log: purge old data, harvest judged images, migrate",
                         description="The transaction log: purge old data, harvest judged images, copy it to PostgreSQL.")
    log_sub = log.add_subparsers(dest="log_command", metavar="ACTION", required=True,
                                 help="run `imgcls log ACTION --help` for its options")

    def add_log(name, func, help_):
        q = log_sub.add_parser(name, help=help_, description=help_)
        add_workspace_option(q)
        q.add_argument("--log-url", default=None,
                       help="the log, when not the workspace's serving.sqlite: postgresql://... "
                       "(default: $IMGCLS_LOG_URL)")
        q.set_defaults(func=func)
        return q

    q = add_log("purge", cmd_log_purge, "delete log rows (and stored inputs) from before a date; "
                "reports then say their data was purged")
    q.add_argument("--before", required=True,
                   help="date or time (ISO 8601, UTC): what was served before it goes")
    q.add_argument("--inputs", action="store_true",
                   help="also delete the stored inputs (served/<day>/) of the days before it")
    q.add_argument("--inputs-only", action="store_true",
                   help="delete only the stored inputs; keep the log rows")
    q.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")

    q = add_log("harvest", cmd_log_harvest, "file kept, judged served images into library/<true class>/ "
                "as one journaled batch (undo with imgcls undo); skips duplicates and bad class names")
    q.add_argument("--include-simulated", action="store_true", help="also harvest demo traffic")
    q.add_argument("--dry-run", action="store_true", help="report what would be added; move nothing")
    q.add_argument("--json", action="store_true", help="also print every row as JSON")

    q = log_sub.add_parser("migrate", help="copy a whole log to another place or engine (e.g. SQLite to "
                           "PostgreSQL), checked by row counts and checksums",
                           description="Copy a whole log (every table, with its ids) into an empty "
                           "log, in one transaction, then check row counts and checksums per table.")
    q.set_defaults(func=cmd_log_migrate)
    q.add_argument("--from", dest="source", required=True,
                   help="the log to copy: sqlite:///PATH, a workspace folder, or postgresql://...")
    q.add_argument("--to", dest="target", required=True,
                   help="the empty log to fill: postgresql://USER@HOST:PORT/DB (an existing database) "
                   "or sqlite:///PATH")
    q.add_argument("--batch-size", type=int, default=5000, help="rows per page (default %(default)s)")
