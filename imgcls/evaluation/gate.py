"""The deploy gate: a run becomes the production model only if it is not worse beyond chance.

:func:`promote` lets the candidate and the production run predict the same
fixed benchmark images, applies the paired statistical checks of
:mod:`imgcls.evaluation.gate_stats` (exact McNemar overall and per class,
Holm-corrected; an optional margin; ``max_class_drop`` for large classes),
rewrites ``runs/production.json`` when every check passes (through
:func:`imgcls.runs.set_production`) and appends every attempt, accepted or
refused, with its whole check table to ``runs/promotions.jsonl`` (through
:func:`imgcls.runs.append_promotion`). A refused candidate can still be
promoted with an explicit ``override`` reason, which the log keeps with the
failed checks and the user; a throw-away run never can.

Benchmark images a run or one of its ancestors trained or validated on (a
benchmark chosen after training) are left out of the comparison, and the
result says how many (:func:`imgcls.evaluation.seen_hashes`).

Each run is measured as it will be served (:func:`imgcls.runtimes.best_runtime`):
on its accepted OpenVINO export when it has one (int8 before bf16 before
f32), else on Keras; the result and the promotions log say which
(``runtime``, ``production_runtime``, e.g. ``"openvino-int8"``).
"""

from __future__ import annotations

import getpass
import os

import numpy as np
import pandas as pd

from imgcls.core.lock import workspace_lock
from imgcls.core.checks import check_int
from imgcls.core.clock import isoformat
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.evaluation.benchmark import seen_hashes
from imgcls.evaluation.gate_result import PromotionRefused, PromotionResult
from imgcls.evaluation.gate_stats import (
    CHECK_COLUMNS,
    DEFAULT_ALPHA,
    DEFAULT_MAX_CLASS_DROP,
    DEFAULT_MIN_CLASS_N,
    _checked,
    _row,
    gate_checks,
)
from imgcls.evaluation.predict import predict_scores, split_rows
from imgcls.library import Library, assign_splits
from imgcls.runtimes import best_runtime, load_runtime, runtime_label
from imgcls.runs import (
    Run,
    RunNotFoundError,
    append_promotion,
    load_run,
    production_run_id,
    read_production,
    set_production,
)

__all__ = ["promote", "DEFAULT_MIN_IMAGES"]

#: Fewest unseen benchmark images the gate decides on.
DEFAULT_MIN_IMAGES = 10


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (e.g. a container without USER)
        return "unknown"


def _correct(run: Run, rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """[path, hash, label, correct] of the rows ``run`` could read: argmax class == label,
    measured as the run will be served (its best accepted export, else Keras)."""
    engine, precision = best_runtime(run)
    runtime = "keras" if engine == "keras" else load_runtime(run, engine, precision=precision, mode="throughput")
    kept, scores, _ = predict_scores(run, rows, batch_size=batch_size, runtime=runtime)
    pred = np.asarray(run.classes, dtype=object)[scores.argmax(axis=1)] if len(kept) else np.array([])
    return pd.DataFrame({"path": kept["path"].astype(str).to_numpy(), "hash": kept["hash"].astype(str).to_numpy(),
                         "label": kept["label"].astype(str).to_numpy(),
                         "correct": pred == kept["label"].to_numpy()})


def _reason(row: pd.Series, max_class_drop: float | None) -> str:
    """A failed check as a sentence a person can act on."""
    check = str(row["check"])
    if row["n"] is None or pd.isna(row["n"]):
        return str(row["detail"])
    n, pa, ca = int(row["n"]), row["production"], row["candidate"]
    if check.startswith("at least"):
        return (f"Only {n} unseen benchmark images are left to compare on ({row['detail']}); the gate needs "
                f"{check.removeprefix('at least ')}.")
    if check.startswith("overall: not worse"):
        return (f"Benchmark accuracy {ca:.1%} is below production's {pa:.1%} beyond chance on {n} images: "
                f"{int(row['c'])} images only production got right vs {int(row['b'])} only the candidate got "
                f"right (exact McNemar p={row['p_value']:.3g} <= {row['level']:g}).")
    if check.startswith("overall: drop"):
        return (f"Benchmark accuracy {ca:.1%} is below production's {pa:.1%} by more than the margin of "
                f"{row['level'] * 100:.1f} points ({(ca - pa) * 100:+.1f} points on {n} images).")
    if check.endswith("not worse beyond chance"):
        return (f"Class {row['scope']} is worse beyond chance: {row['scope']} {pa:.0%} -> {ca:.0%} on {n} images "
                f"(Holm-adjusted p={row['p_value']:.3g} <= {row['level']:g}). Look at this class's images.")
    if "drop at most" in check:
        return (f"Class {row['scope']} loses more than the allowed {max_class_drop:.0%} of accuracy: "
                f"{row['detail']} on {n} images. Look at this class's images, or pass a larger max_class_drop.")
    return str(row["detail"])


def promote(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike,
    *,
    alpha: float = DEFAULT_ALPHA,
    margin: float | None = None,
    max_class_drop: float | None = DEFAULT_MAX_CLASS_DROP,
    min_class_n: int = DEFAULT_MIN_CLASS_N,
    min_images: int = DEFAULT_MIN_IMAGES,
    override: str | None = None,
    reason: str | None = None,
    raise_on_refusal: bool = False,
    batch_size: int = 64,
) -> PromotionResult:
    """Make ``run`` the production model if it passes the deploy gate.

    The gate, on the fixed benchmark set (images flagged ``benchmark`` and
    their duplicates) minus every image the candidate's or production's
    lineage trained or validated on:

    1. a throw-away run is never promoted, not even with an override;
    2. at least ``min_images`` benchmark images must be left to compare on;
    3. with no production run yet, the candidate becomes the first one;
    4. otherwise both runs predict the benchmark images of the classes both
       know and every check of :func:`imgcls.evaluation.gate_stats.gate_checks`
       must pass: not worse beyond chance overall (exact one-sided McNemar at
       ``alpha * 0.8``) and per class (Holm over the classes at ``alpha * 0.2``),
       not below production by more than ``margin`` (when given), no class
       with ``min_class_n`` images or more losing more than ``max_class_drop``.
       Classes only the candidate knows are reported, not compared.

    Every attempt is appended to ``runs/promotions.jsonl`` with its check
    table, warnings, the user and the ``reason``; an accepted one rewrites
    ``runs/production.json``.

    Args:
        workspace: The workspace whose production pointer and promotions log change.
        run: The candidate (run, id, folder, ``"latest"``).
        alpha: Chance of refusing a candidate truly as good as production.
        margin: Largest accuracy drop allowed, as a share (0.02 = two
            points); None (default) checks no margin.
        max_class_drop: Largest accuracy drop allowed for a class with at
            least ``min_class_n`` benchmark images; None skips the check.
        min_class_n: Benchmark images a class needs for ``max_class_drop``.
        min_images: Fewest unseen benchmark images to decide on.
        override: Promote even if checks fail, for this stated reason
            (recorded with the failed checks and the user).
        reason: Why you promote (kept in the log and the pointer).
        raise_on_refusal: Raise :class:`PromotionRefused` instead of
            returning a refused result (for scripts).
        batch_size: Images per inference batch.

    Returns:
        A :class:`PromotionResult`; ``bool(result)`` is ``result.accepted``
        and ``print(result)`` shows the decision, the failed checks, every
        check and the warnings.

    Raises:
        PromotionRefused: Refused and ``raise_on_refusal`` is set.
        ValueError: A bad option.
    """
    ws = as_workspace(workspace)
    cand = load_run(run, workspace=ws)
    alpha, _, margin, max_class_drop, min_class_n = _checked(alpha, 0.2, margin, max_class_drop, min_class_n)
    min_images = check_int(min_images, "min_images", 1, " (unseen benchmark images to decide on)")
    batch_size = check_int(batch_size, "batch_size", 1)
    for name, value in (("reason", reason), ("override", override)):
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise ValueError(f"`{name}` must be a non-empty string or None. Received: {name}={value!r}")
    try:
        prod_id = production_run_id(ws)
    except ValueError:
        prod_id = None
    result = PromotionResult(accepted=False, run_id=cand.run_id, previous_run_id=prod_id, alpha=alpha,
                             margin=margin, max_class_drop=max_class_drop, min_class_n=min_class_n,
                             reason=reason, user=_user(), time=isoformat(timespec="seconds"))
    result.runtime = runtime_label(*best_runtime(cand))
    prod: Run | None = None
    if prod_id is not None:
        try:
            prod = load_run(prod_id, workspace=ws)
            result.production_runtime = runtime_label(*best_runtime(prod))
        except RunNotFoundError:
            result.warnings.append(f"production.json names run {prod_id!r}, whose folder is missing; "
                                   "there was nothing to compare against.")
    rows: list[dict] = []

    def finish() -> PromotionResult:
        result.checks = pd.DataFrame(rows, columns=CHECK_COLUMNS)
        failed = result.checks[result.checks["result"] == "fail"]
        result.reasons = [_reason(r, max_class_drop) for _, r in failed.iterrows()]
        passed = not len(failed)
        can_override = override is not None and not cand.throwaway
        result.accepted = passed or can_override
        result.override = override if (can_override and not passed) else None
        # Check-and-write under the workspace lock: the gate measured against `prod_id`; if another
        # process promoted or rolled back meanwhile, this decision is stale and nothing is written.
        with workspace_lock(ws.root):
            try:
                now_id = production_run_id(ws)
            except ValueError:
                now_id = None
            if result.accepted and now_id != prod_id:
                result.accepted = False
                result.override = None
                result.reasons.append(
                    f"production changed from {prod_id!r} to {now_id!r} while the gate measured the candidate "
                    "against it; nothing was changed. Run the promotion again to compare with the new model.")
            if result.accepted and prod_id != cand.run_id:
                fields = {"promoted_at": result.time, "reason": reason,
                          "benchmark_accuracy": result.benchmark_accuracy, "previous_run_id": prod_id}
                if result.override is not None:
                    fields.update(override=result.override, user=result.user,
                                  failed_checks=result.failed_checks)
                set_production(ws, cand.run_id, **fields)
            append_promotion(ws, result.to_dict())
        if not result.accepted and raise_on_refusal:
            raise PromotionRefused(result)
        return result

    rows.append(_row("not a throw-away run", "run", None, np.nan, np.nan, passed=not cand.throwaway, detail=(
        f"{cand.run_id!r} is a throw-away run (a one-off: trained at a lowered cutoff to find images for "
        "classes just under it, or an experiment's control arm); throw-away runs are never promoted, not even "
        "with an override. To deploy, train a regular run (no --throwaway) once its classes reach the cutoff."
        if cand.throwaway else "a regular run")))
    if cand.throwaway:
        return finish()
    if prod is not None and prod.run_id == cand.run_id:
        result.summary = f"{cand.run_id!r} is already the production model; nothing changed."
        result.benchmark_accuracy = (read_production(ws) or {}).get("benchmark_accuracy")
        return finish()

    catalog = assign_splits(Library(ws).scan())
    bench = split_rows(cand, "benchmark", workspace=ws, catalog=catalog)
    seen = seen_hashes(cand) | (seen_hashes(prod) if prod is not None else set())
    was_seen = bench["hash"].astype(str).isin(seen).to_numpy()
    result.n_dropped = int(was_seen.sum())
    if result.n_dropped:
        who = f"{cand.run_id!r}" + (f" or {prod.run_id!r}" if prod is not None else "")
        result.warnings.append(
            f"{result.n_dropped} benchmark image(s) were in the train/val split of {who} or an ancestor "
            "(flagged benchmark after training); they are left out of the comparison."
        )
    bench = bench[~was_seen].reset_index(drop=True)
    common = list(cand.classes) if prod is None else sorted(set(cand.classes) & set(prod.classes))
    added = [] if prod is None else sorted(set(cand.classes) - set(prod.classes))
    lost = [] if prod is None else sorted(set(prod.classes) - set(cand.classes))
    result.compared_classes, result.new_classes = common, added
    if added or lost:
        result.warnings.append(
            f"The class lists differ, so the runs are compared on the {len(common)} classes both know"
            + (f"; new in the candidate (reported, not compared): {', '.join(added)}" if added else "")
            + (f"; missing from the candidate: {', '.join(lost)}" if lost else "") + "."
        )
    if lost:
        result.warnings.append(f"Promoting drops class(es) {', '.join(lost)} from production.")

    c_ok = _correct(cand, bench, batch_size) if len(bench) else pd.DataFrame(columns=["path", "hash", "label",
                                                                                      "correct"])
    if len(c_ok):
        result.benchmark_accuracy = float(c_ok["correct"].mean())
    compared = c_ok[c_ok["label"].isin(common)]
    if prod is not None and len(compared):
        p_ok = _correct(prod, bench[bench["label"].isin(common)], batch_size)
        compared = compared.merge(p_ok[["path", "correct"]], on="path", suffixes=("", "_production"))
    n = len(compared)
    result.n_images = n
    enough = n >= min_images
    rows.append(_row(
        f"at least {min_images} unseen benchmark images", "all", n, np.nan, np.nan, passed=enough,
        detail=(f"{n} images of the {len(common)} compared classes"
                + (f"; {result.n_dropped} left out because a run trained on them" if result.n_dropped else "")),
    ))
    if not enough:
        if prod is not None and not common:
            result.summary = (f"{cand.run_id!r} and the production run {prod.run_id!r} share no class, so the gate "
                              "cannot compare them on the benchmark set.")
        elif not len(c_ok) and not result.n_dropped:
            result.summary = (f"There are no benchmark images for the classes of {cand.run_id!r}, so it cannot be "
                              "measured. Choose them with `imgcls benchmark init` (every training does it first).")
        else:
            result.summary = (f"Only {n} benchmark images are left to compare on. Train a run that has not seen "
                              "them (a training holds the benchmark set out), or promote with an override.")
        return finish()
    if prod is None:
        result.candidate_accuracy = result.benchmark_accuracy
        result.summary = (f"No run is in production yet; {cand.run_id!r} becomes the first production model "
                          f"(benchmark accuracy {result.benchmark_accuracy:.1%} on {len(c_ok)} unseen images).")
        return finish()

    table, warnings = gate_checks(compared["label"], compared["correct_production"], compared["correct"],
                                  alpha=alpha, margin=margin, max_class_drop=max_class_drop,
                                  min_class_n=min_class_n)
    rows += table.to_dict("records")
    result.warnings += warnings
    result.candidate_accuracy = float(compared["correct"].mean())
    result.production_accuracy = float(compared["correct_production"].mean())
    per = compared.groupby("label").agg(support=("correct", "size"), candidate=("correct", "mean"),
                                        production=("correct_production", "mean"))
    per = per.reindex(common)
    result.per_class = pd.DataFrame({"class": common, "support": per["support"].fillna(0).astype(int).to_numpy(),
                                     "candidate": per["candidate"].to_numpy(),
                                     "production": per["production"].to_numpy()})
    result.per_class["drop"] = result.per_class["production"] - result.per_class["candidate"]
    for k in added:
        mine = c_ok[c_ok["label"] == k]
        result.warnings.append(
            f"New class {k}: {int(mine['correct'].sum())}/{len(mine)} unseen benchmark images right "
            "(reported, not compared)." if len(mine) else f"New class {k} has no unseen benchmark image yet."
        )
    empty = [k for k in common if not per.loc[k, "support"] > 0]  # NaN: no image left
    if empty:
        result.warnings.append(f"No unseen benchmark image for class(es) {', '.join(empty)}: not judged.")
    d = result.delta or 0.0
    result.summary = (f"Benchmark accuracy {result.candidate_accuracy:.1%} vs production "
                      f"{result.production_accuracy:.1%} ({d * 100:+.1f} points) on {n} images of "
                      f"{len(common)} classes.")
    if {result.runtime, result.production_runtime} != {"keras-f32"}:
        result.summary += f" Measured as served: candidate {result.runtime}, production {result.production_runtime}."
    return finish()
