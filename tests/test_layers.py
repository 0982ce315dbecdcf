"""The package's layers, read from the source (AST; no extra dependency).

Layers (``/work/shared/DESIGN.md``), each importing only from the layers above
it (a lower number), never from a different package of its own layer:

1 ``core`` · 2 ``library``, ``runs``, ``sample`` · 3 ``models``, ``inputs`` ·
4 ``training``, ``evaluation`` · 5 ``bulk``, ``translog``, ``cleaning`` ·
6 ``ui``, ``serving``, ``reports``, ``experiments`` (the faces) ·
7 ``demo``, ``cli`` (may import anything; nothing imports them).

What counts as an import: every ``import`` / ``from … import`` statement
anywhere in a module — at module level, inside functions and methods, and
inside ``if TYPE_CHECKING:`` blocks — plus ``importlib.import_module("…")``
with a literal name. TYPE_CHECKING imports are NOT exempt from the layer and
privacy rules: they never execute at run time, but a type a lower layer names
from a higher one is still a dependency on that layer (and tools that evaluate
annotations, e.g. ``typing.get_type_hints`` or Sphinx, do execute them). They
are exempt only where the question is what runs at import time: the
import-cycle check and the TF-free chain below look at module-level imports
outside TYPE_CHECKING blocks (function-level imports run later, on call).

Also checked: no module imports another package's private (``_name``) object
or private module (``imgcls.x._mod``), nor reaches one through an imported
module (``bulk._helper``); files of one package import each other without
cycles at import time; and ``library``, ``runs``, ``translog``, ``reports``,
``core`` and ``sample`` (and ``import imgcls``) load no TensorFlow, Keras or
``matplotlib.pyplot`` (a fresh subprocess per package, every submodule
imported).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "imgcls"

LAYERS: dict[str, int] = {
    "core": 1,
    "library": 2, "runs": 2, "sample": 2,
    "models": 3, "inputs": 3, "runtimes": 3,
    "training": 4, "evaluation": 4,
    "bulk": 5, "translog": 5, "cleaning": 5, "export": 5,
    "ui": 6, "serving": 6, "reports": 6, "experiments": 6,
    "demo": 7, "cli": 7,
}
#: The top: they may import any package; no package imports them.
TOP = {"demo", "cli"}
#: The one import between the two top packages: the `imgcls demo` sub-command runs the demo story.
TOP_EXCEPTIONS = {("cli", "demo")}
#: Same-layer imports allowed on purpose. The sample builds a real library through the library's
#: public API (flags, the benchmark set) instead of writing flags.csv itself, so within layer 2
#: ``sample`` sits on top of ``library``; nothing in ``library`` or ``runs`` imports ``sample``.
SAME_LAYER_EXCEPTIONS = {("sample", "library")}
#: The top-level ``imgcls`` package (its ``__init__.py``): the lazy facade over the entry points.
FACADE = ""
#: Names of the facade any module may import.
FACADE_PUBLIC = {"__version__"}

#: Packages that must load no TensorFlow, Keras or pyplot when imported.
TF_FREE = ("core", "library", "runs", "sample", "translog", "reports")
HEAVY = ("tensorflow", "keras", "matplotlib.pyplot")


# ------------------------------------------------------------------ scanning
@dataclass(frozen=True)
class Import:
    """One imgcls import in one module."""

    source: str  # dotted module doing the import
    path: str  # its file, relative to the repository
    line: int
    target: str  # dotted imgcls module imported (a package means its __init__)
    name: str | None  # the object imported from it (``from target import name``), if not a module
    module_level: bool  # runs at import time (not in a function, not under TYPE_CHECKING)
    type_checking: bool

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: list[Import] = field(default_factory=list)
    heavy: list[tuple[int, str]] = field(default_factory=list)  # module-level third-party heavy imports
    private_uses: list[tuple[int, str]] = field(default_factory=list)  # alias._x on another package's module

    @property
    def package(self) -> str:
        return package_of(self.name)

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def package_of(dotted: str) -> str:
    """``imgcls.bulk.filters`` -> ``bulk``; ``imgcls.cli`` -> ``cli``; ``imgcls`` -> the facade."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id.lstrip("_") == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: Module, known: set[str]):
        self.m = module
        self.known = known
        self.depth = 0  # function nesting
        self.tc = 0  # TYPE_CHECKING nesting
        self.aliases: dict[str, str] = {}  # local name -> imgcls module it is bound to

    # -- context
    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_If(self, node):
        if _is_type_checking(node.test):
            self.tc += 1
            for child in node.body:
                self.visit(child)
            self.tc -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    # -- imports
    def _add(self, node, target: str, name: str | None) -> None:
        self.m.imports.append(Import(
            source=self.m.name, path=self.m.rel, line=node.lineno, target=target, name=name,
            module_level=self.depth == 0 and self.tc == 0, type_checking=self.tc > 0))

    def _heavy(self, node, dotted: str) -> None:
        if self.depth == 0 and self.tc == 0 and any(dotted == h or dotted.startswith(h + ".") for h in HEAVY):
            self.m.heavy.append((node.lineno, dotted))

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name == "imgcls" or alias.name.startswith("imgcls."):
                self._add(node, alias.name, None)
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    self.aliases["imgcls"] = "imgcls"
            else:
                self._heavy(node, alias.name)

    def visit_ImportFrom(self, node):
        if node.level:
            base = self.m.name.split(".") if self.m.is_package else self.m.name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        if not (module == "imgcls" or module.startswith("imgcls.")):
            for alias in node.names:
                self._heavy(node, f"{module}.{alias.name}")
            self._heavy(node, module)
            return
        for alias in node.names:
            sub = f"{module}.{alias.name}"
            if sub in self.known:  # `from imgcls import bulk`, `from . import store`: a module
                self._add(node, sub, None)
                self.aliases[alias.asname or alias.name] = sub
            else:
                self._add(node, module, alias.name)

    def visit_Call(self, node):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if (name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and node.args[0].value.startswith("imgcls")):
            self._add(node, node.args[0].value, None)
        self.generic_visit(node)

    def visit_Attribute(self, node):
        # alias._private where alias is bound to an imgcls module (possibly through a chain).
        chain, cur = [node.attr], node.value
        while isinstance(cur, ast.Attribute):
            chain.append(cur.attr)
            cur = cur.value
        if isinstance(cur, ast.Name) and cur.id in self.aliases:
            dotted = self.aliases[cur.id]
            for attr in reversed(chain):
                if _is_private(attr):
                    self.m.private_uses.append((node.lineno, f"{dotted}.{attr}"))
                    break
                nxt = f"{dotted}.{attr}"
                if nxt not in self.known:
                    break
                dotted = nxt
            return  # the chain is handled; do not revisit its inner attributes
        self.generic_visit(node)


def scan() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name, is_package = module_name(path)
        modules[name] = Module(name, path, is_package)
    known = set(modules)
    for m in modules.values():
        _Visitor(m, known).visit(ast.parse(m.path.read_text(encoding="utf-8"), filename=str(m.path)))
    return modules


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return scan()


# --------------------------------------------------------------------- rules
def layer_violation(imp: Import) -> str | None:
    """Why ``imp`` breaks the layers, or None."""
    src, tgt = package_of(imp.source), package_of(imp.target)
    if src == tgt:
        return None
    what = f"{imp.target}" + (f".{imp.name}" if imp.name else "")
    if src == FACADE:  # the lazy facade may point anywhere but the top
        return f"the imgcls facade imports {tgt} (top layer)" if tgt in TOP else None
    if tgt == FACADE:
        if imp.name in FACADE_PUBLIC:
            return None
        return None if src in TOP else f"{src} imports the top-level facade ({what}); import from the owning package"
    if src not in LAYERS or tgt not in LAYERS:
        return f"package {src if src not in LAYERS else tgt!r} has no layer (add it to LAYERS)"
    if tgt in TOP:
        return None if (src, tgt) in TOP_EXCEPTIONS else f"{src} imports {tgt}: nothing imports the top layer"
    if src in TOP:
        return None
    if LAYERS[tgt] < LAYERS[src] or (src, tgt) in SAME_LAYER_EXCEPTIONS:
        return None
    rel = "same layer" if LAYERS[tgt] == LAYERS[src] else "lower layer"
    return f"{src} (layer {LAYERS[src]}) imports {what} ({tgt}, layer {LAYERS[tgt]}: {rel})"


def privacy_violation(imp: Import) -> str | None:
    src, tgt = package_of(imp.source), package_of(imp.target)
    if src == tgt:
        return None
    private_parts = [p for p in imp.target.split(".")[1:] if _is_private(p)]
    if private_parts:
        return f"{src} imports private module {imp.target}"
    if imp.name and _is_private(imp.name):
        return f"{src} imports private name {imp.target}.{imp.name}"
    return None


def _fmt(imp: Import, why: str) -> str:
    tag = " [TYPE_CHECKING]" if imp.type_checking else ("" if imp.module_level else " [in function]")
    return f"{imp.where}: {why}{tag}"


def layer_report(modules: dict[str, Module]) -> list[str]:
    out = []
    for m in modules.values():
        for imp in m.imports:
            why = layer_violation(imp)
            if why:
                out.append(_fmt(imp, why))
    return out


def privacy_report(modules: dict[str, Module]) -> list[str]:
    out = []
    for m in modules.values():
        for imp in m.imports:
            why = privacy_violation(imp)
            if why:
                out.append(_fmt(imp, why))
        for line, dotted in m.private_uses:
            if package_of(dotted) != m.package:
                out.append(f"{m.rel}:{line}: {m.package or 'imgcls'} uses private {dotted}")
    return out


def _target_module(imp: Import, modules: dict[str, Module]) -> str | None:
    """The module file an import executes (a package means its __init__)."""
    return imp.target if imp.target in modules else None


def package_cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Import-time cycles among the files of one package (Tarjan's SCCs of size > 1, or self-loops)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for m in modules.values():
        for imp in m.imports:
            t = _target_module(imp, modules)
            if imp.module_level and t and t != m.name and package_of(t) == m.package:
                graph[m.name].add(t)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    sccs: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sccs


def heavy_chain(start: str, modules: dict[str, Module]) -> list[str] | None:
    """The first chain of module-level imports from ``start`` to TensorFlow/Keras/pyplot, if any.

    Importing ``imgcls.x.y`` runs ``imgcls/__init__``, ``imgcls/x/__init__`` and
    then ``imgcls/x/y``: the parents are followed too.
    """

    def runs_on_import(target: str) -> list[str]:
        parts = target.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules]

    prev: dict[str, tuple[str, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        name = queue.popleft()
        m = modules[name]
        if m.heavy:
            line, dotted = m.heavy[0]
            chain = [f"{m.rel}:{line} imports {dotted}"]
            while prev[name] is not None:
                name, step = prev[name]
                chain.append(step)
            return chain[::-1]
        for imp in m.imports:
            if not imp.module_level:
                continue
            for t in runs_on_import(imp.target):
                if t not in prev:
                    prev[t] = (name, f"{imp.where} imports {t}")
                    queue.append(t)
    return None


# --------------------------------------------------------------------- tests
def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE_DIR.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    assert not packages - set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"


def test_scanner_sees_every_kind_of_import(tmp_path):
    """The visitor resolves absolute, relative, function-level and TYPE_CHECKING imports."""
    src = (
        "from typing import TYPE_CHECKING\n"
        "import imgcls.core\n"
        "from imgcls import runs as r\n"
        "from . import other\n"
        "from .other import thing\n"
        "import tensorflow as tf\n"
        "if TYPE_CHECKING:\n"
        "    from imgcls.bulk import Table\n"
        "def f():\n"
        "    from imgcls.ui._grid import _tile\n"
        "    return r._secret\n"
    )
    m = Module("imgcls.library.probe", ROOT / "imgcls" / "library" / "probe.py", False)
    known = {"imgcls", "imgcls.core", "imgcls.runs", "imgcls.library", "imgcls.library.other",
             "imgcls.bulk", "imgcls.ui", "imgcls.ui._grid"}
    _Visitor(m, known).visit(ast.parse(src))
    got = {(i.target, i.name, i.module_level, i.type_checking) for i in m.imports}
    assert got == {
        ("imgcls.core", None, True, False),
        ("imgcls.runs", None, True, False),
        ("imgcls.library.other", None, True, False),
        ("imgcls.library.other", "thing", True, False),
        ("imgcls.bulk", "Table", False, True),
        ("imgcls.ui._grid", "_tile", False, False),
    }
    assert m.heavy == [(6, "tensorflow")]
    assert m.private_uses == [(11, "imgcls.runs._secret")]
    why = {i.target: layer_violation(i) for i in m.imports}
    assert why["imgcls.core"] is None and why["imgcls.library.other"] is None
    assert "same layer" in why["imgcls.runs"] and "lower layer" in why["imgcls.bulk"]
    assert "private module" in privacy_violation(next(i for i in m.imports if i.target == "imgcls.ui._grid"))


def test_cycle_and_chain_finders():
    """Synthetic modules: a cycle through a package __init__, and a chain to TensorFlow."""

    def mod(name, *targets, heavy=(), package=False):
        m = Module(name, ROOT / (name.replace(".", "/") + ("/__init__.py" if package else ".py")), package)
        m.imports = [Import(name, m.rel, i + 1, t, None, True, False) for i, t in enumerate(targets)]
        m.heavy = list(heavy)
        return m

    mods = {m.name: m for m in (
        mod("imgcls", package=True),
        mod("imgcls.bulk", "imgcls.bulk.a", package=True),
        mod("imgcls.bulk.a", "imgcls.bulk.b"),
        mod("imgcls.bulk.b", "imgcls.bulk"),  # back to the package: a cycle
        mod("imgcls.reports", "imgcls.evaluation.plots", package=True),
        mod("imgcls.evaluation", package=True),
        mod("imgcls.evaluation.plots", heavy=[(3, "tensorflow")]),
    )}
    assert package_cycles(mods) == [["imgcls.bulk", "imgcls.bulk.a", "imgcls.bulk.b"]]
    chain = heavy_chain("imgcls.reports", mods)
    assert chain == ["imgcls/reports/__init__.py:1 imports imgcls.evaluation.plots",
                     "imgcls/evaluation/plots.py:3 imports tensorflow"]
    assert heavy_chain("imgcls.bulk", mods) is None


def test_layers(modules):
    bad = layer_report(modules)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_private_imports_across_packages(modules):
    bad = privacy_report(modules)
    assert not bad, "private names or modules used across packages:\n" + "\n".join(bad)


def test_no_import_cycles_within_a_package(modules):
    cycles = package_cycles(modules)
    assert not cycles, "import-time cycles (module-level imports):\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", ["imgcls", *(f"imgcls.{p}" for p in TF_FREE)])
def test_tf_free_packages_load_no_tensorflow(package, modules):
    """A fresh interpreter imports the package and every submodule of it: no TF, Keras or pyplot."""
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "if pkg.__name__ == 'imgcls':\n"
        "    pkg.__version__, dir(pkg)  # the facade stays lazy\n"
        "else:\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MPLBACKEND", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    roots = sorted({next(h for h in HEAVY if m == h or m.startswith(h + ".")) for m in loaded})
    if roots:
        starts = [package] if package == "imgcls" else sorted(n for n in modules if n == package
                                                              or n.startswith(package + "."))
        chains = [c for c in (heavy_chain(s, modules) for s in starts) if c]
        detail = "\n".join("  " + " -> ".join(c) for c in chains[:5]) or "  (no module-level chain found)"
        pytest.fail(f"importing {package} loads {', '.join(roots)}; module-level chains:\n{detail}")
