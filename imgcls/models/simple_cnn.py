"""simple_cnn: a plain stack of Conv-BN-ReLU and max pooling, the baseline.

Four 3x3 conv units (32, 64, 128, 128 filters) with 2x2 max pooling between
them, then ``"avg_pool"``, dropout, ``"predictions"``. About 0.24 M
parameters and 51 M MACs per 64x64 image; works from 32x32 up.
"""

from __future__ import annotations

from functools import partial

import keras
from keras import layers

from imgcls.models._common import classification_head, conv_bn, preprocess
from imgcls.models._registry import register_model

__all__ = ["build_simple_cnn", "NORMALIZATION"]

#: BN momentum: 0.9 so moving statistics settle within the few steps of a
#: small data set's epoch (Keras' 0.99 leaves validation accuracy lagging).
_conv_bn = partial(conv_bn, momentum=0.9)

#: Pixels in [0, 255] -> [0, 1].
NORMALIZATION = {"scale": 1.0 / 255.0, "offset": 0.0}

_FILTERS = (32, 64, 128, 128)


@register_model(
    "simple_cnn",
    default_input_shape=(64, 64, 3),
    normalization=NORMALIZATION,
    min_input_size=32,
    default_dropout=0.3,
)
def build_simple_cnn(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (64, 64, 3),
    dropout: float = 0.3,
    seed: int | None = None,
) -> keras.Model:
    """Plain conv stack (4 x Conv-BN-ReLU with max pooling, ~0.24 M params), a baseline.

    Args:
        num_classes: Size of the softmax layer ``"predictions"``.
        input_shape: ``(height, width, 3)``, each side >= 32.
        dropout: Rate before ``"predictions"``.
        seed: Seed of the dropout layer.

    Returns:
        A functional ``keras.Model`` named ``"simple_cnn"`` taking RGB pixels
        in ``[0, 255]``.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs, NORMALIZATION)
    for i, filters in enumerate(_FILTERS, start=1):
        x = _conv_bn(x, filters, 3, name=f"block{i}")
        if i < len(_FILTERS):
            x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    outputs = classification_head(x, num_classes, dropout=dropout, seed=seed)
    return keras.Model(inputs, outputs, name="simple_cnn")
