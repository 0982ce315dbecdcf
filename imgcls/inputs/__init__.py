"""Subject measures, augmentation and tf.data pipelines (layer 3: TensorFlow starts here)."""

from imgcls.inputs.augment import (
    DEFAULT_ROTATION,
    DEFAULT_ZOOM,
    SMALL_SUBJECT_THRESHOLD,
    SUBJECT_TOLERANCE,
    is_small_subject,
    make_augmentation,
    preview_augmentation,
    routed_augmentation,
    subject_fraction,
    zoom_in_only,
)
from imgcls.inputs.pipeline import (
    AUTO_CACHE_BYTES,
    SHUFFLE_BUFFER,
    load_images,
    make_dataset,
    make_inference_dataset,
    parse_image_size,
    resolve_cache,
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
