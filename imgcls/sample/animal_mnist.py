"""The animal-mnist silhouettes: 10,000 28x28 animal shapes in ten classes.

The data (MIT licence, Sina Mohammadi) ships in the ``animal-mnist`` package
as gzipped pickles of numpy arrays. They are loaded with an unpickler that
admits numpy arrays and dtypes only, so no code in the file can run. The
package itself is never imported (its ``__init__`` imports TensorFlow).

This module never imports TensorFlow.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
from pathlib import Path

import numpy as np

__all__ = ["ZOO_CLASSES", "load_animal_mnist"]

#: The ten animal-mnist classes, in the package's label order.
ZOO_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admit numpy arrays and dtypes; refuse every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(
                f"animal-mnist data refers to {module}.{name}; only numpy arrays are admitted."
            )
        if name in {"_reconstruct", "scalar"}:
            from numpy._core import multiarray

            return getattr(multiarray, name)
        return getattr(np, name)


def _load_array(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        obj = _NumpyOnlyUnpickler(io.BufferedReader(fh)).load()
    if not isinstance(obj, np.ndarray):
        raise ValueError(f"{path} does not hold a numpy array (found {type(obj).__name__}).")
    return obj


def load_animal_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 animal silhouettes (28x28 uint8) and their labels (0-9).

    Returns:
        ``(images, labels)``; ``ZOO_CLASSES[label]`` names a label.

    Raises:
        ModuleNotFoundError: The ``animal-mnist`` package is not installed.
        ValueError: Its data files do not hold the expected arrays.
    """
    spec = importlib.util.find_spec("animal_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The sample needs the `animal-mnist` package: pip install animal-mnist==0.4 "
            "(it is a dependency of imgcls; reinstall with `make venv`)."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"
    images = _load_array(folder / "animal_data_version_3.gz")
    labels = _load_array(folder / "animal_label_version_3.gz")
    if images.shape != (10000, 28, 28) or labels.shape != (10000,):
        raise ValueError(f"Unexpected animal-mnist shapes {images.shape}, {labels.shape}.")
    return images.astype(np.uint8), labels.astype(np.int64)
