"""The animal-mnist data behind the zoo sample, loaded without running pickled code."""

from __future__ import annotations

import pickle

import pytest

from imgcls.sample import load_animal_mnist
from imgcls.sample.animal_mnist import _NumpyOnlyUnpickler


def test_animal_mnist_loads_as_plain_arrays():
    images, labels = load_animal_mnist()
    assert images.shape == (10000, 28, 28) and images.dtype.name == "uint8"
    assert sorted(set(labels.tolist())) == list(range(10))


def test_unpickler_refuses_code():
    import io

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Evil()))).load()
