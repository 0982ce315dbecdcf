"""Benchmark entry point under the ``bench_<claim>.py`` convention (``make bench``).

The benchmark itself lives in ``headswap_vs_scratch.py`` beside this file (the
name the issue gives); this runs it with the same arguments.
"""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv[0] = str(Path(__file__).with_name("headswap_vs_scratch.py"))
    runpy.run_path(sys.argv[0], run_name="__main__")
