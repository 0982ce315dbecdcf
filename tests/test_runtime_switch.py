"""The runtime switch: bulk identification, the predictor, serving, the log, reports and the gate
on keras or openvino give the same classes, and say which runtime answered."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from export_runs import build_workspace  # noqa: E402

from imgcls.bulk import identify  # noqa: E402
from imgcls.cli import main  # noqa: E402
from imgcls.export import export_run  # noqa: E402
from imgcls.runtimes import ExportNotFoundError  # noqa: E402
from imgcls.serving import Predictor  # noqa: E402
from imgcls.translog import TransactionLog  # noqa: E402

pytestmark = pytest.mark.slow

MIN_AGREEMENT = 0.99


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = build_workspace(tmp_path_factory.mktemp("switch") / "ws")
    for precision in ("f32", "int8"):
        assert export_run(ws, "trained", precision=precision, calibration_images=20)["accepted"]
    return ws


@pytest.fixture(scope="module")
def images(ws):
    """Every library image, as a list of paths (what bulk identification and the predictor get)."""
    return sorted(str(p) for p in ws.library.rglob("*.png"))


def agreement(a, b) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))


# ----------------------------------------------------------------------------- bulk
def test_bulk_identify_on_openvino_gives_keras_classes_and_records_the_runtime(ws, images, tmp_path):
    keras = identify(ws, images, run="trained", out=tmp_path / "k.parquet", progress=False)
    f32 = identify(ws, images, run="trained", out=tmp_path / "f.parquet", progress=False,
                   runtime="openvino", precision="f32")
    int8 = identify(ws, images, run="trained", out=tmp_path / "i.parquet", progress=False,
                    runtime="openvino")  # no precision: the run's best export, int8
    assert len(keras) == len(f32) == len(int8) == len(images) == 60
    k, f, i = (df.set_index("path").loc[images] for df in (keras, f32, int8))
    assert (f["top1_class"] == k["top1_class"]).all()
    np.testing.assert_allclose(f["top1_score"], k["top1_score"], atol=1e-4)  # same calibration
    np.testing.assert_allclose(f["raw_top1_score"], k["raw_top1_score"], atol=1e-4)
    assert agreement(i["top1_class"], k["top1_class"]) >= MIN_AGREEMENT
    assert (keras.attrs["runtime"], f32.attrs["runtime"], int8.attrs["runtime"]) == (
        "keras-f32", "openvino-f32", "openvino-int8")
    meta = json.loads((tmp_path / "i.parquet" / "_meta.json").read_text())
    assert meta["runtime"] == "openvino-int8"
    assert meta["runtime_info"]["mode"] == "throughput" and meta["runtime_info"]["inference_precision"] == "f32"

    # a job is never resumed on another runtime: one table, one runtime
    with pytest.raises(ValueError, match="predicted with the openvino-int8 runtime, not keras-f32"):
        identify(ws, images, run="trained", out=tmp_path / "i.parquet", progress=False)
    again = identify(ws, images, run="trained", out=tmp_path / "i.parquet", progress=False, runtime="openvino",
                     precision="int8")
    assert len(again) == 60 and again.attrs["runtime"] == "openvino-int8"


def test_bulk_without_an_export_names_imgcls_export_before_any_work(ws, images, tmp_path):
    out = tmp_path / "none.parquet"
    with pytest.raises(ExportNotFoundError, match="imgcls export no-train --runtime openvino"):
        identify(ws, images, run="no-train", out=out, progress=False, runtime="openvino")
    with pytest.raises(ExportNotFoundError, match="imgcls export trained --runtime openvino --precision bf16"):
        identify(ws, images, run="trained", out=out, progress=False, runtime="openvino", precision="bf16")
    assert not out.exists()


def test_identify_command_runtime_option(ws, images, tmp_path, capsys):
    folder = ws.library / "red"
    rc = main(["identify", str(folder), "--run", "trained", "--runtime", "openvino", "--quiet",
               "-w", str(ws.root)])
    out = capsys.readouterr().out
    assert rc == 0 and "20 images identified (openvino-int8)" in out
    rc = main(["identify", str(folder), "--run", "no-train", "--runtime", "openvino", "--quiet",
               "-w", str(ws.root)])
    assert rc == 2 and "imgcls export no-train --runtime openvino" in capsys.readouterr().err


# ----------------------------------------------------------------------------- serving
def test_predictor_on_openvino_gives_keras_classes_and_logs_the_runtime(ws, images):
    log_path = ws.root / "switch.sqlite"
    with TransactionLog(log_path) as log:
        with Predictor(ws, run="trained", log=log) as keras, \
                Predictor(ws, run="trained", log=log, runtime="openvino") as int8, \
                Predictor(ws, run="trained", log=log, runtime="openvino", precision="f32",
                          batch_inference=True) as f32:
            assert (keras.info()["runtime"], keras.info()["runtime_label"]) == ("keras", "keras-f32")
            assert (int8.info()["runtime"], int8.info()["precision"]) == ("openvino", "int8")
            assert int8.info()["runtime_fallback"] is None
            k = [keras.predict(p) for p in images[::3]]
            i = [int8.predict(p) for p in images[::3]]
            f = [f32.predict(p) for p in images[::3]]
            assert [r["class"] for r in f] == [r["class"] for r in k]
            np.testing.assert_allclose([r["score"] for r in f], [r["score"] for r in k], atol=1e-4)
            assert agreement([r["class"] for r in i], [r["class"] for r in k]) >= MIN_AGREEMENT
            many = int8.predict_many(images[:7], batch_size=4)
            assert (many["status"] == "ok").all()
            assert list(many["class"]) == [keras.predict(p)["class"] for p in images[:7]]
        t = log.transactions().set_index("id")
    runtime_of = t["runtime"]
    assert {runtime_of[r["transaction_id"]] for r in k} == {"keras-f32"}
    assert {runtime_of[r["transaction_id"]] for r in i} == {"openvino-int8"}
    assert {runtime_of[r["transaction_id"]] for r in f} == {"openvino-f32"}
    assert set(runtime_of[many["transaction_id"].astype(int)]) == {"openvino-int8"}


def test_predictor_without_an_export_names_imgcls_export(ws):
    with pytest.raises(ExportNotFoundError, match="imgcls export no-train --runtime openvino"):
        Predictor(ws, run="no-train", log=None, runtime="openvino")


def test_reload_keeps_the_runtime_and_falls_back_to_keras_loudly(ws, images, caplog):
    with TransactionLog(ws.root / "reload.sqlite") as log, \
            Predictor(ws, run="trained", log=log, runtime="openvino") as p:
        with caplog.at_level(logging.WARNING, logger="imgcls.serving"):
            assert p.reload("fragile")  # fragile has no export: served on keras, with a warning
        assert p.run_id == "fragile" and p.info()["runtime_label"] == "keras-f32"
        assert "imgcls export fragile --runtime openvino" in p.info()["runtime_fallback"]
        assert any("serving run fragile on keras instead of openvino" in r.getMessage() for r in caplog.records
                   if r.levelno == logging.WARNING)
        fell_back = p.predict(images[0])
        with caplog.at_level(logging.WARNING, logger="imgcls.serving"):
            caplog.clear()
            assert p.reload("trained")  # back on a run with an export: openvino again
        assert p.info()["runtime_label"] == "openvino-int8" and p.info()["runtime_fallback"] is None
        assert not caplog.records
        back = p.predict(images[0])
        runtime_of = log.transactions().set_index("id")["runtime"]
    assert runtime_of[fell_back["transaction_id"]] == "keras-f32"
    assert runtime_of[back["transaction_id"]] == "openvino-int8"


def test_serve_command_has_the_runtime_option(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--runtime {keras,openvino}" in out and "--precision {f32,bf16,int8}" in out


# ----------------------------------------------------------------------------- reports and the gate
def test_reports_split_accuracy_by_runtime(ws, images):
    from imgcls.reports import accuracy_by_runtime, load_report_data

    path = ws.root / "report.sqlite"
    with TransactionLog(path) as log:
        for runtime in ("keras", "openvino"):
            with Predictor(ws, run="trained", log=log, runtime=runtime) as p:
                for img in images[:6]:
                    r = p.predict(img)
                    truth = img.split("/")[-2]
                    log.log_evaluation(r["transaction_id"], "correct" if r["class"] == truth else "wrong",
                                       reviewer="ana", true_class=truth)
        log.log_transaction("old-run", {"red": 0.9}, time="2020-01-01")  # before runtimes were recorded
        log.log_evaluation(int(log.transactions()["id"].max()), "unsure", reviewer="ana")
    table = accuracy_by_runtime(path)
    assert list(table.columns[:2]) == ["model_version", "runtime"]
    by = table.set_index("runtime")
    assert set(by.index) == {"keras-f32", "openvino-int8", "unrecorded"}
    assert by.loc["keras-f32", "evaluated"] == by.loc["openvino-int8", "evaluated"] == 6
    assert by.loc["unrecorded", "unsure"] == 1
    same = accuracy_by_runtime(load_report_data(path))
    pd.testing.assert_frame_equal(same, table)


def test_the_gate_measures_a_candidate_as_it_will_be_served(ws):
    from imgcls.evaluation import promote
    from imgcls.runs import promotion_log

    first = promote(ws, "trained", reason="first")
    assert first.accepted and first.runtime == "openvino-int8" and first.production_runtime is None
    # the same weights without an export: measured on keras, against production on its int8 export
    second = promote(ws, "no-train", reason="second", min_images=1)
    assert second.runtime == "keras-f32" and second.production_runtime == "openvino-int8"
    assert "Measured as served: candidate keras-f32, production openvino-int8" in second.summary
    logged = promotion_log(ws)
    assert [r.get("runtime") for r in logged.to_dict("records")[-2:]] == ["openvino-int8", "keras-f32"]
