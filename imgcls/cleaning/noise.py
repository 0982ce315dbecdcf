"""The per-class label-noise table: estimated with cleanlab, stored in the run folder.

:func:`noise_table` estimates, from out-of-sample probabilities, the share
of each class's images that carry a wrong label (cleanlab's confident joint,
``cleanlab.dataset.rank_classes_by_label_quality``). A label-issue scan
(:func:`imgcls.cleaning.find_label_issues`) writes it to
``runs/<id>/label_noise.csv`` with a summary of the scan in
``runs/<id>/label_issues.json``, so a report can show it without
TensorFlow: :func:`read_label_noise` reads both (pandas only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.cleaning._requires import cleanlab_module
from imgcls.core import Workspace
from imgcls.core.fileio import read_json, write_csv, write_json
from imgcls.runs import Run, load_run

__all__ = ["LABEL_NOISE_FILE", "LABEL_ISSUES_FILE", "NOISE_COLUMNS", "noise_table", "write_label_noise",
           "read_label_noise"]

#: The per-class noise table in a run folder.
LABEL_NOISE_FILE = "label_noise.csv"
#: The summary of the label-issue scan that wrote it (method, embeddings, counts).
LABEL_ISSUES_FILE = "label_issues.json"
#: Columns of :func:`noise_table`.
NOISE_COLUMNS = ["label", "n", "flagged", "estimated_issues", "noise_rate", "inverse_noise_rate",
                 "label_quality"]


def noise_table(
    labels: Sequence[str],
    probs: Any,
    classes: Sequence[str],
    *,
    flagged: Sequence[bool] | None = None,
) -> pd.DataFrame:
    """Estimated label noise per class, from out-of-sample probabilities.

    Args:
        labels: The given class of each image (names in ``classes``).
        probs: ``(n, len(classes))`` out-of-sample probabilities.
        classes: The class names, in the column order of ``probs``.
        flagged: Whether each image was flagged as a label issue (counted per class).

    Returns:
        DataFrame :data:`NOISE_COLUMNS`, one row per class, noisiest first:
        ``n`` images given the class; ``flagged`` of them flagged;
        ``estimated_issues`` and ``noise_rate`` the estimated count and share
        of them whose true class is another (cleanlab's "Label Issues",
        "Label Noise"); ``inverse_noise_rate`` the share of the images truly
        of the class that were given another label; ``label_quality`` the
        estimated p(true = class | given = class).
    """
    rank_classes_by_label_quality = cleanlab_module("dataset").rank_classes_by_label_quality

    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    y_text = [str(v) for v in labels]
    unknown = sorted(set(y_text) - set(index))
    if unknown:
        raise ValueError(f"`labels` holds classes not in `classes`: {unknown[:10]}")
    y = np.array([index[v] for v in y_text], dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (len(y), len(classes)):
        raise ValueError(f"`probs` must have shape ({len(y)}, {len(classes)}). Received: {p.shape}")
    ranked = rank_classes_by_label_quality(labels=y, pred_probs=p).set_index("Class Index")
    n = np.bincount(y, minlength=len(classes))
    flags = np.zeros(len(y), bool) if flagged is None else np.asarray(flagged, dtype=bool)
    out = pd.DataFrame({
        "label": classes,
        "n": n.astype(np.int64),
        "flagged": np.bincount(y, weights=flags.astype(float), minlength=len(classes)).astype(np.int64),
        "estimated_issues": [int(round(float(ranked.at[i, "Label Issues"]))) for i in range(len(classes))],
        "noise_rate": [float(ranked.at[i, "Label Noise"]) for i in range(len(classes))],
        "inverse_noise_rate": [float(ranked.at[i, "Inverse Label Noise"]) for i in range(len(classes))],
        "label_quality": [float(ranked.at[i, "Label Quality Score"]) for i in range(len(classes))],
    }, columns=NOISE_COLUMNS)
    out = out.sort_values(["noise_rate", "label"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)


def write_label_noise(run: Run | str | os.PathLike, table: pd.DataFrame, summary: Mapping[str, Any], *,
                      workspace: Workspace | str | os.PathLike | None = None) -> Path:
    """Store a noise table and its scan's summary in the run folder (atomically).

    Args:
        run: The run cleaned for (a :class:`~imgcls.runs.Run` or reference).
        table: From :func:`noise_table`.
        summary: JSON-able facts about the scan (method, embeddings run, counts).
        workspace: Needed when ``run`` is a run id.

    Returns:
        The path of ``label_noise.csv``.
    """
    the_run = load_run(run, workspace=workspace)
    missing = [c for c in NOISE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"`table` must have the columns of noise_table(); missing {missing}.")
    path = the_run.path / LABEL_NOISE_FILE
    write_csv(path, table[NOISE_COLUMNS])
    write_json(the_run.path / LABEL_ISSUES_FILE, dict(summary))
    return path


def read_label_noise(run: Run | str | os.PathLike, *,
                     workspace: Workspace | str | os.PathLike | None = None) -> pd.DataFrame | None:
    """The noise table a label-issue scan stored in a run folder, or None if there is none.

    Args:
        run: A :class:`~imgcls.runs.Run` or a reference accepted by :func:`~imgcls.runs.load_run`.
        workspace: Needed when ``run`` is a run id, "production" or "latest".

    Returns:
        DataFrame :data:`NOISE_COLUMNS`; ``attrs`` holds the scan's summary
        (``method``, ``embeddings_run``, ``n``, ``n_issues``, ``created``, ...).
    """
    the_run = load_run(run, workspace=workspace)
    path = the_run.path / LABEL_NOISE_FILE
    if not path.is_file():
        return None
    table = pd.read_csv(path, keep_default_na=False, dtype={"label": str})
    table.attrs.update({k: v for k, v in (read_json(the_run.path / LABEL_ISSUES_FILE, {}) or {}).items()
                        if isinstance(v, (str, int, float, bool)) or v is None})
    return table
