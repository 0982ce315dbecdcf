"""The bookkeeping behind the review grid: pending decisions, applied moves, undo.

:class:`DecisionBook` holds no widget. It keeps the decisions in a dict keyed
by path (so they survive page and filter changes), applies them to disk
through :meth:`imgcls.library.Library.apply` as one journaled batch, and
reverts that batch with :meth:`imgcls.library.Library.undo`. Its pending
decisions export in the one decisions schema of :mod:`imgcls.library.decisions`
(:meth:`DecisionBook.decisions_table`), so they can be applied elsewhere with
``imgcls apply``.
:class:`~imgcls.ui.ReviewGrid` shows it.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from imgcls.core import UNKNOWN_CLASS
from imgcls.library import DECISION_ACTIONS, DECISION_COLUMNS, Library, validate_class_name

__all__ = ["DecisionBook"]

# Decisions a grid keeps are imgcls.library.DECISION_ACTIONS ("accept" given to
# DecisionBook.decide is stored as "label" with the first choice).

_DECISION_COLUMNS = ["path", "action", "label", "top1_class", "top1_score", "error"]


class DecisionBook:
    """Pending decisions on images of bulk results, and the applies that moved them.

    Args:
        library: The library decisions are applied to.

    Attributes:
        library: As given.
        last_applied: The table the last :meth:`apply` returned (None before).
    """

    def __init__(self, library: Library):
        self.library = library
        self.last_applied: pd.DataFrame | None = None
        self._decisions: dict[str, dict[str, Any]] = {}
        self._applied: dict[str, dict[str, Any]] = {}
        self._seen: dict[str, dict[str, Any]] = {}
        self._applies: list[dict[str, Any]] = []

    # ------------------------------------------------------------ state
    def remember(self, table: pd.DataFrame) -> None:
        """Learn the rows of a results table shown (absolute ``path`` column)."""
        keep = [c for c in ("path", "top1_class", "top1_score", "top2_class", "top2_score") if c in table]
        for rec in table[keep].to_dict("records"):
            self._seen[rec["path"]] = rec

    def pending_for(self, path: str) -> dict[str, Any] | None:
        """The pending decision of ``path`` (an absolute path), if any."""
        return self._decisions.get(path)

    def applied_for(self, path: str) -> dict[str, Any] | None:
        """What the last applies did with ``path`` (``action``, ``label``, ``new_path``), if anything."""
        return self._applied.get(path)

    def labels(self) -> set[str]:
        """Class names of the pending decisions."""
        return {d["label"] for d in self._decisions.values() if d.get("label")}

    @property
    def n_pending(self) -> int:
        """Pending decisions (skips included)."""
        return len(self._decisions)

    def counts(self) -> Counter:
        """Pending decisions per action."""
        return Counter(d["action"] for d in self._decisions.values())

    def undecided(self, rows: pd.DataFrame) -> list[dict[str, Any]]:
        """The rows (as dicts) of a results table whose image has no decision, pending or applied."""
        return [r for r in rows.to_dict("records")
                if r["path"] not in self._decisions and r["path"] not in self._applied]

    def class_choices(self, results: pd.DataFrame, extra: Iterable[str] = ()) -> list[str]:
        """Class names a tile offers: ``extra``, library folders, predicted classes, pending labels."""
        names: set[str] = set(extra)
        lib = self.library.workspace.library
        if lib.is_dir():
            with os.scandir(lib) as entries:
                names.update(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
        for col in results.columns:
            if col.startswith("top") and col.endswith("_class"):
                names.update(str(v) for v in results[col].dropna().unique())
        names.update(self.labels())
        names.discard(UNKNOWN_CLASS)
        names.discard("")
        return sorted(names)

    def pending_html(self, shown: frozenset[str] | set[str]) -> str:
        """One line: pending decisions by action, and how many come from views other than ``shown``."""
        counts = self.counts()
        parts = [f"{counts[a]} {a}" for a in DECISION_ACTIONS if a in counts]
        text = f"<b>{self.n_pending} pending</b>"
        if parts:
            text += " (" + ", ".join(parts) + ")"
        elsewhere = self.n_outside(shown)
        return text + (f" · {elsewhere} from other views" if elsewhere else "")

    def n_outside(self, paths: frozenset[str] | set[str]) -> int:
        """Pending decisions on images not in ``paths`` (taken in other views)."""
        return sum(p not in paths for p in self._decisions)

    @property
    def can_undo(self) -> bool:
        """Whether an apply can be undone."""
        return bool(self._applies)

    @property
    def last_apply_moved(self) -> bool:
        """Whether the last apply moved files (a journaled batch to undo)."""
        return bool(self._applies and self._applies[-1]["batch"])

    @property
    def decisions(self) -> pd.DataFrame:
        """Pending decisions in the order taken: [path, action, label, top1_class, top1_score, error]."""
        rows = [
            {**d, "top1_class": self._seen[p].get("top1_class"), "top1_score": self._seen[p].get("top1_score"),
             "error": d.get("error", "")}
            for p, d in self._decisions.items()
        ]
        df = pd.DataFrame(rows, columns=_DECISION_COLUMNS)
        df["label"] = df["label"].astype(object).where(df["label"].notna(), None)
        return df

    def decisions_table(self) -> pd.DataFrame:
        """The pending decisions in the one decisions schema: [path, action, label, reason].

        Write it with ``to_csv(path, index=False)``; ``imgcls apply`` (or
        :func:`imgcls.library.apply_decisions`) applies that file elsewhere.
        ``reason`` says which first choice and score the grid showed.
        """
        rows = []
        for p, d in self._decisions.items():
            seen = self._seen.get(p, {})
            score = seen.get("top1_score")
            shown = f" at {float(score):.0%}" if isinstance(score, (int, float)) and score == score else ""
            rows.append({"path": p, "action": d["action"], "label": d.get("label"),
                         "reason": f"review grid; first choice {seen.get('top1_class')}{shown}"})
        df = pd.DataFrame(rows, columns=DECISION_COLUMNS)
        df["label"] = df["label"].astype(object).where(df["label"].notna(), None)
        return df

    # ------------------------------------------------------------ deciding
    def decide(self, path: str | os.PathLike, action: str, label: str | None = None) -> dict[str, Any]:
        """Record a decision for one image (see :meth:`imgcls.ui.ReviewGrid.decide`).

        Returns:
            The decision ``{"path", "action", "label"}`` (a copy).

        Raises:
            ValueError: An unknown action, a missing or invalid class name,
                a path never shown, or an image already moved by an apply.
        """
        key = os.path.abspath(os.fspath(path))
        row = self._seen.get(key)
        if row is None:
            raise ValueError(
                f"{os.fspath(path)!r} is not in any results table shown by this grid. "
                "Pass a path from grid.results['path']."
            )
        if key in self._applied:
            raise ValueError(
                f"{Path(key).name!r} was moved by the last apply; undo it (grid.undo()) to change its decision."
            )
        if action == "accept":
            action, label = "label", row.get("top1_class")
        if action not in DECISION_ACTIONS:
            raise ValueError(
                f"`action` must be one of accept, {', '.join(DECISION_ACTIONS)}. Received: action={action!r}"
            )
        if action == "label":
            if label is None:
                raise ValueError("`label` is required for action 'label': the class to move the image to.")
            label = validate_class_name(label)
            if label == UNKNOWN_CLASS:
                action = "unknown"
        if action != "label":
            label = None
        decision = {"path": key, "action": action, "label": label}
        self._decisions.pop(key, None)  # re-deciding moves it to the end (decision order)
        self._decisions[key] = decision
        return dict(decision)

    def clear(self, keys: Iterable[str] | None = None) -> int:
        """Forget the pending decisions of ``keys`` (absolute paths), or all. Returns how many."""
        keys = list(self._decisions) if keys is None else list(keys)
        return sum(self._decisions.pop(k, None) is not None for k in keys)

    # ------------------------------------------------------------ apply / undo
    def apply(self) -> pd.DataFrame:
        """Apply the pending decisions in one journaled batch (see :meth:`imgcls.ui.ReviewGrid.apply`).

        Returns:
            The decisions with ``new_path`` and ``error``; ``attrs["batch"]``
            is the journal batch (None when nothing moved).
        """
        pending = self.decisions
        if pending.empty:
            return pending.assign(new_path=pd.Series(dtype=object))
        moves = pending[pending["action"] != "skip"]
        if len(moves):
            result = self.library.apply(moves[["path", "action", "label"]].reset_index(drop=True))
            batch = result.attrs.get("batch")
            moved = result.set_index("path")
        else:
            batch, moved = None, pd.DataFrame(columns=["new_path", "error"])
        out = pending.drop(columns=["error"]).copy()
        new_paths = [moved.at[p, "new_path"] if p in moved.index else None for p in out["path"]]
        out["new_path"] = pd.Series([v if isinstance(v, str) and v else None for v in new_paths],
                                    index=out.index, dtype=object)
        out["error"] = [str(moved.at[p, "error"] or "") if p in moved.index else "" for p in out["path"]]
        done = []
        for rec in out.to_dict("records"):
            p = rec["path"]
            if rec["error"]:
                self._decisions[p]["error"] = rec["error"]
                continue
            self._applied[p] = {"action": rec["action"], "label": rec["label"], "new_path": rec["new_path"]}
            done.append(self._decisions.pop(p))
        n_moved = int(((out["action"] != "skip") & ~out["error"].astype(bool)).sum())
        self._applies.append({"batch": batch if n_moved else None, "decisions": done, "result": out})
        out.attrs["batch"] = batch
        self.last_applied = out
        return out

    def summary(self, applied: pd.DataFrame | None = None) -> pd.DataFrame:
        """What an apply did: [action, label, applied, errors] per action and class.

        Args:
            applied: The output of :meth:`apply` (default: the last one).
        """
        applied = self.last_applied if applied is None else applied
        cols = ["action", "label", "applied", "errors"]
        if applied is None or applied.empty:
            return pd.DataFrame(columns=cols)
        df = applied.assign(label=applied["label"].fillna("").astype(str),
                            failed=applied["error"].astype(bool))
        g = df.groupby(["action", "label"], sort=True)["failed"].agg(["size", "sum"]).reset_index()
        g["applied"] = (g["size"] - g["sum"]).astype("int64")
        g["errors"] = g["sum"].astype("int64")
        order = {a: i for i, a in enumerate(DECISION_ACTIONS)}
        g = g.sort_values(["action", "label"], key=lambda s: s.map(order) if s.name == "action" else s)
        return g[cols].reset_index(drop=True)

    def summary_html(self, out: pd.DataFrame) -> str:
        """What an apply did (the output of :meth:`apply`) as HTML: counts per class, failures listed."""
        table = self.summary(out)
        n_ok = int(table["applied"].sum())
        n_err = int(table["errors"].sum())
        head = f"<b>Applied {n_ok} decision{'s' if n_ok != 1 else ''}</b> in one step"
        head += " (Undo reverts it)." if self.last_apply_moved else "."
        body = table.to_html(index=False, border=0)
        errs = ""
        if n_err:
            bad = out[out["error"].astype(bool)]
            items = "".join(f"<li>{html.escape(Path(p).name)}: {html.escape(e)}</li>"
                            for p, e in zip(bad["path"], bad["error"]))
            errs = f'<div style="color:#c0392b">{n_err} failed (still pending):<ul>{items}</ul></div>'
        return f"<div>{head}{body}{errs}</div>"

    def undo(self) -> tuple[list[Path], int]:
        """Revert the last :meth:`apply` (see :meth:`imgcls.ui.ReviewGrid.undo`).

        Returns:
            The paths the images have again, and how many decisions are pending again.
        """
        if not self._applies:
            raise ValueError("Nothing to undo: this grid has applied no decisions yet.")
        last = self._applies[-1]
        restored: list[Path] = []
        if last["batch"]:
            journal = self.library.journal()
            todo = journal[(~journal["undone"]) & (journal["op"] != "undo")]
            latest = todo["batch"].iloc[-1] if len(todo) else None
            if latest != last["batch"]:
                raise ValueError(
                    "The library was changed after this grid's last apply (another label operation "
                    "is newer in journal.jsonl), so undoing here would revert the wrong step. Undo "
                    "the newer operation first with Library.undo(), then grid.undo()."
                )
            restored = self.library.undo(1)
        self._applies.pop()
        for d in last["decisions"]:
            self._applied.pop(d["path"], None)
            d.pop("error", None)
            self._decisions[d["path"]] = d
        return restored, len(last["decisions"])
