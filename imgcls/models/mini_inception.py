"""mini_inception: a narrow Inception-style network for small images on CPU.

The sample workspace's default model (64x64 silhouettes). The same ideas as
Inception-v4 at a fraction of the width and depth:

* stem: 3x3/2 conv, 3x3 conv, 3x3/2 max pool, 3x3 conv (64x64 -> 16x16x64);
* 2 x mixed block A on the 16x16 grid: parallel 1x1 / 1x1-3x3 /
  1x1-3x3-3x3 / avgpool-1x1 branches (104 channels);
* a reduction block (3x3/2 conv, 1x1-3x3-3x3/2, 3x3/2 max pool) to 8x8x216;
* 2 x mixed block B on the 8x8 grid (224 channels);
* ``"avg_pool"``, dropout, ``"predictions"``.

About 0.39 M parameters and 50 M MACs per 64x64 image. All padding is
``"same"``, so it works from 32x32 up (32 -> 8 -> 4 spatially).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import keras
from keras import layers

from imgcls.models._common import classification_head, conv_bn, preprocess
from imgcls.models._registry import register_model

__all__ = ["build_mini_inception", "NORMALIZATION"]

#: BN momentum: 0.9 so moving statistics settle within the few steps of a
#: small data set's epoch (Keras' 0.99 leaves validation accuracy lagging).
_conv_bn = partial(conv_bn, momentum=0.9)

#: Pixels in [0, 255] -> [-1, 1].
NORMALIZATION = {"scale": 1.0 / 127.5, "offset": -1.0}


@register_model(
    "mini_inception",
    default_input_shape=(64, 64, 3),
    normalization=NORMALIZATION,
    min_input_size=32,
    default_dropout=0.2,
)
def build_mini_inception(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (64, 64, 3),
    dropout: float = 0.2,
    seed: int | None = None,
) -> keras.Model:
    """Narrow Inception-style CNN for 32-128 px images (~0.39 M params), fast on CPU.

    Args:
        num_classes: Size of the softmax layer ``"predictions"``.
        input_shape: ``(height, width, 3)``, each side >= 32.
        dropout: Rate before ``"predictions"``.
        seed: Seed of the dropout layer.

    Returns:
        A functional ``keras.Model`` named ``"mini_inception"`` taking RGB
        pixels in ``[0, 255]``.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs, NORMALIZATION)
    x = _conv_bn(x, 32, 3, strides=2, name="stem_1")
    x = _conv_bn(x, 32, 3, name="stem_2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    x = _conv_bn(x, 64, 3, name="stem_3")
    for i in (1, 2):
        x = _mixed(x, (32, 24, 32, 16, 24, 16), name=f"mixed_a{i}")
    x = _reduction(x, name="reduction")
    for i in (1, 2):
        x = _mixed(x, (64, 48, 64, 32, 48, 48), name=f"mixed_b{i}")
    outputs = classification_head(x, num_classes, dropout=dropout, seed=seed)
    return keras.Model(inputs, outputs, name="mini_inception")


def _mixed(x: Any, widths: tuple[int, int, int, int, int, int], *, name: str) -> Any:
    """Parallel 1x1 / 1x1-3x3 / 1x1-3x3-3x3 / avgpool-1x1 branches, concatenated.

    ``widths`` = (1x1, 3x3 reduce, 3x3, double-3x3 reduce, double-3x3, pool proj).
    """
    w1, w3r, w3, wd3r, wd3, wp = widths
    b0 = _conv_bn(x, w1, 1, name=f"{name}_b0")
    b1 = _conv_bn(x, w3r, 1, name=f"{name}_b1_1")
    b1 = _conv_bn(b1, w3, 3, name=f"{name}_b1_2")
    b2 = _conv_bn(x, wd3r, 1, name=f"{name}_b2_1")
    b2 = _conv_bn(b2, wd3, 3, name=f"{name}_b2_2")
    b2 = _conv_bn(b2, wd3, 3, name=f"{name}_b2_3")
    b3 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b3 = _conv_bn(b3, wp, 1, name=f"{name}_b3")
    return layers.Concatenate(axis=-1, name=name)([b0, b1, b2, b3])


def _reduction(x: Any, *, name: str) -> Any:
    """Halve the grid: 3x3/2 conv, 1x1-3x3-3x3/2, 3x3/2 max pool, concatenated."""
    b0 = _conv_bn(x, 64, 3, strides=2, name=f"{name}_b0")
    b1 = _conv_bn(x, 32, 1, name=f"{name}_b1_1")
    b1 = _conv_bn(b1, 48, 3, name=f"{name}_b1_2")
    b1 = _conv_bn(b1, 48, 3, strides=2, name=f"{name}_b1_3")
    b2 = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Concatenate(axis=-1, name=name)([b0, b1, b2])
