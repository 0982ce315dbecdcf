"""Class names: what may name a class folder in ``library/``, and which names look alike.

A class name is one folder name that every file system and every person
reads the same way: it is stripped and NFC-normalised (the composed Unicode
form, so ``café`` typed either way is one name), at most 100 characters and
255 bytes in UTF-8 (the file-system limit), free of path separators, control
characters, invisible format characters (zero-width spaces and joiners,
right-to-left overrides) and line or paragraph separators, not hidden, and
not a reserved name (``trash``, Windows device names, or a case variant of
``unknown`` — the ``unknown`` folder itself is accepted as the place for good
images nobody can name yet).

Two names *look alike* when they are equal after case folding and NFC
(``Cat`` and ``cat``). A new class whose name looks like an existing one is
refused, naming the existing one; look-alike classes already on disk are
reported by :func:`look_alike_classes` (and the library scan warns about
them) until they are mended with ``Library.rename_class`` or
``Library.merge_class``.

This module imports only the standard library.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from imgcls.core import UNKNOWN_CLASS
from imgcls.core.checks import shown

__all__ = ["validate_class_name", "class_key", "look_alike_classes", "MAX_CLASS_NAME_LENGTH",
           "MAX_CLASS_NAME_BYTES"]

#: Longest class name accepted (characters).
MAX_CLASS_NAME_LENGTH = 100
#: Longest class name accepted (bytes in UTF-8): what file systems allow for one name.
MAX_CLASS_NAME_BYTES = 255
_RESERVED_NAMES = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}
#: Names refused in any letter case: they are folders of the workspace itself.
_WORKSPACE_NAMES = {"trash"}
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
#: Unicode categories refused: control, format (zero-width, bidi overrides),
#: surrogates, line and paragraph separators.
_BAD_CATEGORIES = {"Cc": "a control character", "Cf": "an invisible format character (zero-width or "
                   "text-direction)", "Cs": "a lone surrogate", "Zl": "a line separator",
                   "Zp": "a paragraph separator"}


def class_key(name: str) -> str:
    """The form two look-alike class names share: NFC, case-folded, NFC again.

    Example:
        >>> class_key("Café") == class_key("cafe\\u0301")
        True
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _problem(cleaned: str) -> str | None:
    if not cleaned:
        return "it is empty"
    if cleaned in {".", ".."} or ".." in cleaned:
        return "it contains '..'"
    if cleaned.startswith("."):
        return "it starts with a dot (hidden folders are ignored)"
    if _BAD_CHARS.search(cleaned):
        return "it contains a path separator or a character not allowed in folder names"
    for ch in cleaned:
        category = unicodedata.category(ch)
        if category in _BAD_CATEGORIES:
            return f"it contains {_BAD_CATEGORIES[category]} (U+{ord(ch):04X})"
    folded = cleaned.casefold()
    if folded.split(".")[0] in _RESERVED_NAMES:
        return "it is a reserved device name on Windows"
    if folded in _WORKSPACE_NAMES:
        return f"{cleaned!r} is reserved: it names a folder of the workspace itself"
    if folded == UNKNOWN_CLASS and cleaned != UNKNOWN_CLASS:
        return (f"it is a case variant of {UNKNOWN_CLASS!r}, the folder of images nobody can name yet, "
                f"which never trains; use {UNKNOWN_CLASS!r} itself")
    if len(cleaned) > MAX_CLASS_NAME_LENGTH:
        return f"it is longer than {MAX_CLASS_NAME_LENGTH} characters"
    if len(cleaned.encode("utf-8")) > MAX_CLASS_NAME_BYTES:
        return (f"it is longer than {MAX_CLASS_NAME_BYTES} bytes in UTF-8 "
                f"({len(cleaned.encode('utf-8'))} bytes), more than a folder name may have")
    return None


def validate_class_name(name: str, *, existing: Iterable[str] | None = None) -> str:
    """Return ``name`` stripped and NFC-normalised, or raise ``ValueError`` if it cannot name a class.

    A class name is a single folder name: no path separators, no ``..``, not
    hidden (leading dot), no control, invisible-format or line/paragraph
    separator characters, no shell-hostile characters, not a reserved name
    (``trash``, a Windows device name, a case variant of ``unknown``), at
    most 100 characters and 255 bytes in UTF-8.

    Args:
        name: The proposed class name.
        existing: The classes already in the library. A name not among them
            that looks like one of them (equal after case folding and NFC) is
            refused, naming it.

    Returns:
        ``name`` without surrounding white space, in NFC form (or, with
        ``existing``, the existing folder name it equals up to NFC, as it is on disk).

    Raises:
        ValueError: The message says why it cannot be a class folder.

    Example:
        >>> validate_class_name(" red fox ")
        'red fox'
        >>> validate_class_name("cat", existing=["Cat"])
        Traceback (most recent call last):
        ValueError: Invalid class name 'cat': it looks the same as the existing class 'Cat' ...
    """
    if not isinstance(name, str):
        raise ValueError(f"A class name must be a string. Received: {shown(name)}")
    cleaned = unicodedata.normalize("NFC", name.strip())
    problem = _problem(cleaned)
    if problem is None and existing is not None:
        names = list(existing)
        same_form = [n for n in names if unicodedata.normalize("NFC", n) == cleaned]
        if cleaned not in names and same_form:
            return same_form[0]  # the folder on disk, in the Unicode form it has there
        if cleaned not in names:
            key = class_key(cleaned)
            same = sorted(n for n in names if class_key(n) == key)
            if same:
                problem = (f"it looks the same as the existing class {same[0]!r} (the names differ only "
                           f"in letter case or Unicode form). Use {same[0]!r}, or rename that class "
                           "first (Library.rename_class, imgcls rename-class)")
    if problem:
        raise ValueError(
            f"Invalid class name {shown(name)}: {problem}. Use a plain name such as "
            "'giraffe' or 'red_fox' (letters, digits, spaces, '-', '_')."
        )
    return cleaned


def look_alike_classes(names: Iterable[str]) -> list[list[str]]:
    """Groups of class names that look alike (equal after case folding and NFC).

    Args:
        names: Class names (e.g. the labels of a scan).

    Returns:
        Sorted groups of two or more distinct names, e.g. ``[["Cat", "cat"]]``.
    """
    groups: dict[str, set[str]] = {}
    for n in names:
        groups.setdefault(class_key(n), set()).add(n)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)
