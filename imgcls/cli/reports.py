"""The deck and the whole demo."""

from __future__ import annotations

from .common import open_ws, print_table


def cmd_report(args) -> int:
    from imgcls.reports import export_deck

    written = export_deck(open_ws(args), freq=args.freq)
    print(f"{len(written)} files written")
    print_table(written)
    return 0


def cmd_demo(args) -> int:
    from imgcls.demo import run_demo

    run_demo(args.workspace, max_epochs=args.max_epochs, pool_size=args.pool_size)
    return 0


def register(add) -> None:
    """Add the report, demo sub-commands (``add(name, func, help)`` returns the parser)."""
    p = add("report", cmd_report, "export the performance report deck into reports/")
    p.add_argument("--freq", default="week", choices=["day", "week", "month"],
                   help="time bucket of the over-time reports (default %(default)s)")

    p = add("demo", cmd_demo, "the whole life cycle on the zoo sample (what make demo runs)")
    p.add_argument("--max-epochs", type=int, default=40,
                   help="upper bound on epochs of each training run (default %(default)s)")
    p.add_argument("--pool-size", type=int, default=3000,
                   help="unlabelled images in the sample's pool (default %(default)s)")
