"""Token auth on and off, the refusal to bind publicly without a token, the per-client rate limit,
and `imgcls serve --help` listing the endpoints and every limit."""

from __future__ import annotations

import httpx
import pytest
from serving_support import png_bytes, predictor, read_log, upload, ws  # noqa: F401 - fixtures

from imgcls.cli import build_parser, main
from imgcls.serving import TokenBucket, check_exposure, read_token, serve, start_server

TOKEN = "s3cret-token-0123456789"


def failure_row(workspace, r):
    body = r.json()
    assert set(body) == {"detail", "kind", "status", "transaction_id"}
    return read_log(workspace).loc[body["transaction_id"]]


def test_token_required_everywhere_but_health(predictor, ws):
    workspace, _, _ = ws
    with start_server(predictor, token=TOKEN) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.get("/health").status_code == 200  # probes need no token
        for method, path in (("GET", "/model"), ("GET", "/docs"), ("GET", "/openapi.json"),
                             ("POST", "/predict"), ("POST", "/evaluations")):
            r = c.request(method, path)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), path
            row = failure_row(workspace, r)
            assert row["failure"] == "unauthorized" and row["http_status"] == 401
        r = upload(c, png_bytes(seed=1), headers={"Authorization": "Bearer wrong-token-wrong-token"})
        assert r.status_code == 403 and failure_row(workspace, r)["failure"] == "forbidden"
        r = c.get("/model", headers={"Authorization": "Basic " + TOKEN})
        assert r.status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert c.get("/model", headers=good).status_code == 200
        assert c.get("/openapi.json", headers=good).json()["components"]["securitySchemes"]
        r = upload(c, png_bytes(seed=1), headers=good)
        assert r.status_code == 200 and read_log(workspace).loc[r.json()["transaction_id"], "status"] == "ok"
        assert TOKEN not in read_log(workspace)["error"].str.cat(sep=" ")  # never logged


def test_no_token_means_no_auth(predictor):
    with start_server(predictor) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.get("/model").status_code == 200 and c.get("/openapi.json").status_code == 200
        assert "securitySchemes" not in c.get("/openapi.json").json().get("components", {})


def test_public_bind_needs_a_token(ws, tmp_path, monkeypatch, capsys):
    workspace, _, _ = ws
    monkeypatch.delenv("IMGCLS_TOKEN", raising=False)
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(ValueError, match="without a token"):
            check_exposure(host, token=None, insecure=False)
    for host in ("127.0.0.1", "127.0.0.5", "localhost", "::1"):
        check_exposure(host, token=None, insecure=False)
    check_exposure("0.0.0.0", token=TOKEN, insecure=False)
    check_exposure("0.0.0.0", token=None, insecure=True)
    # serve() refuses before it loads anything
    with pytest.raises(ValueError, match="--insecure"):
        serve(workspace, host="0.0.0.0", port=1)
    assert main(["serve", "-w", str(workspace.root), "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "without a token" in capsys.readouterr().err
    # tokens come from a file or the environment, and must not be trivially short
    path = tmp_path / "token.txt"
    path.write_text(TOKEN + "\n")
    assert read_token(path) == TOKEN
    path.write_text("short\n")
    with pytest.raises(ValueError, match="at least 16"):
        read_token(path)
    assert read_token() is None
    monkeypatch.setenv("IMGCLS_TOKEN", TOKEN)
    assert read_token() == TOKEN


def test_rate_limit_per_client(predictor, ws):
    workspace, _, _ = ws
    with start_server(predictor, rate_limit=0.5, rate_burst=3) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as c:
        answers = [c.get("/model").status_code for _ in range(3)]
        r = c.get("/model")
        assert answers == [200, 200, 200] and r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1 and "a second" in r.json()["detail"]
        row = failure_row(workspace, r)
        assert row["failure"] == "rate_limited" and row["http_status"] == 429 and row["endpoint"] == "model"
        assert c.get("/health").status_code == 200  # probes are not rate limited


def test_token_bucket():
    bucket = TokenBucket(2.0, 2)
    assert [bucket.take("a", now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take("a", now=0.0) == pytest.approx(0.5)
    assert bucket.take("b", now=0.0) == 0.0  # per client
    assert bucket.take("a", now=0.6) == 0.0  # refilled at 2 a second
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


def test_serve_help_lists_endpoints_and_limits():
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    text = sub.choices["serve"].format_help()
    for needle in ("POST /predict", "POST /evaluations", "GET  /model", "GET  /health", "--max-bytes",
                   "10,485,760", "--max-pixels", "64,000,000", "--max-decode-bytes", "288,000,000",
                   "--max-concurrent", "--decode-memory", "--queue-timeout", "--rate-limit", "20/s",
                   "--token-file", "--insecure", "16,384 bytes", "per server process"):
        assert needle in text, needle
