"""The library's label noise for the deck: which run's noise table, and what it says (no TensorFlow).

A label-issue scan (:func:`imgcls.cleaning.find_label_issues`, ``imgcls
label-issues``) stores its per-class noise table in the run folder
(``runs/<id>/label_noise.csv``). :func:`label_noise_report` reads the table of
the production run, or of the newest run that has one, and
:func:`noise_findings` states what it shows. A class with fewer than
:data:`MIN_NOISE_N` labelled images never headlines: a rate over a handful
of images says nothing. The slide is
:func:`imgcls.reports.noise_figures.plot_label_noise`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from imgcls.core.workspace import Workspace, as_workspace

__all__ = ["MIN_NOISE_N", "label_noise_report", "noise_findings"]

#: Classes with fewer labelled images are shown faded and never headline.
MIN_NOISE_N = 20


def _noise_runs(ws: Workspace) -> list[Path]:
    """Run folders holding a noise table: the production run first, then the newest first."""
    from imgcls.cleaning import LABEL_NOISE_FILE  # lazy: `import imgcls.reports` stays light

    if not ws.runs.is_dir():
        return []
    found = sorted((p.parent for p in ws.runs.glob(f"*/{LABEL_NOISE_FILE}")),
                   key=lambda d: (d / LABEL_NOISE_FILE).stat().st_mtime, reverse=True)
    try:
        from imgcls.runs import production_run_id  # lazy: `import imgcls.reports` stays light
        production = production_run_id(ws)
    except ValueError:  # a damaged pointer: the newest table stands in
        production = None
    return sorted(found, key=lambda d: d.name != production)


def label_noise_report(
    workspace: Workspace | str | os.PathLike,
    run: str | None = None,
) -> pd.DataFrame | None:
    """The per-class label-noise table stored by the last label-issue scan.

    Args:
        workspace: The workspace (or its folder).
        run: A run id; None for the production run's table, or else the newest one.

    Returns:
        DataFrame :data:`imgcls.cleaning.NOISE_COLUMNS` plus ``small`` (fewer
        than :data:`MIN_NOISE_N` images), noisiest first; ``attrs``: ``run_id``,
        ``method``, ``embeddings_run``, ``n``, ``n_issues``, ``created``. None
        when no run has a noise table.
    """
    from imgcls.cleaning import LABEL_NOISE_FILE, NOISE_COLUMNS, read_label_noise  # lazy, as above

    ws = as_workspace(workspace, must_exist=False)
    folders = [ws.runs / run] if run is not None else _noise_runs(ws)
    for folder in folders:
        if not (folder / LABEL_NOISE_FILE).is_file():
            continue
        try:
            table = read_label_noise(folder)
        except (OSError, ValueError, pd.errors.ParserError):  # a damaged run folder: try the next one
            continue
        if table is None or any(c not in table.columns for c in NOISE_COLUMNS):
            continue
        table = table.sort_values(["noise_rate", "label"], ascending=[False, True], kind="stable")
        table = table.reset_index(drop=True).assign(small=lambda t: t["n"] < MIN_NOISE_N)
        table.attrs["run_id"] = folder.name
        return table
    return None


def noise_findings(table: pd.DataFrame) -> dict[str, Any]:
    """What a noise table says, for a slide title and the summary.

    Args:
        table: From :func:`label_noise_report`.

    Returns:
        ``{"headline", "subtitle", "n", "estimated", "share", "worst"}``:
        the finding (the noisiest class with at least :data:`MIN_NOISE_N`
        images, never a smaller one), the context with n, the image count, the
        estimated wrong labels, their share, and the worst class's row (None
        when no class is large enough).
    """
    n = int(table["n"].sum())
    estimated = int(table["estimated_issues"].sum())
    flagged = int(table["flagged"].sum())
    share = estimated / n if n else 0.0
    large = table[table["n"] >= MIN_NOISE_N].sort_values(["noise_rate", "n"], ascending=[False, False],
                                                          kind="stable")
    worst = large.iloc[0].to_dict() if len(large) else None
    if not n:
        headline = "No labelled images were scanned for label issues"
    elif worst is None:
        headline = (f"About {share:.0%} of the library's {n:,} labels may be wrong; no class has {MIN_NOISE_N} "
                    "images yet, so none stands out")
    elif worst["noise_rate"] < 0.005:
        headline = f"No class shows label noise: {flagged} of {n:,} images flagged for review"
    else:
        headline = (f"'{worst['label']}' has the noisiest labels: about {worst['noise_rate']:.0%} of its "
                    f"{int(worst['n'])} images may be filed wrongly")
    attrs = table.attrs
    run = attrs.get("run_id", "?")
    method = attrs.get("method") or "linear-head"
    subtitle = (f"Estimated share of each class's images whose label is wrong (cleanlab, out-of-sample "
                f"probabilities, run {run}, {method}); n = {n:,} labelled images in {len(table)} classes, "
                f"{estimated} estimated wrong ({share:.1%}), {flagged} flagged for review; faded: classes "
                f"under {MIN_NOISE_N} images")
    return {"headline": headline, "subtitle": subtitle, "n": n, "estimated": estimated, "share": share,
            "worst": worst}
