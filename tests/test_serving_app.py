"""The HTTP app and server: a real server on 127.0.0.1 in a background thread.

Uploads, evaluations, limits, concurrent clients, group commit and batched
inference, and a log that cannot be written (see serving_support for the fixtures).
"""

from __future__ import annotations

import sqlite3
import threading

import httpx
import numpy as np
import pytest
from serving_support import (  # noqa: F401 - fixtures
    CLASSES,
    MAX_BYTES,
    client,
    png_bytes,
    predictor,
    read_log,
    server,
    upload,
    ws,
)

from imgcls.serving import LogWriteError, Predictor, start_server
from imgcls.translog import TransactionLog


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
            assert r.json()["transaction_id"] is None  # one error body: no id acknowledged
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
