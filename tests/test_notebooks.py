"""The numbered notebooks run headless, in order, both ways a user meets them.

* **README's path**: ``imgcls demo`` first (here its API equivalent at quick settings), then the
  notebooks in order at their defaults, opening the demo's workspace through a *relative*
  ``SAMPLE_DIR`` (as ``../demo-workspace`` is), so the hidden-label join sees relative paths.
* **Fresh sample**: the notebooks in order on an untouched copy of the session's zoo sample.

Each is executed with papermill with small parameters; a notebook that raises, or writes anything
to stderr (TensorFlow's start-up lines included), fails its test. The stories are asserted too:
the scripted reviewers file nothing wrong, the fine-tuning control arm is a real from-scratch run,
the serving notebook's requests are flagged as demo traffic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import copy_workspace

pytestmark = pytest.mark.slow  # runs the notebooks, which train models

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "notebooks"
PATHS = ["demo", "fresh"]
#: The quick settings of the demo the README's path starts from (``imgcls demo --max-epochs 2 ...``).
QUICK_DEMO = dict(image_size=48, max_epochs=2, patience=1, pool_size=600, traffic_requests=300, weeks=4)
SMALL_TRAINING = dict(IMAGE_SIZE=32, MAX_EPOCHS=2, PATIENCE=1)


@pytest.fixture(autouse=True)
def _users_environment(monkeypatch):
    """Kernels start as in a user's JupyterLab: no TF_CPP_MIN_LOG_LEVEL (other test modules set 2)."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)


@pytest.fixture(scope="module")
def workspaces(zoo_sample_template, tmp_path_factory):
    """{"demo": the workspace after a quick ``imgcls demo``, "fresh": a copy of the zoo sample}."""
    from imgcls.demo import run_demo

    demo_root = tmp_path_factory.mktemp("nb-demo") / "demo-workspace"
    run_demo(demo_root, verbose=0, **QUICK_DEMO)
    from imgcls.core import open_workspace

    return {"demo": open_workspace(demo_root, create=False),
            "fresh": copy_workspace(zoo_sample_template, tmp_path_factory.mktemp("nb-fresh") / "zoo")}


def _where(ws, path: str) -> dict:
    """The notebook parameters that open ``ws``: the README's relative SAMPLE_DIR, or WORKSPACE."""
    if path == "demo":
        return {"SAMPLE_DIR": os.path.relpath(ws.root, NOTEBOOKS), "SAMPLE_IMAGE_SIZE": QUICK_DEMO["image_size"],
                "SAMPLE_POOL_SIZE": QUICK_DEMO["pool_size"]}
    return {"WORKSPACE": str(ws.root)}


def run_notebook(name: str, tag: str = "", **params) -> dict:
    """Execute ``name`` with papermill; fail on any error or stderr output; return the executed notebook."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / (name.replace(".ipynb", f"-{tag}.ipynb") if tag else name)
    papermill.execute_notebook(
        str(NOTEBOOKS / name), str(out), parameters=params, cwd=str(NOTEBOOKS),
        kernel_name="python3", progress_bar=False, log_output=False,
        iopub_timeout=60,  # a busy machine may deliver widget output slowly
    )
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    stderr = ["".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not stderr, f"{name} wrote to stderr (a red box in the notebook): {stderr[0][:500]}"
    return nb


def _text(nb) -> str:
    chunks = []
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            chunks.extend(o.get("text", []) if isinstance(o.get("text"), list) else [o.get("text", "")])
            data = o.get("data", {})
            chunks.extend(data.get("text/plain", []))
            chunks.extend(data.get("text/markdown", []))
    return "".join(chunks)


def _html(nb) -> str:
    return "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb["cells"] for o in c.get("outputs", []))


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
    series = ["01_image_library", "02_train_from_scratch", "03_finetune_loop", "04_clean_the_library",
              "05_bulk_identification", "06_throwaway_run", "07_serving_and_logging", "08_performance_reports"]
    assert set(names) <= {f"{n}.ipynb" for n in series}
    assert set(names) >= {f"{n}.ipynb" for n in series if not n.startswith("04")}
    for name in names:
        ipynb = jupytext.read(NOTEBOOKS / name)
        source = jupytext.read(NOTEBOOKS / name.replace(".ipynb", ".py"))
        cells = [(c.cell_type, c.source) for c in ipynb.cells]
        assert cells == [(c.cell_type, c.source) for c in source.cells], (
            f"{name} differs from its source {name[:-6]}.py: run `jupytext --sync notebooks/{name[:-6]}.py`")


@pytest.mark.parametrize("path", PATHS)
def test_01_image_library(workspaces, path):
    nb = run_notebook("01_image_library.ipynb", path, **_where(workspaces[path], path))
    text = _text(nb)
    assert "unreadable" in text and "benchmark set:" in text and "already fixed, nothing added" in text
    assert _images(nb) >= 3  # counts chart, sideways images, duplicate groups


@pytest.mark.parametrize("path", PATHS)
def test_02_train_from_scratch(workspaces, path):
    from imgcls.runs import list_runs

    ws = workspaces[path]
    before = len(list_runs(ws))
    nb = run_notebook("02_train_from_scratch.ipynb", path, **_where(ws, path),
                      BAKEOFF_MODELS=["simple_cnn", "mini_inception"], BAKEOFF_EPOCHS=1, **SMALL_TRAINING)
    text = _text(nb)
    assert "test accuracy" in text and "inception_v4" in text
    assert "the bake-off's winner" in text
    assert ("production stays" in text) == (path == "demo")
    assert _images(nb) >= 4  # bake-off, augmentation preview, history, confusion
    assert len(list_runs(ws)) == before + 1


@pytest.mark.parametrize("path", PATHS)
def test_03_finetune_loop(workspaces, path):
    from imgcls.runs import list_runs, load_run, production_run_id, promotion_log

    ws = workspaces[path]
    had_production = production_run_id(ws)
    labelling = {} if path == "demo" else {"LABELLING": {"zebra": 40, "sheep": 5, "giraffe": 5}}
    nb = run_notebook("03_finetune_loop.ipynb", path, **_where(ws, path), **labelling, **SMALL_TRAINING)
    text = _text(nb)
    assert ("no first promotion to make" in text) == bool(had_production)
    runs = list_runs(ws)
    control = load_run(runs.loc[runs["throwaway"], "run_id"].iloc[-1], workspace=ws)
    head_swap = load_run(runs.loc[runs["parent"].notna(), "run_id"].iloc[-1], workspace=ws)
    parent = load_run(head_swap.parent, workspace=ws)
    # the control arm is a real from-scratch run on the head swap's data, never a copy of its parent
    assert control.parent is None and control.config["seed"] != parent.config["seed"]
    assert control.classes == head_swap.classes
    assert control.metrics["data"]["n_train"] == head_swap.metrics["data"]["n_train"] > parent.metrics["data"]["n_train"]
    log = promotion_log(ws)
    assert not log.loc[log["run_id"] == control.run_id, "accepted"].any()
    if not had_production:
        assert log["accepted"].any()  # the first production model
    assert _images(nb) >= 6


@pytest.mark.parametrize("path", PATHS)
def test_04_clean_the_library(workspaces, path):
    from imgcls.cleaning import read_label_noise
    from imgcls.library import Library
    from imgcls.training import choose_run

    ws = workspaces[path]
    before = Library(ws).counts()
    nb = run_notebook("04_clean_the_library.ipynb", path, **_where(ws, path),
                      TRAIN_MAX_EPOCHS=2, TRAIN_PATIENCE=1, PAGE_SIZE=12, N_OUTLIERS=8)
    text, html = _text(nb), _html(nb)
    assert "8 images filed in a wrong folder on purpose" in text
    assert "Findings:" in text and "of the 8 planted mistakes are flagged" in text
    assert "pairs of near-duplicates in different classes" in text and "outliers of their classes" in text
    assert "Applied" in html and "Undone" in html
    back = [line for line in text.splitlines() if "planted mistakes are back in their true class" in line]
    assert back and not back[0].startswith("0 of"), back  # the reviewer relabelled those on its page
    assert "library restored exactly: True" in text
    assert Library(ws).counts()[["label", "n"]].equals(before[["label", "n"]])
    assert read_label_noise(choose_run(ws, verbose=0)) is not None  # the deck's noise slide reads it
    assert _images(nb) >= 2  # the noise slide, the outliers


@pytest.mark.parametrize("path", PATHS)
def test_05_bulk_identification(workspaces, path):
    nb = run_notebook("05_bulk_identification.ipynb", path, **_where(workspaces[path], path),
                      TRAIN_MAX_EPOCHS=2, TRAIN_PATIENCE=1, PAGE_SIZE=12, N_LOWEST=12)
    text, html = _text(nb), _html(nb)
    assert "images identified" in text and "library restored exactly: True" in text
    assert "'unmatched': 0}" in text  # every identified pool image got its hidden label
    assert "Invalid class name" in html and "Applied" in html and "Undone" in html
    assert "Name: decisions" in text  # the reviewer's decisions by kind (first, second choice, typed)
    filed = [line for line in text.splitlines() if "images filed into a class" in line]
    assert filed and filed[0].split()[0] != "0" and ", 0 wrong against the hidden labels" in filed[0], filed
    assert _images(nb) >= 3  # precision, look-alike chart, lowest scores


def test_06_throwaway_run(tmp_path):
    """It builds a sample of its own (the demo's has sheep and giraffe over the cutoff already): one way."""
    nb = run_notebook("06_throwaway_run.ipynb", SAMPLE_DIR=str(tmp_path / "zoo06"), SAMPLE_IMAGE_SIZE=48,
                      SAMPLE_POOL_SIZE=600, MAX_EPOCHS=3, PATIENCE=2, PAGE_SIZE=24)
    text = _text(nb)
    assert "throw-away runs are never promoted" in text
    filed = [line for line in text.splitlines() if "images filed into a class" in line]
    assert filed and ", 0 wrong against the hidden labels" in filed[0], filed
    assert "Targets now at the cutoff: ['sheep', 'giraffe']" in text


@pytest.mark.parametrize("path", PATHS)
def test_07_serving_and_logging(workspaces, path):
    from imgcls.runs import production_run
    from imgcls.sample import sample_truth
    from imgcls.translog import TransactionLog

    ws = workspaces[path]
    with TransactionLog(ws) as log:
        before = log.count()
    nb = run_notebook("07_serving_and_logging.ipynb", path, **_where(ws, path), N_REQUESTS=8)
    text = _text(nb)
    assert "transactions logged" in text and "127.0.0.1" in text
    assert "all flagged simulated: True" in text
    known = set(production_run(ws).classes)
    truth = sample_truth(ws)
    with TransactionLog(ws) as log:
        tx = log.transactions().iloc[before:]
        assert len(tx) == 9 and tx["simulated"].all()  # 8 requests and the bad upload: all demo traffic
        assert (tx["status"] == "ok").sum() == 8 and (tx["status"] == "failed").sum() == 1
        assert len(log.evaluations()) >= 4
    assert set(truth.loc[truth["label"].isin(known), "label"])  # requests come from classes the model knows


@pytest.mark.parametrize("path", PATHS)
def test_08_performance_reports(workspaces, path):
    from imgcls.runs import promoted_run_ids
    from imgcls.translog import TransactionLog

    ws = workspaces[path]
    nb = run_notebook("08_performance_reports.ipynb", path, **_where(ws, path), SIMULATE_WEEKS=4,
                      SIMULATE_REQUESTS=300)
    assert "files written under" in _text(nb)
    assert _images(nb) >= 6
    written = list(ws.reports.rglob("*"))
    assert {p.suffix for p in written} >= {".png", ".svg", ".pdf", ".csv"}
    with TransactionLog(ws) as log:
        served = set(log.transactions(columns=["run_id", "simulated"]).query("simulated")["run_id"])
    assert served <= set(promoted_run_ids(ws))  # simulated traffic only for promoted runs
