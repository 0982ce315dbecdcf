"""cleanlab is an optional extra (``pip install 'imgcls[cleaning]'``): imported only on use, with a clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

#: The command that installs what :mod:`imgcls.cleaning` needs.
INSTALL_HINT = "pip install 'imgcls[cleaning]'"


def cleanlab_module(name: str) -> ModuleType:
    """Import ``cleanlab.<name>``, or raise an ImportError that says how to install it.

    Args:
        name: The cleanlab submodule, e.g. ``"filter"``, ``"rank"``, ``"dataset"``.

    Returns:
        The imported module.
    """
    try:
        return importlib.import_module(f"cleanlab.{name}")
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name != "cleanlab" and not exc.name.startswith("cleanlab."):
            raise
        raise ImportError(
            "Ranking label issues needs cleanlab, an optional extra of imgcls that is not installed. "
            f"Received: no module named {exc.name!r}; fix: {INSTALL_HINT} (or `make venv`)"
        ) from None
