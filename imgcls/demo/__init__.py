"""The `make demo` story and simulated traffic (layer 7)."""

from imgcls.demo.story import (
    run_demo,
)

__all__ = [
    "run_demo",
]
