"""Light training augmentation: left-right flip, slight rotation, slight zoom.

The write-up trains with three gentle transformations that keep a zoo animal
looking like itself: a left-right flip, a slight rotation clockwise and
counter-clockwise, and a slight zoom in and out. They are Keras preprocessing
layers (``RandomFlip``, ``RandomRotation``, ``RandomZoom``) in one
``keras.Sequential``, so they:

* are active only in training: ``augmentation(x, training=False)`` returns
  ``x`` unchanged, so the same object can sit in a pipeline or a model;
* draw a fresh random transform per image (per row of a batch);
* are seeded: two augmentations built with the same ``seed`` transform the same
  batches identically, call after call.

The write-up adds two rules, both handled here or at decode time:

1. **Small subjects are not zoomed out.** Zooming out an image whose subject is
   already small makes it smaller still. :func:`subject_fraction` measures how
   much of the frame the subject occupies and :func:`is_small_subject` applies
   a threshold; :func:`routed_augmentation` (used by :mod:`imgcls.inputs`)
   gives flagged images a zoom-in-only zoom while the rest of the batch gets the
   full zoom range.
2. **Images that need a 90-degree turn are turned first.** That happens at
   decode (``imgcls.core.read_image_resized(path, size, turns=k)``, driven by
   the catalog's ``turns`` column), before resizing and long before any
   augmentation, so rotations are always "slight" relative to upright.

Images are float32 RGB pixels in 0..255, ``(batch, height, width, 3)``; the
layers do not normalise or clip (normalisation lives inside each model).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

import keras
import numpy as np
from PIL import Image

from imgcls.core.checks import check_int
from imgcls.core.images import read_image

__all__ = [
    "DEFAULT_ROTATION",
    "DEFAULT_ZOOM",
    "SMALL_SUBJECT_THRESHOLD",
    "SUBJECT_TOLERANCE",
    "make_augmentation",
    "zoom_in_only",
    "routed_augmentation",
    "subject_fraction",
    "is_small_subject",
    "preview_augmentation",
]

#: Default maximum rotation, in degrees, either direction.
DEFAULT_ROTATION = 10.0
#: Default maximum zoom, as a fraction of the image size, in and out.
DEFAULT_ZOOM = 0.10
#: A subject whose bounding box covers less than this fraction of the image is "small".
SMALL_SUBJECT_THRESHOLD = 0.2
#: A pixel is foreground when a channel differs from the background by more than this (0..255).
SUBJECT_TOLERANCE = 30.0

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
#: subject_fraction averages pixel blocks down to at most this many on the longer side.
_RULE_RESOLUTION = 128


# --------------------------------------------------------------------------
# The augmentation layers
# --------------------------------------------------------------------------
def make_augmentation(
    *,
    flip: bool = True,
    rotation: float = DEFAULT_ROTATION,
    zoom: float = DEFAULT_ZOOM,
    seed: int | None = 0,
    allow_zoom_out: bool = True,
    fill_mode: str = "reflect",
) -> keras.Sequential:
    """Build the training augmentation: flip, slight rotation, slight zoom.

    Args:
        flip: Randomly flip images left-right (half of them).
        rotation: Maximum rotation in degrees, either direction; each image is
            rotated by an angle drawn uniformly from ``[-rotation, +rotation]``.
            ``0`` disables rotation. Must be in ``[0, 180)``.
        zoom: Maximum zoom as a fraction of the image size; each image is
            zoomed by a factor drawn from ``[-zoom, +zoom]`` (negative = zoom
            in, positive = zoom out, Keras convention; aspect ratio kept).
            ``0`` disables zoom. Must be in ``[0, 1)``.
        seed: Seed of the random transforms (the flip, rotation and zoom layers
            get ``seed``, ``seed + 1``, ``seed + 2``). The same seed gives the
            same transforms for the same sequence of batches. ``None`` draws a
            fresh seed (not reproducible).
        allow_zoom_out: ``False`` restricts the zoom to ``[-zoom, 0]`` (zoom in
            only), for images whose subject is already small.
        fill_mode: How pixels outside the source image are filled after a
            rotation or zoom out: ``"reflect"`` (Keras' default), ``"nearest"``,
            ``"wrap"`` or ``"constant"`` (black).

    Returns:
        A ``keras.Sequential`` named ``"augmentation"`` with layers ``"flip"``,
        ``"rotation"``, ``"zoom"`` (disabled ones left out). Call it on a
        float32 batch ``(B, H, W, 3)`` with ``training=True`` to augment;
        with ``training=False`` (as ``predict``/``evaluate`` do when it sits
        inside a model) it returns its input unchanged. Note that a bare call
        without ``training`` augments (Keras' default for these layers).

    Raises:
        ValueError: If an argument is out of range or of the wrong type.

    Example:
        >>> aug = make_augmentation(rotation=10, zoom=0.1, seed=0)
        >>> out = aug(batch, training=True)
    """
    if not isinstance(flip, (bool, np.bool_)):
        raise ValueError(
            f"`flip` must be True or False. Received: flip={flip!r}"
        )
    rotation = _check_number(
        rotation, "rotation", 0.0, 180.0, hint="degrees, e.g. rotation=10.0; 0 disables rotation"
    )
    zoom = _check_number(
        zoom, "zoom", 0.0, 1.0, hint="a fraction of the image size, e.g. zoom=0.1; 0 disables zoom"
    )
    if seed is not None:
        check_int(seed, "seed", 0, " (or None for an unseeded augmentation)")
    if not isinstance(allow_zoom_out, (bool, np.bool_)):
        raise ValueError(
            f"`allow_zoom_out` must be True or False. Received: allow_zoom_out={allow_zoom_out!r}"
        )
    if fill_mode not in _FILL_MODES:
        raise ValueError(
            f"`fill_mode` must be one of {_FILL_MODES}. Received: fill_mode={fill_mode!r}"
        )

    def layer_seed(offset: int) -> int | None:
        return None if seed is None else int(seed) + offset

    layers: list[keras.layers.Layer] = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=layer_seed(0), name="flip"))
    if rotation > 0:
        layers.append(
            keras.layers.RandomRotation(
                rotation / 360.0, fill_mode=fill_mode, seed=layer_seed(1), name="rotation"
            )
        )
    if zoom > 0:
        upper = zoom if allow_zoom_out else 0.0
        layers.append(
            keras.layers.RandomZoom(
                (-zoom, upper), fill_mode=fill_mode, seed=layer_seed(2), name="zoom"
            )
        )
    return keras.Sequential(layers, name="augmentation")


def _check_number(value: Any, name: str, low: float, high: float, *, hint: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(
            f"`{name}` must be a number in [{low:g}, {high:g}) ({hint}). Received: {name}={value!r}"
        )
    value = float(value)
    if not math.isfinite(value) or not (low <= value < high):
        raise ValueError(
            f"`{name}` must be a number in [{low:g}, {high:g}) ({hint}). Received: {name}={value!r}"
        )
    return value


def _steps(augmentation: Any) -> list[Any]:
    """The flat list of steps of an augmentation (nested Sequentials opened)."""
    if isinstance(augmentation, keras.Sequential):
        steps: list[Any] = []
        for layer in augmentation.layers:
            steps.extend(_steps(layer))
        return steps
    return [augmentation]


def _zooms_out(layer: Any) -> bool:
    if not isinstance(layer, keras.layers.RandomZoom):
        return False
    uppers = [layer.height_upper]
    if layer.width_factor is not None:
        uppers.append(layer.width_upper)
    return max(uppers) > 0


def _zoom_in_layer(layer: keras.layers.RandomZoom) -> keras.layers.RandomZoom | None:
    """A copy of a RandomZoom restricted to zooming in (None if nothing is left)."""
    height = (min(layer.height_lower, 0.0), 0.0)
    width = None
    if layer.width_factor is not None:
        width = (min(layer.width_lower, 0.0), 0.0)
    if height[0] == 0.0 and (width is None or width[0] == 0.0):
        return None
    return keras.layers.RandomZoom(
        height,
        width,
        fill_mode=layer.fill_mode,
        interpolation=layer.interpolation,
        fill_value=layer.fill_value,
        seed=layer.seed,
        name=f"{layer.name}_in_only",
    )


def zoom_in_only(augmentation: Any) -> keras.Sequential:
    """The same augmentation with every zoom restricted to zooming in.

    Flip and rotation layers are shared with ``augmentation`` (same objects);
    each ``RandomZoom`` is replaced by a copy whose range is clipped to
    ``[lower, 0]`` (Keras: negative = zoom in), with the same seed.

    Args:
        augmentation: A ``keras.Sequential`` (e.g. from :func:`make_augmentation`)
            or a single layer.

    Returns:
        A new ``keras.Sequential`` named ``"<name>_zoom_in_only"``.
    """
    layers = []
    for step in _steps(augmentation):
        if isinstance(step, keras.layers.RandomZoom):
            step = _zoom_in_layer(step)
            if step is None:
                continue
        layers.append(step)
    name = getattr(augmentation, "name", "augmentation")
    return keras.Sequential(layers, name=f"{name}_zoom_in_only")


def routed_augmentation(augmentation: Any) -> Callable[..., Any]:
    """Wrap an augmentation so that flagged images get zoom-in-only zoom.

    The returned function ``fn(images, small_subject=None, *, training=True)``
    runs the steps of ``augmentation`` on the batch in order. At each
    ``RandomZoom`` step that can zoom out, rows whose ``small_subject`` flag is
    true take the output of a zoom-in-only copy of that layer (see
    :func:`zoom_in_only`) instead; other steps are applied to the whole batch.
    The zoom-in-only copy runs on the flagged rows only.
    Works eagerly and inside ``tf.data`` / ``tf.function``.

    Augmentations that are not Sequentials of Keras layers (any callable) are
    applied as they are: routing needs the ``RandomZoom`` layers to be visible.

    Args:
        augmentation: A ``keras.Sequential`` from :func:`make_augmentation` (or
            any Sequential / layer / callable taking ``(x, training=...)``).

    Returns:
        The routing function.
    """
    steps = _steps(augmentation)
    companions = {id(step): _zoom_in_layer(step) for step in steps if _zooms_out(step)}

    def apply(images: Any, small_subject: Any = None, *, training: bool = True) -> Any:
        import tensorflow as tf  # only needed for routing inside tf.data

        x = images
        for step in steps:
            if id(step) not in companions or small_subject is None or not training:
                x = step(x, training=training)
                continue
            companion = companions[id(step)]
            mask = tf.cast(tf.reshape(small_subject, [-1]), tf.bool)

            def both(x=x, step=step, companion=companion, mask=mask):
                full = step(x, training=True)
                rows = tf.where(mask)  # (k, 1) positions of the flagged images
                inward = tf.gather_nd(x, rows)
                if companion is not None:  # zoom in only, on the flagged rows only
                    inward = companion(inward, training=True)
                return tf.tensor_scatter_nd_update(full, rows, tf.cast(inward, full.dtype))

            def full_only(x=x, step=step):
                return step(x, training=True)

            x = tf.cond(tf.reduce_any(mask), both, full_only)
        return x

    return apply


# --------------------------------------------------------------------------
# Small-subject rule
# --------------------------------------------------------------------------
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
    _check_number(tolerance, "tolerance", 0.0, 256.0, hint="a pixel difference on the 0..255 scale")
    _check_number(trim, "trim", 0.0, 0.5, hint="a fraction of foreground pixels, e.g. 0.01")
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
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(
        threshold, (int, float, np.integer, np.floating)
    ) or not (0.0 < float(threshold) <= 1.0):
        raise ValueError(
            "`threshold` must be a fraction of the image area in (0, 1], e.g. 0.2. "
            f"Received: threshold={threshold!r}"
        )
    return subject_fraction(image, tolerance=tolerance) < float(threshold)


# --------------------------------------------------------------------------
# Preview
# --------------------------------------------------------------------------
def preview_augmentation(
    image: Any,
    *,
    n: int = 8,
    seed: int = 0,
    augmentation: Any = None,
    columns: int = 3,
    small_subject: bool | None = None,
):
    """Draw one image and ``n`` augmented versions of it in a grid.

    The first panel is the original (titled ``"original"``, with a note when
    the image counts as a small subject); the others are titled
    ``"augmented 1"``...``"augmented n"``. Small subjects get zoom-in-only
    zoom, exactly as in the training pipeline.

    Args:
        image: RGB array ``(H, W, 3)`` in 0..255, or a path to an image file.
        n: Number of augmented versions, >= 1.
        seed: Seed of the default augmentation (ignored if ``augmentation`` is given).
        augmentation: The augmentation to preview; default
            ``make_augmentation(seed=seed)``.
        columns: Panels per row.
        small_subject: Force the small-subject routing on/off; default
            :func:`is_small_subject` of the image.

    Returns:
        A ``matplotlib.figure.Figure`` (not registered with pyplot; a notebook
        shows it when it is the cell's value, ``fig.savefig`` writes it).
    """
    from matplotlib.figure import Figure

    check_int(n, "n", 1, " (number of augmented versions)")
    check_int(columns, "columns")
    arr = _as_image(image)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if small_subject is None:
        small_subject = is_small_subject(arr)
    if augmentation is None:
        augmentation = make_augmentation(seed=seed)
    batch = np.repeat(arr[None].astype(np.float32), n, axis=0)
    out = routed_augmentation(augmentation)(
        batch, np.full((n,), bool(small_subject)), training=True
    )
    out = np.asarray(out)

    panels = [arr.astype(np.float32)] + [out[i] for i in range(n)]
    titles = ["original" + ("\n(small subject: zoom in only)" if small_subject else "")]
    titles += [f"augmented {i + 1}" for i in range(n)]
    columns = min(int(columns), len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(2.2 * columns, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, panel, title in zip(axes.ravel(), panels, titles):
        ax.imshow(np.clip(panel, 0, 255).astype(np.uint8))
        ax.set_title(title, fontsize=9)
    return fig
