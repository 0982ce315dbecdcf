"""The ranked label-issue table as a decisions file: review it anywhere, apply it with ``imgcls apply``.

:func:`review_table` turns a ranking from
:func:`~imgcls.cleaning.find_label_issues` into the one decisions schema of
:mod:`imgcls.library.decisions` (``path``, ``action``, ``label``,
``reason``) with ``action`` and ``label`` left EMPTY, ready to fill, and the
ranking's columns after them (``rank``, ``given_label``,
``suggested_label``, ``label_quality``...). A reviewer fills in, per row
they decide:

* ``skip`` - keep the label (or leave the row empty: an empty row is skipped);
* ``label`` with the class in ``label`` - relabel (e.g. the suggested class);
* ``unknown`` - a good image nobody can name: ``library/unknown/``;
* ``discard`` - to ``trash/``.

``imgcls apply FILE`` (:func:`imgcls.library.apply_decisions`) applies the
filled table in one journaled batch that ``imgcls undo`` reverts. Paths are
workspace-relative (``library/cow/x.png``), so the file stays valid in a copy
of the workspace. :func:`write_review_table` writes CSV or Parquet.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from imgcls.core import Workspace, as_workspace, check_bool
from imgcls.core.fileio import write_csv, write_parquet
from imgcls.library import DECISION_COLUMNS

__all__ = ["REVIEW_COLUMNS", "REVIEW_FORMATS", "review_table", "write_review_table"]

#: The ranking's columns carried after the decision columns.
REVIEW_COLUMNS = ["rank", "given_label", "suggested_label", "label_quality", "is_issue", "given_prob",
                  "suggested_prob", "hash"]
#: File suffixes :func:`write_review_table` writes.
REVIEW_FORMATS = (".csv", ".parquet")


def review_table(
    issues: pd.DataFrame,
    workspace: Workspace | str | os.PathLike | None = None,
    *,
    flagged_only: bool = True,
) -> pd.DataFrame:
    """The label-issue ranking as a decisions table with empty ``action`` / ``label`` columns.

    Args:
        issues: From :func:`~imgcls.cleaning.find_label_issues` (or
            :func:`~imgcls.cleaning.label_issue_table`): ``path``,
            ``given_label``, ``suggested_label``, ``label_quality``, ``is_issue``...
        workspace: Write paths relative to this workspace's folder (portable);
            None keeps them as given.
        flagged_only: Only the images cleanlab flagged (default); False: every
            ranked image, most likely wrong first.

    Returns:
        DataFrame ``path, action, label, reason`` (the decisions schema;
        ``action`` and ``label`` empty, ``reason`` says what the scan found)
        then :data:`REVIEW_COLUMNS`, in rank order.
    """
    if not isinstance(issues, pd.DataFrame):
        raise ValueError(f"`issues` must be the DataFrame from find_label_issues(). Received: {type(issues).__name__}")
    missing = [c for c in ("path", "given_label", "suggested_label", "label_quality", "is_issue") if c not in issues]
    if missing:
        raise ValueError(f"`issues` must come from find_label_issues(); missing columns {missing}.")
    check_bool(flagged_only, "flagged_only")
    rows = issues[issues["is_issue"].astype(bool)] if flagged_only else issues
    rows = rows.reset_index(drop=True)
    ws = as_workspace(workspace) if workspace is not None else None
    paths = [ws.stored_path(p) if ws is not None else str(p) for p in rows["path"]]
    reasons = [
        f"label issue #{int(r)}: given {g}" + (f", suggested {s}" if s else "") + f", label quality {q:.3f}"
        for r, g, s, q in zip(rows.get("rank", pd.Series(range(1, len(rows) + 1))), rows["given_label"],
                              rows["suggested_label"].fillna(""), rows["label_quality"].astype(float))
    ]
    out = pd.DataFrame({"path": paths, "action": "", "label": "", "reason": reasons}, columns=DECISION_COLUMNS)
    for col in REVIEW_COLUMNS:
        if col in rows:
            out[col] = rows[col].to_numpy()
    out.attrs.update({k: v for k, v in issues.attrs.items() if isinstance(v, (str, int, float, bool))})
    return out


def write_review_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a :func:`review_table` atomically as CSV or Parquet (chosen by the suffix).

    Args:
        table: From :func:`review_table`.
        path: ``.csv`` or ``.parquet`` file (its folder is created).

    Returns:
        The path written.
    """
    p = Path(os.fspath(path)).expanduser()
    suffix = p.suffix.lower()
    if suffix not in REVIEW_FORMATS:
        raise ValueError(
            f"`path` must end in {' or '.join(REVIEW_FORMATS)}. Received: path={str(p)!r}; "
            "fix: e.g. label_issues.csv for a spreadsheet, label_issues.parquet for pandas"
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        write_csv(p, table)
    else:
        write_parquet(p, table.astype({"action": str, "label": str, "reason": str}))
    return p
