"""Several processes on one workspace: nothing a second process does makes the first lose an image.

Real processes (subprocess), not threads. The first test is the race the
workspace lock closes: one process applies batches of 300 moves while two
others keep opening the library (opening used to run crash recovery without
a lock and took a live move for a crashed one: images vanished). On the code
before the lock it loses images within seconds; see the issue 11 report for
how that was checked (the same scripts against the previous commit's package).
The second runs the stress benchmark's own code for a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from imgcls.core import open_workspace
from imgcls.library import Library
from library_images import png

ROOT = Path(__file__).resolve().parents[1]

_MOVER = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    from imgcls.library import Library
    root, until = sys.argv[1], float(sys.argv[2])
    lib = Library(root)
    a, b = lib.workspace.library / "a", lib.workspace.library / "b"
    while True:  # at least one batch of 300, however slow the machine
        src, dst = (a, "b") if any(a.iterdir()) else (b, "a")
        paths = sorted(str(p) for p in src.iterdir())
        lib.apply(pd.DataFrame({"path": paths, "action": "label", "label": dst}))
        if time.time() >= until:
            break
    """
)

_OPENER = textwrap.dedent(
    """
    import sys, time
    from imgcls.library import Library
    root, until = sys.argv[1], float(sys.argv[2])
    while time.time() < until:
        Library(root)
    """
)


def census(root: Path) -> Counter:
    out: Counter = Counter()
    for top in ("library", "trash", "unlabelled"):
        for p in (root / top).rglob("*.png"):
            out[hashlib.sha256(p.read_bytes()).hexdigest()] += 1
    return out


def race(root: Path, seconds: float, env: dict) -> tuple[Counter, Counter]:
    """One mover of 300-image batches and two openers for ``seconds``; (census before, after)."""
    before = census(root)
    until = time.time() + seconds
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root), str(until)], env=env,
                              stderr=subprocess.PIPE)
             for script in (_MOVER, _OPENER, _OPENER)]
    for p in procs:
        _, err = p.communicate(timeout=seconds + 120)
        assert p.returncode == 0, err.decode(errors="replace")[-2000:]
    subprocess.run([sys.executable, "-c", "import sys; from imgcls.library import Library; Library(sys.argv[1])",
                    str(root)], env=env, check=True)
    return before, census(root)


@pytest.mark.slow  # three processes for 12 s
def test_moves_beside_processes_opening_the_library_lose_nothing(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    for i in range(300):
        png(ws.library / "a" / f"img_{i:03d}.png", seed=i, size=16)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before, after = race(ws.root, 12.0, env)
    lost = sum(n - after[h] for h, n in before.items() if after[h] < n)
    duplicated = sum(n - before[h] for h, n in after.items() if n > before[h])
    moves = len(Library(ws).journal())
    assert moves >= 300, "the mover did not get to run"
    assert (lost, duplicated) == (0, 0), f"{lost} images lost, {duplicated} duplicated over {moves} moves"


@pytest.mark.slow  # the stress benchmark's four processes, SIGKILLs included, for 2 x 10 s
def test_stress_benchmark_short_run_loses_nothing(tmp_path):
    out = tmp_path / "stress.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_library_stress.py"), "--seconds", "10",
         "--images", "240", "--control-seconds", "0", "--out", str(out)],
        check=True, capture_output=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    result = json.loads(out.read_text())
    for name, phase in result["phases"].items():
        assert phase["lost"] == 0 and phase["duplicated"] == 0, (name, phase)
        assert not phase["failures"], (name, phase)
    assert result["phases"]["steady"]["moves"] > 0  # each writer does at least one batch
    assert result["phases"]["sigkill"]["kills"] > 0
