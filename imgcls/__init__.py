"""imgcls: the notebook-side toolkit for the whole life of an image-classification product.

Curate the image library, train from scratch, fine-tune generation after
generation by swapping the head, bulk-identify unlabelled images and review
them, serve with every transaction logged, and report to management.

``import imgcls`` is instant and loads neither TensorFlow nor matplotlib: the
main entry points are resolved lazily, on first use, from the package that
owns them (``imgcls.train`` is ``imgcls.training.train``):

- ``open_workspace``, ``Workspace`` (``imgcls.core``); ``Library``
  (``imgcls.library``); ``build_sample`` (``imgcls.sample``);
  ``load_run``, ``list_runs`` (``imgcls.runs``);
- ``create_model`` (``imgcls.models``); ``train``, ``next_generation``
  (``imgcls.training``); ``evaluate``, ``promote`` (``imgcls.evaluation``);
- ``identify`` (``imgcls.bulk``); ``TransactionLog`` (``imgcls.translog``);
- ``ReviewGrid`` (``imgcls.ui``); ``Predictor``, ``serve``
  (``imgcls.serving``); ``export_deck`` (``imgcls.reports``).

Everything else is imported from its package, e.g.
``from imgcls.library import assign_splits``. ``imgcls.__version__`` is the
installed distribution's version.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__all__ = [
    "__version__",
    "Workspace",
    "open_workspace",
    "Library",
    "build_sample",
    "load_run",
    "list_runs",
    "create_model",
    "train",
    "next_generation",
    "evaluate",
    "promote",
    "identify",
    "TransactionLog",
    "ReviewGrid",
    "Predictor",
    "serve",
    "export_deck",
]

#: Public entry point -> the package that owns it (resolved on first access).
_ENTRY_POINTS: dict[str, str] = {
    "Workspace": "imgcls.core",
    "open_workspace": "imgcls.core",
    "Library": "imgcls.library",
    "build_sample": "imgcls.sample",
    "load_run": "imgcls.runs",
    "list_runs": "imgcls.runs",
    "create_model": "imgcls.models",
    "train": "imgcls.training",
    "next_generation": "imgcls.training",
    "evaluate": "imgcls.evaluation",
    "promote": "imgcls.evaluation",
    "identify": "imgcls.bulk",
    "TransactionLog": "imgcls.translog",
    "ReviewGrid": "imgcls.ui",
    "Predictor": "imgcls.serving",
    "serve": "imgcls.serving",
    "export_deck": "imgcls.reports",
}


def _version() -> str:
    """The installed distribution's version, else the one in a source checkout's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("imgcls")
    except metadata.PackageNotFoundError:
        pass
    import tomllib
    from pathlib import Path

    try:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, ValueError):
        return "0+unknown"


__version__: str = _version()


def __getattr__(name: str) -> _Any:
    """Resolve a main entry point from its package on first access (PEP 562)."""
    owner = _ENTRY_POINTS.get(name)
    if owner is None:
        raise AttributeError(
            f"module 'imgcls' has no attribute {name!r}. The top level offers "
            f"{', '.join(sorted(_ENTRY_POINTS))}; import anything else from its package, "
            "e.g. `from imgcls.library import assign_splits`."
        )
    value = getattr(_importlib.import_module(owner), name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    """The public names (entry points included, loaded or not) and the module's dunders."""
    return sorted(set(__all__) | {name for name in globals() if name.startswith("__")})


# Static type checkers and IDEs see the real objects; at run time these
# imports never execute (the lazy __getattr__ above serves them).
if _TYPE_CHECKING:  # pragma: no cover
    from imgcls.bulk import identify
    from imgcls.core import Workspace, open_workspace
    from imgcls.evaluation import evaluate, promote
    from imgcls.library import Library
    from imgcls.models import create_model
    from imgcls.reports import export_deck
    from imgcls.runs import list_runs, load_run
    from imgcls.sample import build_sample
    from imgcls.serving import Predictor, serve
    from imgcls.training import next_generation, train
    from imgcls.translog import TransactionLog
    from imgcls.ui import ReviewGrid
