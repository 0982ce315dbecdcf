"""Export a slide deck: every figure (PNG, SVG, PDF), every table (CSV) and a one-page summary.

:func:`export_deck` writes into ``<workspace>/reports/<UTC date>/`` by
default. Files carry no creation dates, so the same data gives the same
bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from imgcls.core.clock import isoformat, utcnow
from imgcls.core.fileio import write_atomic, write_csv
from imgcls.core.slides import slide_style
from imgcls.reports.data import ReportData, _data
from imgcls.reports.figures import build_figures
from imgcls.reports.generation_figures import generation_deck
from imgcls.reports.noise_figures import noise_deck
from imgcls.reports.tables import DEFAULT_CONFIDENCE_BUCKETS, build_tables

__all__ = ["export_deck"]

_FORMATS = ("png", "svg", "pdf")


def export_deck(
    source: Any,
    *,
    out_dir: str | os.PathLike | None = None,
    formats: Sequence[str] = _FORMATS,
    freq: str = "week",
    buckets: Sequence[float] | int = DEFAULT_CONFIDENCE_BUCKETS,
    dpi: int = 150,
    **filters: Any,
) -> pd.DataFrame:
    """Write every figure, every table and a one-page summary for a slide deck.

    With runs in the workspace, the "model generations" section is added:
    the lineage tables and, from two generations on, accuracy and cost by
    generation as slides (:func:`~imgcls.reports.generation_figures.generation_deck`).
    When a label-issue scan stored a noise table in a run folder, the "label
    noise" slide and table are added (:func:`~imgcls.reports.noise_figures.noise_deck`).

    Args:
        source: A log source (usually the workspace): a workspace, workspace
            folder, ``serving.sqlite`` path, TransactionLog or
            :class:`~imgcls.reports.ReportData` (see
            :func:`~imgcls.reports.load_report_data`).
        out_dir: Folder to write into. Default: ``<workspace>/reports/<UTC date>/``
            (for a bare log file: ``reports/<UTC date>/`` beside it). Files
            of the same name are overwritten.
        formats: Figure formats, any of ``"png"``, ``"svg"``, ``"pdf"``.
        freq: Period of the over-time reports: ``"day"``, ``"week"`` or ``"month"``.
        buckets: Confidence buckets (see :func:`~imgcls.reports.accuracy_by_confidence`).
        dpi: Resolution of PNG files.
        **filters: ``first_day``, ``last_day``, ``include_simulated`` (see
            :func:`~imgcls.reports.load_report_data`; only with a log, not with
            ReportData).

    Returns:
        DataFrame [kind ("figure", "table" or "summary"), name, format, path,
        bytes], one row per file written.
    """
    formats = [str(f).lower().lstrip(".") for f in ([formats] if isinstance(formats, str) else formats)]
    bad = [f for f in formats if f not in _FORMATS]
    if bad or not formats:
        raise ValueError(
            f"`formats` must be a non-empty subset of ('png', 'svg', 'pdf'). Received: formats={formats!r}"
        )
    data = _data(source, filters)
    tables = build_tables(data, freq=freq, buckets=buckets)
    if out_dir is None:
        out = data.root / "reports" / utcnow().date().isoformat()
    else:
        out = Path(os.fspath(out_dir)).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, str, str, Path]] = []
    gen_tables, gen_figures, gen_md = generation_deck(data.root)  # the "model generations" section
    noise_tables, noise_figures, noise_md = noise_deck(data.root)  # the "label noise" section, if scanned
    gen_tables, gen_figures, gen_md = {**gen_tables, **noise_tables}, {**gen_figures, **noise_figures}, \
        gen_md + noise_md
    for name, table in {**tables, **gen_tables}.items():
        path = out / f"{name}.csv"
        write_csv(path, table)
        written.append(("table", name, "csv", path))
    figures = {**build_figures(tables), **gen_figures}
    for name, fig in figures.items():
        kind = "summary" if name == "summary" else "figure"
        for i, fmt in enumerate(formats):
            path = out / f"{name}.{fmt}"
            with slide_style():
                fig.savefig(path, format=fmt, dpi=dpi, metadata=_metadata(fmt))
            if i == 0:  # the layout is settled by the first save; keep it for the rest
                fig.set_layout_engine("none")
            written.append((kind, name, fmt, path))
    md_path = out / "summary.md"
    names = [p.name for *_, p in written] + [md_path.name]
    write_atomic(md_path, _summary_markdown(data, tables, names) + gen_md)
    written.append(("summary", "summary", "md", md_path))
    return pd.DataFrame(
        [(k, n, f, str(p), p.stat().st_size) for k, n, f, p in written],
        columns=["kind", "name", "format", "path", "bytes"],
    )


def _summary_markdown(data: ReportData, tables: Mapping[str, pd.DataFrame], files: Sequence[str]) -> str:
    """``summary.md``: the headline numbers as a table, the findings, the files written."""
    summary = tables["summary"]
    lines = ["# Serving report", ""]
    lines.append(f"Generated {isoformat(timespec='seconds')} from `{data.log_path}`.")
    lines += ["", "| Metric | Value |", "|---|---|"]
    for _, row in summary[summary["section"] == "headline"].iterrows():
        lines.append(f"| {row['metric']} | {row['value']} |")
    lines += ["", "## Findings", ""]
    for _, row in summary[summary["section"] == "finding"].iterrows():
        lines.append(f"- **{row['metric']}**: {row['value']}")
    lines += ["", "## Files", ""] + [f"- `{name}`" for name in files] + [""]
    return "\n".join(lines)


def _metadata(fmt: str) -> dict[str, Any] | None:
    """Figure-file metadata without creation dates (same data, same bytes)."""
    if fmt == "pdf":
        return {"CreationDate": None, "Creator": "imgcls"}
    if fmt == "svg":
        return {"Date": None, "Creator": "imgcls"}
    return None
