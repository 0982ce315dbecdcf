"""Inception-v4 (Szegedy, Ioffe, Vanhoucke, Alemi 2016, arXiv:1602.07261).

Reference: "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning", figures 3-9: stem, 4 x Inception-A, Reduction-A
(k=192, l=224, m=256, n=384), 7 x Inception-B, Reduction-B, 3 x Inception-C,
average pooling, dropout (keep 0.8), softmax.

Layout checked against the TF-slim reference as ported by timm
(``timm/models/inception_v4.py``) and kentsommer/keras-inceptionV4: every
convolution is a Conv2D without bias, BatchNormalization without scale, ReLU.
Convolutions and pools marked "V" in the paper use ``"valid"`` padding, the
others ``"same"``; branch average pools are 3x3 stride 1 ``"same"`` (padding
excluded from the average, as in TF). With that padding the network works
unchanged for any input from 75x75 up (299 -> 35 -> 17 -> 8 spatially;
75 -> 7 -> 3 -> 1), so no adaptation is needed for small inputs; below 75 the
Reduction-B output would be empty, hence ``min_input_size=75``.

At 299x299 with a 1000-class head: 42,711,400 parameters counted the Keras
way, ``model.count_params()`` (conv and dense weights, BN beta, and the BN
moving mean and variance; 42,648,232 of them trainable); counted the PyTorch
way (BN weight and bias, no running statistics) the same network has
42,679,816, timm's "42.68 M". 12.25 GMACs per image (convolutions and the
dense layer, :func:`imgcls.models.count_macs`). Both match the published
42.7 M / 12.3 G.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import keras
from keras import layers

from imgcls.core.checks import check_number
from imgcls.models._common import classification_head, conv_bn, preprocess
from imgcls.models._registry import register_model

__all__ = ["build_inception_v4", "NORMALIZATION"]

#: Inception preprocessing: pixels in [0, 255] -> [-1, 1].
NORMALIZATION = {"scale": 1.0 / 127.5, "offset": -1.0}


@register_model(
    "inception_v4",
    default_input_shape=(299, 299, 3),
    normalization=NORMALIZATION,
    min_input_size=75,
    default_dropout=0.2,
)
def build_inception_v4(
    num_classes: int = 1000,
    *,
    input_shape: tuple[int, int, int] = (299, 299, 3),
    dropout: float = 0.2,
    seed: int | None = None,
    bn_momentum: float = 0.99,
) -> keras.Model:
    """Inception-v4 (Szegedy et al. 2016), 42.7 M params / 12.3 GMACs at 299x299.

    Args:
        num_classes: Size of the softmax layer ``"predictions"``.
        input_shape: ``(height, width, 3)``, each side >= 75.
        dropout: Rate before ``"predictions"``; the paper keeps 0.8, i.e. 0.2.
        seed: Seed of the dropout layer.
        bn_momentum: Moving-average momentum of every BatchNormalization
            (Keras' 0.99 by default). Trained from scratch for a few hundred
            steps (a small library, a few epochs), 0.99 leaves the moving
            statistics far from the batch statistics, and validation stays
            at chance while training accuracy rises; 0.9 settles them within
            an epoch or two, as in ``mini_inception``. Must be in ``[0, 1)``.

    Returns:
        A functional ``keras.Model`` named ``"inception_v4"`` taking RGB
        pixels in ``[0, 255]``.
    """
    momentum = check_number(bn_momentum, "bn_momentum", 0.0, 1.0, high_open=True, fix="e.g. 0.9")
    conv = partial(conv_bn, momentum=momentum)
    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs, NORMALIZATION)
    x = _stem(x, conv=conv)
    for i in range(1, 5):
        x = _inception_a(x, conv=conv, name=f"inception_a{i}")
    x = _reduction_a(x, conv=conv, k=192, l=224, m=256, n=384, name="reduction_a")
    for i in range(1, 8):
        x = _inception_b(x, conv=conv, name=f"inception_b{i}")
    x = _reduction_b(x, conv=conv, name="reduction_b")
    for i in range(1, 4):
        x = _inception_c(x, conv=conv, name=f"inception_c{i}")
    outputs = classification_head(x, num_classes, dropout=dropout, seed=seed)
    return keras.Model(inputs, outputs, name="inception_v4")


def _concat(tensors: list[Any], name: str) -> Any:
    return layers.Concatenate(axis=-1, name=name)(tensors)


def _stem(x: Any, *, conv: Callable[..., Any]) -> Any:
    """Figure 3: 299x299x3 -> 35x35x384."""
    x = conv(x, 32, 3, strides=2, padding="valid", name="stem_1")  # 149x149x32
    x = conv(x, 32, 3, padding="valid", name="stem_2")  # 147x147x32
    x = conv(x, 64, 3, name="stem_3")  # 147x147x64

    b0 = layers.MaxPooling2D(3, strides=2, padding="valid", name="mixed_3a_pool")(x)
    b1 = conv(x, 96, 3, strides=2, padding="valid", name="mixed_3a_b1")
    x = _concat([b0, b1], "mixed_3a")  # 73x73x160

    b0 = conv(x, 64, 1, name="mixed_4a_b0_1")
    b0 = conv(b0, 96, 3, padding="valid", name="mixed_4a_b0_2")
    b1 = conv(x, 64, 1, name="mixed_4a_b1_1")
    b1 = conv(b1, 64, (1, 7), name="mixed_4a_b1_2")
    b1 = conv(b1, 64, (7, 1), name="mixed_4a_b1_3")
    b1 = conv(b1, 96, 3, padding="valid", name="mixed_4a_b1_4")
    x = _concat([b0, b1], "mixed_4a")  # 71x71x192

    b0 = conv(x, 192, 3, strides=2, padding="valid", name="mixed_5a_b0")
    b1 = layers.MaxPooling2D(3, strides=2, padding="valid", name="mixed_5a_pool")(x)
    return _concat([b0, b1], "mixed_5a")  # 35x35x384


def _inception_a(x: Any, *, conv: Callable[..., Any], name: str) -> Any:
    """Figure 4: 35x35 grid, 384 channels in and out."""
    b0 = conv(x, 96, 1, name=f"{name}_b0")
    b1 = conv(x, 64, 1, name=f"{name}_b1_1")
    b1 = conv(b1, 96, 3, name=f"{name}_b1_2")
    b2 = conv(x, 64, 1, name=f"{name}_b2_1")
    b2 = conv(b2, 96, 3, name=f"{name}_b2_2")
    b2 = conv(b2, 96, 3, name=f"{name}_b2_3")
    b3 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b3 = conv(b3, 96, 1, name=f"{name}_b3")
    return _concat([b0, b1, b2, b3], name)


def _reduction_a(x: Any, *, conv: Callable[..., Any], k: int, l: int, m: int, n: int, name: str) -> Any:  # noqa: E741
    """Figure 7: 35x35x384 -> 17x17x1024 (Inception-v4 uses k, l, m, n = 192, 224, 256, 384)."""
    b0 = conv(x, n, 3, strides=2, padding="valid", name=f"{name}_b0")
    b1 = conv(x, k, 1, name=f"{name}_b1_1")
    b1 = conv(b1, l, 3, name=f"{name}_b1_2")
    b1 = conv(b1, m, 3, strides=2, padding="valid", name=f"{name}_b1_3")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_pool")(x)
    return _concat([b0, b1, b2], name)


def _inception_b(x: Any, *, conv: Callable[..., Any], name: str) -> Any:
    """Figure 5: 17x17 grid, 1024 channels in and out."""
    b0 = conv(x, 384, 1, name=f"{name}_b0")
    b1 = conv(x, 192, 1, name=f"{name}_b1_1")
    b1 = conv(b1, 224, (1, 7), name=f"{name}_b1_2")
    b1 = conv(b1, 256, (7, 1), name=f"{name}_b1_3")
    b2 = conv(x, 192, 1, name=f"{name}_b2_1")
    b2 = conv(b2, 192, (7, 1), name=f"{name}_b2_2")
    b2 = conv(b2, 224, (1, 7), name=f"{name}_b2_3")
    b2 = conv(b2, 224, (7, 1), name=f"{name}_b2_4")
    b2 = conv(b2, 256, (1, 7), name=f"{name}_b2_5")
    b3 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b3 = conv(b3, 128, 1, name=f"{name}_b3")
    return _concat([b0, b1, b2, b3], name)


def _reduction_b(x: Any, *, conv: Callable[..., Any], name: str) -> Any:
    """Figure 8: 17x17x1024 -> 8x8x1536."""
    b0 = conv(x, 192, 1, name=f"{name}_b0_1")
    b0 = conv(b0, 192, 3, strides=2, padding="valid", name=f"{name}_b0_2")
    b1 = conv(x, 256, 1, name=f"{name}_b1_1")
    b1 = conv(b1, 256, (1, 7), name=f"{name}_b1_2")
    b1 = conv(b1, 320, (7, 1), name=f"{name}_b1_3")
    b1 = conv(b1, 320, 3, strides=2, padding="valid", name=f"{name}_b1_4")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_pool")(x)
    return _concat([b0, b1, b2], name)


def _inception_c(x: Any, *, conv: Callable[..., Any], name: str) -> Any:
    """Figure 6: 8x8 grid, 1536 channels in and out."""
    b0 = conv(x, 256, 1, name=f"{name}_b0")
    b1 = conv(x, 384, 1, name=f"{name}_b1_1")
    b1 = _concat(
        [
            conv(b1, 256, (1, 3), name=f"{name}_b1_2a"),
            conv(b1, 256, (3, 1), name=f"{name}_b1_2b"),
        ],
        f"{name}_b1",
    )
    b2 = conv(x, 384, 1, name=f"{name}_b2_1")
    b2 = conv(b2, 448, (3, 1), name=f"{name}_b2_2")
    b2 = conv(b2, 512, (1, 3), name=f"{name}_b2_3")
    b2 = _concat(
        [
            conv(b2, 256, (1, 3), name=f"{name}_b2_4a"),
            conv(b2, 256, (3, 1), name=f"{name}_b2_4b"),
        ],
        f"{name}_b2",
    )
    b3 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b3 = conv(b3, 256, 1, name=f"{name}_b3")
    return _concat([b0, b1, b2, b3], name)
