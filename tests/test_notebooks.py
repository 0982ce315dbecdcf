"""The numbered notebooks run headless, in order, on one small sample workspace.

Each is executed with papermill with small parameters, the way a user runs it
with the defaults; a notebook that raises fails its test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "notebooks"


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory):
    from imgcls.sample import build_sample

    return build_sample(tmp_path_factory.mktemp("nb") / "zoo", image_size=48, pool_size=600, seed=0)


def run_notebook(name: str, **params) -> dict:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name), str(out), parameters=params, cwd=str(NOTEBOOKS),
        kernel_name="python3", progress_bar=False, log_output=False,
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


def test_01_image_library(sample_ws):
    nb = run_notebook("01_image_library.ipynb", WORKSPACE=str(sample_ws.root))
    text = _text(nb)
    assert "unreadable" in text and "benchmark" in text
    assert _images(nb) >= 3  # counts chart, sideways images, duplicate groups
