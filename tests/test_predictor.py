"""The Predictor from Python: decoding as training does, logging every transaction.

One tiny model (simple_cnn at 32x32, saved through imgcls.runs) serves every
test (see serving_support).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from serving_support import CLASSES, png_bytes, predictor, read_log, ws  # noqa: F401 - fixtures

from imgcls.core import file_hash
from imgcls.inputs import load_images
from imgcls.serving import Predictor, RejectedImage


def test_predictor_serves_production_and_logs_from_python(ws, predictor, write_image):
    workspace, first, _ = ws
    assert predictor.run_id == first.run_id and predictor.image_size == (32, 32)
    path = write_image("one.png", size=(50, 70), color=(10, 200, 30))
    result = predictor.predict(path)
    assert [p["class"] for p in result["predictions"]][0] == result["class"]
    assert len(result["predictions"]) == 3 and set(p["class"] for p in result["predictions"]) <= set(CLASSES)
    scores = [p["score"] for p in result["predictions"]]
    assert scores == sorted(scores, reverse=True)
    # Committed before predict() returned: a separate connection sees it.
    row = read_log(workspace).loc[result["transaction_id"]]
    assert row["status"] == "ok" and row["source"] == "python" and not row["simulated"]
    assert row["run_id"] == first.run_id and row["top1_class"] == result["class"]
    assert row["image_hash"] == file_hash(path) == result["image_hash"]
    assert row["image_path"] == str(path.resolve())
    assert row["top_k"] == result["predictions"]


def test_decoding_matches_training_for_bytes_paths_and_arrays(ws, predictor, write_image):
    path = write_image("photo.jpg", array=np.random.default_rng(0).integers(0, 256, (45, 61, 3)), quality=90)
    pixels, ok, _ = load_images([path], (32, 32))  # the training pipeline's decode
    expected = np.asarray(predictor.model.predict_on_batch(pixels.astype("float32")))[0]
    from_path = predictor.predict(path, top_k=len(CLASSES))
    from_bytes = predictor.predict(path.read_bytes(), top_k=len(CLASSES))
    for result in (from_path, from_bytes):
        got = {p["class"]: p["score"] for p in result["predictions"]}
        np.testing.assert_allclose([got[c] for c in CLASSES], expected, atol=1e-5)
    # An array is PNG-encoded and decoded the same way as a file of it.
    array = np.asarray(Image.open(path).convert("RGB"))
    png = write_image("photo.png", array=array)
    assert predictor.predict(array)["predictions"] == predictor.predict(png)["predictions"]


def test_bad_image_from_python_is_logged_as_failed(ws, predictor):
    workspace, _, _ = ws
    with pytest.raises(RejectedImage) as info:
        predictor.predict(b"this is not an image")
    err = info.value
    assert err.status_code == 400 and err.kind == "not_an_image" and err.transaction_id
    row = read_log(workspace).loc[err.transaction_id]
    assert row["status"] == "failed" and "not_an_image" in row["error"] and row["top_k"] == []


def test_keep_inputs_stores_the_upload_and_logs_its_path(ws):
    workspace, first, _ = ws
    data = png_bytes(seed=3)
    with Predictor(workspace, run=first.run_id, keep_inputs=True) as p:
        result = p.predict(data)
    kept = workspace.root / "served" / result["time"][:10] / f"{result['image_hash']}.png"
    assert result["image_path"] == str(kept) and kept.read_bytes() == data
    assert read_log(workspace).loc[result["transaction_id"], "image_path"] == str(kept)


def test_predict_many_batches_and_logs_with_explicit_times(ws, write_image):
    workspace, _, second = ws
    paths = [write_image(f"batch/{i}.png", size=(30 + i, 40)) for i in range(5)]
    bad = paths[0].parent / "bad.png"
    bad.write_bytes(b"junk")
    paths.insert(2, bad)
    times = [dt.datetime(2024, 3, 1, 9, i, tzinfo=dt.timezone.utc) for i in range(6)]
    with Predictor(workspace, run=second.run_id, model_version="v2") as p:
        df = p.predict_many(paths, times=times, simulated=True, batch_size=4)
        single = p.predict(paths[0])
    assert list(df["status"]) == ["ok", "ok", "failed", "ok", "ok", "ok"]
    assert df.loc[0, "predictions"] == single["predictions"]
    log = read_log(workspace).loc[list(df["transaction_id"])]
    assert list(log["time"]) == list(pd.to_datetime(times, utc=True))
    assert log["simulated"].all() and (log["model_version"] == "v2").all()
    assert log["status"].tolist() == df["status"].tolist()


def test_no_log_means_no_rows(ws):
    workspace, first, _ = ws
    before = len(read_log(workspace))
    with Predictor(workspace, run=first.run_id, log=None) as p:
        assert p.predict(png_bytes())["transaction_id"] is None
        with pytest.raises(ValueError, match="no transaction log"):
            p.record_verdict(1, "correct", reviewer="me")
    assert len(read_log(workspace)) == before


def test_bad_arguments_say_what_to_do(ws):
    workspace, first, _ = ws
    with pytest.raises(ValueError, match="top_k"):
        Predictor(workspace, run=first.run_id, top_k=0, log=None)
    with pytest.raises(ValueError, match="log"):
        Predictor(workspace, run=first.run_id, log="yes")
    with Predictor(workspace, run=first.run_id, log=None) as p:
        with pytest.raises(ValueError, match="uint8"):
            p.predict(np.zeros((8, 8, 3), dtype=np.float32))
        with pytest.raises(ValueError, match="image"):
            p.predict(12)
