"""The workspace format: a version number at the root, checked on open, upgraded under the lock.

``<workspace>/imgcls-workspace.json`` holds ``{"format": N, "upgrades": [...]}``.
A workspace without it is format 0 (made before the file existed), unless it
is brand new (:meth:`~imgcls.core.Workspace.ensure` stamps an empty folder
with the current format). Opening a workspace
(:func:`~imgcls.core.open_workspace`, :class:`~imgcls.library.Library`) calls
:func:`ensure_current_format`:

* the current format: nothing to do (one small file read);
* an older one: the upgrade steps run in order under the workspace lock
  (:mod:`imgcls.core.lock`), each followed by writing its number, so an
  interrupted upgrade resumes at the step it stopped at;
* a newer one: :class:`WorkspaceFormatError` instead of misreading it.

**Adding a step.** A later change to an on-disk format (bulk tables, run
folders, the transaction log) bumps :data:`FORMAT_VERSION` and registers the
step that brings a workspace of the previous format up to it, with
:func:`register_upgrade`. Steps are plain file rewrites that must not need
anything above ``core`` (core may not import the library or the log), must be
idempotent, and are registered here, in core, so that whatever opens a
workspace runs every step whichever packages it imported. Step 1 (the
journal's paths made relative to the root) lives in
:mod:`imgcls.core.upgrade_journal`.

This module imports only the standard library.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imgcls.core.clock import isoformat
from imgcls.core.lock import WorkspaceLock
from imgcls.core.upgrade_journal import relative_journal_paths

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.core.workspace import Workspace

__all__ = [
    "FORMAT_FILE",
    "FORMAT_VERSION",
    "WorkspaceFormatError",
    "UpgradeStep",
    "register_upgrade",
    "upgrade_steps",
    "workspace_format",
    "check_format",
    "stamp_format",
    "ensure_current_format",
]

#: The format file at the workspace root.
FORMAT_FILE = "imgcls-workspace.json"
#: The workspace format this package reads and writes.
FORMAT_VERSION = 1


class WorkspaceFormatError(ValueError):
    """A workspace this package cannot read: a newer format, or a damaged format file."""


@dataclass(frozen=True)
class UpgradeStep:
    """One upgrade: brings a workspace from format ``version - 1`` to ``version``.

    Attributes:
        version: The format the step produces.
        description: What it changes, in a few words.
        run: ``run(workspace) -> str``: does it (idempotently) and says what it did.
    """

    version: int
    description: str
    run: Callable[["Workspace"], str]


_STEPS: dict[int, UpgradeStep] = {}


def register_upgrade(version: int, description: str) -> Callable:
    """Register the step that upgrades a workspace to format ``version`` (a decorator).

    Args:
        version: The format the step produces (>= 1, one step per version).
        description: What it changes.

    Example:
        >>> @register_upgrade(2, "bulk tables gain a calibrated score column")
        ... def _bulk_scores(workspace) -> str:
        ...     ...
        ...     return "3 bulk tables rewritten"
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be an int >= 1. Received: version={version!r}")

    def decorate(func: Callable[["Workspace"], str]) -> Callable[["Workspace"], str]:
        if version in _STEPS and _STEPS[version].run is not func:
            raise ValueError(f"An upgrade to format {version} is registered already: {_STEPS[version].description}")
        _STEPS[version] = UpgradeStep(version, description, func)
        return func

    return decorate


def upgrade_steps() -> list[UpgradeStep]:
    """The registered steps, in order."""
    return [_STEPS[v] for v in sorted(_STEPS)]


register_upgrade(1, "journal paths relative to the workspace root")(relative_journal_paths)


def _format_path(root: Path) -> Path:
    return root / FORMAT_FILE


def _read(root: Path) -> dict | None:
    path = _format_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise WorkspaceFormatError(f"Cannot read {str(path)!r}: {err.strerror or err}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    fmt = data.get("format") if isinstance(data, dict) else None
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 0:
        raise WorkspaceFormatError(
            f"{str(path)!r} is damaged: expected a JSON object like {{\"format\": {FORMAT_VERSION}}}. "
            "Restore it from a backup, or delete it to have the workspace checked and upgraded "
            "again from format 0."
        )
    return data


def workspace_format(root: str | os.PathLike) -> int:
    """The format of the workspace at ``root`` (0 when it has no format file).

    Raises:
        WorkspaceFormatError: The format file is damaged.
    """
    data = _read(Path(os.fspath(root)))
    return 0 if data is None else int(data["format"])


def check_format(root: str | os.PathLike) -> int:
    """The workspace's format, if this package can read it (perhaps after an upgrade).

    Raises:
        WorkspaceFormatError: The workspace is newer than this package, or its format file is damaged.
    """
    fmt = workspace_format(root)
    if fmt > FORMAT_VERSION:
        raise WorkspaceFormatError(
            f"The workspace {str(root)!r} has format {fmt}, newer than this imgcls reads "
            f"(format {FORMAT_VERSION}): it was written by a newer version. Upgrade imgcls "
            "(pip install -U imgcls) instead of opening it with this one, which could misread it."
        )
    return fmt


def stamp_format(root: str | os.PathLike) -> None:
    """Write the format file of a brand-new workspace: the current :data:`FORMAT_VERSION`."""
    _write_version(Path(os.fspath(root)), FORMAT_VERSION, [])


def ensure_current_format(workspace: "Workspace", *, timeout: float | None = None) -> list[str]:
    """Check a workspace's format and upgrade an older one, under the workspace lock.

    Args:
        workspace: The workspace (its folder exists).
        timeout: Seconds to wait for the lock when an upgrade is needed.

    Returns:
        What the steps run now did (empty when the format was current).

    Raises:
        WorkspaceFormatError: The workspace is newer than this package, or its format file is damaged.
        WorkspaceLockedError: An upgrade is needed and another process holds the lock too long.
    """
    root = Path(workspace.root)
    if check_format(root) == FORMAT_VERSION:
        return []
    done: list[str] = []
    with WorkspaceLock(root, timeout=timeout):
        fmt = check_format(root)  # another process may have upgraded it meanwhile
        data = _read(root) or {}
        history = list(data.get("upgrades") or [])
        steps = upgrade_steps()
        if [s.version for s in steps] != list(range(1, FORMAT_VERSION + 1)):
            raise RuntimeError(f"Upgrade steps registered for formats {[s.version for s in steps]}, "
                               f"expected one for each of 1..{FORMAT_VERSION}.")
        for step in steps:
            if step.version <= fmt:
                continue
            note = step.run(workspace)
            history.append({"format": step.version, "time": isoformat(timespec="seconds"),
                            "what": step.description, "result": note})
            _write_version(root, step.version, history)
            done.append(f"format {step.version}: {note}")
    return done


def _write_version(root: Path, version: int, history: list) -> None:
    path = _format_path(root)
    tmp = path.with_name(f".{FORMAT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": version, "upgrades": history}, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
