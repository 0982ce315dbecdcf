"""Claim: the library never loses or duplicates an image, whoever touches it.

Four processes share one workspace: two *writers* apply random batches of
label moves (to classes, ``unknown`` and the trash) and undo random batches;
two *readers* open the library (which runs crash recovery whenever it gets
the workspace lock) and scan it, in a loop. Then a SHA-256 census of every
image file under ``library/``, ``trash/`` and ``unlabelled/`` is compared with
the images the workspace started with: no image may be missing, none may
exist twice.

Phases (each at least 2 minutes by default):

* ``steady``: the four processes run undisturbed;
* ``sigkill``: each writer is SIGKILLed after a random 4-15 s of life,
  wherever it is (most often mid-batch), and replaced; a new writer, or a
  reader that gets the lock, settles the interrupted move; at the end the
  library is opened once more before the census.

A short ``control`` phase repeats ``steady`` with the lock switched off
(``IMGCLS_UNSAFE_NO_LOCK=1``, which exists only for this): it shows the race
the lock closes (images lost), so the census is known to be able to fail.

The second claim, that the lock costs an open and a rescan of an unchanged
20,000-image library no more than 10%, is measured in
``bench_library_scan.py``.

Run: python benchmarks/bench_library_stress.py [--quick] [--seconds S]
Writes benchmarks/results/library_stress.json. ``tests/test_library_race.py``
runs the same code for a few seconds (``--seconds 10 --images 240 --out ...``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import child_env, machine_info, result_path, start_benchmark, write_result

RESULTS = result_path("library_stress")
CLASSES = [f"class_{i:02d}" for i in range(12)]
SCRIPT = Path(__file__).resolve()


# --------------------------------------------------------------------------- workspace
def make_workspace(root: Path, n: int, seed: int = 0) -> Counter:
    """A workspace of ``n`` distinct small PNGs in 12 classes; the census it starts with."""
    import numpy as np
    from PIL import Image

    from imgcls.core import open_workspace

    ws = open_workspace(root)
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = ws.library / CLASSES[i % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:05d}.png")
    return census(root)


def census(root: Path) -> Counter:
    """SHA-256 of every image file under library/, trash/ and unlabelled/ (hidden files included)."""
    out: Counter = Counter()
    for top in ("library", "trash", "unlabelled"):
        for dirpath, _, files in os.walk(root / top):
            for f in files:
                if f.endswith(".png"):
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        out[hashlib.sha256(fh.read()).hexdigest()] += 1
    return out


def compare(before: Counter, after: Counter) -> dict:
    lost = sum(n - after.get(h, 0) for h, n in before.items() if after.get(h, 0) < n)
    duplicated = sum(n - before.get(h, 0) for h, n in after.items() if n > before.get(h, 0))
    return {"images": sum(before.values()), "found": sum(after.values()), "lost": lost,
            "duplicated": duplicated}


def journal_counts(root: Path) -> dict:
    """Completed operations in the journal, by kind."""
    ops: Counter = Counter()
    path = root / "journal.jsonl"
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("state") == "done":
                    ops[e.get("op")] += 1
                    ops["recovered_done"] += bool(e.get("recovered"))
                elif e.get("state") == "aborted":
                    ops["aborted"] += 1
    return dict(ops)


# --------------------------------------------------------------------------- roles
def writer(root: Path, until: float, seed: int) -> None:
    """Random batches of moves and undos until ``until`` (time.time())."""
    import pandas as pd

    from imgcls.library import Library

    rng = random.Random(seed)
    targets = CLASSES + ["unknown", "trash"]
    batches = 0  # at least one batch of moves, however long the start-up took
    while not batches or time.time() < until:
        lib = Library(root, lock_timeout=120)
        for _ in range(rng.randint(1, 8)):
            if batches and time.time() >= until:
                break
            if batches and rng.random() < 0.2:
                try:
                    lib.undo(rng.randint(1, 2))
                except ValueError:
                    pass  # nothing left, or moved since by the other writer
                continue
            pool = []
            for top in ("library", "trash"):
                for dirpath, _, files in os.walk(root / top):
                    pool.extend(os.path.join(dirpath, f) for f in files if f.endswith(".png"))
            picks = rng.sample(pool, min(len(pool), rng.randint(1, 25)))
            rows = []
            for p in picks:
                t = rng.choice(targets)
                in_trash = os.sep + "trash" + os.sep in p
                if t == "trash" and not in_trash:
                    rows.append({"path": p, "action": "discard", "label": None})
                elif t == "unknown":
                    rows.append({"path": p, "action": "unknown", "label": None})
                else:
                    rows.append({"path": p, "action": "label", "label": rng.choice(CLASSES)})
            lib.apply(pd.DataFrame(rows))
            batches += 1


def reader(root: Path, until: float) -> None:
    """Open the library (recovery when the lock is free) and scan it, in a loop."""
    import warnings

    from imgcls.library import Library

    warnings.simplefilter("ignore")
    first = True
    while first or time.time() < until:
        first = False
        lib = Library(root)
        try:
            lib.scan()
        except Exception:  # noqa: BLE001 - a file moved mid-scan: scan again
            pass


def spawn(role: str, root: Path, until: float, seed: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--role", role, "--ws", str(root), "--until", str(until),
         "--seed", str(seed)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


# --------------------------------------------------------------------------- phases
def run_phase(root: Path, seconds: float, *, kill: bool, lock: bool, seed: int) -> dict:
    """Run the four processes for ``seconds``; SIGKILL writers at random moments if ``kill``."""
    env = child_env(IMGCLS_UNSAFE_NO_LOCK="1" if not lock else "0", TF_CPP_MIN_LOG_LEVEL="3")
    rng = random.Random(seed)
    before = census(root)
    journal_before = journal_counts(root)
    start = time.time()
    until = start + seconds
    writers = [spawn("writer", root, until, seed * 10 + i, env) for i in range(2)]
    readers = [spawn("reader", root, until, 0, env) for _ in range(2)]
    # With kills, each writer lives a random 4-15 s (a few of which go to start-up) and is then
    # SIGKILLed wherever it is, most often in the middle of a batch of moves, and replaced.
    life = (min(4.0, seconds / 4), min(15.0, seconds / 2))  # shorter in a short run (the test's)
    deaths = [time.time() + rng.uniform(*life) for _ in writers]
    kills = 0
    failures: list[str] = []
    while time.time() < until:
        time.sleep(0.1)
        for i, w in enumerate(writers):
            now = time.time()
            if kill and w.poll() is None and now >= deaths[i] and now < until - 1:
                w.send_signal(signal.SIGKILL)
                w.wait()
                kills += 1
            if w.poll() is not None and now < until - 1:
                if w.returncode not in (0, -signal.SIGKILL):
                    failures.append(w.stderr.read().decode(errors="replace")[-1500:])
                w.stderr.close()
                writers[i] = spawn("writer", root, until, rng.randrange(10**6), env)
                deaths[i] = now + rng.uniform(*life)
    for p in writers + readers:
        try:
            p.wait(timeout=180)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.returncode not in (0, -signal.SIGKILL):
            failures.append(p.stderr.read().decode(errors="replace")[-1500:])
        p.stderr.close()
    elapsed = time.time() - start
    recovered = 0
    if kill:  # what a user does next: open the library, which settles interrupted moves
        out = subprocess.run(
            [sys.executable, "-c",
             "import sys; from imgcls.library import Library; print(len(Library(sys.argv[1]).recovered_))",
             str(root)], env=env, capture_output=True, text=True, check=True)
        recovered = int(out.stdout.strip())
    result = compare(before, census(root))
    ops_after = journal_counts(root)
    ops = {k: ops_after.get(k, 0) - journal_before.get(k, 0) for k in ops_after}
    result.update(
        seconds=round(elapsed, 1), lock=lock, sigkill=kill, kills=kills, recovered_on_open=recovered,
        operations=ops, moves=sum(v for k, v in ops.items() if k in ("move", "discard", "undo")),
        failures=failures[:3], ok=result["lost"] == 0 and result["duplicated"] == 0,
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--role", choices=["writer", "reader"], help=argparse.SUPPRESS)
    ap.add_argument("--ws", help=argparse.SUPPRESS)
    ap.add_argument("--until", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=130.0, help="length of each phase (default %(default)s)")
    ap.add_argument("--control-seconds", type=float, default=30.0,
                    help="length of the lock-off control phase, 0 to skip (default %(default)s)")
    ap.add_argument("--images", type=int, default=600, help="images in the workspace (default %(default)s)")
    ap.add_argument("--phases", default="steady,sigkill", help="phases to run (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="20 s phases, 10 s control")
    ap.add_argument("--out", default=None, help="result JSON (default benchmarks/results/library_stress.json)")
    args = ap.parse_args()
    if args.role:
        (writer if args.role == "writer" else reader)(Path(args.ws), args.until, *(
            [args.seed] if args.role == "writer" else []))
        return
    if args.quick:
        args.seconds, args.control_seconds = 20.0, 10.0
    bench = start_benchmark("library_stress")
    phases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(p for p in args.phases.split(",") if p):
            root = Path(tmp) / name
            make_workspace(root, args.images, seed=i)
            phases[name] = run_phase(root, args.seconds, kill=name == "sigkill", lock=True, seed=i + 1)
            print(name, json.dumps(phases[name]), flush=True)
        if args.control_seconds > 0:
            root = Path(tmp) / "control"
            make_workspace(root, args.images, seed=9)
            phases["control_no_lock"] = run_phase(root, args.control_seconds, kill=False, lock=False, seed=9)
            print("control_no_lock", json.dumps(phases["control_no_lock"]), flush=True)
    locked = [p for k, p in phases.items() if k != "control_no_lock"]
    summary = {
        "claim": "4 processes (2 writers of random move/undo batches, 2 readers opening and scanning) "
                 "for >= 2 minutes, with and without SIGKILLs: 0 images lost, 0 duplicated, >= 2,000 moves",
        "phases": phases,
        "total_moves_with_lock": sum(p["moves"] for p in locked),
        "lost_with_lock": sum(p["lost"] for p in locked),
        "duplicated_with_lock": sum(p["duplicated"] for p in locked),
        "target_met": all(p["ok"] for p in locked) and sum(p["moves"] for p in locked) >= 2000
        and all(p["seconds"] >= 120 for p in locked),
        "control_shows_the_race": (phases.get("control_no_lock", {}).get("lost", 0)
                                   + phases.get("control_no_lock", {}).get("duplicated", 0)) > 0,
        "images": args.images,
        "machine": machine_info(cpus=os.cpu_count()),
        "quick": args.quick,
    }
    out = Path(args.out) if args.out else RESULTS
    write_result(summary, out, bench if args.out is None else None)
    print(json.dumps({k: v for k, v in summary.items() if k != "phases"}, indent=2))


if __name__ == "__main__":
    main()
