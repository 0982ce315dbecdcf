"""The deploy gate: a run becomes the production model only if it is no worse.

:func:`promote` compares a candidate with the production run on the fixed
benchmark set, rewrites ``runs/production.json`` when it passes (through
:func:`imgcls.runs.set_production`) and appends every attempt, accepted or
refused, to ``runs/promotions.jsonl`` (through :func:`imgcls.runs.append_promotion`);
:func:`imgcls.runs.production_run` and :func:`imgcls.runs.promotion_log` read
them back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_fraction
from imgcls.core.clock import isoformat
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.evaluation.metrics import _jsonable, _sub_accuracy, per_class_metrics
from imgcls.evaluation.predict import _benchmark_scores, _catalog
from imgcls.runs import (
    Run,
    RunNotFoundError,
    append_promotion,
    load_run,
    production_run_id,
    read_production,
    set_production,
)

__all__ = ["PromotionResult", "PromotionRefused", "promote"]

#: Slack for comparing accuracies (float noise is not a difference).
_TOL = 1e-9


class PromotionRefused(ValueError):
    """The deploy gate refused a run; ``.result`` holds the :class:`PromotionResult`."""

    def __init__(self, result: "PromotionResult"):
        self.result = result
        super().__init__(result.explain())


@dataclass
class PromotionResult:
    """The outcome of one :func:`promote` call (also written to promotions.jsonl).

    Attributes:
        accepted: True when the run is (now) the production model.
        run_id: The candidate.
        previous_run_id: The production run before the attempt (None if none).
        reasons: Why it was accepted or refused, one sentence each.
        notes: Facts worth knowing that did not decide (e.g. class lists differ).
        candidate_accuracy: Candidate's benchmark accuracy on ``compared_classes``.
        production_accuracy: Production's accuracy on the same images.
        benchmark_accuracy: Candidate's accuracy on the benchmark images of all
            its own classes (the number kept in production.json).
        compared_classes: Classes the comparison used (both runs know them).
        n_images: Benchmark images the comparison used.
        per_class: DataFrame [class, support, candidate, production, drop] of
            per-class accuracy (recall) on the compared classes.
        margin: Required lead over production.
        max_class_drop: Largest per-class drop allowed (None: not checked).
        reason: The reason the user gave.
        time: UTC ISO time of the attempt.
    """

    accepted: bool
    run_id: str
    previous_run_id: str | None
    reasons: list[str]
    notes: list[str] = field(default_factory=list)
    candidate_accuracy: float | None = None
    production_accuracy: float | None = None
    benchmark_accuracy: float | None = None
    compared_classes: list[str] = field(default_factory=list)
    n_images: int = 0
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    margin: float = 0.0
    max_class_drop: float | None = None
    reason: str | None = None
    time: str = ""

    def __bool__(self) -> bool:
        return bool(self.accepted)

    @property
    def delta(self) -> float | None:
        """Candidate minus production accuracy on the compared images."""
        if self.candidate_accuracy is None or self.production_accuracy is None:
            return None
        return self.candidate_accuracy - self.production_accuracy

    def explain(self) -> str:
        """A few sentences a person can act on."""
        head = (f"Promoted {self.run_id!r} to production." if self.accepted
                else f"Refused to promote {self.run_id!r}.")
        lines = [head] + [f"- {r}" for r in self.reasons]
        lines += [f"  (note) {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()

    def _repr_markdown_(self) -> str:  # a notebook shows the explanation, not the fields
        head = (f"**Promoted `{self.run_id}` to production.**" if self.accepted
                else f"**Refused to promote `{self.run_id}`.**")
        lines = [head, ""] + [f"- {r}" for r in self.reasons] + [f"- *note:* {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (the promotions.jsonl line)."""
        return {
            "time": self.time,
            "run_id": self.run_id,
            "accepted": bool(self.accepted),
            "previous_run_id": self.previous_run_id,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "candidate_accuracy": _jsonable(self.candidate_accuracy),
            "production_accuracy": _jsonable(self.production_accuracy),
            "delta": _jsonable(self.delta),
            "benchmark_accuracy": _jsonable(self.benchmark_accuracy),
            "compared_classes": list(self.compared_classes),
            "n_images": int(self.n_images),
            "margin": float(self.margin),
            "max_class_drop": None if self.max_class_drop is None else float(self.max_class_drop),
            "class_drops": {
                str(r["class"]): _jsonable(r["drop"])
                for r in (self.per_class.to_dict("records") if len(self.per_class) else [])
                if r.get("drop") is not None and not pd.isna(r.get("drop")) and r["drop"] > _TOL
            },
        }


def _trained_on(run: Run, ws: Workspace) -> set[str]:
    """Content hashes any run of the lineage trained or validated on."""
    from imgcls.runs import lineage

    out: set[str] = set()
    for run_id in lineage(run, workspace=ws):
        folder = ws.runs / run_id
        if not (folder / "splits.parquet").is_file():
            continue
        try:
            snap = Run(folder).splits
        except (OSError, ValueError):
            continue
        if "hash" in snap:
            out |= set(snap.loc[snap["split"].isin(["train", "val"]), "hash"].astype(str))
    return out


def promote(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike,
    *,
    margin: float = 0.0,
    max_class_drop: float | None = 0.2,
    reason: str | None = None,
    raise_on_refusal: bool = False,
    batch_size: int = 64,
) -> PromotionResult:
    """Make ``run`` the production model if it passes the deploy gate.

    The gate, on the fixed benchmark set (images flagged ``benchmark`` and
    their near duplicates, whose class both the candidate and the production
    run know):

    1. a throw-away run is never promoted;
    2. the candidate must have benchmark images for its classes;
    3. its accuracy must be at least the production run's plus ``margin``;
    4. no class may lose more than ``max_class_drop`` of accuracy (recall).

    With no production run yet, rules 1-2 decide. Every attempt, accepted or
    refused, is appended to ``runs/promotions.jsonl`` with its time, the
    user's ``reason`` and the gate's reasons; an accepted one rewrites
    ``runs/production.json`` ({"run_id", "promoted_at", "reason",
    "benchmark_accuracy", "previous_run_id"}).

    Args:
        workspace: The workspace whose production pointer and promotions log change.
        run: The candidate (run, id, folder, ``"latest"``).
        margin: Required lead in accuracy (0.01 = one point); 0 means "at
            least as good".
        max_class_drop: Largest allowed per-class accuracy drop (0.2 = one of
            the five benchmark images of a class); None skips the check.
        reason: Why you promote (kept in the log and the pointer).
        raise_on_refusal: Raise :class:`PromotionRefused` instead of
            returning a refused result (for scripts and the CLI).
        batch_size: Images per inference batch.

    Returns:
        A :class:`PromotionResult`; ``bool(result)`` is ``result.accepted``
        and ``print(result)`` explains it.

    Raises:
        PromotionRefused: Refused and ``raise_on_refusal`` is set.
    """
    ws = as_workspace(workspace)
    cand = load_run(run, workspace=ws)
    margin = check_fraction(margin, "margin", fix="pass a share of accuracy (0.01 = one point)")
    max_class_drop = check_fraction(max_class_drop, "max_class_drop", allow_none=True,
                                    fix="pass a share of accuracy (0.2 = 20 points), or None to skip the check")
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"`reason` must be a string or None. Received: reason={reason!r}")
    try:
        prod_id = production_run_id(ws)
    except ValueError:
        prod_id = None
    notes: list[str] = []
    prod: Run | None = None
    if prod_id is not None:
        try:
            prod = load_run(prod_id, workspace=ws)
        except RunNotFoundError:
            notes.append(f"production.json names run {prod_id!r}, whose folder is missing; "
                         "there was nothing to compare against.")
    result = PromotionResult(accepted=False, run_id=cand.run_id, previous_run_id=prod_id, reasons=[],
                             notes=notes, margin=margin, max_class_drop=max_class_drop,
                             reason=reason, time=isoformat(timespec="seconds"))

    def finish(accepted: bool) -> PromotionResult:
        result.accepted = accepted
        if accepted and prod_id != cand.run_id:
            set_production(ws, cand.run_id, **{
                "promoted_at": result.time,
                "reason": reason,
                "benchmark_accuracy": _jsonable(result.benchmark_accuracy),
                "previous_run_id": prod_id,
            })
        append_promotion(ws, result.to_dict())
        if not accepted and raise_on_refusal:
            raise PromotionRefused(result)
        return result

    if cand.throwaway:
        result.reasons.append(
            f"{cand.run_id!r} is a throw-away run (trained at a lowered cutoff to find images "
            "for classes just under it); throw-away runs are never promoted. Train a regular run "
            "once those classes reach the cutoff."
        )
        return finish(False)
    if prod is not None and prod.run_id == cand.run_id:
        result.reasons.append(f"{cand.run_id!r} is already the production model; nothing changed.")
        result.benchmark_accuracy = (read_production(ws) or {}).get("benchmark_accuracy")
        return finish(True)

    catalog = _catalog(ws, splits=True)
    c_kept, c_scores, _ = _benchmark_scores(cand, catalog, ws, batch_size)
    if len(c_kept) == 0:
        result.reasons.append(
            f"There are no benchmark images for the classes of {cand.run_id!r}, so it cannot "
            "be measured. Choose them with imgcls.library.choose_benchmark(Library(workspace))."
        )
        return finish(False)
    result.benchmark_accuracy, _ = _sub_accuracy(c_kept, c_scores, cand.classes, cand.classes)
    leaked = set(c_kept["hash"].astype(str)) & _trained_on(cand, ws)
    if leaked:
        notes.append(
            f"{len(leaked)} benchmark image(s) were in the train/val split of this run or one of "
            "its ancestors (flagged benchmark after training), so its benchmark accuracy is optimistic."
        )
    if prod is None:
        result.candidate_accuracy = result.benchmark_accuracy
        result.compared_classes = list(cand.classes)
        result.n_images = int(len(c_kept))
        result.reasons.append(
            f"No run is in production yet; {cand.run_id!r} becomes the first production model "
            f"(benchmark accuracy {result.benchmark_accuracy:.1%} on {len(c_kept)} images)."
        )
        return finish(True)

    common = sorted(set(cand.classes) & set(prod.classes))
    added = sorted(set(cand.classes) - set(prod.classes))
    lost = sorted(set(prod.classes) - set(cand.classes))
    if added or lost:
        notes.append(
            f"The class lists differ, so the runs are compared on the {len(common)} classes both know"
            + (f"; new in the candidate: {', '.join(added)}" if added else "")
            + (f"; missing from the candidate: {', '.join(lost)}" if lost else "") + "."
        )
    if lost:
        notes.append(f"Promoting drops class(es) {', '.join(lost)} from production.")
    if not common:
        result.reasons.append(
            f"{cand.run_id!r} and the production run {prod.run_id!r} share no class, so the gate "
            "cannot compare them on the benchmark set."
        )
        return finish(False)
    p_kept, p_scores, _ = _benchmark_scores(prod, catalog, ws, batch_size)
    c_acc, n_c = _sub_accuracy(c_kept, c_scores, cand.classes, common)
    p_acc, n_p = _sub_accuracy(p_kept, p_scores, prod.classes, common)
    if n_c == 0:
        result.reasons.append("No benchmark image of the shared classes could be read.")
        return finish(False)
    if n_c != n_p:
        notes.append(f"The runs read a different number of shared benchmark images ({n_c} vs {n_p}).")
    result.candidate_accuracy, result.production_accuracy = c_acc, p_acc
    result.compared_classes, result.n_images = common, n_c

    def recall(kept: pd.DataFrame, scores: np.ndarray, classes: list[str]) -> pd.DataFrame:
        mask = kept["label"].isin(common).to_numpy()
        pred = np.asarray(classes, dtype=object)[scores[mask].argmax(axis=1)]
        pc = per_class_metrics(kept["label"].to_numpy()[mask], pred, sorted(set(classes) | set(common)))
        return pc.loc[common, ["recall", "support"]]

    c_pc = recall(c_kept, c_scores, cand.classes)
    p_pc = recall(p_kept, p_scores, prod.classes)
    per_class = pd.DataFrame({
        "class": common,
        "support": c_pc["support"].to_numpy(),
        "candidate": c_pc["recall"].where(c_pc["support"] > 0).to_numpy(),
        "production": p_pc["recall"].where(p_pc["support"] > 0).to_numpy(),
    })
    per_class["drop"] = per_class["production"] - per_class["candidate"]
    result.per_class = per_class

    ok = True
    need = p_acc + margin
    if c_acc + _TOL >= need:
        result.reasons.append(
            f"Benchmark accuracy {c_acc:.1%} vs production {p_acc:.1%} "
            f"({(c_acc - p_acc) * 100:+.1f} points) on {n_c} images meets the required "
            f"{'lead of ' + format(margin * 100, '.1f') + ' points' if margin else 'no-worse rule'}."
        )
    else:
        ok = False
        result.reasons.append(
            f"Benchmark accuracy {c_acc:.1%} is below production's {p_acc:.1%}"
            + (f" plus the margin of {margin * 100:.1f} points" if margin else "")
            + f" ({(c_acc - p_acc) * 100:+.1f} points on {n_c} images of the {len(common)} shared classes)."
        )
    if max_class_drop is not None:
        worse = per_class[per_class["drop"] > max_class_drop + _TOL].sort_values("drop", ascending=False)
        if len(worse):
            ok = False
            shown = ", ".join(
                f"{r['class']} {r['production']:.0%} -> {r['candidate']:.0%}" for _, r in worse.iterrows()
            )
            result.reasons.append(
                f"{len(worse)} class(es) lose more than the allowed {max_class_drop:.0%} of accuracy: "
                f"{shown}. Look at these classes' images, or pass a larger max_class_drop."
            )
        else:
            result.reasons.append(f"No class loses more than {max_class_drop:.0%} of accuracy.")
    return finish(ok)
