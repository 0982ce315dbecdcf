"""The numbered notebooks run headless, in order, on one small sample workspace.

Each is executed with papermill with small parameters, the way a user runs it
with the defaults; a notebook that raises fails its test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import copy_workspace

pytestmark = pytest.mark.slow  # runs the notebooks, which train models

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "notebooks"


@pytest.fixture(scope="module")
def sample_ws(zoo_sample_template, tmp_path_factory):
    """One copy of the session's zoo sample that the notebooks, run in order, share."""
    return copy_workspace(zoo_sample_template, tmp_path_factory.mktemp("nb") / "zoo")


def run_notebook(name: str, **params) -> dict:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name), str(out), parameters=params, cwd=str(NOTEBOOKS),
        kernel_name="python3", progress_bar=False, log_output=False,
        iopub_timeout=60,  # a busy machine may deliver widget output slowly
    )
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    return nb


def _text(nb) -> str:
    chunks = []
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            chunks.extend(o.get("text", []) if isinstance(o.get("text"), list) else [o.get("text", "")])
            data = o.get("data", {})
            chunks.extend(data.get("text/plain", []))
    return "".join(chunks)


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))


def test_notebooks_define_no_functions():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                src = "".join(cell["source"])
                assert "def " not in src and "class " not in src and "lambda" not in src, (path.name, src)
        tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
        assert ["parameters"] in tags, f"{path.name} has no papermill parameters cell"


def test_notebooks_match_their_jupytext_sources():
    """notebooks/NN_name.py (jupytext percent) is the source of each notebook; the
    paired .ipynb must hold the same cells (`jupytext --sync notebooks/*.py` mends it)."""
    import jupytext

    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == [f"{i:02d}_{n}" for i, n in enumerate([
        "image_library.ipynb", "train_from_scratch.ipynb", "finetune_loop.ipynb", "bulk_identification.ipynb",
        "throwaway_run.ipynb", "serving_and_logging.ipynb", "performance_reports.ipynb"], start=1)]
    for name in names:
        ipynb = jupytext.read(NOTEBOOKS / name)
        source = jupytext.read(NOTEBOOKS / name.replace(".ipynb", ".py"))
        cells = [(c.cell_type, c.source) for c in ipynb.cells]
        assert cells == [(c.cell_type, c.source) for c in source.cells], (
            f"{name} differs from its source {name[:-6]}.py: run `jupytext --sync notebooks/{name[:-6]}.py`")


def test_01_image_library(sample_ws):
    nb = run_notebook("01_image_library.ipynb", WORKSPACE=str(sample_ws.root))
    text = _text(nb)
    assert "unreadable" in text and "benchmark" in text
    assert _images(nb) >= 3  # counts chart, sideways images, duplicate groups


SMALL_TRAINING = dict(IMAGE_SIZE=32, MAX_EPOCHS=2, PATIENCE=1)


def test_02_train_from_scratch(sample_ws):
    nb = run_notebook("02_train_from_scratch.ipynb", WORKSPACE=str(sample_ws.root),
                      BAKEOFF_MODELS=["simple_cnn", "mini_inception"], BAKEOFF_EPOCHS=1, **SMALL_TRAINING)
    text = _text(nb)
    assert "test accuracy" in text and "inception_v4" in text
    assert _images(nb) >= 4  # bake-off, augmentation preview, history, confusion
    from imgcls.runs import list_runs

    assert len(list_runs(sample_ws)) == 1


def test_03_finetune_loop(sample_ws):
    nb = run_notebook("03_finetune_loop.ipynb", WORKSPACE=str(sample_ws.root),
                      LABELLING={"zebra": 40, "sheep": 5, "giraffe": 5}, **SMALL_TRAINING)
    from imgcls.runs import list_runs, promotion_log

    runs = list_runs(sample_ws)
    assert runs["throwaway"].sum() == 1 and runs["parent"].notna().sum() >= 1
    log = promotion_log(sample_ws)
    assert log["accepted"].any() and (~log["accepted"]).any()  # one accepted, one refused
    assert _images(nb) >= 6


def test_05_bulk_identification(sample_ws):
    nb = run_notebook("05_bulk_identification.ipynb", WORKSPACE=str(sample_ws.root),
                      TRAIN_MAX_EPOCHS=2, TRAIN_PATIENCE=1, PAGE_SIZE=12, N_LOWEST=12)
    text = _text(nb)
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "images identified" in text and "library restored exactly: True" in text
    assert "Invalid class name" in html and "Applied" in html and "Undone" in html
    assert _images(nb) >= 2


def test_06_throwaway_run(tmp_path):
    # a fresh sample: notebook 03 lifted sheep and giraffe over the cutoff in sample_ws
    nb = run_notebook("06_throwaway_run.ipynb", SAMPLE_DIR=str(tmp_path / "zoo06"), SAMPLE_IMAGE_SIZE=48,
                      SAMPLE_POOL_SIZE=600, MAX_EPOCHS=3, PATIENCE=2, PAGE_SIZE=24)
    text = _text(nb)
    assert "throw-away runs are never promoted" in text
    assert "Targets now at the cutoff: ['sheep', 'giraffe']" in text


def test_07_serving_and_logging(sample_ws):
    nb = run_notebook("07_serving_and_logging.ipynb", WORKSPACE=str(sample_ws.root), N_REQUESTS=8)
    text = _text(nb)
    assert "transactions logged" in text and "127.0.0.1" in text
    from imgcls.translog import TransactionLog

    with TransactionLog(sample_ws) as log:
        tx = log.transactions()
        assert (tx["status"] == "ok").sum() >= 8 and (tx["status"] == "failed").sum() >= 1
        assert len(log.evaluations()) >= 4


def test_08_performance_reports(sample_ws):
    nb = run_notebook("08_performance_reports.ipynb", WORKSPACE=str(sample_ws.root), SIMULATE_WEEKS=4,
                      SIMULATE_REQUESTS=300)
    assert "files written under" in _text(nb)
    assert _images(nb) >= 6
    written = list(sample_ws.reports.rglob("*"))
    assert {p.suffix for p in written} >= {".png", ".svg", ".pdf", ".csv"}
