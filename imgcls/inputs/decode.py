"""Decoding image files exactly alike everywhere, with bad files reported, not fatal.

Every pipeline (:mod:`imgcls.inputs.pipeline`) and :func:`load_images` decode
with :func:`imgcls.core.read_image_resized` (Pillow), inside
``tf.numpy_function`` run in parallel by ``tf.data`` (``AUTOTUNE``), rather
than with ``tf.io.decode_image`` + ``tf.image.resize``. Reasons:

1. *Same pixels everywhere.* Bulk identification, serving and training must see
   an image exactly alike; the native TF decoder ignores EXIF orientation,
   does not read CMYK / 16-bit / palette-with-alpha / TIFF / most WebP
   variants the way Pillow does, and resizes with a different filter.
2. *Bad files are reported, not fatal.* A file that was fine when the catalog
   was made and broke later (deleted, truncated, replaced by junk) raises a
   clear :class:`imgcls.core.ImageError` in Python; it is dropped from the
   stream and ``(path, reason)`` is appended to ``skipped``. With native ops
   the only option is ``ignore_errors()``, which loses which file and why.
3. *It is cheap enough.* Rows are decoded in chunks of 16 per Python call
   (so the per-call cost of ``tf.numpy_function`` is paid once per chunk),
   chunks in parallel. Pillow releases the GIL while decoding and resizing,
   so parallel calls overlap. Training (:func:`imgcls.training.train`)
   defaults to ``cache="auto"``: when the decoded images fit in memory
   (:func:`imgcls.inputs.resolve_cache`) only the first epoch decodes.
   ``benchmarks/bench_pipeline_overhead.py`` measures epochs of the sample's
   default model fed from files vs from images already in memory, with and
   without the cache and with the native decoder for comparison
   (``benchmarks/results/pipeline_overhead.json``).

**Turns.** A ``turns`` value (quarter turns counter-clockwise, ``np.rot90``
convention) is applied at decode, before the resize and before any
augmentation.

**Small subjects.** While decoding for training, the small-subject flag
(:func:`imgcls.inputs.is_small_subject`) can be computed on the decoded,
resized image (see :mod:`imgcls.inputs.pipeline`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from imgcls.core.images import ImageError, read_image_resized
from imgcls.inputs.subject import is_small_subject

__all__ = ["parse_image_size", "load_images"]

_AUTOTUNE = tf.data.AUTOTUNE
#: Rows decoded per tf.numpy_function call.
_DECODE_CHUNK = 16


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------
def parse_image_size(image_size: Any) -> tuple[int, int]:
    """``(height, width)`` from one int (a square), ``(h, w)`` or a model's ``(h, w, 3)``.

    Raises:
        ValueError: ``image_size`` is none of these, or has a side < 1.
    """
    size = image_size
    if isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_)):
        size = (int(size), int(size))
    try:
        size = tuple(size)
    except TypeError:
        size = None
    if size is not None and len(size) == 3 and size[2] == 3:
        size = size[:2]
    if (
        size is None
        or len(size) != 2
        or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and s >= 1
            for s in size
        )
    ):
        raise ValueError(
            "`image_size` must be (height, width) of positive ints (or one int for a "
            "square, or (height, width, 3) as in a model's input shape), e.g. "
            f"image_size=(64, 64). Received: image_size={image_size!r}"
        )
    return int(size[0]), int(size[1])


def _skipped_list(skipped: Any) -> list | None:
    if skipped is not None and not isinstance(skipped, list):
        raise ValueError(
            "`skipped` must be a list (files that fail to decode are appended to it as "
            f"(path, reason) pairs) or None. Received: skipped={type(skipped).__name__}"
        )
    return skipped


def _turns_array(turns: Any, n: int, name: str = "turns") -> np.ndarray:
    if turns is None:
        return np.zeros(n, dtype=np.int32)
    values = pd.Series(turns).fillna(0)
    try:
        arr = values.astype("int64").to_numpy()
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must hold ints 0-3 (quarter turns counter-clockwise). "
            f"Received values such as {list(values.unique()[:5])!r}"
        ) from None
    if len(arr) != n:
        raise ValueError(f"`{name}` must have one value per path ({n}). Received: {len(arr)} values")
    bad = sorted(set(arr[(arr < 0) | (arr > 3)].tolist()))
    if bad:
        raise ValueError(
            f"`{name}` must hold ints 0-3 (quarter turns counter-clockwise). Received: {bad[:5]!r}"
        )
    return arr.astype(np.int32)


def _paths_list(paths: Any) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        raise ValueError(
            "`paths` must be a list of image paths, not a single path. "
            f"Received: paths={paths!r}; wrap it: paths=[{str(paths)!r}]"
        )
    return [os.fspath(p) for p in paths]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImageError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}"


def _report(skipped: list | None, path: str, reason: str) -> None:
    # Reported once per (path, reason), not once per epoch.
    if skipped is not None and (path, reason) not in skipped:
        skipped.append((path, reason))



# --------------------------------------------------------------------------
# Decode
# --------------------------------------------------------------------------
def _decode_one(name: str, size: tuple[int, int], turns: int) -> np.ndarray:
    image = np.asarray(read_image_resized(name, size, turns=turns))
    if image.shape != (size[0], size[1], 3) or image.dtype != np.uint8:
        raise ValueError(
            f"decoded to shape {image.shape} {image.dtype}, expected ({size[0]}, {size[1]}, 3) uint8"
        )
    return image


def _chunk_decoder(size: tuple[int, int], skipped: list | None, detect_small: bool):
    """A Python function for tf.numpy_function that decodes a chunk of rows.

    It never raises: rows whose file fails to decode are left out of the
    result and reported to ``skipped``. Small-subject flags computed by the
    rule are remembered per (path, turns) for the later epochs.
    """
    height, width = size
    remembered: dict[tuple[str, int], bool] = {}

    def decode(paths: np.ndarray, turns: np.ndarray, small: np.ndarray, keys: np.ndarray):
        n = len(paths)
        images = np.empty((n, height, width, 3), dtype=np.uint8)
        keep = np.zeros(n, dtype=bool)
        flags = small > 0
        for i in range(n):
            name = paths[i].decode("utf-8", "surrogateescape")
            try:
                images[i] = _decode_one(name, size, int(turns[i]))
                if small[i] < 0 and detect_small:
                    key = (name, int(turns[i]))
                    if key not in remembered:
                        remembered[key] = is_small_subject(images[i])
                    flags[i] = remembered[key]
            except Exception as exc:  # noqa: BLE001 - a bad file must never stop training
                _report(skipped, name, _reason(exc))
                continue
            keep[i] = True
        if keep.all():
            return images, keys, flags
        return images[keep], keys[keep], flags[keep]

    return decode


def _decode_chunks(
    ds: tf.data.Dataset, size: tuple[int, int], skipped: list | None, detect_small: bool, key_dtype
) -> tf.data.Dataset:
    """(path, turns, small, key) rows -> decoded (image uint8, key, small bool) rows.

    Rows are decoded in chunks of ``_DECODE_CHUNK`` per ``tf.numpy_function``
    call (one Python call and one tensor hand-over per chunk, not per image),
    chunks in parallel (``AUTOTUNE``) and in order; bad files drop out.
    """
    decode = _chunk_decoder(size, skipped, detect_small)

    def fn(paths, turns, small, keys):
        images, keys, flags = tf.numpy_function(
            decode, [paths, turns, small, keys], [tf.uint8, key_dtype, tf.bool],
            name="read_image_resized",
        )
        images.set_shape((None, size[0], size[1], 3))
        keys.set_shape((None,))
        flags.set_shape((None,))
        return images, keys, flags

    ds = ds.batch(_DECODE_CHUNK)
    ds = ds.map(fn, num_parallel_calls=_AUTOTUNE, deterministic=True)
    return ds.unbatch()


def load_images(
    paths: Sequence[str | os.PathLike],
    image_size: Any,
    *,
    turns: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode images into one numpy array, exactly as the pipelines do.

    Args:
        paths: Image paths.
        image_size: ``(height, width)`` (or one int for a square).
        turns: Optional quarter turns CCW per path, applied before resizing.

    Returns:
        ``(images, ok, errors)``: ``images`` uint8 ``(n, h, w, 3)`` in the
        order of ``paths`` (zeros where decoding failed), ``ok`` bool ``(n,)``,
        ``errors`` a list of ``(path, reason)`` for the failures.
    """
    names = _paths_list(paths)
    height, width = parse_image_size(image_size)
    quarter = _turns_array(turns, len(names))
    images = np.zeros((len(names), height, width, 3), dtype=np.uint8)
    ok = np.zeros(len(names), dtype=bool)
    errors: list[tuple[str, str]] = []
    for i, (name, k) in enumerate(zip(names, quarter)):
        try:
            images[i] = _decode_one(name, (height, width), int(k))
            ok[i] = True
        except Exception as exc:  # noqa: BLE001 - reported in `errors`
            errors.append((name, _reason(exc)))
    return images, ok, errors
