"""Review decisions as a table: the one CSV schema, checked before anything moves.

A decision says what to do with one image, wherever it was taken (the review
grid, a spreadsheet, a later tool). The schema (:data:`DECISION_COLUMNS`):

==========  ================================================================
``path``    the image: absolute, or relative to the workspace folder
            (e.g. ``unlabelled/batch1/x.jpg``, ``library/cow/y.png``)
``action``  ``label`` (file it under ``label``), ``unknown`` (good, but
            nobody can name it yet: ``library/unknown/``), ``discard``
            (to ``trash/``) or ``skip`` (leave it): :data:`DECISION_ACTIONS`;
            an empty action with an empty label is a row nobody decided: skip
``label``   the class, for ``label`` only (checked with
            :func:`imgcls.library.validate_class_name`; a new name creates the class)
``reason``  optional free text, kept in the result
==========  ================================================================

Other columns are kept and ignored, so a filter's CSV with ``action`` and
``label`` filled in is a decisions file. :func:`read_decisions` reads and
checks a CSV, :func:`check_decisions` checks a DataFrame, and
:func:`apply_decisions` applies them through
:meth:`imgcls.library.Library.apply`: one journaled batch, undone by one
``Library.undo()`` (``imgcls undo``). A file with any bad row is refused as a
whole, every bad row named with its reason, before anything moves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from imgcls.core.workspace import UNKNOWN_CLASS, Workspace, as_workspace
from imgcls.library.catalog import Library
from imgcls.library.fileops import is_inside
from imgcls.library.names import validate_class_name

__all__ = [
    "DECISION_ACTIONS",
    "DECISION_COLUMNS",
    "DecisionsError",
    "check_decisions",
    "read_decisions",
    "apply_decisions",
]

#: What a decision can do with an image (the review grid's actions).
DECISION_ACTIONS = ("label", "unknown", "discard", "skip")
#: The columns of a decisions table; ``reason`` is optional.
DECISION_COLUMNS = ["path", "action", "label", "reason"]
_SHOWN_PROBLEMS = 20


class DecisionsError(ValueError):
    """A decisions table with bad rows; nothing was moved.

    Attributes:
        problems: DataFrame [row, path, problem]; ``row`` is the line of the
            CSV file (the header is line 1) or the DataFrame's position + 2.
    """

    def __init__(self, problems: pd.DataFrame, source: str = "decisions"):
        self.problems = problems
        shown = "\n".join(f"  line {r}: {p}" + (f" ({path})" if path else "")
                          for r, path, p in problems.head(_SHOWN_PROBLEMS).itertuples(index=False))
        more = (f"\n  ... and {len(problems) - _SHOWN_PROBLEMS} more"
                if len(problems) > _SHOWN_PROBLEMS else "")
        super().__init__(
            f"{source} has {len(problems)} bad row(s); nothing was moved. Fix them and try again "
            f"(columns: path, action in {'/'.join(DECISION_ACTIONS)}, label for action 'label', "
            f"optional reason):\n{shown}{more}"
        )


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _resolve(path: str, ws: Workspace | None) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute() and ws is not None:
        p = ws.root / p
    return os.path.abspath(p) if (p.is_absolute() or ws is not None) else path


def check_decisions(
    decisions: pd.DataFrame,
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    source: str = "decisions",
) -> pd.DataFrame:
    """Check a decisions table and return it normalised; refuse it whole if any row is bad.

    Args:
        decisions: A DataFrame with the columns of :data:`DECISION_COLUMNS`
            (``label`` and ``reason`` may be missing when no row needs them).
        workspace: Resolve relative paths in this workspace and check that
            every image to move exists inside it (without it only the
            columns, actions and class names are checked).
        source: What to call the table in messages (e.g. the file name).

    Returns:
        A copy with ``path`` (absolute when a workspace is given), ``action``
        (lower case), ``label`` (validated; None unless the action is
        ``label``; ``label`` with class "unknown" becomes action ``unknown``)
        and ``reason`` (text, "" when none) first, other columns after.

    Raises:
        DecisionsError: A ``ValueError`` naming every bad row: missing path,
            an unknown action, a missing or invalid label, an image missing
            or outside the workspace, or an image decided twice.
        ValueError: ``decisions`` is not a DataFrame or lacks ``path`` / ``action``.
    """
    if not isinstance(decisions, pd.DataFrame):
        raise ValueError(f"`decisions` must be a DataFrame. Received: {type(decisions).__name__}")
    missing = [c for c in ("path", "action") if c not in decisions.columns]
    if missing:
        raise ValueError(
            f"{source} must have the columns {DECISION_COLUMNS[:2]} (and label for action 'label', "
            f"optional reason); missing {missing}. Received columns: {list(decisions.columns)}"
        )
    ws = as_workspace(workspace) if workspace is not None else None
    where = (ws.library, ws.unlabelled, ws.trash) if ws is not None else ()
    out = decisions.reset_index(drop=True).copy()
    paths, actions, labels, reasons, problems = [], [], [], [], []
    seen: dict[str, int] = {}
    for i, rec in enumerate(out.to_dict("records")):
        line = i + 2
        raw_path, action = _text(rec.get("path")), _text(rec.get("action")).lower()
        label: str | None = _text(rec.get("label")) or None
        if not action and label is None:
            action = "skip"  # a row of a table nobody decided (e.g. `imgcls label-issues`): leave it
        bad = []
        path = _resolve(raw_path, ws) if raw_path else ""
        if not raw_path:
            bad.append("no path")
        if action not in DECISION_ACTIONS:
            bad.append(f"action {action or '(empty)'!r} is not one of {', '.join(DECISION_ACTIONS)}")
        elif action == "label":
            if label is None:
                bad.append("action 'label' needs the class in `label`")
            else:
                try:
                    label = validate_class_name(label)
                except ValueError as exc:
                    bad.append(str(exc))
                if label == UNKNOWN_CLASS:
                    action = "unknown"
        if action != "label":
            label = None
        if path and ws is not None and action in ("label", "unknown", "discard"):
            p = Path(path)
            if not p.is_file():
                bad.append("no image at this path")
            elif action == "discard" and not any(is_inside(p, w) for w in where[:2]):
                bad.append("only images in the workspace's library/ or unlabelled/ can be discarded")
            elif not any(is_inside(p, w) for w in where):
                bad.append("not in the workspace's library/, unlabelled/ or trash/")
        if path in seen:
            bad.append(f"the same image is decided on line {seen[path]} too")
        elif path:
            seen[path] = line
        problems += [(line, raw_path, b) for b in bad]
        paths.append(path or raw_path)
        actions.append(action)
        labels.append(label)
        reasons.append(_text(rec.get("reason")))
    if problems:
        raise DecisionsError(pd.DataFrame(problems, columns=["row", "path", "problem"]), source)
    out["path"], out["action"], out["reason"] = paths, actions, reasons
    out["label"] = pd.Series(labels, index=out.index, dtype=object)
    rest = [c for c in out.columns if c not in DECISION_COLUMNS]
    return out[DECISION_COLUMNS + rest]


def read_decisions(
    path: str | os.PathLike,
    *,
    workspace: Workspace | str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Read a decisions CSV (see the module for the schema) and check it.

    Args:
        path: The CSV file (UTF-8, a header row; e.g. exported from a
            spreadsheet or :meth:`imgcls.ui.ReviewGrid.decisions_table`),
            or a Parquet file (``.parquet``) with the same columns.
        workspace: Resolve relative paths in this workspace and check that the
            images exist (see :func:`check_decisions`).

    Returns:
        The checked decisions (:func:`check_decisions`).

    Raises:
        FileNotFoundError: No file at ``path``.
        DecisionsError: Bad rows (every one named with its line and reason).
        ValueError: Not a CSV with the path and action columns.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"No decisions file at {str(p)!r}.")
    if p.suffix.lower() in (".parquet", ".pq"):  # e.g. from `imgcls label-issues --out x.parquet`
        try:
            table = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise ValueError(f"{p.name} is not a readable Parquet file: {type(exc).__name__}") from None
        table = table.astype(object).where(table.notna(), "")
    else:
        try:
            table = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True,
                                encoding="utf-8-sig")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(f"{p.name} is not a readable CSV file: {exc}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    return check_decisions(table, workspace=workspace, source=p.name)


def apply_decisions(
    workspace: Workspace | str | os.PathLike,
    decisions: pd.DataFrame | str | os.PathLike,
) -> pd.DataFrame:
    """Apply review decisions to the library in one journaled batch (one undo reverts it).

    Every row is checked first (:func:`check_decisions`); if any is bad,
    nothing moves. ``label`` moves an image to ``library/<label>/``,
    ``unknown`` to ``library/unknown/``, ``discard`` to ``trash/``; ``skip``
    leaves it. A row that still fails while moving (e.g. the file vanished
    meanwhile) never stops the others: it is reported in ``error``.

    Args:
        workspace: The workspace whose library the decisions go to.
        decisions: A decisions DataFrame or the path of a decisions CSV.

    Returns:
        The decisions with ``new_path`` (None for skips and failures) and
        ``error`` ("" when done); ``attrs["batch"]`` is the journal batch
        (None when nothing moved).

    Raises:
        DecisionsError: Bad rows; nothing was moved.
    """
    ws = as_workspace(workspace)
    if isinstance(decisions, (str, os.PathLike)):
        table = read_decisions(decisions, workspace=ws)
    else:
        table = check_decisions(decisions, workspace=ws)
    out = table.copy()
    out["new_path"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    out["error"] = ""
    moves = table[table["action"] != "skip"]
    batch = None
    if len(moves):
        result = Library(ws).apply(moves[["path", "action", "label"]].reset_index(drop=True))
        result.index = moves.index
        out.loc[moves.index, "new_path"] = [v if isinstance(v, str) and v else None for v in result["new_path"]]
        out.loc[moves.index, "error"] = [str(e or "") for e in result["error"]]
        if (out.loc[moves.index, "error"] == "").any():
            batch = result.attrs.get("batch")
    out.attrs["batch"] = batch
    return out
