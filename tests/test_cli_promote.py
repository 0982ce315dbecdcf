"""`imgcls benchmark` and `imgcls promote`, run as a user runs them (a subprocess).

A colour library (3 classes x 15 images, cutoff 10) with hand-set colour
models (``evaluation_runs``), so the gate's numbers are known: "good" gets
every benchmark image right, "blue_as_red" misses the 5 blue ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation_runs import BLUE_AS_RED, COLORS, GOOD3, THREE, _color_model

BIN = Path(sys.executable).parent / "imgcls"


def run(*args, check=True):
    exe = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "imgcls.cli"]
    proc = subprocess.run([*exe, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"imgcls {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _images(ws, name, n, rng):
    (ws.library / name).mkdir(parents=True)
    for i in range(n):
        px = np.clip(np.array(COLORS[name]) + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(px).save(ws.library / name / f"{name}_{i:02d}.png")


@pytest.fixture(scope="module")
def colour_ws(tmp_path_factory):
    from imgcls.core import open_workspace
    from imgcls.library import Library, assign_splits
    from imgcls.runs import save_run

    ws = open_workspace(tmp_path_factory.mktemp("cli-gate") / "ws", cutoff=10)
    rng = np.random.default_rng(2)
    for name in THREE:
        _images(ws, name, 15, rng)
    snap = assign_splits(Library(ws).scan())  # before any benchmark: "early" trains on future benchmark images
    save_run(ws, _color_model(THREE, GOOD3), classes=THREE, splits=snap, config={"model": "colour_net"},
             run_id="early")
    return ws


def test_benchmark_init_show_and_extend(colour_ws):
    ws = colour_ws.root
    out = run("benchmark", "-w", ws).stdout
    assert "No benchmark set yet" in out
    init = run("benchmark", "init", "-w", ws, "--cutoff", 10).stdout
    # 15 images a class: 10% with a floor of 10, never more than a third -> 5 each.
    assert "benchmark init: blue 5, green 5, red 5" in init
    assert "Benchmark set: 15 images of 3 classes" in init
    assert "1 trained on benchmark images" in init and "early" in init
    again = run("benchmark", "init", "-w", ws, "--cutoff", 10, check=False)
    assert again.returncode == 2 and "never re-drawn" in again.stderr

    _images(colour_ws, "yellow", 15, np.random.default_rng(3))
    extended = run("benchmark", "extend", "-w", ws, "--cutoff", 10).stdout
    assert "benchmark extend: yellow 5" in extended
    info = json.loads(run("benchmark", "-w", ws, "--json").stdout)
    counts = {c["label"]: c["benchmark"] for c in info["classes"]}
    assert counts == {"blue": 5, "green": 5, "red": 5, "yellow": 5}
    assert {r["run_id"]: r["seen_own"] for r in info["runs"]}["early"] > 0
    nothing = run("benchmark", "extend", "-w", ws, "--cutoff", 10).stdout
    assert "nothing added" in nothing


@pytest.mark.slow  # four `imgcls promote` processes, each loading TensorFlow and two models
def test_promote_prints_every_check_and_exits_by_verdict(colour_ws):
    from imgcls.library import Library, assign_splits
    from imgcls.runs import promotion_log, save_run

    ws = colour_ws.root
    if not Library(colour_ws).scan()["benchmark"].any():
        run("benchmark", "init", "-w", ws, "--cutoff", 10)
    snap = assign_splits(Library(colour_ws).scan())
    snap = snap[snap["label"].isin(THREE)]
    for run_id, behaviour in (("good", GOOD3), ("blue_as_red", BLUE_AS_RED)):
        save_run(colour_ws, _color_model(THREE, behaviour), classes=THREE, splits=snap,
                 config={"model": "colour_net"}, run_id=run_id)

    first = run("promote", "-w", ws, "good", "--reason", "first")
    assert first.stdout.startswith("ACCEPTED: good")
    assert "Checks:" in first.stdout and "at least 10 unseen benchmark images" in first.stdout

    refused = run("promote", "-w", ws, "blue_as_red", check=False)
    assert refused.returncode == 1 and refused.stdout.startswith("REFUSED: blue_as_red")
    lines = refused.stdout.splitlines()
    table = lines[lines.index("Checks:") + 1:]
    assert any(line.split()[-1] == "FAIL" and "overall: not worse beyond chance" in line for line in table)
    assert any("class red: not worse beyond chance" in line and line.split()[-1] == "PASS" for line in table)
    failed = refused.stdout.split("Failed checks:")[1].split("Checks:")[0]
    assert "below production" in failed and "class red" not in failed
    assert "Warnings:" in refused.stdout and "too small to judge" in refused.stdout

    forced = run("promote", "-w", ws, "blue_as_red", "--override", "the client wants it")
    assert forced.stdout.startswith("ACCEPTED (override): blue_as_red")
    log = promotion_log(colour_ws)
    assert log["override"].tolist()[-1] == "the client wants it"
    assert log["accepted"].tolist() == [True, False, True]

    bad = run("promote", "-w", ws, "good", "--margin", "-0.1", check=False)
    assert bad.returncode == 2 and "margin" in bad.stderr
