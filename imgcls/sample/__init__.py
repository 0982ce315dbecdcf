"""The embedded zoo sample: builds a workspace from animal-mnist (layer 2; no TensorFlow)."""

from imgcls.sample.zoo import (
    SAMPLE_COUNTS,
    ZOO_CLASSES,
    build_sample,
    load_animal_mnist,
    sample_truth,
    simulate_labelling,
)

__all__ = [
    "ZOO_CLASSES",
    "SAMPLE_COUNTS",
    "load_animal_mnist",
    "build_sample",
    "simulate_labelling",
    "sample_truth",
]
