"""The `make demo` story and simulated traffic (layer 7)."""

from imgcls.demo.story import run_demo
from imgcls.demo.traffic import simulate_traffic

__all__ = [
    "run_demo",
    "simulate_traffic",
]
