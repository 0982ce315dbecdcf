"""The lineage report: the family tree of runs, the generations and the training-cost table."""

from __future__ import annotations

import json
import math

import pandas as pd

from .common import open_ws, print_table


def _pct(value) -> str:
    return "" if pd.isna(value) else f"{100 * float(value):.1f}%"


def _num(value, digits: int = 3) -> str:
    return "" if pd.isna(value) else f"{float(value):,.{digits}f}"


def _int(value) -> str:
    return "" if pd.isna(value) else f"{int(value)}"


def _day(value) -> str:
    return "" if pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M}"


def _generations_view(gens: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "gen": gens["generation"].map(_int), "run_id": gens["run_id"],
        "method": gens["method"] + gens["throwaway"].map(lambda t: " (throw-away)" if t else ""),
        "line": gens["on_line"].map(lambda b: "yes" if b else ""),
        "epochs": gens["epochs_trained"].map(_int), "best": gens["best_epoch"].map(_int),
        "hours": gens["wall_hours"].map(_num), "cpu_h": gens["cpu_hours"].map(_num),
        "test": gens["test_accuracy"].map(_pct), "test_n": gens["test_n"].map(_int),
        "benchmark": gens["benchmark_accuracy"].map(_pct), "bench_n": gens["benchmark_n"].map(_int),
        "promotion": gens["promotion"],
        "when": [_day(p) if s in ("production", "promoted") else _day(r) if s == "refused" else ""
                 for s, p, r in zip(gens["promotion"], gens["promoted_at"], gens["refused_at"])],
        "refused because": gens["refusal_reason"].fillna(""),
    })


def _cost_view(cost: pd.DataFrame) -> pd.DataFrame:
    view = pd.DataFrame({"row": cost["kind"], "gen": cost["generation"].map(_int),
                         "run_id": cost["run_id"].fillna(""), "runs": cost["runs"].map(_int)})
    for col in ("hours", "cpu_hours", "cum_hours", "cost", "cum_cost", "scratch_hours", "hours_saved",
                "cum_hours_saved", "cost_saved"):
        if cost[col].notna().any():
            view[col] = cost[col].map(_num)
    if cost["scratch_run_id"].notna().any():
        view["scratch_run_id"] = cost["scratch_run_id"].fillna("")
    for col in ("scratch_hours_estimate", "hours_saved_estimate", "cum_hours_saved_estimate"):
        if col in cost and cost[col].notna().any():
            view[col.replace("_estimate", " (ESTIMATE)")] = cost[col].map(_num)
    return view


def _records(df: pd.DataFrame) -> list[dict]:
    """A DataFrame as JSON-safe records (timestamps as ISO text, NaN as null)."""
    return json.loads(df.to_json(orient="records", date_format="iso"))


def cmd_lineage(args) -> int:
    from imgcls.reports import generation_findings, lineage_report

    ws = open_ws(args)
    estimate = args.estimate_from
    try:
        estimate = float(estimate) if estimate is not None else None
    except ValueError:
        pass  # a path to the experiment's results
    report = lineage_report(ws, price_per_hour=args.price_per_hour, estimate_from=estimate)
    findings = generation_findings(report)
    cost = report["cost"]
    if args.json:
        payload = {name: _records(df) for name, df in report.items()}
        payload["line"] = report["generations"].attrs.get("line", [])
        payload["findings"] = {k: v for k, v in findings.items()}
        payload["price_per_hour"] = cost.attrs.get("price_per_hour")
        payload["estimate"] = cost.attrs.get("estimate")
        print(json.dumps(payload, indent=1, default=str))
        return 0
    tree = report["tree"]
    if not len(tree):
        print(f"No runs in {ws.runs} yet: train one (imgcls train), then fine-tune it (imgcls finetune).")
        return 0
    print("Family tree (children under their parent; PRODUCTION in capitals):")
    print(tree.attrs.get("text", ""))
    print()
    print("Generations (line = on the production line, root to production):")
    print_table(_generations_view(report["generations"]))
    print()
    price = cost.attrs.get("price_per_hour") or 0.0
    print("Training cost" + (f" at {price:,.2f} per hour" if price > 0 else " (hours; --price-per-hour for cost)")
          + ": hours saved only against this workspace's own from-scratch runs on the same classes")
    print_table(_cost_view(cost))
    missing = cost.attrs.get("saved_missing") or []
    if missing:
        print(f"No from-scratch run on the same classes to measure the saving of generation(s) "
              f"{', '.join(map(str, missing))}.")
    if cost.attrs.get("estimate"):
        print(cost.attrs["estimate"]["label"] + ".")
    print()
    print(f"Accuracy: {findings['accuracy']}.")
    print(f"Cost: {findings['cost']}.")
    return 0


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`--price-per-hour` must be a number >= 0. Received: {text!r}")
    return value


def register(add) -> None:
    """Add the lineage sub-command (``add(name, func, help)`` returns the parser)."""
    p = add("lineage", cmd_lineage,
            "the family tree of runs, each generation's epochs, hours, accuracy and promotion, "
            "and the training-cost table")
    p.add_argument("--price-per-hour", type=_price, default=0.0, metavar="PRICE",
                   help="price of one training hour, for the cost columns (default 0: hours only)")
    p.add_argument("--estimate-from", default=None, metavar="LINEAGE_JSON",
                   help="also estimate hours saved from the lineage experiment's ratio of scratch to "
                        "head-swap hours (benchmarks/results/lineage.json, or the ratio itself); "
                        "labelled ESTIMATE, never on a slide")
    p.add_argument("--json", action="store_true", help="print the three tables as JSON records")
