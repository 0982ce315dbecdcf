"""The int8 calibration images: a few hundred of the run's own training images, chosen by content hash.

The images with the lowest content hashes (SHA-256 of the file, so an
unbiased, deterministic draw across classes) among the run's ``train`` split
are decoded exactly as inference decodes them (:func:`imgcls.inputs.load_images`:
Pillow, the catalog's quarter turns, resized to the model input). The same run
always gets the same images, whoever exports it; export.json lists their hashes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.workspace import Workspace
from imgcls.evaluation import split_rows
from imgcls.inputs import load_images
from imgcls.runs import Run

__all__ = ["DEFAULT_CALIBRATION_IMAGES", "calibration_rows", "calibration_images"]

#: Training images an int8 export is calibrated on (at most; fewer when the run has fewer).
#: NNCF's own default is 300; on the sample's default model (381 training images) every one
#: of them gave 99.1% top-1 agreement on the 3,000-image pool against 99.0% with 300.
DEFAULT_CALIBRATION_IMAGES = 1000


def calibration_rows(workspace: Workspace, run: Run, split: str = "train") -> pd.DataFrame:
    """The run's training rows, one per content hash, lowest hash first (the draw order).

    Args:
        workspace: The workspace holding the run (moved files are found by hash).
        run: The run.
        split: Another split drawn the same way: ``"val"`` holds the images
            int8's accuracy control measures agreement on.

    Returns:
        DataFrame [path, relpath, hash, label, split, turns] in draw order.
    """
    rows = split_rows(run, split, workspace=workspace)
    rows = rows[rows["hash"].astype(str) != ""]
    return rows.sort_values("hash", kind="stable").drop_duplicates("hash").reset_index(drop=True)


def calibration_images(workspace: Workspace, run: Run, n: int = DEFAULT_CALIBRATION_IMAGES,
                       split: str = "train") -> tuple[np.ndarray, list[str]]:
    """Decode the first ``n`` readable images of :func:`calibration_rows`.

    Args:
        workspace: The workspace holding the run.
        run: The run (its ``image_size`` is the decode size).
        n: How many (fewer when the split has fewer readable images).
        split: The split drawn from (:func:`calibration_rows`).

    Returns:
        ``(images, hashes)``: float32 ``(k, h, w, 3)`` pixels 0-255 and their
        content hashes, ``k <= n``.

    Raises:
        ValueError: No image of that split of the run could be decoded.
    """
    n = check_int(n, "calibration_images", 1)
    rows = calibration_rows(workspace, run, split)
    size = run.image_size or tuple(int(s) for s in run.model.input_shape[1:3])
    chunks, hashes, start = [], [], 0
    while len(hashes) < n and start < len(rows):
        part = rows.iloc[start:start + (n - len(hashes))]
        start += len(part)
        images, ok, _errors = load_images(list(part["path"]), size, turns=part["turns"].tolist())
        chunks.append(images[ok])
        hashes += part["hash"].astype(str)[ok].tolist()
    if not hashes:
        raise ValueError(
            f"Run {run.run_id!r} has no readable {split!r} image to quantise an int8 export with "
            f"({len(rows)} {split!r} rows in its splits.parquet). "
            + ("Export f32 or bf16 instead." if split == "train" else "Export int8 without accuracy control instead.")
        )
    return np.concatenate(chunks).astype(np.float32), hashes
