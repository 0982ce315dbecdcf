"""The one set of argument checks every public function uses.

Every check raises ``ValueError`` with one message shape::

    `name` must be <what was expected>. Received: name=<value>; fix: <how>

The received value is shown through :func:`shown`, which shortens long
values, so a check never copies a huge argument (or bytes read from a user's
file) into a message.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = ["check_int", "check_number", "check_fraction", "check_choice", "check_bool", "shown"]

_MAX_SHOWN = 80


def shown(value: Any, limit: int = _MAX_SHOWN) -> str:
    """``repr(value)``, cut to ``limit`` characters (bytes are never shown, only their length)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value):,} bytes>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 15] + f"... ({len(text):,} chars)"


def _fail(name: str, expected: str, value: Any, fix: str, allow_none: bool) -> ValueError:
    msg = f"`{name}` must be {expected}{' or None' if allow_none else ''}. Received: {name}={shown(value)}"
    if fix:
        msg += f"; fix: {fix}"
    return ValueError(msg)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def check_int(value: Any, name: str, low: int | None = 1, hint: str = "", *, high: int | None = None,
              fix: str = "", allow_none: bool = False) -> int | None:
    """``value`` as an ``int`` in ``[low, high]`` (a Python or NumPy int, never a bool).

    Args:
        value: What the caller passed.
        name: The argument's name, as the caller spells it.
        low, high: Inclusive bounds; ``None`` for none.
        hint: Words that qualify the expectation, placed after the bound
            (e.g. " (images per class)").
        fix: How to fix a bad value (appended to the message).
        allow_none: Accept ``None`` (returned as is).

    Raises:
        ValueError: In the shape "`name` must be an int >= 1. Received: name=0; fix: …".
    """
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, numbers.Integral)
    ok = ok and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        raise _fail(name, "an int" + _bounds(low, high, False, False) + hint, value, fix, allow_none)
    return int(value)


def check_number(value: Any, name: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, fix: str = "",
                 allow_none: bool = False) -> float | None:
    """``value`` as a finite ``float`` within the bounds (ints accepted, bools refused).

    Args:
        value: What the caller passed.
        name: The argument's name.
        low, high: Bounds; ``None`` for none.
        low_open, high_open: Exclude the bound itself (``low < value``).
        fix: How to fix a bad value.
        allow_none: Accept ``None`` (returned as is).

    Raises:
        ValueError: In the shape "`name` must be a number in [0, 1]. Received: name=2; fix: …".
    """
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok:
        v = float(value)
        ok = math.isfinite(v)
        ok = ok and (low is None or (v > low if low_open else v >= low))
        ok = ok and (high is None or (v < high if high_open else v <= high))
    if not ok:
        raise _fail(name, "a number" + _bounds(low, high, low_open, high_open), value, fix, allow_none)
    return float(value)


def check_fraction(value: Any, name: str, *, fix: str = "", allow_none: bool = False) -> float | None:
    """``value`` as a float in ``[0, 1]`` (a share, a probability, a score)."""
    return check_number(value, name, 0.0, 1.0, fix=fix, allow_none=allow_none)


def check_choice(value: Any, name: str, choices: Iterable[str], *, fix: str = "") -> str:
    """``value`` if it is one of ``choices`` (strings compared exactly)."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise _fail(name, "one of " + ", ".join(repr(c) for c in options), value, fix, False)
    return value


def check_bool(value: Any, name: str, *, fix: str = "") -> bool:
    """``value`` if it is a bool (Python or NumPy)."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise _fail(name, "True or False", value, fix, False)
    return bool(value)
