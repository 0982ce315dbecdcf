"""Tests for imgcls.models: the registry, every registered model, Inception-v4 sizes."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ast
from pathlib import Path

import keras
import numpy as np
import pytest

import imgcls.models
from imgcls.models import (
    DEFAULT_MODEL,
    ModelSpec,
    count_macs,
    create_model,
    get_model_spec,
    list_models,
    register_model,
)

CONTRACT_NAMES = {"inception_v4", "mini_inception", "simple_cnn", "efficientnetv2_b0", "mobilenetv3_small"}


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype("float32")


# --- registry ---------------------------------------------------------------


def test_registry_lists_contract_models_and_default():
    names = list_models()
    assert names == sorted(names)
    assert CONTRACT_NAMES <= set(names)
    assert DEFAULT_MODEL == "mini_inception" and DEFAULT_MODEL in names


def test_model_spec_fields():
    spec = get_model_spec("inception_v4")
    assert isinstance(spec, ModelSpec)
    assert spec.name == "inception_v4"
    assert spec.default_input_shape == (299, 299, 3)
    assert spec.min_input_size == 75
    assert dict(spec.normalization) == {"scale": 1 / 127.5, "offset": -1.0}
    assert spec.description
    assert callable(spec.builder)
    with pytest.raises(TypeError):
        spec.normalization["scale"] = 1.0  # read only
    with pytest.raises(AttributeError):
        spec.name = "other"  # frozen


@pytest.mark.parametrize("name", list_models())
def test_every_model_round_trip(name):
    spec = get_model_spec(name)
    size = max(spec.min_input_size, 32)
    model = create_model(name, 3, input_shape=(size, size))
    assert isinstance(model, keras.Model)
    assert model.name == name
    assert tuple(model.input.shape) == (None, size, size, 3)
    assert isinstance(model.get_layer("preprocess"), keras.layers.Rescaling)
    assert isinstance(model.get_layer("avg_pool"), keras.layers.GlobalAveragePooling2D)
    predictions = model.get_layer("predictions")
    assert isinstance(predictions, keras.layers.Dense) and predictions.units == 3
    assert model.output is predictions.output

    probs = np.asarray(model(_pixels((2, size, size, 3)), training=False))
    assert probs.shape == (2, 3)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    if name == "inception_v4":  # the paper's valid padding still fits at 75x75
        assert tuple(model.get_layer("inception_c3").output.shape) == (None, 1, 1, 1536)


def test_keras_cv_is_imported_only_inside_one_builder():
    # `import imgcls.models` must not import keras_cv: only the keras_cv_resnet
    # module may import it, and only inside a function body.
    package = Path(imgcls.models.__file__).parent
    importers = {}
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] == "keras_cv" for n in names):
                    importers.setdefault(path.name, []).append(node)
        top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        assert not any(n in top_level for n in importers.get(path.name, []))
    assert set(importers) == {"keras_cv_resnet.py"}


def test_preprocess_follows_spec_normalization():
    # [0, 255] -> [-1, 1] for Inception-style models.
    model = create_model("mini_inception", 2, input_shape=(32, 32))
    pre = keras.Model(model.input, model.get_layer("preprocess").output)
    x = np.zeros((1, 32, 32, 3), "float32")
    x[0, 0, 0] = 255.0
    y = np.asarray(pre(x))
    np.testing.assert_allclose(y[0, 0, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(y[0, 1, 1], -1.0, atol=1e-6)
    # Per-channel ImageNet mean/std for EfficientNetV2.
    norm = get_model_spec("efficientnetv2_b0").normalization
    model = create_model("efficientnetv2_b0", 2, input_shape=(32, 32))
    pre = keras.Model(model.input, model.get_layer("preprocess").output)
    y = np.asarray(pre(np.full((1, 32, 32, 3), 127.5, "float32")))[0, 0, 0]
    expected = (0.5 - np.array(norm["mean"])) / np.array(norm["std"])
    np.testing.assert_allclose(y, expected, rtol=1e-5)


# --- Inception-v4 -------------------------------------------------------------


@pytest.mark.slow  # builds full-size models
def test_inception_v4_matches_published_size():
    model = create_model("inception_v4", 1000)
    # Published: 42.7 M parameters, 12.3 GMACs at 299x299. Keras counts BN beta
    # plus moving mean/variance (BN has no gamma), as keras.applications does.
    assert abs(model.count_params() - 42.7e6) / 42.7e6 < 0.01
    assert abs(count_macs(model) - 12.3e9) / 12.3e9 < 0.01
    assert tuple(model.get_layer("mixed_5a").output.shape) == (None, 35, 35, 384)
    assert tuple(model.get_layer("reduction_a").output.shape) == (None, 17, 17, 1024)
    assert tuple(model.get_layer("inception_c3").output.shape) == (None, 8, 8, 1536)
    assert model.get_layer("dropout").rate == pytest.approx(0.2)


def test_inception_v4_bn_momentum_reaches_every_batch_norm():
    default = create_model("inception_v4", 3, input_shape=(75, 75))
    fast = create_model("inception_v4", 3, input_shape=(75, 75), bn_momentum=0.9)
    bns = [layer for layer in fast.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 149  # one per convolution of the paper's figures 3-9
    assert {layer.momentum for layer in bns} == {0.9}
    assert {layer.momentum for layer in default.layers
            if isinstance(layer, keras.layers.BatchNormalization)} == {0.99}
    assert fast.count_params() == default.count_params()  # the same network, only its statistics' pace differs
    with pytest.raises(ValueError, match=r"`bn_momentum` must be a number in \[0, 1\)"):
        create_model("inception_v4", 3, input_shape=(75, 75), bn_momentum=1.5)


def test_inception_v4_below_75_is_refused_with_a_hint():
    with pytest.raises(ValueError, match=r"at least 75x75.*mini_inception"):
        create_model("inception_v4", 4, input_shape=(74, 74))


def test_count_macs_counts_dense_and_conv():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8*3*3*3*4 = 6912
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)  # 4*5 = 20
    assert count_macs(keras.Model(inputs, outputs)) == 6912 + 20


# --- errors -------------------------------------------------------------------


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        create_model("inceptionv4", 3)
    message = str(info.value)
    assert "'inceptionv4'" in message and "Did you mean 'inception_v4'" in message
    for name in list_models():
        assert name in message
    with pytest.raises(ValueError, match="Known models"):
        get_model_spec("resnet9000")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 2.5}, "num_classes"),
        ({"num_classes": True}, "num_classes"),
        ({"num_classes": "3"}, "num_classes"),
        ({"input_shape": (64, 64, 1)}, "RGB"),
        ({"input_shape": (64,)}, "input_shape"),
        ({"input_shape": 64}, "input_shape"),
        ({"input_shape": (16, 16)}, "at least 32x32"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"seed": -1}, "seed"),
        ({"weights": "imagenet"}, "Nothing is downloaded"),
        ({"weights": 123}, "weights"),
        ({"weights": "model.h5"}, r"\.weights\.h5"),
        ({"weights": "missing/model.keras"}, "not found"),
        ({"width": 2}, "Unknown keyword"),
    ],
)
def test_bad_arguments_raise_actionable_errors(kwargs, match):
    args = {"num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=match) as info:
        create_model("mini_inception", **args)
    assert "Received" in str(info.value) or "Accepted" in str(info.value) or "not found" in str(info.value)


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")
def test_num_classes_one_is_allowed():
    model = create_model("simple_cnn", 1, input_shape=(32, 32))
    np.testing.assert_allclose(np.asarray(model(_pixels((2, 32, 32, 3)))), 1.0)


def test_register_model_refuses_duplicate_and_bad_normalization():
    with pytest.raises(ValueError, match="already registered"):
        register_model(
            "mini_inception",
            default_input_shape=(64, 64, 3),
            normalization={"scale": 1.0, "offset": 0.0},
            min_input_size=32,
        )(lambda num_classes, **kw: None)
    with pytest.raises(ValueError, match="normalization"):
        register_model(
            "never_registered", default_input_shape=(64, 64, 3), normalization={"mu": 0}, min_input_size=32
        )
    assert "never_registered" not in list_models()


# --- weights and seeds ----------------------------------------------------------


@pytest.mark.slow  # builds full-size models
def test_weights_from_local_file_round_trip(tmp_path):
    model = create_model("mini_inception", 4, input_shape=(32, 32), seed=1)
    weights_file = tmp_path / "model.weights.h5"
    model_file = tmp_path / "model.keras"
    model.save_weights(weights_file)
    model.save(model_file)
    x = _pixels((3, 32, 32, 3), seed=5)
    expected = np.asarray(model(x, training=False))

    for path in (weights_file, str(model_file)):
        loaded = create_model("mini_inception", 4, input_shape=(32, 32), seed=2, weights=path)
        np.testing.assert_allclose(np.asarray(loaded(x, training=False)), expected, rtol=1e-5, atol=1e-6)
    # The whole model reloads without custom objects (runs load with safe_mode=True).
    reloaded = keras.saving.load_model(model_file, safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(x, training=False)), expected, rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match=r"num_classes=5.*\(224, 4\) in the file.*swap_head"):
        create_model("mini_inception", 5, input_shape=(32, 32), weights=weights_file)


def test_seed_gives_identical_initial_weights():
    a = create_model("simple_cnn", 3, input_shape=(32, 32), seed=7)
    b = create_model("simple_cnn", 3, input_shape=(32, 32), seed=7)
    c = create_model("simple_cnn", 3, input_shape=(32, 32), seed=8)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
