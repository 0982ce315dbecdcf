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
   already small makes it smaller still. :func:`imgcls.inputs.subject_fraction`
   measures how much of the frame the subject occupies and
   :func:`imgcls.inputs.is_small_subject` applies a threshold (both in
   :mod:`imgcls.inputs.subject`); :func:`routed_augmentation` (used by the pipelines)
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

from typing import Any, Callable

import keras

from imgcls.core.checks import check_bool, check_choice, check_int, check_number

__all__ = [
    "DEFAULT_ROTATION",
    "DEFAULT_ZOOM",
    "make_augmentation",
    "zoom_in_only",
    "routed_augmentation",
]

#: Default maximum rotation, in degrees, either direction.
DEFAULT_ROTATION = 10.0
#: Default maximum zoom, as a fraction of the image size, in and out.
DEFAULT_ZOOM = 0.10

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")


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
    check_bool(flip, "flip")
    rotation = check_number(rotation, "rotation", 0.0, 180.0, high_open=True,
                            fix="give degrees, e.g. rotation=10.0; 0 disables rotation")
    zoom = check_number(zoom, "zoom", 0.0, 1.0, high_open=True,
                        fix="give a fraction of the image size, e.g. zoom=0.1; 0 disables zoom")
    check_int(seed, "seed", 0, allow_none=True, fix="None gives an unseeded augmentation")
    check_bool(allow_zoom_out, "allow_zoom_out")
    check_choice(fill_mode, "fill_mode", _FILL_MODES)

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
