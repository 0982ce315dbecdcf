"""How much of the frame an image's subject fills: the small-subject rule (NumPy only).

The write-up's first augmentation rule: an image whose subject is already
small must not be zoomed out (that would make it smaller still).
:func:`subject_fraction` measures how much of the frame the subject occupies
with a cheap, deterministic rule that can be checked by eye, and
:func:`is_small_subject` applies a threshold to it. The augmentation
(:func:`imgcls.inputs.routed_augmentation`) and the training pipeline use the
flag to give those images a zoom-in-only zoom.

No TensorFlow or Keras here: NumPy and Pillow only.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from PIL import Image

from imgcls.core.checks import check_number
from imgcls.core.images import read_image

__all__ = ["SMALL_SUBJECT_THRESHOLD", "SUBJECT_TOLERANCE", "subject_fraction", "is_small_subject"]

#: A subject whose bounding box covers less than this fraction of the image is "small".
SMALL_SUBJECT_THRESHOLD = 0.2
#: A pixel is foreground when a channel differs from the background by more than this (0..255).
SUBJECT_TOLERANCE = 30.0

#: subject_fraction averages pixel blocks down to at most this many on the longer side.
_RULE_RESOLUTION = 128


def _as_image(image: Any) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(
            "`image` must be an array of shape (height, width, 3) (RGB, 0..255), "
            "(height, width) or (height, width, 1|4), or a path to an image file. "
            f"Received: an array of shape {arr.shape}"
        )
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return arr


def subject_fraction(
    image: Any, *, tolerance: float = SUBJECT_TOLERANCE, trim: float = 0.01
) -> float:
    """How much of the frame the subject occupies, from 0 to 1.

    The rule (deterministic, cheap, documented so it can be checked by eye):

    1. **Background colour**: the per-channel median (upper median for an even
       count) of the image's border
       (the outer ring, ``max(1, 2%)`` of the shorter side wide).
    2. **Foreground**: pixels where any channel differs from that colour by
       more than ``tolerance`` (on the 0..255 scale); an isolated foreground
       pixel (none of its 4 neighbours is foreground) is a speck, not subject.
    3. **Subject box**: the bounding box of the foreground pixels, after
       trimming ``trim`` (1%) of them on each side along each axis so that a
       few specks of noise do not stretch the box.
    4. **Fraction** = box area / image area. No foreground at all gives 0.0.

    Before step 1 the image is averaged in blocks of 2x2 pixels (larger
    blocks for images over 256 pixels, so that at most 128 remain on the
    longer side; photos over 1024 pixels are grid-sampled first). That takes
    sensor and JPEG noise well under the tolerance, bounds the cost (about
    0.1 ms at 64x64, under 1 ms at 299x299, a few ms for a large photo) and
    moves the box edges by at most one block.

    The fraction is unchanged by 90-degree turns and by resizing (up to
    resampling blur), so it can be measured on a decoded, resized image. It
    is meant for subjects on a fairly plain background (silhouettes, studio or
    sky shots); on a busy background most pixels count as foreground, the box
    covers the frame and the image is simply not treated as small (the safe
    side: it keeps the normal zoom range).

    Args:
        image: RGB array ``(H, W, 3)`` in 0..255 (uint8 or float), a grey
            ``(H, W)`` array, or a path to an image file.
        tolerance: Foreground threshold, 0..255 scale.
        trim: Fraction of foreground pixels ignored at each end of each axis,
            in ``[0, 0.5)``.

    Returns:
        The fraction of the image area covered by the subject's bounding box.
    """
    arr = _as_image(image)
    check_number(tolerance, "tolerance", 0.0, 256.0, high_open=True,
                 fix="give a pixel difference on the 0..255 scale, e.g. tolerance=30")
    check_number(trim, "trim", 0.0, 0.5, high_open=True,
                 fix="give a fraction of foreground pixels, e.g. trim=0.01")
    arr = _rule_pixels(arr)
    height, width, channels = arr.shape
    ring = max(1, int(round(0.02 * min(height, width))))
    border = np.concatenate(
        [
            arr[:ring].reshape(-1, channels),
            arr[-ring:].reshape(-1, channels),
            arr[:, :ring].reshape(-1, channels),
            arr[:, -ring:].reshape(-1, channels),
        ]
    )
    middle = len(border) // 2
    mask = np.zeros((height, width), dtype=bool)
    for c in range(channels):  # per channel: cheaper than reducing over the short last axis
        background = np.partition(border[:, c], middle)[middle]
        mask |= np.abs(arr[:, :, c] - background) > tolerance
    mask &= _has_neighbour(mask)  # isolated specks are noise, not subject
    total = int(np.count_nonzero(mask))
    if total == 0:
        return 0.0
    y0, y1 = _trimmed_span(np.count_nonzero(mask, axis=1), total, trim)
    x0, x1 = _trimmed_span(np.count_nonzero(mask, axis=0), total, trim)
    return float((y1 - y0 + 1) * (x1 - x0 + 1)) / float(height * width)


def _rule_pixels(arr: np.ndarray) -> np.ndarray:
    """Average f x f blocks (f >= 2, longer side <= _RULE_RESOLUTION), as float32."""
    step = max(arr.shape[:2]) // (4 * _RULE_RESOLUTION)
    if step > 1:  # very large: every step-th pixel first, then block averages
        arr = arr[::step, ::step]
    height, width, channels = arr.shape
    if height < 2 or width < 2:
        return arr.astype(np.float32)
    factor = max(2, math.ceil(max(height, width) / _RULE_RESOLUTION))
    factor = min(factor, height, width)
    if arr.dtype == np.uint8 and channels in (1, 3):
        # Pillow's box reduction: one fast C pass, partial edge blocks averaged too.
        plane = Image.fromarray(np.ascontiguousarray(arr if channels == 3 else arr[:, :, 0]))
        out = np.asarray(plane.reduce(factor), dtype=np.float32)
        return out if out.ndim == 3 else out[:, :, None]
    h, w = height // factor, width // factor
    blocks = arr[: h * factor, : w * factor].astype(np.float32)
    return blocks.reshape(h, factor, w, factor, channels).mean(axis=(1, 3))


def _has_neighbour(mask: np.ndarray) -> np.ndarray:
    """True where at least one of the 4 neighbours is True."""
    out = np.zeros_like(mask)
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _trimmed_span(counts: np.ndarray, total: int, trim: float) -> tuple[int, int]:
    """First and last index of `counts` after dropping `trim` of the mass at each end."""
    cumulative = np.cumsum(counts)
    cut = trim * total
    first = int(np.searchsorted(cumulative, cut, side="right"))
    last = int(np.searchsorted(cumulative, total - cut, side="left"))
    first = min(first, len(counts) - 1)
    last = max(min(last, len(counts) - 1), first)
    return first, last


def is_small_subject(
    image: Any, *, threshold: float = SMALL_SUBJECT_THRESHOLD, tolerance: float = SUBJECT_TOLERANCE
) -> bool:
    """Whether the subject is already small, so the image must not be zoomed out.

    ``subject_fraction(image) < threshold`` (see :func:`subject_fraction` for
    the rule). With the default 0.2, a subject whose bounding box covers less
    than a fifth of the frame (e.g. 28x28 pixels in a 64x64 image) is small.

    Args:
        image: RGB array ``(H, W, 3)`` in 0..255, or a path to an image file.
        threshold: Fraction of the image area, in ``(0, 1]``.
        tolerance: Foreground threshold passed to :func:`subject_fraction`.

    Returns:
        True if the subject's box covers less than ``threshold`` of the image.
    """
    threshold = check_number(threshold, "threshold", 0.0, 1.0, low_open=True,
                             fix="give a fraction of the image area, e.g. threshold=0.2")
    return subject_fraction(image, tolerance=tolerance) < threshold
