"""Calibrated confidence in evaluation and bulk identification: a run with a
stored temperature shows calibrated scores and keeps the raw ones; a run
without one behaves as before. The runs are hand-set Keras models (no training)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from imgcls import bulk
from imgcls import evaluation as ev
from imgcls.core import calibrate, open_workspace
from imgcls.library import Library, assign_splits

CLASSES = ["antelope", "cow", "zebra"]
RGB = {"antelope": (200, 60, 60), "cow": (60, 200, 60), "zebra": (60, 60, 200)}
T = 2.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A library of noisy colour images, the same sharp colour model saved with and without a temperature."""
    import keras

    from imgcls.runs import save_run

    ws = open_workspace(tmp_path_factory.mktemp("calib") / "ws", cutoff=5)
    rng = np.random.default_rng(0)
    for label, rgb in RGB.items():
        folder = ws.library / label
        folder.mkdir(parents=True)
        for i in range(30):
            px = np.clip(np.array(rgb) + rng.normal(0, 70, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(folder / f"{label}_{i:02d}.png")
    snapshot = assign_splits(Library(ws).scan())

    def model():
        inputs = keras.Input((16, 16, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
        out = keras.layers.Dense(3, activation="softmax", name="predictions")(pooled)
        m = keras.Model(inputs, out, name="colour_net")
        m.get_layer("predictions").set_weights([np.eye(3, dtype="float32") * 30, np.zeros(3, "float32")])
        return m

    cal = {"temperature": T, "fitted_on": "val", "n": 9, "nll_before": 0.5, "nll_after": 0.4,
           "ece_before": 0.1, "ece_after": 0.05}
    hot = save_run(ws, model(), classes=CLASSES, splits=snapshot, run_id="hot",
                   config={"model": "colour_net", "calibration": cal})
    plain = save_run(ws, model(), classes=CLASSES, splits=snapshot, run_id="plain", config={"model": "colour_net"})
    return ws, hot, plain


def test_predict_scores_are_calibrated_unless_raw(runs):
    ws, hot, _ = runs
    rows = ev.split_rows(hot, "test")
    assert len(rows) > 0
    kept, calibrated, _ = ev.predict_scores(hot, rows)
    kept_raw, raw, _ = ev.predict_scores(hot, rows, raw=True)
    np.testing.assert_allclose(calibrated, calibrate(raw, T), rtol=1e-9)
    assert (calibrated.argmax(axis=1) == raw.argmax(axis=1)).all()  # the order is kept
    assert calibrated.max(axis=1).mean() < raw.max(axis=1).mean()  # T > 1 softens


def test_evaluate_reports_calibration_before_and_after(runs):
    _, hot, plain = runs
    out = ev.evaluate(hot, "test")
    s = out["summary"]
    assert s["temperature"] == T
    table = out["predictions"]
    assert (table["raw_confidence"] > table["confidence"]).all()
    assert out["calibration"]["n"].sum() == out["calibration_raw"]["n"].sum() == s["n"]
    assert s["ece"] == pytest.approx(ev.expected_calibration_error(out["calibration"]))
    assert s["ece_raw"] == pytest.approx(ev.expected_calibration_error(out["calibration_raw"]))
    assert table.attrs["temperature"] == T

    same = ev.evaluate(plain, "test")
    assert same["summary"]["temperature"] is None and same["summary"]["ece_raw"] == same["summary"]["ece"]
    assert np.allclose(same["predictions"]["raw_confidence"], same["predictions"]["confidence"])
    # Accuracy and top-k never change with the temperature.
    for key in ("accuracy", "top_k_accuracy", "macro_f1", "n"):
        assert s[key] == same["summary"][key]
    pd_table = ev.predict_table(hot, "test", top_k=2)
    assert list(pd_table.columns)[:7] == ["path", "relpath", "split", "label", "predicted", "confidence",
                                          "raw_confidence"]


def test_metrics_from_scores_with_a_temperature():
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(3) * 0.2, size=200)
    y = np.asarray(CLASSES)[rng.integers(0, 3, 200)]
    plain = ev.metrics_from_scores(y, scores, CLASSES)
    assert set(plain) == {"summary", "per_class", "confusion", "confused_pairs", "calibration"}
    hot = ev.metrics_from_scores(y, scores, CLASSES, temperature=3.0)
    assert hot["summary"]["ece_raw"] == pytest.approx(plain["summary"]["ece"])
    assert hot["summary"]["temperature"] == 3.0
    assert hot["summary"]["accuracy"] == plain["summary"]["accuracy"]
    expected = ev.calibration_table(y, calibrate(scores, 3.0), CLASSES)
    assert hot["calibration"]["n"].tolist() == expected["n"].tolist()


def test_plot_calibration_states_what_temperature_scaling_did(runs):
    _, hot, plain = runs
    out = ev.evaluate(hot, "test")
    fig = ev.plot_calibration(out)
    title = fig.get_suptitle().replace("\n", " ")
    n = out["summary"]["n"]
    assert title.startswith("Temperature scaling") and f"(n={n:,})" in title
    assert f"{out['summary']['ece_raw']:.1%}" in title and f"{out['summary']['ece']:.1%}" in title
    assert "temperature 2.50" in fig.axes[0].get_title(loc="left")
    # Tables work too; without `before` the single-series slide of a raw run is unchanged.
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, (3000, 3))
    y = np.asarray(CLASSES)[[rng.choice(3, p=p) for p in calibrate(np.exp(z) / np.exp(z).sum(1, keepdims=True),
                                                                    3.0)]]
    raw = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    fig = ev.plot_calibration(ev.calibration_table(y, calibrate(raw, 3.0), CLASSES),
                              before=ev.calibration_table(y, raw, CLASSES))
    assert fig.get_suptitle().replace("\n", " ").startswith("Temperature scaling cut calibration error from")
    assert "(n=3,000)" in fig.get_suptitle().replace("\n", " ")
    assert "Temperature" not in ev.plot_calibration(ev.evaluate(plain, "test")).get_suptitle()


def test_evaluation_text_names_classes_n_and_calibration(runs):
    _, hot, plain = runs
    text = ev.evaluation_text(ev.evaluate(hot, "test"))
    assert "calibrated with temperature 2.50" in text and "before" in text and "after" in text
    assert "Per class" in text and "Confusion matrix" in text and "Most confused pairs" in text
    assert "cow" in text and "precision" in text
    assert "no temperature" in ev.evaluation_text(ev.evaluate(plain, "test"))


def test_bulk_identify_stores_calibrated_and_raw_scores(runs, tmp_path):
    ws, hot, plain = runs
    out = tmp_path / "job.parquet"
    res = bulk.identify(ws, ws.library, run=hot, out=out, progress=False)
    assert len(res) == 90
    assert (res["raw_top1_score"] > res["top1_score"]).all()  # T > 1: calibrated scores are softer
    assert (res["margin"] == res["top1_score"] - res["top2_score"]).all()
    assert json.loads((out / "_meta.json").read_text())["temperature"] == T
    # The same images with the raw run: its top1 score is the hot run's raw score.
    res_plain = bulk.identify(ws, ws.library, run=plain, out=tmp_path / "plain.parquet", progress=False)
    a = res.sort_values("path").reset_index(drop=True)
    b = res_plain.sort_values("path").reset_index(drop=True)
    assert (a["top1_class"] == b["top1_class"]).all()
    np.testing.assert_allclose(a["raw_top1_score"], b["top1_score"], rtol=1e-6)
    np.testing.assert_allclose(b["raw_top1_score"], b["top1_score"])
    # A calibrated score of 0.9 is filtered as 0.9: the filters read top1_score.
    low = bulk.lowest_scores(res, max_score=0.9)
    assert (low["top1_score"] <= 0.9).all() and len(low) == int((res["top1_score"] <= 0.9).sum())


def test_a_job_is_never_resumed_with_another_temperature(runs, tmp_path):
    ws, hot, _ = runs
    out = tmp_path / "job.parquet"
    bulk.identify(ws, ws.library / "cow", run=hot, out=out, progress=False)
    meta = json.loads((out / "_meta.json").read_text())
    meta["temperature"] = None  # as written by a job of this run before it had a temperature
    (out / "_meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="temperature"):
        bulk.identify(ws, ws.library / "cow", run=hot, out=out, progress=False)
    again = bulk.identify(ws, ws.library / "cow", run=hot, out=out, progress=False, resume=False)
    assert len(again) == 30
