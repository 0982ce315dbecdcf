"""Model registry and architectures (layer 3).

Build any registered model by name::

    from imgcls.models import create_model, list_models
    model = create_model("mini_inception", num_classes=12)

Every model takes float32 RGB pixels in ``[0, 255]`` and normalises them in
its first layer, ``"preprocess"``; its pooled features are the output of the
layer ``"avg_pool"`` and its class probabilities that of ``"predictions"``.

Registered families, one module each: :mod:`~imgcls.models.inception_v4`,
:mod:`~imgcls.models.mini_inception`, :mod:`~imgcls.models.simple_cnn`,
:mod:`~imgcls.models.keras_apps` (EfficientNetV2-B0, MobileNetV3-Small) and
:mod:`~imgcls.models.keras_cv_resnet` (KerasCV ResNet-18; keras_cv is
imported only when that model is built).
"""

from imgcls.core.quiet import start_tensorflow

start_tensorflow()  # before any TensorFlow import below: loads it without its start-up lines on stderr

from imgcls.models._common import count_macs
from imgcls.models._registry import (
    DEFAULT_MODEL,
    ModelSpec,
    create_model,
    get_model_spec,
    list_models,
    register_model,
)

# Importing the family modules registers their models.
from imgcls.models import inception_v4 as _inception_v4  # noqa: E402,F401  isort: skip
from imgcls.models import mini_inception as _mini_inception  # noqa: E402,F401  isort: skip
from imgcls.models import simple_cnn as _simple_cnn  # noqa: E402,F401  isort: skip
from imgcls.models import keras_apps as _keras_apps  # noqa: E402,F401  isort: skip
from imgcls.models import keras_cv_resnet as _keras_cv_resnet  # noqa: E402,F401  isort: skip

__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "count_macs",
    "create_model",
    "get_model_spec",
    "list_models",
    "register_model",
]
