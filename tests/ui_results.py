"""Shared pieces of the imgcls.ui tests: a small real workspace and a results
table shaped like imgcls.bulk.identify's over its pool."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from imgcls.bulk import result_columns
from imgcls.core import file_hash, open_workspace

CLASSES = ["cat", "cow", "dog", "horse"]


def write_random_png(path: Path, seed: int, size: int = 32) -> Path:
    """A random 32x32 (or ``size``) PNG with some structure."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    pixels[: size // 2] = rng.integers(0, 256, 3, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def make_workspace(root: Path):
    """A small workspace: 4 classes x 3 images, 60 pool images in nested folders."""
    ws = open_workspace(root)
    for k, cls in enumerate(CLASSES):
        for i in range(3):
            write_random_png(ws.library / cls / f"{cls}_{i}.png", seed=100 * k + i)
    for i in range(60):
        write_random_png(ws.unlabelled / f"batch_{i // 25}" / f"img_{i:03d}.png", seed=1000 + i)
    return ws


def results_for(ws, n: int | None = None) -> pd.DataFrame:
    """A results table shaped like imgcls.bulk.identify's, over the pool."""
    paths = sorted(str(p) for p in ws.unlabelled.rglob("*.png"))[:n]
    rng = np.random.default_rng(0)
    rows = []
    for i, p in enumerate(paths):
        probs = rng.dirichlet(np.ones(len(CLASSES)))
        order = np.argsort(-probs)
        row = {"path": p, "relpath": os.path.relpath(p, ws.unlabelled), "hash": file_hash(p)}
        for j in range(3):
            row[f"top{j + 1}_class"] = CLASSES[order[j]]
            row[f"top{j + 1}_score"] = float(probs[order[j]])
        row["entropy"] = float(-(probs * np.log(probs)).sum())
        row["margin"] = row["top1_score"] - row["top2_score"]
        row.update(model="simple_cnn", run_id="r1", time=pd.Timestamp.now(tz="UTC"))
        rows.append(row)
    return pd.DataFrame(rows, columns=result_columns(3))


def snapshot(ws) -> dict[str, str]:
    """sha256 of every file of the workspace, journal and caches excepted."""
    out = {}
    for p in sorted(ws.root.rglob("*")):
        rel = p.relative_to(ws.root)
        if p.is_file() and rel.parts[0] != ".imgcls" and p != ws.journal:
            out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
