"""Keras applications by name: EfficientNetV2-B0 and MobileNetV3-Small.

The ``keras.applications`` backbones are built with ``include_top=False``,
``weights=None`` and ``include_preprocessing=False`` on top of our own
``"preprocess"`` layer (the same normalisation their built-in preprocessing
does), and get our head: ``"avg_pool"``, dropout, ``"predictions"``. The
result is one flat functional model, so every backbone layer is reachable by
name. Weights are random, or come from a local file through
``create_model(..., weights=path)``; nothing is downloaded.
"""

from __future__ import annotations

import keras

from imgcls.models._common import classification_head, preprocess
from imgcls.models._registry import register_model

__all__ = ["build_efficientnetv2_b0", "build_mobilenetv3_small"]

#: EfficientNetV2-B*: ImageNet mean/std on pixels / 255 (as in keras.applications).
EFFICIENTNETV2_NORMALIZATION = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
#: MobileNetV3: pixels in [0, 255] -> [-1, 1] (as in keras.applications).
MOBILENETV3_NORMALIZATION = {"scale": 1.0 / 127.5, "offset": -1.0}


@register_model(
    "efficientnetv2_b0",
    default_input_shape=(224, 224, 3),
    normalization=EFFICIENTNETV2_NORMALIZATION,
    min_input_size=32,
    default_dropout=0.2,
)
def build_efficientnetv2_b0(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    dropout: float = 0.2,
    seed: int | None = None,
) -> keras.Model:
    """EfficientNetV2-B0 from keras.applications (~5.9 M params), random or local weights.

    Args:
        num_classes: Size of the softmax layer ``"predictions"``.
        input_shape: ``(height, width, 3)``, each side >= 32.
        dropout: Rate before ``"predictions"``.
        seed: Seed of the dropout layer.

    Returns:
        A flat functional ``keras.Model`` named ``"efficientnetv2_b0"``.
    """
    return _with_head(
        keras.applications.EfficientNetV2B0,
        "efficientnetv2_b0",
        EFFICIENTNETV2_NORMALIZATION,
        num_classes,
        input_shape=input_shape,
        dropout=dropout,
        seed=seed,
    )


@register_model(
    "mobilenetv3_small",
    default_input_shape=(224, 224, 3),
    normalization=MOBILENETV3_NORMALIZATION,
    min_input_size=32,
    default_dropout=0.2,
)
def build_mobilenetv3_small(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    dropout: float = 0.2,
    seed: int | None = None,
    alpha: float = 1.0,
    minimalistic: bool = False,
) -> keras.Model:
    """MobileNetV3-Small from keras.applications (~0.94 M params), random or local weights.

    Args:
        num_classes: Size of the softmax layer ``"predictions"``.
        input_shape: ``(height, width, 3)``, each side >= 32.
        dropout: Rate before ``"predictions"``.
        seed: Seed of the dropout layer.
        alpha: Width multiplier of keras' MobileNetV3Small.
        minimalistic: Keras' minimalistic variant (no SE, ReLU, 3x3 only).

    Returns:
        A flat functional ``keras.Model`` named ``"mobilenetv3_small"``.
    """
    return _with_head(
        keras.applications.MobileNetV3Small,
        "mobilenetv3_small",
        MOBILENETV3_NORMALIZATION,
        num_classes,
        input_shape=input_shape,
        dropout=dropout,
        seed=seed,
        alpha=alpha,
        minimalistic=minimalistic,
    )


def _with_head(
    application, name, normalization, num_classes, *, input_shape, dropout, seed, **options
) -> keras.Model:
    """Build ``application`` on our preprocess layer and put our head on it."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs, normalization)
    base = application(
        include_top=False,
        weights=None,
        input_tensor=x,
        include_preprocessing=False,
        **options,
    )
    outputs = classification_head(base.output, num_classes, dropout=dropout, seed=seed)
    return keras.Model(inputs, outputs, name=name)
