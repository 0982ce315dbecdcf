"""POST /evaluations (and Predictor.record_verdict) under rules: classes, new-class flag, limits, ids,
and the current verdict by the server's clock."""

from __future__ import annotations

import httpx
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

from imgcls.serving import SIMULATED_TIME_HEADER, start_server
from imgcls.translog import MAX_ID, TransactionLog, UnknownTransactionError


@pytest.fixture(scope="module")
def served(server):
    """One served prediction: (transaction id, predicted class, another class)."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        body = upload(c, png_bytes(seed=21)).json()
    return body["transaction_id"], body["class"], next(x for x in CLASSES if x != body["class"])


def post(client, **fields):
    return client.post("/evaluations", json=fields)


def refused(workspace, r, status, failure="validation"):
    assert r.status_code == status, r.text
    body = r.json()
    row = read_log(workspace).loc[body["transaction_id"]]
    assert row["endpoint"] == "evaluations" and row["failure"] == failure and row["http_status"] == status
    return body["detail"]


def test_true_class_must_be_known_or_flagged_new(client, ws, served):
    workspace, _, _ = ws
    tid, predicted, other = served
    for bad in ("dragon", "../../x\n<script>"):
        detail = refused(workspace, post(client, transaction_id=tid, verdict="wrong", reviewer="ana",
                                         true_class=bad), 422)
        assert "new_class" in detail
    assert post(client, transaction_id=tid, verdict="wrong", reviewer="ana", true_class="").status_code == 422
    # flagged new: a valid new class name is accepted and stored with the flag
    r = post(client, transaction_id=tid, verdict="wrong", reviewer="ana", true_class=" okapi ", new_class=True,
             note="striped legs, not a horse")
    assert r.status_code == 201, r.text
    with TransactionLog(workspace, create=False) as log:
        ev = log.evaluations().set_index("id").loc[r.json()["evaluation_id"]]
    assert ev["true_class"] == "okapi" and ev["new_class"] and ev["note"] == "striped legs, not a horse"
    # flagged new, but the name is one the library refuses, or a class the run knows
    assert "Invalid class name" in refused(workspace, post(
        client, transaction_id=tid, verdict="wrong", reviewer="ana", true_class="../../x", new_class=True), 422)
    assert "already a class" in refused(workspace, post(
        client, transaction_id=tid, verdict="wrong", reviewer="ana", true_class=other, new_class=True), 422)
    # the run's own classes need no flag
    assert post(client, transaction_id=tid, verdict="wrong", reviewer="ana", true_class=other).status_code == 201
    assert post(client, transaction_id=tid, verdict="correct", reviewer="ana",
                true_class=predicted).status_code == 201


def test_ids_are_checked_ints_never_a_503(client, ws, served):
    workspace, _, _ = ws
    tid, _, _ = served
    for bad in (2**63, MAX_ID + 10, str(tid), float(tid), 0, -3, True, None, "2001"):
        r = post(client, transaction_id=bad, verdict="correct", reviewer="ana")
        assert r.status_code == 422, (bad, r.text)
        assert "transaction_id" in refused(workspace, r, 422)
    assert refused(workspace, post(client, transaction_id=MAX_ID, verdict="correct", reviewer="ana"),
                   404, "unknown_transaction")


def test_lengths_and_body_size_are_bounded(client, ws, served):
    workspace, _, _ = ws
    tid, _, _ = served
    assert "reviewer" in refused(workspace, post(client, transaction_id=tid, verdict="correct",
                                                 reviewer="r" * 101), 422)
    assert "reviewer" in refused(workspace, post(client, transaction_id=tid, verdict="correct",
                                                 reviewer="   "), 422)
    assert "note" in refused(workspace, post(client, transaction_id=tid, verdict="correct", reviewer="ana",
                                             note="n" * 2001), 422)
    assert "verdict" in refused(workspace, post(client, transaction_id=tid, verdict="Maybe", reviewer="ana"), 422)
    assert "extra" in refused(workspace, post(client, transaction_id=tid, verdict="correct", reviewer="ana",
                                              time="2020-01-01"), 422).lower()  # no client time field
    before = workspace.serving_db.stat().st_size
    huge = {"transaction_id": tid, "verdict": "correct", "reviewer": "ana", "note": "x" * 10_000_000}
    r = client.post("/evaluations", json=huge)
    detail = refused(workspace, r, 413, "too_large")
    assert "16,384 bytes" in detail
    chunked = client.post("/evaluations", content=iter([b'{"note": "', b"y" * 20_000, b'"}']),
                          headers={"content-type": "application/json"})  # no Content-Length: counted
    assert "received" in refused(workspace, chunked, 413, "too_large")
    assert workspace.serving_db.stat().st_size < before + 1_000_000  # nothing of it was stored


def test_current_verdict_is_the_last_received(predictor, ws, served):
    """A client's claimed time (the simulated-time header) does not reorder verdicts."""
    workspace, _, _ = ws
    tid, predicted, other = served
    with start_server(predictor, allow_simulated=True) as srv, httpx.Client(base_url=srv.url) as c:
        late = c.post("/evaluations", json={"transaction_id": tid, "verdict": "wrong", "reviewer": "bo",
                                            "true_class": other},
                      headers={SIMULATED_TIME_HEADER: "2030-01-01T00:00:00Z"})
        early = c.post("/evaluations", json={"transaction_id": tid, "verdict": "unsure", "reviewer": "cy"},
                       headers={SIMULATED_TIME_HEADER: "2001-01-01T00:00:00Z"})
    assert late.status_code == early.status_code == 201
    with TransactionLog(workspace, create=False) as log:
        current = log.evaluated_transactions().set_index("transaction_id").loc[tid]
        history = log.evaluated_transactions(latest_only=False)
    assert current["verdict"] == "unsure" and current["reviewer"] == "cy"  # received last: it counts
    mine = history[history["transaction_id"] == tid]
    assert mine["verdict"].tolist()[-2:] == ["wrong", "unsure"]  # the history is kept


def test_record_verdict_from_python_follows_the_same_rules(predictor, served):
    tid, predicted, other = served
    with pytest.raises(ValueError, match="new_class=true"):
        predictor.record_verdict(tid, "wrong", reviewer="ana", true_class="dragon")
    with pytest.raises(UnknownTransactionError):
        predictor.record_verdict(MAX_ID, "correct", reviewer="ana")
    with pytest.raises(ValueError, match="transaction_id"):
        predictor.record_verdict(2**64, "correct", reviewer="ana")
    eid = predictor.record_verdict(tid, "wrong", reviewer="ana", true_class="okapi", new_class=True)
    assert eid >= 1
