"""Write the numbered notebooks in notebooks/ from the cell lists in
tools/notebook_cells/ (one module per notebook, each with NAME and CELLS).

The notebooks are generated so that their code stays reviewable in one place
and they never carry outputs in git. Run: ``python tools/build_notebooks.py``.
Every cell only calls ``imgcls``; no notebook defines a function.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "notebooks"


def notebooks() -> dict[str, list]:
    sys.path.insert(0, str(ROOT / "tools"))
    import notebook_cells

    out = {}
    for info in sorted(pkgutil.iter_modules(notebook_cells.__path__), key=lambda i: i.name):
        if info.name.startswith("nb"):
            mod = importlib.import_module(f"notebook_cells.{info.name}")
            out[mod.NAME] = mod.CELLS
    return out


def build(names=None) -> list[Path]:
    HERE.mkdir(exist_ok=True)
    written = []
    for name, cells in notebooks().items():
        if names and name not in names:
            continue
        for i, cell in enumerate(cells):
            cell["id"] = f"nb{name[:2]}-{i:02d}"  # stable ids: rebuilding changes nothing
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        path = HERE / name
        nbformat.write(nb, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in build(sys.argv[1:] or None):
        print(p)
