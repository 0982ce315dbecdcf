"""What binds a run's files together, and how to tell a damaged run (no TensorFlow).

* ``classes.json`` is bound to the model: :func:`save_run` records
  :func:`classes_digest` of the class list as ``classes_sha256`` in
  config.json, and :attr:`Run.classes` checks it, so an edited or swapped
  class list is refused instead of labelling predictions wrongly; loading the
  model also checks its output width against the list.
* :func:`keras_archive_problem` tells a ``.keras`` file that is not a Keras
  archive (damaged, truncated, something else) from a sound one by reading
  its ZIP directory only, so a garbage file says "not a valid Keras archive"
  rather than Keras's "File not found".
* :func:`read_json_object` reads a run's JSON file and says clearly when it
  is missing or holds the wrong kind of value.

This module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from imgcls.core.fileio import read_json

__all__ = ["CLASSES_HASH_KEY", "classes_digest", "keras_archive_problem", "read_json_object", "output_units"]

#: The config.json key holding :func:`classes_digest` of the run's class list.
CLASSES_HASH_KEY = "classes_sha256"


def classes_digest(classes: list[str]) -> str:
    """The hash that binds a class list to a model (recorded as ``classes_sha256`` in config.json).

    SHA-256 of the ordered list as compact UTF-8 JSON.
    """
    text = json.dumps([str(c) for c in classes], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def keras_archive_problem(path: Path) -> str:
    """Why ``path`` cannot be a ``.keras`` model file ("" when it looks like one).

    A ``.keras`` file is a ZIP archive holding ``config.json`` and the
    weights; only its directory is read here (no TensorFlow).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return ("is not a valid Keras archive: a .keras file is a ZIP archive and this one is damaged, "
                "truncated or something else")
    if "config.json" not in names:
        return "is not a valid Keras archive: it has no config.json inside"
    return ""


def read_json_object(path: Path, kind: type, what: str) -> Any:
    """A run's JSON file, which must hold ``kind``; a clear ``ValueError`` when damaged."""
    try:
        value = read_json(path, None)
    except (ValueError, OSError) as err:
        raise ValueError(f"Run {path.parent.name!r} is damaged: {path.name} cannot be read "
                         f"({type(err).__name__}).") from None
    if value is None and not path.is_file():
        raise ValueError(f"Run {path.parent.name!r} is damaged: {path.name} is missing.")
    if not isinstance(value, kind):
        raise ValueError(f"Run {path.parent.name!r} is damaged: {path.name} must hold {what}, "
                         f"not {type(value).__name__}.")
    return value


def output_units(model: Any) -> int | None:
    """Number of output units of a model (the last axis of its output shape), or None if unknown.

    Args:
        model: A ``keras.Model`` (or anything with an ``output_shape``).
    """
    shape = getattr(model, "output_shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[-1], int):
        return shape[-1]
    return None
