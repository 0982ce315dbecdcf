"""imgcls.runtimes: a run's model on Keras or OpenVINO, the same probabilities either way."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from imgcls.runtimes import (
    PRECISIONS,
    RUNTIMES,
    ExportNotFoundError,
    KerasRuntime,
    exported_precisions,
    load_runtime,
)


def test_importing_the_package_loads_no_engine():
    code = ("import sys, imgcls.runtimes; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'openvino', 'nncf'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_names():
    assert RUNTIMES == ("keras", "openvino")
    assert PRECISIONS == ("f32", "bf16", "int8")


# ------------------------------------------------------------------ with real runs
@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from export_runs import build_workspace

    return build_workspace(tmp_path_factory.mktemp("runtimes") / "ws")


@pytest.fixture(scope="module")
def images(ws):
    from imgcls.inputs import load_images
    from imgcls.runs import load_run

    run = load_run("trained", workspace=ws)
    x, ok, _ = load_images(list(run.splits["path"]), run.image_size)
    assert ok.all()
    return x[:11]


@pytest.mark.slow
def test_keras_runtime(ws, images):
    from imgcls.runs import load_run

    run = load_run("trained", workspace=ws)
    rt = load_runtime(run)
    assert isinstance(rt, KerasRuntime)
    assert (rt.name, rt.precision, rt.input_size, rt.classes) == ("keras", "f32", (32, 32), run.classes)
    probs = rt.predict(images)  # uint8 pixels are accepted as they are
    assert probs.shape == (11, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs, run.model.predict_on_batch(images.astype("float32")), atol=1e-6)
    assert rt.predict(images[:0]).shape == (0, 3)
    chunked = load_runtime(run, batch_size=4).predict(images)
    np.testing.assert_allclose(chunked, probs, atol=1e-6)
    info = rt.info()
    assert info["runtime"] == "keras" and info["precision"] == "f32" and info["run_id"] == "trained"
    with pytest.raises(ValueError, match=r"`batch` must be images of shape \(n, 32, 32, 3\)"):
        rt.predict(np.zeros((2, 16, 16, 3)))


@pytest.mark.slow
def test_openvino_without_an_export_names_the_command(ws):
    with pytest.raises(ExportNotFoundError, match="imgcls export no-train --runtime openvino"):
        load_runtime("no-train", "openvino", workspace=ws)
    with pytest.raises(ExportNotFoundError, match="imgcls export no-train --runtime openvino --precision int8"):
        load_runtime("no-train", "openvino", workspace=ws, precision="int8")
    assert exported_precisions("no-train", workspace=ws) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="`runtime` must be one of 'keras', 'openvino'"):
        load_runtime(tmp_path, "onnx")
    with pytest.raises(ValueError, match="`precision` must be one of 'f32', 'bf16', 'int8'"):
        load_runtime(tmp_path, "openvino", precision="fp16")


@pytest.mark.slow
def test_keras_has_only_f32(ws):
    with pytest.raises(ValueError, match="`precision` must be None or 'f32' for the keras runtime"):
        load_runtime("trained", "keras", workspace=ws, precision="int8")


@pytest.mark.slow
def test_openvino_runtime_matches_keras(ws, images):
    pytest.importorskip("openvino")
    from imgcls.export import export_run

    for precision in ("f32", "int8"):
        assert export_run(ws, "trained", precision=precision, calibration_images=20)["accepted"]
    assert exported_precisions("trained", workspace=ws) == ["int8", "f32"]
    keras_probs = load_runtime("trained", workspace=ws).predict(images)

    best = load_runtime("trained", "openvino", workspace=ws)  # no precision: the int8 export
    assert (best.name, best.precision, best.input_size) == ("openvino", "int8", (32, 32))
    assert best.info()["inference_precision"] == "f32"  # int8's float operations stay f32
    np.testing.assert_array_equal(best.predict(images).argmax(1), keras_probs.argmax(1))

    for kwargs in ({}, {"batch_size": 4}, {"mode": "throughput"}, {"batch_size": 4, "mode": "throughput"},
                   {"batch_size": 16}):
        with load_runtime("trained", "openvino", workspace=ws, precision="f32", **kwargs) as rt:
            probs = rt.predict(images)
            assert probs.shape == (11, 3) and probs.dtype == np.float32
            np.testing.assert_allclose(probs, keras_probs, atol=1e-4)
            np.testing.assert_allclose(rt.predict(images[:1]), keras_probs[:1], atol=1e-4)
            info = rt.info()
            assert info["inference_precision"] == "f32"  # never the CPU's bf16 default
            assert info["batch"] == ("static" if "batch_size" in kwargs else "dynamic")
            assert info["mode"] == kwargs.get("mode", "latency")
