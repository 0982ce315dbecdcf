"""Provenance of a run: the library snapshot it saw and the software that made it.

Both go into a run's ``config.json`` (keys ``library`` and ``versions``).

This module never imports TensorFlow (versions are read from package metadata).
"""

from __future__ import annotations

import os
import platform

import pandas as pd

__all__ = ["versions", "library_summary"]


def versions() -> dict[str, str]:
    """Versions of imgcls, Keras, TensorFlow, numpy, pandas and Python (for config.json)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("imgcls", "keras", "tensorflow", "numpy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def library_summary(splits: pd.DataFrame | None, *, library: str | os.PathLike | None = None) -> dict:
    """A small JSON-able summary of a library snapshot (for config.json).

    Args:
        splits: Rows with at least ``label`` and ``split`` columns.
        library: The library folder the snapshot was taken from.

    Returns:
        ``{"library", "n_images", "n_classes", "per_split": {split: n},
        "per_class": {label: {split: n}}}``.
    """
    if splits is None or len(splits) == 0:
        return {"library": os.fspath(library) if library else None, "n_images": 0,
                "n_classes": 0, "per_split": {}, "per_class": {}}
    per_split = {str(k): int(v) for k, v in splits["split"].value_counts().sort_index().items()}
    table = pd.crosstab(splits["label"], splits["split"])
    per_class = {
        str(label): {str(s): int(n) for s, n in row.items() if n}
        for label, row in table.iterrows()
    }
    return {
        "library": os.fspath(library) if library else None,
        "n_images": int(len(splits)),
        "n_classes": int(splits["label"].nunique()),
        "per_split": per_split,
        "per_class": per_class,
    }
