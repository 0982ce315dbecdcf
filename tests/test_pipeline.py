"""Tests for imgcls.inputs: tf.data datasets from catalog rows, on real files."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from imgcls.core.images import read_image_resized
from imgcls.inputs import (
    AUTO_CACHE_BYTES,
    load_images,
    make_augmentation,
    make_dataset,
    make_inference_dataset,
    resolve_cache,
)

SIZE = (32, 32)


def write_png(path: Path, array: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return str(path)


def silhouette(seed: int, size: int = 40, *, side: int | None = None) -> np.ndarray:
    """A dark blob on a light background (side = square subject of that size)."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 230, dtype=np.uint8)
    if side is None:
        side = int(rng.integers(size // 3, size - 4))
    top, left = rng.integers(0, size - side + 1, size=2)
    image[top : top + side, left : left + side] = rng.integers(0, 90, size=3)
    return image


@pytest.fixture
def catalog(tmp_path) -> pd.DataFrame:
    """Eight images, two classes, built by hand like a Library catalog."""
    rows = []
    for i in range(8):
        label = ["cat", "dog"][i % 2]
        path = write_png(tmp_path / "library" / label / f"{i}.png", silhouette(i))
        rows.append({"path": path, "label": label, "turns": 0})
    return pd.DataFrame(rows)


def collect(ds):
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def test_shapes_dtypes_and_label_order(catalog):
    classes = ["dog", "cat"]  # label index follows `classes`, not alphabetical
    ds = make_dataset(catalog, classes, image_size=SIZE, batch_size=3)
    x, y = next(iter(ds))
    assert x.dtype == tf.float32 and tuple(x.shape) == (3, 32, 32, 3)
    assert y.dtype == tf.int32 and tuple(y.shape) == (3,)
    images, labels = collect(ds)
    assert labels.tolist() == [1, 0, 1, 0, 1, 0, 1, 0]  # rows order kept outside training
    expected = np.stack([read_image_resized(p, SIZE) for p in catalog["path"]]).astype("float32")
    np.testing.assert_array_equal(images, expected)  # decodes exactly as imgcls.core does
    assert 0.0 <= images.min() and images.max() <= 255.0


def test_only_given_rows_enter(catalog):
    rows = catalog.iloc[[1, 4, 6]]
    images, labels = collect(make_dataset(rows, ["cat", "dog"], image_size=SIZE, batch_size=2))
    assert len(images) == 3
    assert labels.tolist() == [1, 0, 0]


def test_unknown_labels_are_named(catalog):
    rows = catalog.copy()
    rows.loc[0, "label"] = "zebra"
    rows.loc[1, "label"] = "okapi"
    with pytest.raises(ValueError, match=r"'okapi' \(1 rows\).*'zebra' \(1 rows\)"):
        make_dataset(rows, ["cat", "dog"], image_size=SIZE)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"image_size": (0, 32)}, "image_size"),
        ({"image_size": "64"}, "image_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"skipped": ()}, "skipped"),
        ({"cache": 3}, "cache"),
    ],
)
def test_invalid_options(catalog, kwargs, word):
    kwargs = {"image_size": SIZE, **kwargs}
    with pytest.raises(ValueError, match=f"`{word}`"):
        make_dataset(catalog, ["cat", "dog"], **kwargs)


def test_missing_columns_and_empty_rows(catalog):
    with pytest.raises(ValueError, match="label"):
        make_dataset(catalog[["path"]], ["cat"], image_size=SIZE)
    with pytest.raises(ValueError, match="empty"):
        make_dataset(catalog.iloc[:0], ["cat"], image_size=SIZE)
    with pytest.raises(ValueError, match="turns"):
        make_dataset(catalog.assign(turns=5), ["cat", "dog"], image_size=SIZE)


# Keras warns at the end of the first epoch of any dataset of unknown length
# (files may be skipped, so the number of batches is known only afterwards).
@pytest.mark.filterwarnings("ignore:Your input ran out of data")
@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_file_broken_after_the_catalog_is_skipped_and_reported(catalog):
    paths = catalog["path"].tolist()
    Path(paths[1]).write_bytes(Path(paths[1]).read_bytes()[:60])  # truncated
    Path(paths[3]).write_bytes(b"this is not an image at all")  # replaced by junk
    os.remove(paths[5])  # deleted
    skipped: list = []
    ds = make_dataset(catalog, ["cat", "dog"], image_size=SIZE, batch_size=4, skipped=skipped)
    images, labels = collect(ds)
    assert len(images) == 5
    assert labels.tolist() == [0, 0, 0, 0, 1]  # rows 0, 2, 4, 6, 7
    assert sorted(p for p, _ in skipped) == sorted([paths[1], paths[3], paths[5]])
    assert all(isinstance(reason, str) and reason for _, reason in skipped)

    # Iterating again (a second epoch) does not report the same files twice.
    collect(ds)
    assert len(skipped) == 3

    # Nor does it crash fit(): train a tiny model for two epochs, with augmentation.
    train_skipped: list = []
    train = make_dataset(
        catalog,
        ["cat", "dog"],
        image_size=SIZE,
        batch_size=4,
        training=True,
        augmentation=make_augmentation(seed=0),
        skipped=train_skipped,
    )
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.GlobalAveragePooling2D(),
         keras.layers.Dense(2, activation="softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(train, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert len(train_skipped) == 3


def test_turns_applied_before_resize(tmp_path):
    # 20 high, 40 wide: left half red, right half blue. One quarter turn CCW
    # puts the blue half on top (40 high, 20 wide); only a turn done before the
    # resize can give a (16, 32) image with blue on top and red below.
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, :20] = (255, 0, 0)
    image[:, 20:] = (0, 0, 255)
    path = write_png(tmp_path / "wide.png", image)
    rows = pd.DataFrame({"path": [path, path], "label": ["a", "a"], "turns": [0, 1]})
    images, _ = collect(make_dataset(rows, ["a"], image_size=(16, 32)))
    plain, turned = images
    assert plain[:, :12, 0].min() > 200 and plain[:, 20:, 2].min() > 200  # red left, blue right
    assert turned[:6, :, 2].min() > 200 and turned[:6, :, 0].max() < 50  # blue on top
    assert turned[10:, :, 0].min() > 200 and turned[10:, :, 2].max() < 50  # red below


def test_training_shuffles_with_seed_and_augments_repeatably(catalog):
    def run(seed):
        ds = make_dataset(
            catalog,
            ["cat", "dog"],
            image_size=SIZE,
            batch_size=8,
            training=True,
            augmentation=make_augmentation(seed=seed),
            seed=seed,
        )
        return collect(ds)

    (x1, y1), (x2, y2), (x3, y3) = run(0), run(0), run(5)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert sorted(y1.tolist()) == sorted(y3.tolist()) == [0] * 4 + [1] * 4
    assert not np.allclose(x1, x3)


def test_small_subjects_are_never_zoomed_out(tmp_path):
    # Sixteen copies of a 12x12 square in a 40x40 frame (9% of the area: small).
    image = np.full((40, 40, 3), 230, dtype=np.uint8)
    image[14:26, 14:26] = 40  # centred, so zooming in never pushes it out of frame
    path = write_png(tmp_path / "small.png", image)
    rows = pd.DataFrame({"path": [path] * 16, "label": ["a"] * 16})
    aug_kwargs = dict(flip=False, rotation=0.0, zoom=0.5, fill_mode="nearest")

    def areas(frame):
        ds = make_dataset(
            frame, ["a"], image_size=(40, 40), batch_size=16, training=True,
            augmentation=make_augmentation(seed=1, **aug_kwargs),
        )
        images, _ = collect(ds)
        return (images.mean(axis=-1) < 150).sum(axis=(1, 2))

    base = 12 * 12
    # Column absent: the rule is computed at decode and routes them to zoom-in only.
    assert (areas(rows) >= base * 0.95).all()
    # Column present and true: same.
    assert (areas(rows.assign(small_subject=True)) >= base * 0.95).all()
    # Column present and false: the full range, some are zoomed out.
    assert (areas(rows.assign(small_subject=False)) < base * 0.9).any()


def test_cache_in_memory_and_on_disk(catalog, tmp_path):
    plain = collect(make_dataset(catalog, ["cat", "dog"], image_size=SIZE))
    for cache in (True, tmp_path / "cache" / "train"):
        if not isinstance(cache, bool):
            cache.parent.mkdir()
        ds = make_dataset(catalog, ["cat", "dog"], image_size=SIZE, cache=cache)
        first, second = collect(ds), collect(ds)
        np.testing.assert_array_equal(first[0], plain[0])
        np.testing.assert_array_equal(second[0], plain[0])


def test_auto_cache_decodes_once_when_it_fits(catalog):
    """cache="auto" (train's default) keeps the small set in memory: after the
    first epoch the files are not read again, so deleting them changes nothing;
    without the cache the next epoch reports them as skipped."""
    plain = collect(make_dataset(catalog, ["cat", "dog"], image_size=SIZE))
    cached_skips, uncached_skips = [], []
    cached = make_dataset(catalog, ["cat", "dog"], image_size=SIZE, cache="auto", skipped=cached_skips)
    uncached = make_dataset(catalog, ["cat", "dog"], image_size=SIZE, cache=False, skipped=uncached_skips)
    np.testing.assert_array_equal(collect(cached)[0], plain[0])
    np.testing.assert_array_equal(collect(uncached)[0], plain[0])
    gone = catalog["path"].iloc[:3].tolist()
    for path in gone:
        os.remove(path)
    again = collect(cached)
    np.testing.assert_array_equal(again[0], plain[0])
    np.testing.assert_array_equal(again[1], plain[1])
    assert cached_skips == []
    assert len(collect(uncached)[0]) == len(catalog) - 3
    assert sorted(p for p, _ in uncached_skips) == sorted(gone)


def test_resolve_cache():
    assert resolve_cache("auto", 3000, 64) is True                      # the sample: 37 MB
    assert resolve_cache("auto", 10_000, (299, 299, 3)) is False        # 2.7 GB: decode every epoch
    import psutil

    if psutil.virtual_memory().available >= 8 * AUTO_CACHE_BYTES:  # the fixed budget decides, not free memory
        assert resolve_cache("auto", AUTO_CACHE_BYTES // (32 * 32 * 3), 32) is True
    assert resolve_cache("auto", AUTO_CACHE_BYTES // (32 * 32 * 3) + 1, 32) is False
    assert resolve_cache(True, 10**9, 299) is True and resolve_cache(False, 1, 8) is False
    assert resolve_cache(Path("auto"), 1, 8) == "auto"                  # a disk cache named "auto"
    for bad in (3, "", None, 1.5):
        with pytest.raises(ValueError, match="`cache`"):
            resolve_cache(bad, 1, 8)


def test_inference_dataset_indices_map_back_with_a_bad_file(catalog, tmp_path):
    paths = catalog["path"].tolist()[:5]
    bad = write_png(tmp_path / "x.png", silhouette(99))
    Path(bad).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    paths.insert(2, bad)
    skipped: list = []
    ds = make_inference_dataset(paths, image_size=SIZE, batch_size=4, skipped=skipped)
    images, index = [], []
    for x, i in ds:
        assert x.dtype == tf.float32 and i.dtype == tf.int64
        images.append(x.numpy())
        index.append(i.numpy())
    images, index = np.concatenate(images), np.concatenate(index)
    assert index.tolist() == [0, 1, 3, 4, 5]
    for image, i in zip(images, index):
        np.testing.assert_array_equal(image, read_image_resized(paths[i], SIZE))
    assert [p for p, _ in skipped] == [bad]

    empty = list(make_inference_dataset([], image_size=SIZE))
    assert empty == []


def test_load_images(catalog, tmp_path):
    paths = catalog["path"].tolist()[:3] + [str(tmp_path / "missing.png")]
    images, ok, errors = load_images(paths, SIZE, turns=[0, 1, 0, 0])
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert ok.tolist() == [True, True, True, False]
    assert [p for p, _ in errors] == [paths[3]]
    np.testing.assert_array_equal(images[1], read_image_resized(paths[1], SIZE, turns=1))
    assert not images[3].any()
