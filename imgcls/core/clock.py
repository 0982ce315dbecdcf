"""The one clock: every timestamp the package writes is timezone-aware UTC."""

from __future__ import annotations

import datetime as _dt

__all__ = ["utcnow", "isoformat"]


def utcnow() -> _dt.datetime:
    """Now, as a timezone-aware UTC ``datetime`` (microsecond resolution)."""
    return _dt.datetime.now(_dt.timezone.utc)


def isoformat(t: _dt.datetime | None = None, *, timespec: str = "microseconds") -> str:
    """``t`` (default now) as ISO 8601 text in UTC, e.g. ``2026-12-02T10:00:00.000000+00:00``.

    A naive ``t`` is taken to be UTC.
    """
    t = utcnow() if t is None else t
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.astimezone(_dt.timezone.utc).isoformat(timespec=timespec)
