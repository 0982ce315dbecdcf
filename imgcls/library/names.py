"""Class names: what may name a class folder in ``library/``.

This module imports only the standard library.
"""

from __future__ import annotations

import re

__all__ = ["validate_class_name"]

# Longest class name accepted (characters).
_MAX_LENGTH = 100
_RESERVED_NAMES = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def validate_class_name(name: str) -> str:
    """Return ``name`` stripped, or raise ``ValueError`` if it cannot be a class folder.

    A class name is a single folder name: no path separators, no ``..``, not
    hidden (leading dot), no control or shell-hostile characters, not a
    reserved device name, at most 100 characters.

    Args:
        name: The proposed class name.

    Returns:
        ``name`` without surrounding white space.

    Raises:
        ValueError: The name says why it cannot be a class folder.

    Example:
        >>> validate_class_name(" red fox ")
        'red fox'
    """
    if not isinstance(name, str):
        raise ValueError(f"A class name must be a string. Received: {name!r}")
    cleaned = name.strip()
    problem = None
    if not cleaned:
        problem = "it is empty"
    elif cleaned in {".", ".."} or ".." in cleaned:
        problem = "it contains '..'"
    elif cleaned.startswith("."):
        problem = "it starts with a dot (hidden folders are ignored)"
    elif _BAD_CHARS.search(cleaned):
        problem = "it contains a path separator or a character not allowed in folder names"
    elif cleaned.lower().split(".")[0] in _RESERVED_NAMES:
        problem = "it is a reserved device name on Windows"
    elif len(cleaned) > _MAX_LENGTH:
        problem = f"it is longer than {_MAX_LENGTH} characters"
    if problem:
        raise ValueError(
            f"Invalid class name {name!r}: {problem}. Use a plain name such as "
            "'giraffe' or 'red_fox' (letters, digits, spaces, '-', '_')."
        )
    return cleaned
