"""imgcls.export: a run exported to OpenVINO, its parity report, refusal and the command."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from export_runs import build_workspace  # noqa: E402

from imgcls.cli import main  # noqa: E402
from imgcls.export import export_run, parity_table  # noqa: E402
from imgcls.runtimes import EXPORT_FILE, MODEL_BIN, MODEL_XML, export_dir, read_export, refused_file  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("export") / "ws")


def test_f32_export_writes_the_files_and_agrees_exactly(ws):
    record = export_run(ws, "trained", precision="f32", min_agreement=1.0)
    folder = export_dir("trained", "f32", workspace=ws)
    assert record["accepted"] and not record["forced"] and record["reasons"] == []
    assert record["path"] == str(folder)
    for name in (MODEL_XML, MODEL_BIN, EXPORT_FILE):
        assert (folder / name).is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    saved = json.loads((folder / EXPORT_FILE).read_text())
    assert saved["precision"] == "f32" and saved["inference_precision"] == "f32"
    assert saved["runtime"] == "openvino" and saved["run_id"] == "trained"
    assert saved["calibration"] is None
    assert saved["versions"]["openvino"] and saved["versions"]["keras"]
    parity = saved["parity"]
    assert set(parity["splits"]) == {"test", "benchmark"}
    overall = parity["overall"]
    assert overall["n"] == sum(s["n"] for s in parity["splits"].values()) > 0
    assert overall["top1_agreement"] == 1.0 and overall["disagreements"] == 0
    assert overall["max_abs_diff"] < 1e-4
    assert overall["accuracy_keras"] == overall["accuracy_openvino"]
    assert read_export("trained", "f32", workspace=ws)["path"] == str(folder)
    table = parity_table(parity)
    assert list(table["split"]) == ["test", "benchmark", "overall"]


def test_int8_export_is_calibrated_on_training_images_and_agrees(ws, tmp_path):
    from imgcls.runs import load_run

    run = load_run("trained", workspace=ws)
    record = export_run(ws, run, precision="int8", calibration_images=25)
    assert record["accepted"], record["reasons"]
    assert record["parity"]["overall"]["top1_agreement"] >= 0.99
    cal = record["calibration"]
    train = run.splits[run.splits["split"] == "train"]
    assert cal["n"] == len(cal["hashes"]) == 25
    assert cal["hashes"] == sorted(train["hash"])[:25]  # the lowest content hashes: deterministic
    assert record["versions"]["nncf"]
    assert "quantize" in record["timings_s"]
    assert not (export_dir(run, "int8") / "float").exists()  # the float intermediate is gone
    # the settings that keep int8 faithful are recorded, and the dense head really stayed float
    assert cal["preset"] == "performance" and cal["bias_correction"] == "full"
    assert cal["activation_ranges"].startswith("min-max") and cal["kept_in_float"].startswith("MatMul")
    import openvino as ov

    ops = ov.Core().read_model(str(export_dir(run, "int8") / MODEL_XML)).get_ordered_ops()

    def upstream(op, depth=4):  # the ops feeding `op`, a few steps back (weights pass Convert/Multiply/Transpose)
        found = []
        for i in op.inputs():
            node = i.get_source_output().get_node()
            found += [node] + (upstream(node, depth - 1) if depth > 1 else [])
        return found

    def int8(node):
        return node.get_type_name() == "FakeQuantize" or (
            node.get_type_name() == "Constant" and node.get_output_element_type(0) == ov.Type.i8)

    def int8_heads(ops):  # dense layers with a quantizer on their input or int8 weights
        heads = [op for op in ops if op.get_type_name() == "MatMul"]
        assert heads
        out = []
        for head in heads:
            data, weights = (i.get_source_output().get_node() for i in head.inputs())
            if int8(data) or int8(weights) or any(int8(n) for n in upstream(weights)):
                out.append(head.get_friendly_name())
        return out

    convs = [op for op in ops if op.get_type_name() == "Convolution"]
    assert convs and all(any(int8(n) for n in upstream(c)) for c in convs)    # convolutions run int8
    assert int8_heads(ops) == []                                               # the dense head stays float
    # ... which NNCF's defaults (quantize_int8(fast=True), for speed runs only) would not keep
    from imgcls.export import calibration_images, quantize_int8, to_openvino

    images, _ = calibration_images(ws, run, 25)
    plain = quantize_int8(to_openvino(run.model, tmp_path / "float" / MODEL_XML), images, fast=True)
    assert int8_heads(plain.get_ordered_ops())


def test_refused_below_the_threshold_unless_forced(ws):
    record = export_run(ws, "fragile", precision="int8", calibration_images=20, min_agreement=1.0)
    overall = record["parity"]["overall"]
    assert overall["top1_agreement"] < 1.0  # int8 reorders some near-tied classes
    assert not record["accepted"] and not record["forced"]
    assert "below min_agreement" in record["reasons"][0] and "force" in record["reasons"][0]
    assert record["parity"]["disagreeing"]  # which images changed class
    assert not export_dir("fragile", "int8", workspace=ws).exists()  # not kept as the current export
    assert read_export("fragile", "int8", workspace=ws) is None
    report = refused_file("fragile", "int8", workspace=ws)
    assert record["path"] == str(report)
    assert json.loads(report.read_text())["reasons"] == record["reasons"]

    forced = export_run(ws, "fragile", precision="int8", calibration_images=20, min_agreement=1.0, force=True)
    assert forced["accepted"] and forced["forced"] and forced["reasons"] == record["reasons"]
    assert read_export("fragile", "int8", workspace=ws)["forced"] is True
    assert not report.exists()  # the refusal report goes with an accepted export


def test_accuracy_control_puts_the_sensitive_layers_back_in_float(ws):
    plain = export_run(ws, "fragile", precision="int8", calibration_images=20, min_agreement=1.0)
    assert not plain["accepted"] and "--accuracy-control" in plain["reasons"][0]
    assert plain["calibration"]["accuracy_control"] is None

    record = export_run(ws, "fragile", precision="int8", calibration_images=20, min_agreement=1.0,
                        accuracy_control=True, max_drop=0.0)
    control = record["calibration"]["accuracy_control"]
    assert control["split"] == "val" and control["max_drop"] == 0.0
    assert control["validation_images"] == len(control["hashes"]) == len(record_val_hashes(ws, "fragile")) > 0
    assert control["hashes"] == record_val_hashes(ws, "fragile")  # the val split, never test or benchmark
    assert control["ranking_images"] == min(100, control["validation_images"])
    assert control["reached"] == (control["validation_agreement"] >= 1.0)  # max_drop 0: every image alike
    # some convolutions went back to float, not all: the dense head was float already
    assert 0 < control["int8_operations"] < control["operations"] - 1
    assert record["parity"]["overall"]["top1_agreement"] > plain["parity"]["overall"]["top1_agreement"]
    if record["accepted"]:
        assert read_export("fragile", "int8", workspace=ws)["calibration"]["accuracy_control"] == control
    else:  # the parity images are not the ones the control tuned on: it may still miss there, and say so
        assert "--accuracy-control" not in record["reasons"][0]

    # a model already within max_drop comes back as plain int8 (only the head in float)
    kept = export_run(ws, "trained", precision="int8", calibration_images=25, accuracy_control=True)
    assert kept["accepted"]
    control = kept["calibration"]["accuracy_control"]
    assert control["int8_operations"] == control["operations"] - 1
    assert control["reached"] and control["validation_agreement"] >= 1 - control["max_drop"]
    # the count itself: an f32 export has no int8 operation, the plain int8 one all but the head
    import openvino as ov

    from imgcls.export import int8_operations

    f32 = export_run(ws, "trained", precision="f32")
    assert int8_operations(ov.Core().read_model(str(export_dir("trained", "f32", workspace=ws) / MODEL_XML))) \
        == (0, control["operations"])
    assert f32["accepted"]


def test_accuracy_control_needs_validation_images(ws):
    from imgcls.runs import load_run, save_run

    trained = load_run("trained", workspace=ws)
    save_run(ws, trained.model, classes=list(trained.classes), splits=trained.splits[trained.splits["split"] != "val"],
             config={"model": "simple_cnn", "input_shape": list(trained.input_shape)}, run_id="no-val")
    with pytest.raises(ValueError, match="no 'val' images for accuracy control"):
        export_run(ws, "no-val", precision="int8", accuracy_control=True)
    assert not export_dir("no-val", "int8", workspace=ws).exists()
    assert export_run(ws, "no-val", precision="int8", calibration_images=10)["calibration"]["n"] == 10


def record_val_hashes(ws, run_id):
    from imgcls.export import calibration_rows
    from imgcls.runs import load_run

    return calibration_rows(ws, load_run(run_id, workspace=ws), "val")["hash"].tolist()


def test_a_refusal_keeps_the_earlier_export(ws):
    kept = export_run(ws, "fragile", precision="f32", min_agreement=1.0)
    assert kept["accepted"]
    before = (export_dir("fragile", "f32", workspace=ws) / EXPORT_FILE).read_text()
    refused = export_run(ws, "fragile", precision="bf16", min_agreement=1.0)
    assert not refused["accepted"]  # bf16 rounds the near ties too
    assert (export_dir("fragile", "f32", workspace=ws) / EXPORT_FILE).read_text() == before


@pytest.mark.parametrize("kwargs, match", [
    ({"min_agreement": 1.01}, "`min_agreement` must be a number in \\[0, 1\\]"),
    ({"precision": "fp16"}, "`precision` must be one of 'f32', 'bf16', 'int8'"),
    ({"runtime": "onnx"}, "`runtime` must be one of 'openvino'"),
    ({"calibration_images": 0}, "`calibration_images` must be an int >= 1"),
    ({"force": "yes"}, "`force` must be True or False"),
    ({"precision": "bf16", "accuracy_control": True}, "`accuracy_control` applies to int8 exports only"),
    ({"accuracy_control": 1}, "`accuracy_control` must be True or False"),
    ({"accuracy_control": True, "max_drop": 1.0},
     "`max_drop` must be a number in \\[0, 1\\).*1 would accept any model"),
    ({"accuracy_control": True, "max_drop": -0.1}, "`max_drop` must be a number in \\[0, 1\\)"),
    ({"max_drop": 0.01}, "`max_drop` is the target of accuracy control: pass accuracy_control=True"),
])
def test_bad_arguments_are_refused_before_any_work(ws, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_run(ws, "trained", **kwargs)


def test_quantisation_variants_are_checked_before_any_work():
    import numpy as np

    from imgcls.export import quantize_int8

    images = np.zeros((2, 32, 32, 3), np.float32)
    with pytest.raises(ValueError, match=r"takes 'ranges', 'overflow_fix' and 'preset'"):
        quantize_int8(None, images, variant={"range": "HISTOGRAM"})
    with pytest.raises(ValueError, match=r"not with fast=True"):
        quantize_int8(None, images, fast=True, variant={"ranges": "HISTOGRAM"})
    with pytest.raises(ValueError, match=r"`variant\['ranges'\]` must be one of \[.*'HISTOGRAM'.*'MINMAX'.*\]"):
        quantize_int8(None, images, variant={"ranges": "histogram"})
    with pytest.raises(ValueError, match=r"`variant\['overflow_fix'\]` must be one of \['DISABLE', 'ENABLE', "):
        quantize_int8(None, images, variant={"overflow_fix": "OFF"})


def test_int8_needs_training_images(ws):
    with pytest.raises(ValueError, match="no readable 'train' image"):
        export_run(ws, "no-train", precision="int8")
    assert not export_dir("no-train", "int8", workspace=ws).exists()


def test_the_export_command(ws, capsys):
    rc = main(["export", "trained", "--runtime", "openvino", "--precision", "bf16", "-w", str(ws.root)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "ACCEPTED: trained openvino bf16" in out and "overall" in out
    assert read_export("trained", "bf16", workspace=ws)["inference_precision"] == "bf16"

    rc = main(["export", "fragile", "--precision", "int8", "--min-agreement", "1.0",
               "--calibration-images", "20", "-w", str(ws.root)])
    out = capsys.readouterr().out
    assert rc == 1 and "REFUSED: fragile openvino int8" in out and "below min_agreement" in out
    assert "--accuracy-control" in out

    rc = main(["export", "fragile", "--precision", "int8", "--min-agreement", "0.5", "--calibration-images", "20",
               "--accuracy-control", "--max-drop", "0", "-w", str(ws.root)])
    out = capsys.readouterr().out
    assert rc == 0 and "ACCEPTED: fragile openvino int8" in out
    control = read_export("fragile", "int8", workspace=ws)["calibration"]["accuracy_control"]
    assert (f"accuracy control: {control['int8_operations']} of {control['operations']} weighted operations "
            f"left in int8, the others put back in float; agreement with float on {control['validation_images']} "
            f"validation images {control['validation_agreement']:.2%}") in out
    assert ("(target reached)" in out) == control["reached"]

    rc = main(["export", "trained", "--min-agreement", "1.01", "-w", str(ws.root)])
    assert rc == 2 and "`min_agreement` must be a number in [0, 1]" in capsys.readouterr().err
