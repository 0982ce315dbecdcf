"""What the deploy gate decided: :class:`PromotionResult`, its check table as text, and its log line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imgcls.evaluation.gate_stats import CHECK_COLUMNS

__all__ = ["PromotionResult", "PromotionRefused", "format_checks"]


def _plain(v: Any) -> Any:
    """A value as plain JSON: NumPy numbers as Python numbers, NaN as None."""
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def _percent(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.1%}"


def _p_or_bound(row: pd.Series) -> str:
    p, level = row.get("p_value"), row.get("level")
    has_p = p is not None and not (isinstance(p, float) and math.isnan(p))
    has_level = level is not None and not (isinstance(level, float) and math.isnan(level))
    if has_p:
        return f"p={float(p):.3g} vs {float(level):g}" if has_level else f"p={float(p):.3g}"
    if has_level:
        return f"drop <= {float(level) * 100:.1f} pts"
    return "-"


def format_checks(checks: pd.DataFrame) -> str:
    """The check table as aligned text: check, n, production, candidate, p-value or bound, result.

    Args:
        checks: A check table (:data:`imgcls.evaluation.gate_stats.CHECK_COLUMNS`).
    """
    if checks is None or not len(checks):
        return "(no checks)"
    shown = pd.DataFrame({
        "check": checks["check"].astype(str),
        "n": checks["n"].map(lambda n: "-" if pd.isna(n) else str(int(n))),
        "production": checks["production"].map(_percent),
        "candidate": checks["candidate"].map(_percent),
        "p-value / bound": [_p_or_bound(r) for _, r in checks.iterrows()],
        "result": checks["result"].str.upper(),
    })
    with pd.option_context("display.max_rows", 500, "display.width", 200, "display.max_colwidth", 80):
        return shown.to_string(index=False)


class PromotionRefused(ValueError):
    """The deploy gate refused a run; ``.result`` holds the :class:`PromotionResult`."""

    def __init__(self, result: "PromotionResult"):
        self.result = result
        super().__init__(result.explain())


@dataclass
class PromotionResult:
    """The outcome of one :func:`~imgcls.evaluation.promote` call (also a line of promotions.jsonl).

    Attributes:
        accepted: True when the run is (now) the production model.
        run_id: The candidate.
        previous_run_id: The production run before the attempt (None if none).
        reasons: The failed checks, one sentence each (empty when every check passed).
        checks: Every check the gate made: DataFrame [check, scope, n,
            production, candidate, b, c, p_value, level, passed, result,
            detail] (see :func:`imgcls.evaluation.gate_stats.gate_checks`).
        warnings: What the gate could not judge or left out (benchmark
            images a run trained on, classes too small to judge, new classes).
        summary: One sentence on the outcome (e.g. the first production model).
        candidate_accuracy: Candidate's accuracy on the compared images.
        production_accuracy: Production's accuracy on the same images.
        benchmark_accuracy: Candidate's accuracy on the unseen benchmark
            images of all its own classes (kept in production.json).
        compared_classes: Classes the comparison used (both runs know them).
        new_classes: Classes only the candidate knows (reported, not compared).
        n_images: Benchmark images the comparison used.
        n_dropped: Benchmark images left out because a run's lineage trained on them.
        per_class: DataFrame [class, support, candidate, production, drop] of
            per-class accuracy (recall) on the compared classes.
        alpha: Chance of refusing an equally good candidate.
        margin: Accuracy drop allowed (None: not checked).
        max_class_drop: Largest per-class drop allowed for large classes (None: not checked).
        min_class_n: Images a class needs for ``max_class_drop`` to apply.
        override: The reason given to promote a refused candidate anyway (None: no override).
        user: Who made the attempt (``getpass.getuser()``).
        reason: The reason the user gave.
        time: UTC ISO time of the attempt.
        runtime: What the candidate was measured on, as it will be served
            (``"openvino-int8"`` with an accepted export, else ``"keras-f32"``).
        production_runtime: The same for the production run (None without one).
    """

    accepted: bool
    run_id: str
    previous_run_id: str | None
    reasons: list[str] = field(default_factory=list)
    checks: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHECK_COLUMNS), repr=False)
    warnings: list[str] = field(default_factory=list)
    summary: str = ""
    candidate_accuracy: float | None = None
    production_accuracy: float | None = None
    benchmark_accuracy: float | None = None
    compared_classes: list[str] = field(default_factory=list)
    new_classes: list[str] = field(default_factory=list)
    n_images: int = 0
    n_dropped: int = 0
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    alpha: float = 0.05
    margin: float | None = None
    max_class_drop: float | None = None
    min_class_n: int = 50
    override: str | None = None
    user: str = ""
    reason: str | None = None
    time: str = ""
    runtime: str | None = None
    production_runtime: str | None = None

    def __bool__(self) -> bool:
        return bool(self.accepted)

    @property
    def delta(self) -> float | None:
        """Candidate minus production accuracy on the compared images."""
        if self.candidate_accuracy is None or self.production_accuracy is None:
            return None
        return self.candidate_accuracy - self.production_accuracy

    @property
    def failed_checks(self) -> list[str]:
        """Names of the checks that failed."""
        if not len(self.checks):
            return []
        return self.checks.loc[self.checks["result"] == "fail", "check"].astype(str).tolist()

    def _headline(self) -> str:
        if self.accepted and self.override is not None:
            return (f"Promoted {self.run_id!r} to production by override although it failed "
                    f"{len(self.reasons)} check(s); override by {self.user or 'unknown user'}: {self.override}")
        return (f"Promoted {self.run_id!r} to production." if self.accepted
                else f"Refused to promote {self.run_id!r}.")

    def explain(self) -> str:
        """The decision, the failed checks, every check as a table, and the warnings."""
        lines = [self._headline()]
        if self.summary:
            lines.append(self.summary)
        if self.reasons:
            lines.append("Failed checks:")
            lines += [f"- {r}" for r in self.reasons]
        if len(self.checks):
            lines += ["Checks:", format_checks(self.checks)]
        if self.warnings:
            lines.append("Warnings:")
            lines += [f"- {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()

    def _repr_markdown_(self) -> str:  # a notebook shows the decision and the table, not the fields
        head = self._headline()
        lines = [f"**{head.replace(repr(self.run_id), f'`{self.run_id}`')}**", ""]
        if self.summary:
            lines += [self.summary, ""]
        lines += [f"- **failed:** {r}" for r in self.reasons]
        if len(self.checks):
            lines += ["", "```", format_checks(self.checks), "```"]
        lines += [f"- *warning:* {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (the promotions.jsonl line)."""
        checks = [{k: _plain(v) for k, v in rec.items()} for rec in self.checks.to_dict("records")] \
            if len(self.checks) else []
        return {
            "time": self.time,
            "run_id": self.run_id,
            "action": "promote",
            "accepted": bool(self.accepted),
            "previous_run_id": self.previous_run_id,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "summary": self.summary,
            "override": self.override,
            "user": self.user,
            "failed_checks": self.failed_checks,
            "checks": checks,
            "candidate_accuracy": _plain(self.candidate_accuracy),
            "production_accuracy": _plain(self.production_accuracy),
            "delta": _plain(self.delta),
            "benchmark_accuracy": _plain(self.benchmark_accuracy),
            "compared_classes": list(self.compared_classes),
            "new_classes": list(self.new_classes),
            "n_images": int(self.n_images),
            "n_dropped": int(self.n_dropped),
            "alpha": float(self.alpha),
            "margin": None if self.margin is None else float(self.margin),
            "max_class_drop": None if self.max_class_drop is None else float(self.max_class_drop),
            "min_class_n": int(self.min_class_n),
            "runtime": self.runtime,
            "production_runtime": self.production_runtime,
            "class_drops": {
                str(r["class"]): _plain(r["drop"])
                for r in (self.per_class.to_dict("records") if len(self.per_class) else [])
                if r.get("drop") is not None and not pd.isna(r.get("drop")) and r["drop"] > 1e-9
            },
        }
