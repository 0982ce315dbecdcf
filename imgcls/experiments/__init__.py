"""Experiments behind the write-up's claims, measured by benchmarks/ (layer 6)."""
