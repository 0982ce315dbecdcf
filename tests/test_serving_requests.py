"""Every request is a row: each bad input gets its status, one error body, a logged row, and no echoed bytes.

Also: calibrated scores (the raw top-1 score logged beside them) and what /model shows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from serving_support import (  # noqa: F401 - fixtures
    CLASSES,
    client,
    png_bytes,
    predictor,
    read_log,
    server,
    upload,
    ws,
)

from imgcls.core import calibrate, read_image_resized
from imgcls.models import create_model
from imgcls.runs import save_run
from imgcls.serving import SIMULATED_TIME_HEADER, Predictor, start_server

ERROR_KEYS = {"detail", "kind", "status", "transaction_id"}


def logged(workspace, response, *, failure, endpoint, status=None):
    """The row a refused request left, checked against its answer."""
    body = response.json()
    assert set(body) == ERROR_KEYS, body  # one error body for every 4xx / 5xx
    assert body["status"] == response.status_code == (status or response.status_code)
    row = read_log(workspace).loc[body["transaction_id"]]
    assert row["status"] == "failed" and row["failure"] == failure, row.to_dict()
    assert row["endpoint"] == endpoint and row["http_status"] == response.status_code
    assert row["source"] == "http"
    return row


@pytest.mark.parametrize("params, fragment", [({"top_k": 0}, "top_k"), ({"top_k": "abc"}, "top_k"),
                                              ({"top_k": 5000}, "top_k")])
def test_bad_query_is_422_and_logged(client, ws, params, fragment):
    workspace, _, _ = ws
    r = upload(client, png_bytes(seed=1), params=params)
    assert r.status_code == 422 and fragment in r.json()["detail"]
    logged(workspace, r, failure="validation", endpoint="predict")


def test_refused_simulated_time_header_is_400_and_logged(client, ws):
    workspace, _, _ = ws
    r = upload(client, png_bytes(seed=2), headers={SIMULATED_TIME_HEADER: "2025-01-01T00:00:00Z"})
    assert r.status_code == 400 and "simulated" in r.json()["detail"]
    logged(workspace, r, failure="bad_header", endpoint="predict")
    r = client.post("/evaluations", json={"transaction_id": 1, "verdict": "correct", "reviewer": "ana"},
                    headers={SIMULATED_TIME_HEADER: "not a time"})
    assert r.status_code == 400
    logged(workspace, r, failure="bad_header", endpoint="evaluations")


def test_bad_time_header_on_a_demo_server_is_400_and_logged(predictor, ws):
    workspace, _, _ = ws
    import httpx

    with start_server(predictor, allow_simulated=True) as srv, httpx.Client(base_url=srv.url) as c:
        r = upload(c, png_bytes(seed=3), headers={SIMULATED_TIME_HEADER: "yesterday-ish"})
        assert r.status_code == 400 and "ISO 8601" in r.json()["detail"]
        logged(workspace, r, failure="bad_header", endpoint="predict")


def test_unknown_path_and_method_are_logged(client, ws):
    workspace, _, _ = ws
    r = client.get("/nothing-here")
    assert r.status_code == 404
    logged(workspace, r, failure="not_found", endpoint="other")
    r = client.put("/predict")
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    logged(workspace, r, failure="method_not_allowed", endpoint="predict")


def test_rejected_upload_bytes_are_echoed_nowhere(client, ws):
    """No answer and no byte of serving.sqlite (or its WAL) holds any part of a refused upload."""
    workspace, _, _ = ws
    marker = b"ZQX-UNIQUE-MARKER-7731"
    cases = [marker + b" plain text that is not an image " * 3,
             b"<html><body>" + marker + b"</body></html>",
             b"\x89PNG\r\n\x1a\n" + marker + bytes(64)]
    for data in cases:
        r = upload(client, data, name="notes.png")
        assert r.status_code == 400, r.text
        assert marker not in r.content and marker.decode() not in r.text
        row = logged(workspace, r, failure=r.json()["kind"], endpoint="predict")
        assert marker.decode() not in json.dumps(row.to_dict(), default=str)
    for path in workspace.root.glob("serving.sqlite*"):
        assert marker not in path.read_bytes(), path.name


def test_every_error_has_one_body_shape(client, ws):
    workspace, _, _ = ws
    answers = [
        upload(client, b"not an image"),
        client.post("/predict", data={"note": "x"}),
        client.post("/evaluations", json={"transaction_id": 10**9, "verdict": "correct", "reviewer": "a"}),
        client.post("/evaluations", json={"verdict": "correct"}),
        client.post("/evaluations", content=b"{not json", headers={"content-type": "application/json"}),
    ]
    assert [r.status_code for r in answers] == [400, 415, 404, 422, 422]
    for r in answers:
        assert set(r.json()) == ERROR_KEYS and r.json()["transaction_id"] >= 1
    assert read_log(workspace).loc[answers[2].json()["transaction_id"], "failure"] == "unknown_transaction"


def test_scores_are_calibrated_and_the_raw_score_is_logged(ws, client, tmp_path):
    workspace, _, _ = ws
    model = create_model("simple_cnn", len(CLASSES), input_shape=(32, 32, 3), seed=7)
    hot = save_run(workspace, model, classes=CLASSES, config={"calibration": {"temperature": 2.5}})
    path = tmp_path / "one.png"
    path.write_bytes(png_bytes(seed=11))
    with Predictor(workspace, run=hot.run_id) as p:
        assert p.temperature == 2.5 and p.info()["temperature"] == 2.5 and p.info()["runtime"] == "keras"
        result = p.predict(path.read_bytes(), top_k=len(CLASSES))
        raw = p.served.infer(read_image_resized(path, (32, 32))[None])[0]
    got = {d["class"]: d["score"] for d in result["predictions"]}
    np.testing.assert_allclose([got[c] for c in CLASSES], calibrate(raw, 2.5), atol=2e-6)
    assert result["raw_score"] == pytest.approx(raw.max(), abs=2e-6) and result["temperature"] == 2.5
    row = read_log(workspace).loc[result["transaction_id"]]
    assert row["temperature"] == 2.5 and row["raw_top1_score"] == pytest.approx(raw.max(), abs=2e-6)
    assert row["top1_score"] == result["score"] and row["run_id"] == hot.run_id
    # the production run has no temperature: its scores are served raw, as before
    info = client.get("/model").json()
    assert info["temperature"] is None and info["runtime"] == "keras" and info["classes"] == CLASSES
    assert info["max_decode_bytes"] > 0 and info["max_concurrent"] >= 1
