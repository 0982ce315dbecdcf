"""The label-noise slide: estimated share of wrongly labelled images per class (no TensorFlow).

:func:`plot_label_noise` draws the table of
:func:`imgcls.reports.label_noise_report` as one 16:9 slide in the package's
style (:mod:`imgcls.core.slides`): the finding as the title
(:func:`imgcls.reports.noise_findings`), n in the subtitle; classes with
fewer than :data:`~imgcls.reports.noise.MIN_NOISE_N` images are faded and
never headline. :func:`noise_deck` is the deck's section. matplotlib is
imported only when a figure is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core.slides import ACCENT, MUTED, NEUTRAL, fade_weak, new_slide, no_data, percent_axis, style_axes
from imgcls.reports.noise import MIN_NOISE_N, label_noise_report, noise_findings
from imgcls.reports.rules import reliable

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_label_noise", "noise_deck"]

#: Classes drawn at most (the noisiest).
MAX_CLASSES = 15


def plot_label_noise(table: pd.DataFrame) -> "Figure":
    """Estimated label noise per class, noisiest on top.

    Args:
        table: From :func:`imgcls.reports.label_noise_report`.
    """
    findings = noise_findings(table)
    shown = table.sort_values(["noise_rate", "n"], ascending=[False, False], kind="stable").head(MAX_CLASSES)
    subtitle = findings["subtitle"] + (f"; the {MAX_CLASSES} noisiest of {len(table)} classes shown"
                                       if len(table) > MAX_CLASSES else "")
    fig, ax = new_slide(findings["headline"], subtitle)
    if not len(shown) or not findings["n"]:
        no_data(ax, "No label-issue scan yet: run imgcls label-issues")
        return fig
    shown = shown.iloc[::-1]  # barh draws bottom-up: noisiest on top
    y = np.arange(len(shown), dtype=float)
    small = (shown["n"] < MIN_NOISE_N).to_numpy()
    rates = shown["noise_rate"].astype(float).to_numpy()
    ax.barh(y, rates, color=fade_weak(ACCENT, reliable(shown["n"], min_n=MIN_NOISE_N)), height=0.7)  # reports.rules
    top = max(float(rates.max()), 0.05)
    for yi, r, row, s in zip(y, rates, shown.itertuples(), small):
        ax.annotate(f"{r:.0%}  ({int(row.estimated_issues)} of {int(row.n)})", (r, yi), textcoords="offset points",
                    xytext=(6, 0), va="center", fontsize=13, color=MUTED if s else NEUTRAL)
    ax.set_yticks(y)
    ax.set_yticklabels([str(v) for v in shown["label"]])
    ax.set_xlim(0, top * 1.35)
    if top * 1.35 > 1:  # room for the labels, but no tick past 100%
        ax.set_xticks(np.linspace(0, 1, 6))
    style_axes(ax, xlabel="estimated share of the class's images with a wrong label", grid="x")
    percent_axis(ax, "x")
    return fig


def noise_deck(workspace: Any) -> tuple[dict[str, pd.DataFrame], dict[str, "Figure"], str]:
    """The deck's "label noise" section: its table, its slide and its summary lines.

    Args:
        workspace: The workspace (or its folder).

    Returns:
        ``({"label_noise": DataFrame}, {"label_noise": Figure}, Markdown)``;
        three empty values when no run has a noise table.
    """
    table = label_noise_report(workspace)
    if table is None:
        return {}, {}, ""
    findings = noise_findings(table)
    lines = ["", "## Label noise", "", f"- **{findings['headline']}** ({findings['subtitle']}).", ""]
    return {"label_noise": table}, {"label_noise": plot_label_noise(table)}, "\n".join(lines)
