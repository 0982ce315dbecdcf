"""Building blocks shared by the model families, and a MAC counter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import layers

__all__ = ["classification_head", "conv_bn", "count_macs", "preprocess"]


def preprocess(inputs: Any, normalization: Mapping[str, Any]) -> Any:
    """Apply the ``"preprocess"`` Rescaling layer built from a normalization config.

    Args:
        inputs: Keras tensor of RGB pixels in ``[0, 255]``.
        normalization: ``{"scale", "offset"}`` (``y = x * scale + offset``) or
            ``{"mean", "std"}`` per channel in ``[0, 1]`` units
            (``y = (x / 255 - mean) / std``).

    Returns:
        The normalised Keras tensor.
    """
    if "mean" in normalization:
        mean = [float(m) for m in normalization["mean"]]
        std = [float(s) for s in normalization["std"]]
        scale: Any = [1.0 / (255.0 * s) for s in std]
        offset: Any = [-m / s for m, s in zip(mean, std, strict=True)]
    else:
        scale = normalization["scale"]
        offset = normalization["offset"]
    return layers.Rescaling(scale, offset, name="preprocess")(inputs)


def conv_bn(
    x: Any,
    filters: int,
    kernel_size: int | tuple[int, int],
    *,
    strides: int = 1,
    padding: str = "same",
    momentum: float = 0.99,
    name: str,
) -> Any:
    """Conv2D (no bias) -> BatchNormalization (no scale) -> ReLU.

    Layers are named ``{name}_conv``, ``{name}_bn`` and ``{name}_relu``. The BN
    has no gamma, as in Keras' InceptionV3 and the TF-slim Inception-v4: the
    following ReLU and convolution make a per-channel scale redundant.
    ``momentum`` is the BN moving-average momentum (Keras default 0.99; small
    models trained for few steps use 0.9 so validation statistics settle
    within an epoch or two).
    """
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(scale=False, momentum=momentum, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def classification_head(
    x: Any, num_classes: int, *, dropout: float, seed: int | None = None
) -> Any:
    """``"avg_pool"`` (GlobalAveragePooling2D) -> ``"dropout"`` -> ``"predictions"`` (softmax).

    The dropout layer is left out when ``dropout == 0``.
    """
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def count_macs(model: keras.Model) -> int:
    """Count multiply-accumulates of one forward pass for one image.

    Counts ``Conv2D``, ``DepthwiseConv2D`` and ``Dense`` layers (the usual
    convention for published GMAC figures; BN, activations, pooling, additions
    are left out), descending into nested models. The model must be built at
    a fixed input size and each layer called once.

    Args:
        model: A built ``keras.Model``.

    Returns:
        MACs per image (divide by 1e9 for GMACs).

    Example:
        >>> count_macs(create_model("inception_v4", 1000)) / 1e9  # doctest: +SKIP
        12.27...
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        if not isinstance(layer, layers.Conv2D | layers.DepthwiseConv2D | layers.Dense):
            continue
        out_shape = layer.output.shape
        in_channels = layer.input.shape[-1]
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += out_shape[1] * out_shape[2] * kh * kw * out_shape[-1]
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            groups = getattr(layer, "groups", 1)
            total += out_shape[1] * out_shape[2] * kh * kw * (in_channels // groups) * out_shape[-1]
        else:
            positions = 1
            for dim in out_shape[1:-1]:
                positions *= dim
            total += positions * in_channels * out_shape[-1]
    return int(total)
