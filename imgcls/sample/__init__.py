"""The embedded zoo sample: builds a workspace from animal-mnist (layer 2; no TensorFlow)."""

from imgcls.sample.animal_mnist import ZOO_CLASSES, load_animal_mnist
from imgcls.sample.zoo import (
    SAMPLE_COUNTS,
    build_sample,
    render_silhouette,
    simulate_labelling,
)
from imgcls.sample.truth import TRUTH_COLUMN, attach_truth, sample_truth

__all__ = [
    "ZOO_CLASSES",
    "SAMPLE_COUNTS",
    "load_animal_mnist",
    "render_silhouette",
    "build_sample",
    "simulate_labelling",
    "sample_truth",
    "attach_truth",
    "TRUTH_COLUMN",
]
