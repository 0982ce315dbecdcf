"""The notebooks are jupytext pairs: ``notebooks/NN_name.py`` (percent format,
the source under review) and ``NN_name.ipynb``, kept in step by
``jupytext --sync`` (``make notebooks``).

A round trip on a temporary copy of one pair checks that an edit on either
side reaches the other; every notebook source declares the pairing and a
``parameters`` cell (what papermill and the tests inject WORKSPACE into).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(p for p in NOTEBOOKS.glob("*.py") if re.match(r"\d\d_", p.name))
PAIR = "01_image_library"


def jupytext_sync(path: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "jupytext"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "jupytext"]
    proc = subprocess.run([*cmd, "--sync", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"jupytext --sync {path.name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def touch_newer(path: Path, than: Path) -> None:
    """Give ``path`` a modification time clearly after ``than``'s (jupytext --sync trusts the newer file)."""
    t = max(than.stat().st_mtime, time.time()) + 5
    os.utime(path, (t, t))


def test_there_are_notebook_sources():
    assert len(SOURCES) >= 7, [p.name for p in SOURCES]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_declares_pairing_and_parameters_cell(source):
    nb = jupytext.read(source)
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", (
        f"{source.name}: the header must declare `formats: ipynb,py:percent`")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", (
        f"{source.name}: needs exactly one code cell tagged `parameters`")
    assert source.with_suffix(".ipynb").exists(), f"{source.name} has no paired .ipynb"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync(source):
    """The .ipynb holds the same cells as its .py (run `make notebooks` after editing either)."""
    text = jupytext.read(source)
    ipynb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)

    def cells(nb):
        return [(c.cell_type, c.source.strip()) for c in nb.cells]

    assert cells(text) == cells(ipynb), f"{source.name} and its .ipynb differ: run `make notebooks`"


@pytest.mark.slow  # runs jupytext as a command four times
def test_round_trip_py_to_ipynb_and_back(tmp_path):
    shutil.copy2(NOTEBOOKS / f"{PAIR}.py", tmp_path)
    shutil.copy2(NOTEBOOKS / f"{PAIR}.ipynb", tmp_path)
    py, ipynb = tmp_path / f"{PAIR}.py", tmp_path / f"{PAIR}.ipynb"
    n_cells = len(nbformat.read(ipynb, as_version=4).cells)

    # 1. edit the .py (a new markdown cell) -> sync -> the .ipynb has it
    marker = "Round-trip marker written into the .py"
    py.write_text(py.read_text() + f"\n# %% [markdown]\n# {marker}\n")
    touch_newer(py, ipynb)
    jupytext_sync(py)
    nb = nbformat.read(ipynb, as_version=4)
    assert len(nb.cells) == n_cells + 1
    assert nb.cells[-1].cell_type == "markdown" and nb.cells[-1].source.strip() == marker
    assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])], "tags survive the sync"

    # 2. edit the .ipynb (nbformat: a new code cell, a changed markdown cell) -> sync -> the .py follows
    code = "round_trip_check = 1 + 1"
    nb.cells.append(nbformat.v4.new_code_cell(code))
    nb.cells[-2].source = marker + " and changed in the .ipynb"
    nbformat.write(nb, ipynb)
    touch_newer(ipynb, py)
    jupytext_sync(ipynb)
    text = py.read_text()
    assert f"# {marker} and changed in the .ipynb" in text
    assert re.search(r"# %%\n" + re.escape(code) + r"\n", text), text[-400:]
    assert "formats: ipynb,py:percent" in text
    back = jupytext.read(py)
    assert [(c.cell_type, c.source) for c in back.cells][-2:] == [
        ("markdown", marker + " and changed in the .ipynb"), ("code", code)]
