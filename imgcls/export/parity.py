"""The parity report: an exported model against the run's Keras model, image by image.

Both runtimes predict the very same decoded batches (decoded once, as
inference decodes: :func:`imgcls.inputs.make_inference_dataset`), so every
difference is the engine's and the precision's, never the pixels'.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from imgcls.core.workspace import Workspace
from imgcls.evaluation import split_rows
from imgcls.inputs import make_inference_dataset
from imgcls.runs import Run
from imgcls.runtimes import Runtime

__all__ = ["PARITY_SPLITS", "MAX_LISTED", "parity_rows", "parity_report", "parity_table"]

#: The splits of the run's splits.parquet a parity report measures on.
PARITY_SPLITS = ("test", "benchmark")
#: Disagreeing images listed by name in a report (all are counted).
MAX_LISTED = 20


def parity_rows(workspace: Workspace, run: Run) -> dict[str, pd.DataFrame]:
    """The images of each of :data:`PARITY_SPLITS` in the run's snapshot (splits.parquet).

    The test rows come from :func:`imgcls.evaluation.split_rows` (moved files
    found by hash); the benchmark rows are the snapshot's ``benchmark`` rows,
    i.e. the benchmark images of the run's own classes when it was trained.
    """
    out = {"test": split_rows(run, "test", workspace=workspace)}
    snap = run.splits
    bench = snap[(snap["split"] == "benchmark") & snap["label"].isin(run.classes)].copy()
    if "turns" not in bench:
        bench["turns"] = 0
    bench["turns"] = pd.to_numeric(bench["turns"], errors="coerce").fillna(0).astype(int)
    out["benchmark"] = bench.reset_index(drop=True)
    return out


def _summary(labels: np.ndarray, ref: np.ndarray, cand: np.ndarray, reference: str, candidate: str) -> dict:
    n = len(labels)
    known = labels >= 0
    if n == 0:
        return {"n": 0, "n_labelled": 0, "top1_agreement": None, "disagreements": 0,
                f"accuracy_{reference}": None, f"accuracy_{candidate}": None,
                "max_abs_diff": None, "mean_abs_diff": None}
    r_top, c_top = ref.argmax(axis=1), cand.argmax(axis=1)
    diff = np.abs(ref.astype(np.float64) - cand.astype(np.float64))
    return {
        "n": int(n),
        "n_labelled": int(known.sum()),
        "top1_agreement": float(np.mean(r_top == c_top)),
        "disagreements": int(np.sum(r_top != c_top)),
        f"accuracy_{reference}": float(np.mean(r_top[known] == labels[known])) if known.any() else None,
        f"accuracy_{candidate}": float(np.mean(c_top[known] == labels[known])) if known.any() else None,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
    }


def parity_report(reference: Runtime, candidate: Runtime, rows: Mapping[str, pd.DataFrame], *,
                  batch_size: int = 32) -> dict:
    """Top-1 agreement, accuracy of each and score differences of two runtimes on the same images.

    Args:
        reference: The runtime to match (the run's Keras model).
        candidate: The runtime under test (an export).
        rows: ``{split: DataFrame [path, label, turns]}`` (e.g. :func:`parity_rows`;
            ``label`` and ``turns`` are optional);
            every image counts for agreement, those whose ``label`` is one of
            the classes (``n_labelled``) for accuracy.
        batch_size: Images decoded and predicted per batch.

    Returns:
        ``{"reference", "candidate", "splits": {split: summary}, "overall": summary,
        "disagreeing": [{"path", "split", "label", reference, candidate}], "skipped": n}``
        where a summary is ``{"n", "n_labelled", "top1_agreement", "disagreements",
        "accuracy_<reference>", "accuracy_<candidate>", "max_abs_diff",
        "mean_abs_diff"}`` (scores are softmax probabilities, not calibrated;
        None where there were no images).
    """
    ref_name = reference.precision if reference.name == candidate.name else reference.name
    cand_name = candidate.name if reference.name != candidate.name else candidate.precision
    classes = list(reference.classes)
    index = {c: i for i, c in enumerate(classes)}
    splits, listed = {}, []
    all_labels, all_ref, all_cand = [], [], []
    n_skipped = 0
    for split, table in rows.items():
        table = table.reset_index(drop=True)
        if "label" not in table:
            table = table.assign(label="")
        skipped: list = []
        ref_parts, cand_parts, kept = [], [], []
        if len(table):
            ds = make_inference_dataset(list(table["path"]), image_size=reference.input_size,
                                        batch_size=batch_size, skipped=skipped,
                                        turns=table["turns"].tolist() if "turns" in table else None)
            for images, idx in ds:
                x = images.numpy()
                ref_parts.append(reference.predict(x))
                cand_parts.append(candidate.predict(x))
                kept.append(idx.numpy())
        kept_idx = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
        labels = table["label"].map(index).fillna(-1).to_numpy(dtype=np.int64)[kept_idx]
        ref = np.concatenate(ref_parts) if ref_parts else np.zeros((0, len(classes)), np.float32)
        cand = np.concatenate(cand_parts) if cand_parts else np.zeros((0, len(classes)), np.float32)
        splits[split] = {**_summary(labels, ref, cand, ref_name, cand_name), "skipped": len(skipped)}
        n_skipped += len(skipped)
        for j in np.flatnonzero(ref.argmax(axis=1) != cand.argmax(axis=1)) if len(ref) else []:
            if len(listed) < MAX_LISTED:
                listed.append({"path": str(table["path"].iloc[kept_idx[j]]), "split": split,
                               "label": str(table["label"].iloc[kept_idx[j]]),
                               ref_name: classes[int(ref[j].argmax())],
                               cand_name: classes[int(cand[j].argmax())]})
        all_labels.append(labels)
        all_ref.append(ref)
        all_cand.append(cand)
    labels = np.concatenate(all_labels) if all_labels else np.zeros(0, np.int64)
    ref = np.concatenate(all_ref) if all_ref else np.zeros((0, len(classes)), np.float32)
    cand = np.concatenate(all_cand) if all_cand else np.zeros((0, len(classes)), np.float32)
    return {
        "reference": {"name": ref_name, **reference.info()},
        "candidate": {"name": cand_name, **candidate.info()},
        "splits": splits,
        "overall": {**_summary(labels, ref, cand, ref_name, cand_name), "skipped": n_skipped},
        "disagreeing": listed,
    }


def parity_table(report: Mapping) -> pd.DataFrame:
    """One row per split and one ``overall`` of a parity report (for printing)."""
    rows = [{"split": s, **v} for s, v in report.get("splits", {}).items()]
    rows.append({"split": "overall", **report.get("overall", {})})
    return pd.DataFrame(rows)
