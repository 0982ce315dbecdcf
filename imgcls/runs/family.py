"""The family of runs of a workspace: who descends from whom, what each generation added and cost.

Read from the run folders' plain JSON (``config.json``, ``classes.json``,
``metrics.json``) and the promotions log, never from a model, so it needs no
TensorFlow:

* :func:`run_family` -- one row per finished run: its parent and root, how it
  was trained (from scratch or by head swap), throw-away or not, the classes
  and images it added to its parent's, epochs, training time, test and
  benchmark accuracy with their n, and its promotion history (promoted when,
  refused when and why);
* :func:`production_line` -- the runs from the root to the production run
  (the chain a manager calls "the model's generations");
* :func:`family_tree_text` -- the family as an indented tree for a terminal.

:func:`imgcls.runs.lineage` gives one run's ancestor ids; this module gives
the whole family at once.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from imgcls.core import Workspace, as_workspace
from imgcls.runs.lineage import lineage
from imgcls.runs.production import production_run_id, promotion_log
from imgcls.runs.run import Run
from imgcls.runs.store import _run_ids

__all__ = ["FAMILY_COLUMNS", "run_family", "production_line", "family_tree_text"]

#: Columns of :func:`run_family`, in order.
FAMILY_COLUMNS = [
    "run_id", "parent", "root", "generation", "method", "throwaway", "created", "model",
    "n_classes", "classes", "classes_added", "classes_lost", "n_images", "images_added",
    "epochs_trained", "best_epoch", "wall_time_s", "cpu_time_s",
    "best_val_accuracy", "test_accuracy", "test_n", "benchmark_accuracy", "benchmark_n",
    "promotion", "promoted_at", "refused_at", "refusals", "refusal_reason", "production",
]

_EMPTY_TYPES = {"generation": "Int64", "throwaway": bool, "production": bool, "refusals": "int64"}


def _number(value: Any) -> float:
    """``value`` as a float (NaN when it is not a finite number)."""
    if isinstance(value, bool):
        return math.nan
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _section(metrics: Mapping[str, Any], name: str) -> dict:
    section = metrics.get(name)
    return section if isinstance(section, dict) else {}


def _promotions(ws: Workspace) -> dict[str, dict[str, Any]]:
    """{run_id: {"promoted_at", "refused_at", "refusals", "refusal_reason"}} from the promotions log."""
    try:
        log = promotion_log(ws)
    except (OSError, ValueError) as exc:
        warnings.warn(f"Ignoring the promotions log: {exc}", UserWarning, stacklevel=3)
        return {}
    out: dict[str, dict[str, Any]] = {}
    if not len(log):
        return out
    actions = log["action"] if "action" in log else pd.Series([None] * len(log), index=log.index)
    for (_, entry), action in zip(log.iterrows(), actions):
        run_id = entry.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            continue
        rec = out.setdefault(run_id, {"promoted_at": pd.NaT, "refused_at": pd.NaT, "refusals": 0,
                                      "refusal_reason": ""})
        if action == "rollback":  # a rollback restores a run that was promoted before
            continue
        if bool(entry.get("accepted")):
            if pd.isna(rec["promoted_at"]):
                rec["promoted_at"] = entry.get("time")
        else:
            rec["refusals"] += 1
            rec["refused_at"] = entry.get("time")
            reasons = entry.get("reasons")
            if isinstance(reasons, (list, tuple)) and reasons:
                rec["refusal_reason"] = "; ".join(str(r) for r in reasons)
            else:
                rec["refusal_reason"] = "refused by the deploy gate"
    return out


def _row(run: Run, promotions: Mapping[str, Mapping[str, Any]], production: str | None) -> dict[str, Any]:
    config, metrics = run.config, run.metrics
    training, test, bench = (_section(metrics, k) for k in ("training", "test", "benchmark"))
    library = config.get("library") if isinstance(config.get("library"), dict) else {}
    promo = promotions.get(run.run_id, {})
    promoted_at, refused_at = promo.get("promoted_at", pd.NaT), promo.get("refused_at", pd.NaT)
    if run.run_id == production:
        status = "production"
    elif not pd.isna(promoted_at):
        status = "promoted"
    elif promo.get("refusals"):
        status = "refused"
    else:
        status = "not promoted"
    return {
        "run_id": run.run_id, "parent": run.parent, "generation": run.generation,
        "method": "head_swap" if run.parent else "scratch", "throwaway": run.throwaway,
        "created": run.created, "model": run.model_name, "n_classes": run.num_classes,
        "classes": list(run.classes), "lineage_added": _section(metrics, "lineage").get("classes_added"),
        "n_images": _number(library.get("n_images")),
        "epochs_trained": _number(training.get("epochs_trained")),
        "best_epoch": _number(training.get("best_epoch")),
        "wall_time_s": _number(training.get("wall_time_s")),
        "cpu_time_s": _number(training.get("cpu_time_s")),
        "best_val_accuracy": _number(training.get("best_val_accuracy")),
        "test_accuracy": _number(test.get("accuracy")), "test_n": _number(test.get("n")),
        "benchmark_accuracy": _number(bench.get("accuracy")), "benchmark_n": _number(bench.get("n")),
        "promotion": status, "promoted_at": promoted_at, "refused_at": refused_at,
        "refusals": int(promo.get("refusals", 0)), "refusal_reason": promo.get("refusal_reason", ""),
        "production": run.run_id == production,
    }


def run_family(workspace: Workspace | str | os.PathLike) -> pd.DataFrame:
    """Every finished run with its place in the family, what it added, what it cost and its promotions.

    Only the runs' JSON files are read (a copy of ``runs/*/*.json`` is
    enough; model.keras need not be there). A folder whose config.json or
    classes.json cannot be read is left out with a warning; a run whose
    parent folder is gone is kept (its ``root`` is then the id of the first
    missing ancestor).

    Args:
        workspace: The workspace (its folder need not exist: no runs then).

    Returns:
        One row per run, oldest first, columns :data:`FAMILY_COLUMNS`:
        ``classes`` is the run's class list (comma-separated, output order);
        ``method`` is ``"scratch"`` (no parent) or ``"head_swap"``;
        ``classes_added`` / ``classes_lost`` name the classes the run has
        that its parent had not / had (for a run from scratch: all its
        classes / none), comma-separated; ``images_added`` is the run's
        library size minus its parent's (from scratch: its whole library);
        times are seconds as the run recorded them (``cpu_time_s`` only when
        the training recorded it, else NaN); ``promotion`` is
        ``"production"``, ``"promoted"`` (was production), ``"refused"``
        (every attempt refused) or ``"not promoted"``; ``promoted_at`` is the
        first accepted promotion, ``refused_at`` the last refused attempt
        (UTC timestamps, NaT when none) and ``refusal_reason`` its failed checks.
    """
    ws = as_workspace(workspace, must_exist=False)
    try:
        production = production_run_id(ws)
    except ValueError:
        production = None
    promotions = _promotions(ws) if ws.runs.is_dir() else {}
    rows, damaged = [], {}
    for run_id in _run_ids(ws):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a run saved before the class hash existed still counts
                rows.append(_row(Run(ws.runs / run_id), promotions, production))
        except (ValueError, OSError, TypeError, AttributeError) as exc:  # unreadable metadata
            damaged[run_id] = str(exc)
    if damaged:
        warnings.warn(f"Left out {len(damaged)} run folder(s) whose metadata cannot be read: "
                      + "; ".join(f"{k}: {v}" for k, v in damaged.items()), UserWarning, stacklevel=2)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=_EMPTY_TYPES.get(c, object)) for c in FAMILY_COLUMNS})
    df = pd.DataFrame(rows)
    by_id = df.set_index("run_id")
    roots, added, lost, images_added = [], [], [], []
    for row in df.itertuples(index=False):
        try:
            roots.append(lineage(ws.runs / row.run_id)[-1])
        except ValueError:  # parents that form a cycle (hand-edited configs): no root to name
            roots.append(None)
        orphan = isinstance(row.parent, str) and row.parent not in by_id.index
        parent = by_id.loc[row.parent] if isinstance(row.parent, str) and not orphan else None
        if not isinstance(row.parent, str):
            added.append(list(row.classes))
            lost.append([])
            images_added.append(row.n_images)
        elif orphan:  # the parent folder is gone: nothing to compare with
            added.append(list(row.lineage_added) if isinstance(row.lineage_added, list) else [])
            lost.append([])
            images_added.append(math.nan)
        else:
            before = set(parent["classes"])
            added.append([c for c in row.classes if c not in before])
            lost.append(sorted(before - set(row.classes)))
            images_added.append(row.n_images - parent["n_images"])
    df["parent"] = df["parent"].astype(object).where(df["parent"].notna(), None)
    df["root"] = roots
    df["classes"] = [",".join(c) for c in df["classes"]]
    df["classes_added"] = [",".join(c) for c in added]
    df["classes_lost"] = [",".join(c) for c in lost]
    df["images_added"] = images_added
    for col in ("created", "promoted_at", "refused_at"):
        df[col] = pd.to_datetime(df[col], utc=True, errors="coerce", format="ISO8601")
    df["generation"] = df["generation"].astype("Int64")
    df = df.sort_values(["created", "run_id"], kind="stable").reset_index(drop=True)
    return df[FAMILY_COLUMNS]


def production_line(family: pd.DataFrame) -> list[str]:
    """Run ids from the root to the tip of the line that matters: oldest first.

    The tip is the production run; with none in production, the run of the
    deepest generation that is not a throw-away run (the newest of equals).

    Args:
        family: The table from :func:`run_family`.

    Returns:
        The run ids root first ([] when there is no run).
    """
    family = _check_family(family)
    if not len(family):
        return []
    prod = family[family["production"]]
    if len(prod):
        tip = prod["run_id"].iloc[0]
    else:
        keep = family[~family["throwaway"]] if (~family["throwaway"]).any() else family
        keep = keep.sort_values(["generation", "created", "run_id"], kind="stable")
        tip = keep["run_id"].iloc[-1]
    parents = dict(zip(family["run_id"], family["parent"]))
    line = [tip]
    while parents.get(line[-1]) in parents and parents[line[-1]] not in line:
        line.append(parents[line[-1]])
    return line[::-1]


def _check_family(family: Any) -> pd.DataFrame:
    if not isinstance(family, pd.DataFrame) or not {"run_id", "parent", "production", "throwaway"} <= set(family):
        raise ValueError("`family` must be the DataFrame from imgcls.runs.run_family(workspace).")
    return family


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f}%"


def _label(row: Mapping[str, Any]) -> str:
    """One line of the tree: how the run was made, what it added, what it cost and scored, its fate."""
    parts = [str(row["run_id"])]
    how = "from scratch" if row["method"] == "scratch" else "head swap"
    parts.append(f"{how}, generation {row['generation']}" + (", THROW-AWAY" if row["throwaway"] else ""))
    added = [c for c in str(row["classes_added"]).split(",") if c]
    if row["method"] == "scratch":
        parts.append(f"{row['n_classes']} classes, {_count(row['n_images'])} images")
    else:
        cls = f"+{len(added)} class{'es' if len(added) != 1 else ''}" + (f" ({', '.join(added)})" if added else "")
        lost = [c for c in str(row["classes_lost"]).split(",") if c]
        if lost:
            cls += f", -{len(lost)} ({', '.join(lost)})"
        imgs = "" if pd.isna(row["images_added"]) else f", {int(row['images_added']):+d} images"
        parts.append(cls + imgs)
    epochs = "n/a" if pd.isna(row["epochs_trained"]) else f"{int(row['epochs_trained'])}"
    hours = "n/a" if pd.isna(row["wall_time_s"]) else f"{row['wall_time_s'] / 3600:.2f} h"
    parts.append(f"{epochs} epochs, {hours}")
    bench_n = "" if pd.isna(row["benchmark_n"]) else f" (n={int(row['benchmark_n'])})"
    parts.append(f"benchmark {_pct(row['benchmark_accuracy'])}{bench_n}")
    status = row["promotion"]
    if status in ("production", "promoted") and not pd.isna(row["promoted_at"]):
        status += f" {row['promoted_at']:%Y-%m-%d}"
    elif status == "refused" and not pd.isna(row["refused_at"]):
        status += f" {row['refused_at']:%Y-%m-%d}"
    parts.append(status.upper() if row["production"] else status)
    return " | ".join(parts)


def _count(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{int(value):,}"


def family_tree_text(family: pd.DataFrame) -> str:
    """The family as an indented tree, one line per run, children under their parent, oldest first.

    Each line: run id | how it was trained and its generation (THROW-AWAY
    marked) | classes and images it added | epochs and hours | benchmark
    accuracy (n) | promotion (PRODUCTION in capitals).

    Args:
        family: The table from :func:`run_family`.
    """
    family = _check_family(family)
    if not len(family):
        return "(no runs)"
    rows = {r["run_id"]: r for r in family.to_dict("records")}
    children: dict[str | None, list[str]] = {}
    for run_id, row in rows.items():
        parent = row["parent"] if row["parent"] in rows else None
        children.setdefault(parent, []).append(run_id)
    lines: list[str] = []

    def walk(run_id: str, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("`-- " if last else "|-- ")
        lines.append(prefix + branch + _label(rows[run_id]))
        below = children.get(run_id, [])
        inner = prefix + ("" if top else ("    " if last else "|   "))
        for i, child in enumerate(below):
            walk(child, inner, i == len(below) - 1, False)

    for root in children.get(None, []):
        walk(root, "", True, True)
    return "\n".join(lines)
