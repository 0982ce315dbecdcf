"""Serving: the Predictor from Python and a real HTTP server on 127.0.0.1.

One tiny model (simple_cnn at 32x32, saved through imgcls.runs) serves every
test; servers run in a background thread on a free 127.0.0.1 port.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sqlite3
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls.core.images import file_hash
from imgcls.evaluation import promote
from imgcls.inputs import load_images
from imgcls.library import Library
from imgcls.models import create_model
from imgcls.runs import save_run
from imgcls.sample import build_sample, sample_truth
from imgcls.serving import (
    SIMULATED_TIME_HEADER,
    LogWriteError,
    Predictor,
    RejectedImage,
    simulate_traffic,
    start_server,
)
from imgcls.translog import TransactionLog

CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "horse"]  # the sample's trainable classes
MAX_BYTES = 40_000
MAX_PIXELS = 300 * 300


def png_bytes(size=(48, 40), color=(200, 30, 30), seed=None) -> bytes:
    if seed is None:
        image = Image.new("RGB", size, color)
    else:
        image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def tiny_run(ws, seed):
    model = create_model("simple_cnn", len(CLASSES), input_shape=(32, 32, 3), seed=seed)
    return save_run(ws, model, classes=CLASSES)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The zoo sample (tiny) with two saved runs; the first is promoted to production."""
    ws = build_sample(tmp_path_factory.mktemp("serving") / "zoo", image_size=32, pool_size=120)
    assert Library(ws).classes() == CLASSES
    first, second = tiny_run(ws, 1), tiny_run(ws, 2)
    assert promote(first, ws).accepted
    return ws, first, second


@pytest.fixture(scope="module")
def predictor(ws):
    workspace, _, _ = ws
    with Predictor(workspace, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS) as p:
        yield p


@pytest.fixture(scope="module")
def server(predictor):
    with start_server(predictor) as srv:
        yield srv


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def read_log(workspace) -> pd.DataFrame:
    with TransactionLog(workspace, create=False) as log:
        return log.transactions().set_index("id")


def upload(client, data: bytes, name="img.png", **kwargs):
    return client.post("/predict", files={"file": (name, data, "application/octet-stream")}, **kwargs)


# --------------------------------------------------------------------- Python
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
            p.evaluate(1, "correct", reviewer="me")
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


# ----------------------------------------------------------------------- HTTP
def test_health_and_model(client, ws):
    _, first, _ = ws
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["run_id"] == first.run_id and health["logging"]
    info = client.get("/model").json()
    assert info["run_id"] == first.run_id and info["classes"] == CLASSES
    # The first run promoted to production is "v1".
    assert info["input_size"] == [32, 32] and info["model_version"] == health["model_version"] == "v1"


def test_http_predict_then_evaluate(client, ws):
    workspace, _, _ = ws
    r = upload(client, png_bytes(seed=5), params={"top_k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["predictions"]) == 2 and body["transaction_id"] >= 1
    row = read_log(workspace).loc[body["transaction_id"]]
    assert row["source"] == "http" and row["status"] == "ok" and row["top1_class"] == body["class"]

    wrong_class = next(c for c in CLASSES if c != body["class"])
    r = client.post("/evaluations", json={"transaction_id": body["transaction_id"], "verdict": "wrong",
                                          "reviewer": "ana", "true_class": wrong_class})
    assert r.status_code == 201, r.text
    with TransactionLog(workspace, create=False) as log:
        ev = log.evaluations().set_index("id").loc[r.json()["evaluation_id"]]
    assert ev["transaction_id"] == body["transaction_id"] and ev["verdict"] == "wrong"
    assert ev["reviewer"] == "ana" and ev["true_class"] == wrong_class and not ev["simulated"]

    assert client.post("/evaluations", json={"transaction_id": 10**9, "verdict": "correct",
                                             "reviewer": "ana"}).status_code == 404
    r = client.post("/evaluations", json={"transaction_id": body["transaction_id"], "verdict": "maybe",
                                          "reviewer": "ana"})
    assert r.status_code == 422 and "verdict" in r.json()["detail"]


@pytest.mark.parametrize(
    "name, data, status, kind",
    [
        ("text.png", b"hello, I am not an image", 400, "not_an_image"),
        ("cut.png", png_bytes(seed=1)[:-200], 400, "truncated"),
        ("huge.png", b"\x89PNG" + bytes(MAX_BYTES + 10), 413, "too_large"),
        ("giant.png", bytes(300_000), 413, "too_large"),  # refused while being received
        ("bomb.png", png_bytes(size=(400, 400)), 413, "too_large"),
    ],
)
def test_bad_uploads_get_4xx_with_reason_and_are_logged(client, ws, name, data, status, kind):
    workspace, _, _ = ws
    r = upload(client, data, name=name)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["kind"] == kind and len(body["detail"]) > 20
    row = read_log(workspace).loc[body["transaction_id"]]
    assert row["status"] == "failed" and kind in row["error"] and row["source"] == "http"


def test_request_without_a_file_is_refused_and_logged(client, ws):
    workspace, _, _ = ws
    r = client.post("/predict", files={"note": (None, "a form field, no file")})
    assert r.status_code == 400 and "file" in r.json()["detail"]
    assert read_log(workspace).loc[r.json()["transaction_id"], "status"] == "failed"
    r = client.post("/predict", data={"note": "not multipart"})
    assert r.status_code == 415 and "multipart" in r.json()["detail"]
    assert read_log(workspace).loc[r.json()["transaction_id"], "status"] == "failed"


def test_concurrent_clients_every_request_answered_and_logged(server, ws):
    workspace, _, _ = ws
    before = len(read_log(workspace))
    images = [png_bytes(seed=i) for i in range(4)]
    results: list[list[int]] = [[] for _ in range(4)]

    def worker(i):
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for _ in range(15):
                r = upload(c, images[i])
                results[i].append(r.json()["transaction_id"] if r.status_code == 200 else -r.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    ids = [tid for res in results for tid in res]
    assert len(ids) == 60 and all(tid > 0 for tid in ids) and len(set(ids)) == 60
    log = read_log(workspace)
    assert len(log) == before + 60 and set(ids) <= set(log.index)


def test_group_commit_and_batch_inference_under_concurrent_clients(ws, predictor):
    workspace, first, _ = ws
    before = len(read_log(workspace))
    images = [png_bytes(seed=i) for i in range(4)]
    expected = [predictor.predict(img)["predictions"] for img in images]
    before += 4
    with Predictor(workspace, run=first.run_id, group_commit=True, batch_inference=True) as p, \
            start_server(p) as srv:
        answers: list[tuple[int, dict]] = []
        lock = threading.Lock()

        def worker(i):
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                for _ in range(10):
                    body = upload(c, images[i]).json()
                    with lock:
                        answers.append((i, body))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        writer_rows, batched_images = p._writer.rows, p._batcher.images
    ids = [body["transaction_id"] for _, body in answers]
    assert len(set(ids)) == 40 and writer_rows == 40 and batched_images == 40
    assert len(read_log(workspace)) == before + 40
    for i, body in answers:  # batching does not change a prediction
        assert [p["class"] for p in body["predictions"]] == [p["class"] for p in expected[i]]
        np.testing.assert_allclose([p["score"] for p in body["predictions"]],
                                   [p["score"] for p in expected[i]], atol=1e-4)


def test_failed_log_write_fails_the_request_with_5xx(ws):
    workspace, first, _ = ws
    log = TransactionLog(workspace, timeout=0.2)
    with Predictor(workspace, run=first.run_id, log=log) as p, start_server(p) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as c:
        before = len(read_log(workspace))
        blocker = sqlite3.connect(str(workspace.serving_db), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            r = upload(c, png_bytes())
            assert r.status_code == 503 and "could not be written" in r.json()["detail"]
            assert "transaction_id" not in r.json()
            r = upload(c, b"not an image")  # the failure record cannot be written either
            assert r.status_code == 503
            with pytest.raises(LogWriteError):
                p.predict(png_bytes())
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert len(read_log(workspace)) == before  # nothing was acknowledged
        assert upload(c, png_bytes()).status_code == 200  # and it recovers
    log.close()


# -------------------------------------------------------------- demo traffic
def test_simulate_traffic_two_versions_with_evaluations(ws):
    workspace, v1, v2 = ws
    end = dt.datetime(2025, 3, 3, tzinfo=dt.timezone.utc)
    start = end - dt.timedelta(weeks=4)
    out = simulate_traffic(workspace, runs=[v1, v2], weeks=4, requests=400, evaluation_share=0.2,
                           seed=0, end=end)
    assert len(out) == 400 and out["transaction_id"].is_unique
    with TransactionLog(workspace, create=False) as log:
        tx = log.transactions(since=start, until=end)
        ev = log.evaluated_transactions(since=start, until=end)
    assert len(tx) == 400 and tx["simulated"].all() and (tx["source"] == "simulated").all()
    # v1 first, then v2 rolled out; usage grows.
    assert tx.groupby("model_version")["time"].max()["v1"] < tx.groupby("model_version")["time"].min()["v2"]
    assert set(tx.loc[tx.model_version == "v2", "run_id"]) == {v2.run_id}
    weekly = ((tx["time"] - pd.Timestamp(start)) // pd.Timedelta(weeks=1)).value_counts()
    assert weekly[3] > weekly[0]
    # Verdicts follow the hidden truth.
    assert 40 <= len(ev) <= 120 and ev["evaluation_simulated"].all()
    truth = dict(zip(sample_truth(workspace)["path"], sample_truth(workspace)["label"]))
    for _, row in ev.iterrows():
        if row["verdict"] == "unsure":
            continue
        assert (row["verdict"] == "correct") == (row["top1_class"] == truth[row["image_path"]])
        assert row["true_class"] == truth[row["image_path"]]
        assert row["evaluation_time"] >= row["time"]
    merged = out.set_index("transaction_id")
    assert merged.loc[list(ev["transaction_id"]), "evaluated"].all()


def test_simulate_traffic_through_http(ws):
    workspace, first, _ = ws
    start, end = dt.date(2025, 1, 1), dt.date(2025, 1, 8)
    with Predictor(workspace, run=first, source="http", model_version="v7") as p:
        with start_server(p) as refusing, httpx.Client(base_url=refusing.url) as c:
            r = c.post("/predict", files={"file": ("a.png", png_bytes())},
                       headers={SIMULATED_TIME_HEADER: "2025-01-01T10:00:00Z"})
            assert r.status_code == 400 and "allow_simulated" in r.json()["detail"]
        with start_server(p, allow_simulated=True) as srv:
            out = simulate_traffic(workspace, weeks=1, requests=30, evaluation_share=0.5,
                                   via=srv.url, end=end)
    assert len(out) == 30 and (out["model_version"] == "v7").all()
    with TransactionLog(workspace, create=False) as log:
        tx = log.transactions(since=start, until=end)
        ev = log.evaluations(since=start, until=end)
    assert len(tx) == 30 and tx["simulated"].all() and (tx["model_version"] == "v7").all()
    assert len(ev) == out["evaluated"].sum() > 0 and ev["simulated"].all()
