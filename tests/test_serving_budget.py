"""The decode budget: a decode cost in bytes from the header (bytes per pixel by mode), refused over
max_decode_bytes (413), and a semaphore that bounds concurrent decodes and their memory (503 with
Retry-After when the wait is too long). Memory itself is measured by benchmarks/bench_serving_hostile.py.
"""

from __future__ import annotations

import io
import threading

import httpx
import numpy as np
import pytest
from PIL import Image
from png_writer import png_bytes as raw_png
from serving_support import png_bytes, read_log, upload, ws  # noqa: F401 - fixtures

from imgcls.core import decode_cost
from imgcls.serving import DecodeBudget, Overloaded, Predictor, RejectedImage, start_server


def encode(array: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_decode_cost_counts_bytes_per_pixel(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    files = {
        "rgb.png": encode(rgb),
        "rgba.png": encode(np.dstack([rgb, rgb[..., :1]])),
        "grey.png": encode(rgb[..., 0]),
        "rgba16.png": raw_png(400, 300, color_type=6, bit_depth=16),
        "big.jpg": encode(np.repeat(np.repeat(rgb, 8, 0), 8, 1), "JPEG", quality=80),  # 3200x2400
    }
    costs = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        costs[name] = decode_cost(tmp_path / name, target=(32, 32))
    assert costs["rgb.png"].bytes == int(120_000 * 4.5) and costs["rgb.png"].kind == "rgb"
    assert costs["rgba.png"].kind == costs["rgba16.png"].kind == "alpha"
    assert costs["rgba16.png"].bytes == costs["rgba.png"].bytes > 5 * costs["rgb.png"].bytes
    assert costs["grey.png"].bytes == int(120_000 * 5.5)
    jpg = costs["big.jpg"]  # decoded reduced (draft) to the model's input: 1/8 scale
    assert (jpg.width, jpg.height, jpg.decoded_pixels) == (3200, 2400, 400 * 300)
    assert decode_cost(tmp_path / "big.jpg").decoded_pixels == 3200 * 2400  # no target: full size
    (tmp_path / "text.png").write_bytes(b"hello")
    assert decode_cost(tmp_path / "text.png") is None  # the decoder says why, not the estimate
    assert "bytes to decode" in costs["rgba16.png"].describe()


def test_over_the_decode_limit_is_413_with_the_limit(ws):
    workspace, first, _ = ws
    rgb = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    rgba16 = raw_png(200, 200, color_type=6, bit_depth=16)  # 40,000 px: far below max_pixels
    limit = 200 * 200 * 6  # room for 8-bit RGB (4.5 bytes a pixel), not for RGBA (24.5)
    with Predictor(workspace, run=first.run_id, max_decode_bytes=limit) as p:
        assert p.predict(encode(rgb))["transaction_id"] >= 1
        with pytest.raises(RejectedImage) as info:
            p.predict(rgba16)
        err = info.value
        assert err.status_code == 413 and err.kind == "too_large"
        assert f"max_decode_bytes={limit:,}" in err.reason and "RGBA" in err.reason
        with start_server(p) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
            r = upload(c, rgba16, name="deep.png")
        assert r.status_code == 413 and f"{limit:,}" in r.json()["detail"]
        row = read_log(workspace).loc[r.json()["transaction_id"]]
        assert row["failure"] == "too_large" and row["http_status"] == 413


def test_budget_bounds_memory_and_slots():
    budget = DecodeBudget(max_concurrent=2, decode_memory=100, queue_timeout=0.2)
    with budget.memory(60):
        with pytest.raises(Overloaded) as info:
            with budget.memory(50):
                pass
        assert info.value.retry_after >= 1 and "busy" in str(info.value)
        with budget.memory(40):  # first fit: a smaller one still runs
            assert budget.state()["memory_in_flight"] == 100
    with budget.memory(10_000):  # a cost above the whole budget runs alone
        assert budget.state()["memory_in_flight"] == 100
    with budget.slot(), budget.slot():
        with pytest.raises(Overloaded):
            with budget.slot():
                pass
    state = budget.state()
    assert state["peak_memory"] == 100 and state["peak_active"] == 2 and state["refused"] == 2
    assert state["active"] == 0 and state["memory_in_flight"] == 0


def test_concurrent_large_uploads_queue_within_the_budget(ws):
    """Eight big uploads at once: their decodes never hold more than decode_memory together."""
    workspace, first, _ = ws
    big = [encode(np.random.default_rng(i).integers(0, 256, (900, 900, 3), dtype=np.uint8)) for i in range(8)]
    cost = int(900 * 900 * 4.5)
    with Predictor(workspace, run=first.run_id, max_bytes=10_000_000, decode_memory=2 * cost,
                   queue_timeout=60) as p, start_server(p) as srv:
        statuses: list[int] = []

        def send(data):
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                statuses.append(upload(c, data).status_code)

        threads = [threading.Thread(target=send, args=(d,)) for d in big]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        state = p.budget.state()
    assert statuses == [200] * 8
    assert cost <= state["peak_memory"] <= 2 * cost and state["memory_in_flight"] == 0


def test_waiting_too_long_is_503_with_retry_after_and_logged(ws):
    workspace, first, _ = ws
    with Predictor(workspace, run=first.run_id, decode_memory=10**6, queue_timeout=0.3) as p, \
            start_server(p) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        with p.budget.memory(10**6):  # another decode holds all the memory
            r = upload(c, png_bytes(seed=4))
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert r.json()["kind"] == "overloaded"
        row = read_log(workspace).loc[r.json()["transaction_id"]]
        assert row["failure"] == "overloaded" and row["http_status"] == 503
        assert upload(c, png_bytes(seed=4)).status_code == 200  # and it recovers
