"""The end-of-training calibration hook: train fits a temperature on the run's validation
split, stores it in config.json, and the bulk identification of the run applies it."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from imgcls import bulk
from imgcls.core import calibrate, open_workspace
from imgcls.core.calibration import calibration_error, negative_log_likelihood
from imgcls.runs import load_run
from imgcls.training import labelled_scores, train

pytestmark = pytest.mark.slow  # trains a model

COLOURS = {"blue": (40, 40, 210), "green": (40, 200, 40), "red": (210, 40, 40)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ws = open_workspace(tmp_path_factory.mktemp("calib_train") / "ws", cutoff=10)
    rng = np.random.default_rng(0)
    for label, colour in COLOURS.items():
        folder = ws.library / label
        folder.mkdir(parents=True)
        for i in range(25):
            px = np.asarray(colour)[None, None] + rng.normal(0, 90, (32, 32, 3))
            Image.fromarray(np.clip(px, 0, 255).astype(np.uint8)).save(folder / f"{label}_{i:02d}.png")
    for i in range(12):
        px = np.asarray(list(COLOURS.values())[i % 3])[None, None] + rng.normal(0, 90, (32, 32, 3))
        (ws.unlabelled / "pool").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(px, 0, 255).astype(np.uint8)).save(ws.unlabelled / "pool" / f"p{i:02d}.png")
    run = train(ws, model="simple_cnn", image_size=32, batch_size=16, max_epochs=3, patience=5, verbose=0)
    return ws, run


def test_train_fits_and_stores_a_temperature_that_lowers_val_nll(trained):
    ws, run = trained
    cal = run.config["calibration"]
    assert set(cal) == {"temperature", "fitted_on", "n", "nll_before", "nll_after", "ece_before", "ece_after"}
    assert cal["fitted_on"] == "val" and cal["n"] == int((run.splits["split"] == "val").sum())
    assert cal["nll_after"] <= cal["nll_before"]
    assert load_run(run.run_id, workspace=ws).temperature == cal["temperature"] > 0
    # The stored numbers are those of the run's own val predictions.
    val = run.splits[run.splits["split"] == "val"].reset_index(drop=True)
    y, p = labelled_scores(run.model, val, run.classes, image_size=(32, 32))
    assert len(y) == cal["n"]
    assert negative_log_likelihood(p, y) == pytest.approx(cal["nll_before"], rel=1e-4)
    assert negative_log_likelihood(p, y, temperature=cal["temperature"]) == pytest.approx(cal["nll_after"], rel=1e-4)
    assert calibration_error(p, y, temperature=cal["temperature"]) == pytest.approx(cal["ece_after"], abs=1e-4)


def test_bulk_identification_of_the_run_is_calibrated(trained):
    ws, run = trained
    res = bulk.identify(ws, run=run, progress=False)
    t = run.temperature
    assert len(res) == 12
    raw = res["raw_top1_score"].to_numpy()
    # Rebuild the calibrated first score from the raw ones of the same images.
    paths = res["path"].tolist()
    from imgcls.inputs import make_inference_dataset

    ds = make_inference_dataset(paths, image_size=(32, 32), batch_size=16, skipped=[])
    probs = np.zeros((len(paths), 3))
    for images, index in ds:
        probs[np.asarray(index)] = np.asarray(run.model(images, training=False))
    np.testing.assert_allclose(raw, probs.max(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res["top1_score"], calibrate(probs, t).max(axis=1), rtol=1e-5, atol=1e-6)
