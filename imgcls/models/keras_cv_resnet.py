"""keras_cv_resnet18: the KerasCV ResNet-18 (v1) backbone with our head.

The only module that touches ``keras_cv``, and only inside the builder, so
``import imgcls.models`` never imports it. The backbone is built from its
architecture arguments with ``keras_cv.models.ResNetBackbone`` (not the
``ResNet18Backbone`` preset alias, which fetches a config from Kaggle), then
re-wrapped as a plain ``keras.Model`` made of core Keras layers. A saved model
therefore loads with ``keras.saving.load_model`` without importing keras_cv.
The backbone appears as one nested layer named ``"resnet18_backbone"``.
"""

from __future__ import annotations

import keras

from imgcls.models._common import classification_head, preprocess
from imgcls.models._registry import register_model

__all__ = ["build_keras_cv_resnet18", "NORMALIZATION"]

#: KerasCV ResNet's own ``include_rescaling``: pixels / 255.
NORMALIZATION = {"scale": 1.0 / 255.0, "offset": 0.0}


@register_model(
    "keras_cv_resnet18",
    default_input_shape=(224, 224, 3),
    normalization=NORMALIZATION,
    min_input_size=32,
    default_dropout=0.2,
)
def build_keras_cv_resnet18(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    dropout: float = 0.2,
    seed: int | None = None,
) -> keras.Model:
    """ResNet-18 v1 backbone from KerasCV (~11.2 M params), random or local weights.

    Args:
        num_classes: Size of the softmax layer ``"predictions"``.
        input_shape: ``(height, width, 3)``, each side >= 32.
        dropout: Rate before ``"predictions"``.
        seed: Seed of the dropout layer.

    Returns:
        A functional ``keras.Model`` named ``"keras_cv_resnet18"``.

    Raises:
        ValueError: If keras_cv cannot be imported.
    """
    try:
        from keras_cv.models import ResNetBackbone
    except Exception as err:  # ImportError, or a version clash inside keras_cv
        raise ValueError(
            f"Model 'keras_cv_resnet18' needs keras-cv, which failed to import: {err}. "
            "Install keras-cv>=0.9 or pick another model from imgcls.models.list_models()."
        ) from err

    backbone = ResNetBackbone(
        stackwise_filters=[64, 128, 256, 512],
        stackwise_blocks=[2, 2, 2, 2],
        stackwise_strides=[1, 2, 2, 2],
        block_type="basic_block",
        include_rescaling=False,
        input_shape=tuple(input_shape),
    )
    plain = keras.Model(backbone.input, backbone.output, name="resnet18_backbone")

    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs, NORMALIZATION)
    x = plain(x)
    outputs = classification_head(x, num_classes, dropout=dropout, seed=seed)
    return keras.Model(inputs, outputs, name="keras_cv_resnet18")
