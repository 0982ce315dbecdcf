"""Shared pieces of the serving tests: the zoo sample with two tiny saved runs, a
predictor and an HTTP server on a free 127.0.0.1 port, and small helpers.

Test modules import the fixtures they use (``from serving_support import ws, ...``);
each module builds its own workspace (module scope).
"""

from __future__ import annotations

import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import copy_workspace
from PIL import Image

from imgcls.evaluation import promote
from imgcls.library import Library
from imgcls.models import create_model
from imgcls.runs import save_run
from imgcls.serving import Predictor, start_server
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
def ws(zoo_sample_template, tmp_path_factory):
    """A copy of the session's zoo sample with two saved runs; the first is promoted to production."""
    ws = copy_workspace(zoo_sample_template, tmp_path_factory.mktemp("serving") / "zoo")
    assert Library(ws).classes() == CLASSES
    first, second = tiny_run(ws, 1), tiny_run(ws, 2)
    assert promote(ws, first).accepted
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
