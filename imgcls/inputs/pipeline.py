"""tf.data input pipelines built from catalog rows.

* :func:`make_dataset` — ``(images, labels)`` batches for ``model.fit`` /
  ``evaluate`` from catalog rows (``path``, ``label``, optional ``turns`` and
  ``small_subject``): parallel decode, resize to the model input, shuffle and
  augmentation in training only, batching, prefetch, optional cache.
* :func:`make_inference_dataset` — ``(images, index)`` batches for prediction
  over a list of paths (bulk identification); ``index`` maps each image back to
  its position in the list, so unreadable files can simply be dropped.

Both decode as :mod:`imgcls.inputs.decode` explains (Pillow inside
``tf.numpy_function``, in parallel; bad files dropped and reported in
``skipped``); :func:`imgcls.inputs.load_images` is the same decode into one
numpy array.

**Small subjects.** In training with an augmentation, rows whose
``small_subject`` column is true get zoom-in-only zoom
(:func:`imgcls.inputs.routed_augmentation`). If the column is absent, the flag
is computed at decode time with :func:`imgcls.inputs.is_small_subject` on the
decoded, resized image, inside the parallel decode: a few numpy passes over
at most 128x128 averaged pixels, about 0.1-0.3 ms per image whatever the input
size, paid in the first epoch only (flags are remembered per path and turns
for the later epochs of the same dataset, and cached with the images when
``cache`` is on). Give the column (e.g. all ``False``) to skip the computation
or to override the rule.

**Turns.** A ``turns`` column (quarter turns counter-clockwise, ``np.rot90``
convention) is applied at decode, before the resize and before any
augmentation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from imgcls.core.checks import check_int
from imgcls.inputs.augment import routed_augmentation
from imgcls.inputs.decode import (
    _AUTOTUNE,
    _decode_chunks,
    _paths_list,
    _skipped_list,
    _turns_array,
    parse_image_size,
)

__all__ = ["make_dataset", "make_inference_dataset", "resolve_cache", "SHUFFLE_BUFFER", "AUTO_CACHE_BYTES"]

#: Maximum shuffle buffer (decoded images) when ``cache`` is on; without cache
#: the paths are shuffled, with a buffer as large as the rows.
SHUFFLE_BUFFER = 4096

#: ``cache="auto"`` keeps the decoded images in memory when they need at most
#: this many bytes (and at most a quarter of the memory available): 3,000
#: images at 64x64 take 37 MB, 10,000 at 299x299 take 2.7 GB (not cached).
AUTO_CACHE_BYTES = 1 << 30


# --------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------
def _check_cache(cache: Any) -> None:
    if isinstance(cache, (bool, np.bool_)) or (isinstance(cache, str) and cache == "auto"):
        return
    if not isinstance(cache, (str, os.PathLike)):
        raise ValueError(
            "`cache` must be False, True (memory), 'auto' (memory if it fits) or a file path "
            f"prefix. Received: cache={cache!r}"
        )
    if not os.fspath(cache):
        raise ValueError("`cache` file path must not be empty; use True for a memory cache.")


def resolve_cache(cache: Any, n_images: int, image_size: Any) -> bool | str:
    """What ``cache`` means for ``n_images`` decoded at ``image_size``.

    ``"auto"`` becomes ``True`` when the decoded images (``n * h * w * 3``
    bytes) fit in :data:`AUTO_CACHE_BYTES` and in a quarter of the memory
    available now, else ``False``. ``True``, ``False`` and file path prefixes
    are returned as they are (a prefix as a string; pass ``Path("auto")`` for
    a cache file literally named "auto").

    Raises:
        ValueError: ``cache`` is none of these.
    """
    _check_cache(cache)
    if isinstance(cache, (bool, np.bool_)):
        return bool(cache)
    if isinstance(cache, str) and cache == "auto":
        height, width = parse_image_size(image_size)
        need = int(n_images) * height * width * 3
        try:
            import psutil

            available = psutil.virtual_memory().available
        except Exception:  # noqa: BLE001 - no reading: trust the fixed budget
            available = 4 * AUTO_CACHE_BYTES
        return need <= min(AUTO_CACHE_BYTES, available // 4)
    return os.fspath(cache)


# --------------------------------------------------------------------------
# Training / evaluation
# --------------------------------------------------------------------------
def make_dataset(
    rows: pd.DataFrame,
    classes: Sequence[str],
    *,
    image_size: Any,
    batch_size: int = 32,
    training: bool = False,
    augmentation: Any = None,
    seed: int = 0,
    cache: bool | str | os.PathLike = False,
    skipped: list | None = None,
) -> tf.data.Dataset:
    """Build the ``(images, labels)`` dataset for fitting or evaluating a model.

    Only the given rows enter (filter readable rows of the wanted split first,
    e.g. with ``imgcls.library.training_rows``). Each element is a batch:
    ``images`` float32 ``(B, h, w, 3)`` RGB in 0..255 (the model normalises),
    ``labels`` int32 ``(B,)`` = index of the row's label in ``classes``.

    Per row: decode with Pillow (EXIF orientation applied), turn by ``turns``
    quarter turns, resize to ``image_size``. In training: rows shuffled with
    ``seed`` (reshuffled every epoch), then ``augmentation`` applied per batch
    with small subjects zoomed in only. Outside training the order of ``rows``
    is kept and no augmentation is applied.

    A file that cannot be decoded when the dataset is iterated (deleted,
    truncated, replaced by junk after the catalog was made) is dropped from the
    stream and ``(path, reason)`` is appended to ``skipped`` once; it never
    stops iteration or ``fit``.

    Args:
        rows: DataFrame with columns ``path`` and ``label``; optional ``turns``
            (int 0-3, quarter turns counter-clockwise) and ``small_subject``
            (bool; computed at decode time when absent, see the module notes).
        classes: Class names; label indices follow this order.
        image_size: Model input ``(height, width)`` (or one int, or
            ``(height, width, 3)``).
        batch_size: Images per batch (the last batch may be smaller).
        training: Shuffle and augment.
        augmentation: A ``keras.Sequential`` from
            :func:`imgcls.inputs.make_augmentation` (or any callable taking
            ``(images, training=True)``); used only when ``training``.
        seed: Seed of the shuffle.
        cache: ``False``; ``True`` to keep decoded images in memory after the
            first epoch; ``"auto"`` to do so when they fit (see
            :func:`resolve_cache`; what :func:`imgcls.training.train` uses);
            or a file path prefix to cache them on disk (use one per
            rows/size combination: a cache file is not invalidated when the
            rows change). Augmentation is applied after the cache, so it stays
            random per epoch. The memory cache holds ``n * h * w * 3`` bytes
            (37 MB for 3,000 images at 64x64, 800 MB at 299x299) and removes
            the decode from every epoch after the first (see the benchmark).
        skipped: A list; ``(path, reason)`` is appended for each file dropped.

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)``, batched and prefetched.
        Its length is unknown to Keras until one epoch has run (files may
        drop out), so ``fit`` shows no total in the first epoch and Keras
        warns once "Your input ran out of data" at its end: expected, harmless.

    Raises:
        ValueError: If ``rows`` lacks columns, is empty, or has labels not in
            ``classes`` (they are named), or an option is invalid.
    """
    if not isinstance(rows, pd.DataFrame):
        raise ValueError(
            f"`rows` must be a pandas DataFrame with columns path, label. Received: {type(rows).__name__}"
        )
    missing = [c for c in ("path", "label") if c not in rows.columns]
    if missing:
        raise ValueError(
            f"`rows` must have columns path and label; missing {missing}. "
            f"Received columns: {list(rows.columns)}"
        )
    if len(rows) == 0:
        raise ValueError(
            "`rows` is empty: there is nothing to train or evaluate on. Check the split "
            "and the class filter that produced it."
        )
    if isinstance(classes, str) or len(list(classes)) == 0:
        raise ValueError(f"`classes` must be a non-empty list of class names. Received: classes={classes!r}")
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes):
        dupes = sorted({c for c in classes if classes.count(c) > 1})
        raise ValueError(f"`classes` must not repeat names. Received duplicates: {dupes}")
    size = parse_image_size(image_size)
    batch_size = check_int(batch_size, "batch_size")
    skipped = _skipped_list(skipped)
    cache = resolve_cache(cache, len(rows), size)
    seed = check_int(seed, "seed", None)

    index = {name: i for i, name in enumerate(classes)}
    labels_text = rows["label"].astype(str)
    unknown = sorted(set(labels_text) - set(index))
    if unknown:
        counts = labels_text[labels_text.isin(unknown)].value_counts()
        shown = ", ".join(f"{name!r} ({counts[name]} rows)" for name in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise ValueError(
            f"`rows` has labels that are not in `classes`: {shown}{more}. Expected only "
            f"{classes}. Filter the rows (e.g. imgcls.library.training_rows(catalog, classes)) "
            "or add the labels to `classes`."
        )

    paths = _paths_list(rows["path"])
    labels = labels_text.map(index).to_numpy(dtype=np.int32)
    turns = _turns_array(rows["turns"] if "turns" in rows.columns else None, len(rows))
    use_aug = bool(training) and augmentation is not None
    if "small_subject" in rows.columns:
        small = rows["small_subject"].fillna(False).astype(bool).to_numpy().astype(np.int8)
    else:
        small = np.full(len(rows), -1 if use_aug else 0, dtype=np.int8)

    ds = tf.data.Dataset.from_tensor_slices((paths, turns, small, labels))
    if training and not cache:
        # Shuffle the (cheap) rows with a full buffer before decoding.
        ds = ds.shuffle(len(paths), seed=int(seed), reshuffle_each_iteration=True)
    ds = _decode_chunks(ds, size, skipped, detect_small=use_aug, key_dtype=tf.int32)
    if cache is True:
        ds = ds.cache()
    elif isinstance(cache, str):
        ds = ds.cache(cache)
    if training and cache:
        ds = ds.shuffle(min(len(paths), SHUFFLE_BUFFER), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    if use_aug:
        augment = routed_augmentation(augmentation)

        def to_model(images, labels, small_flags):
            images = tf.cast(images, tf.float32)
            return augment(images, small_flags, training=True), labels

        # Sequential on purpose: the augmentation layers keep their random
        # state in variables; one call at a time keeps a seeded run repeatable.
        ds = ds.map(to_model)
    else:
        ds = ds.map(lambda images, labels, small_flags: (tf.cast(images, tf.float32), labels),
                    num_parallel_calls=_AUTOTUNE)
    return ds.prefetch(_AUTOTUNE)


# --------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------
def make_inference_dataset(
    paths: Sequence[str | os.PathLike],
    *,
    image_size: Any,
    batch_size: int = 32,
    skipped: list | None = None,
    turns: Sequence[int] | None = None,
) -> tf.data.Dataset:
    """Build the ``(images, index)`` dataset for predicting over many files.

    Decoding is the same as in training (:func:`make_dataset`), without
    shuffle or augmentation. Unreadable files are dropped from the stream and
    ``(path, reason)`` is appended to ``skipped``; ``index`` tells which path
    each image came from.

    Args:
        paths: Image paths.
        image_size: Model input ``(height, width)`` (or one int, or ``(h, w, 3)``).
        batch_size: Images per batch.
        skipped: A list; ``(path, reason)`` is appended for each file dropped.
        turns: Optional quarter turns CCW per path (e.g. the catalog's ``turns``).

    Returns:
        A ``tf.data.Dataset`` of ``(images float32 (B, h, w, 3) in 0..255,
        index int64 (B,))`` in the order of ``paths``.

    Example:
        >>> skipped = []
        >>> ds = make_inference_dataset(paths, image_size=(64, 64), skipped=skipped)
        >>> for images, index in ds:
        ...     probs = model.predict_on_batch(images)
    """
    names = _paths_list(paths)
    size = parse_image_size(image_size)
    batch_size = check_int(batch_size, "batch_size")
    skipped = _skipped_list(skipped)
    quarter = _turns_array(turns, len(names))
    if not names:
        spec = (
            tf.TensorSpec((None, size[0], size[1], 3), tf.float32),
            tf.TensorSpec((None,), tf.int64),
        )
        return tf.data.Dataset.from_generator(lambda: iter(()), output_signature=spec)

    ds = tf.data.Dataset.from_tensor_slices(
        (names, quarter, np.zeros(len(names), np.int8), np.arange(len(names), dtype=np.int64))
    )
    ds = _decode_chunks(ds, size, skipped, detect_small=False, key_dtype=tf.int64)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda images, i, flags: (tf.cast(images, tf.float32), i), num_parallel_calls=_AUTOTUNE)
    return ds.prefetch(_AUTOTUNE)
