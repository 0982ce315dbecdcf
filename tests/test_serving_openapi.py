"""The OpenAPI schema tells the truth: request bodies, every status per endpoint, one error body;
schemathesis (all checks) against the live server on 127.0.0.1 passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serving_support import predictor, read_log, ws  # noqa: F401 - fixtures

from imgcls.serving import start_server
from imgcls.translog import MAX_NOTE_CHARS, MAX_REVIEWER_CHARS

TOKEN = "openapi-test-token-0123456789"
ST = Path(sys.executable).parent / "st"  # schemathesis' command, installed beside this Python
# Valid per the schema, yet refused on grounds no JSON Schema can state: the bytes of the
# 'file' are not an image (400) or too large for the server's limits (413); a true_class
# that is not one of the serving run's classes, a verdict that contradicts it (422).
CONFIG = """
[generation]
max-examples = 25

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "422", "429"]
"""


@pytest.fixture(scope="module")
def spec(predictor):
    with start_server(predictor, token=TOKEN) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        yield c.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()


def test_request_bodies_are_described(spec):
    predict = spec["paths"]["/predict"]["post"]
    form = predict["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    top_k = next(p for p in predict["parameters"] if p["name"] == "top_k")
    assert top_k["schema"]["anyOf"][0]["minimum"] == 1
    ref = spec["paths"]["/evaluations"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {"transaction_id", "verdict", "reviewer"}
    props = body["properties"]
    assert props["verdict"]["enum"] == ["correct", "wrong", "unsure"]
    assert props["reviewer"]["maxLength"] == MAX_REVIEWER_CHARS
    assert props["note"]["anyOf"][0]["maxLength"] == MAX_NOTE_CHARS
    assert props["transaction_id"]["maximum"] == 2**63 - 1 and props["new_class"]["type"] == "boolean"


def test_every_status_is_documented_with_one_error_body(spec):
    expected = {("/predict", "post"): {"200", "400", "401", "403", "413", "415", "422", "503"},
                ("/evaluations", "post"): {"201", "400", "401", "403", "404", "413", "422", "503"},
                ("/model", "get"): {"200", "401", "403"},
                ("/health", "get"): {"200"}}
    for (path, method), statuses in expected.items():
        responses = spec["paths"][path][method]["responses"]
        assert set(responses) == statuses, path
        for status, answer in responses.items():
            if status[0] in "45":
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"detail", "kind", "status", "transaction_id"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.slow
def test_schemathesis_all_checks_pass(predictor, ws, tmp_path):
    workspace, _, _ = ws
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    before = len(read_log(workspace))
    with start_server(predictor, token=TOKEN) as srv:
        proc = subprocess.run(
            [str(ST), "--config-file", str(config), "--no-color", "run", f"{srv.url}/openapi.json",
             "--checks", "all", "--seed", "12", "--generation-database", "none",
             "-H", f"Authorization: Bearer {TOKEN}", "--request-timeout", "60"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "passed" in proc.stdout
    # every request schemathesis sent left a row (refusals too), and no 5xx among them
    log = read_log(workspace).iloc[before:]
    assert len(log) > 50 and not (log["http_status"].fillna(0) >= 500).any()
