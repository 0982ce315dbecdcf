"""Subject measures, augmentation and tf.data pipelines (layer 3: TensorFlow starts here)."""

from imgcls.core.quiet import start_tensorflow

start_tensorflow()  # before any TensorFlow import below: loads it without its start-up lines on stderr

from imgcls.inputs.augment import (
    DEFAULT_ROTATION,
    DEFAULT_ZOOM,
    make_augmentation,
    routed_augmentation,
    zoom_in_only,
)
from imgcls.inputs.decode import load_images, parse_image_size
from imgcls.inputs.pipeline import (
    AUTO_CACHE_BYTES,
    SHUFFLE_BUFFER,
    make_dataset,
    make_inference_dataset,
    resolve_cache,
)
from imgcls.inputs.plots import preview_augmentation
from imgcls.inputs.subject import (
    SMALL_SUBJECT_THRESHOLD,
    SUBJECT_TOLERANCE,
    is_small_subject,
    subject_fraction,
)

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
    "parse_image_size",
    "make_dataset",
    "make_inference_dataset",
    "load_images",
    "resolve_cache",
    "SHUFFLE_BUFFER",
    "AUTO_CACHE_BYTES",
]
