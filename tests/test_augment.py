"""Tests for imgcls.inputs: flip / rotation / zoom, the small-subject rule, the preview."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
from PIL import Image

from imgcls.inputs import (
    is_small_subject,
    make_augmentation,
    preview_augmentation,
    routed_augmentation,
    subject_fraction,
    zoom_in_only,
)


def square_image(size: int = 64, side: int = 10, *, bg=(255, 255, 255), fg=(20, 20, 20)) -> np.ndarray:
    """A plain background with a centred square subject."""
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = bg
    start = (size - side) // 4 * 2  # even: the rule averages 2x2 blocks
    image[start : start + side, start : start + side] = fg
    return image


def foreground_area(batch: np.ndarray, bg: float = 255.0) -> np.ndarray:
    """Number of clearly-foreground pixels per image of a float batch."""
    return (np.abs(batch - bg) > 100).any(axis=-1).sum(axis=(1, 2))


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(6, 32, 32, 3)).astype("float32")


# --- make_augmentation ------------------------------------------------------
def test_identity_at_inference(batch):
    aug = make_augmentation(seed=3)
    out = np.asarray(aug(batch, training=False))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, batch)
    # Inside a model, predict() and evaluate() run it in inference mode too.
    model = keras.Sequential([keras.Input((32, 32, 3)), aug])
    np.testing.assert_array_equal(model.predict(batch, verbose=0), batch)


def test_seeded_same_seed_same_output_different_seed_differs(batch):
    a = np.asarray(make_augmentation(seed=1)(batch, training=True))
    b = np.asarray(make_augmentation(seed=1)(batch, training=True))
    c = np.asarray(make_augmentation(seed=2)(batch, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, batch)


def test_layers_and_ranges():
    aug = make_augmentation(rotation=10.0, zoom=0.1)
    assert isinstance(aug, keras.Sequential)
    names = [layer.name for layer in aug.layers]
    assert names == ["flip", "rotation", "zoom"]
    flip, rotation, zoom = aug.layers
    assert isinstance(flip, keras.layers.RandomFlip) and flip.mode == "horizontal"
    assert isinstance(rotation, keras.layers.RandomRotation)
    assert rotation.factor == pytest.approx(10.0 / 360.0) or tuple(rotation.factor) == pytest.approx(
        (-10.0 / 360.0, 10.0 / 360.0)
    )
    assert isinstance(zoom, keras.layers.RandomZoom)
    assert (zoom.height_lower, zoom.height_upper) == pytest.approx((-0.1, 0.1))
    assert zoom.width_factor is None  # aspect ratio kept

    no_out = make_augmentation(allow_zoom_out=False).get_layer("zoom")
    assert (no_out.height_lower, no_out.height_upper) == pytest.approx((-0.1, 0.0))

    assert [layer.name for layer in make_augmentation(flip=False, rotation=0, zoom=0).layers] == []


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"flip": "yes"}, "flip"),
        ({"rotation": -1}, "rotation"),
        ({"rotation": 180}, "rotation"),
        ({"rotation": "10"}, "rotation"),
        ({"rotation": float("nan")}, "rotation"),
        ({"zoom": 1.0}, "zoom"),
        ({"zoom": -0.1}, "zoom"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"allow_zoom_out": "no"}, "allow_zoom_out"),
        ({"fill_mode": "mirror"}, "fill_mode"),
    ],
)
def test_invalid_arguments_are_actionable(kwargs, word):
    with pytest.raises(ValueError, match=rf"`{word}`.*Received"):
        make_augmentation(**kwargs)


# --- small subjects -----------------------------------------------------------
def test_subject_fraction_small_vs_large_square():
    small = subject_fraction(square_image(64, 10))
    large = subject_fraction(square_image(64, 50))
    assert small == pytest.approx(100 / 4096, rel=0.01)
    assert large == pytest.approx(2500 / 4096, rel=0.01)
    assert is_small_subject(square_image(64, 10))
    assert not is_small_subject(square_image(64, 50))
    # Threshold is the boundary: 28x28 of 64x64 is 19%, 30x30 is 22%.
    assert is_small_subject(square_image(64, 28), threshold=0.2)
    assert not is_small_subject(square_image(64, 30), threshold=0.2)


def test_subject_fraction_robust_to_specks_colours_and_empty():
    image = square_image(64, 10, bg=(30, 120, 200), fg=(250, 240, 10))
    image[2, 60] = (0, 0, 0)  # one speck far from the subject
    image[50:52, 6:8] = (0, 0, 0)  # and another
    assert subject_fraction(image) == pytest.approx(100 / 4096, rel=0.05)
    # Sensor noise on a plain backdrop does not count as subject.
    noisy = square_image(64, 10).astype("float32")
    noisy += np.random.default_rng(0).normal(0, 12, noisy.shape)
    assert subject_fraction(np.clip(noisy, 0, 255).astype(np.uint8)) == pytest.approx(100 / 4096, rel=0.3)
    assert subject_fraction(np.full((32, 32, 3), 128, np.uint8)) == 0.0
    # Invariant under a quarter turn; works on float input and grey arrays.
    rect = np.full((40, 80, 3), 255, np.uint8)
    rect[5:15, 10:30] = 0
    assert subject_fraction(np.rot90(rect)) == pytest.approx(subject_fraction(rect))
    assert subject_fraction(rect.astype("float32")) == pytest.approx(subject_fraction(rect))
    assert subject_fraction(rect[:, :, 0]) == pytest.approx(subject_fraction(rect))


def test_subject_fraction_reads_paths_and_validates(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(square_image(64, 10)).save(path)
    assert is_small_subject(path)
    with pytest.raises(ValueError, match="threshold"):
        is_small_subject(square_image(), threshold=0)
    with pytest.raises(ValueError, match="image"):
        subject_fraction(np.zeros((4, 4, 5)))


def test_zoom_in_only_never_shrinks_a_small_subject():
    image = square_image(64, 16)
    batch = np.repeat(image[None].astype("float32"), 24, axis=0)
    aug = make_augmentation(flip=False, rotation=0, zoom=0.5, seed=0, fill_mode="nearest")
    base = foreground_area(batch[:1])[0]

    full = np.asarray(routed_augmentation(aug)(batch, np.zeros(24, bool), training=True))
    routed = np.asarray(routed_augmentation(aug)(batch, np.ones(24, bool), training=True))
    inward = np.asarray(zoom_in_only(aug)(batch, training=True))
    assert (foreground_area(full) < base * 0.9).any()  # the full range zooms out some
    assert (foreground_area(routed) >= base * 0.95).all()  # flagged: never out
    assert (foreground_area(inward) >= base * 0.95).all()

    mixed_flags = np.arange(24) % 2 == 0
    mixed = np.asarray(routed_augmentation(aug)(batch, mixed_flags, training=True))
    assert (foreground_area(mixed[mixed_flags]) >= base * 0.95).all()
    # Inference stays the identity, flags or not.
    same = np.asarray(routed_augmentation(aug)(batch, mixed_flags, training=False))
    np.testing.assert_array_equal(same, batch)


# --- preview -----------------------------------------------------------------
def test_preview_grid(tmp_path):
    fig = preview_augmentation(square_image(48, 30), n=5, seed=0)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled[0].startswith("original")
    assert titled[1:] == [f"augmented {i}" for i in range(1, 6)]
    assert len(fig.axes[0].get_images()) == 1
    fig.savefig(tmp_path / "preview.png")
    assert (tmp_path / "preview.png").stat().st_size > 0

    small = preview_augmentation(square_image(48, 6), n=1)
    assert "small subject" in small.axes[0].get_title()
    with pytest.raises(ValueError, match="`n`"):
        preview_augmentation(square_image(), n=0)
