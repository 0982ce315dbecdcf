"""The embedded zoo sample: builds a workspace from animal-mnist (layer 2; no TensorFlow)."""

from imgcls.sample.animal_mnist import ZOO_CLASSES, load_animal_mnist
from imgcls.sample.zoo import (
    SAMPLE_COUNTS,
    build_sample,
    render_silhouette,
    sample_truth,
    simulate_labelling,
)

__all__ = [
    "ZOO_CLASSES",
    "SAMPLE_COUNTS",
    "load_animal_mnist",
    "render_silhouette",
    "build_sample",
    "simulate_labelling",
    "sample_truth",
]
