"""Write the numbered notebooks in notebooks/ from the cell lists in
tools/notebook_cells/ (one module per notebook, each with NAME and CELLS).

The notebooks are generated so that their code stays reviewable in one place
and they never carry outputs in git. Run: ``python tools/build_notebooks.py``
(``--check`` only reports notebooks that differ from their cell lists).
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


def render(names=None) -> dict[Path, str]:
    """The text of each notebook as the cell lists define it."""
    out = {}
    for name, cells in notebooks().items():
        if names and name not in names:
            continue
        for i, cell in enumerate(cells):
            cell["id"] = f"nb{name[:2]}-{i:02d}"  # stable ids: rebuilding changes nothing
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        out[HERE / name] = nbformat.writes(nb) + "\n"
    return out


def build(names=None) -> list[Path]:
    HERE.mkdir(exist_ok=True)
    written = []
    for path, text in render(names).items():
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(names=None) -> list[Path]:
    """Notebooks in notebooks/ that differ from their cell lists (or are missing)."""
    return [path for path, text in render(names).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--check" in args:
        out_of_date = stale([a for a in args if a != "--check"] or None)
        for p in out_of_date:
            print(f"{p.relative_to(ROOT)} differs from tools/notebook_cells: "
                  "run `python tools/build_notebooks.py` and commit the result", file=sys.stderr)
        sys.exit(1 if out_of_date else 0)
    for p in build(args or None):
        print(p)
