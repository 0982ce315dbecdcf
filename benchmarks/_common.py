"""What every benchmark records and does besides measuring: written once, here.

Importing this module is the benchmarks' preamble: it quiets TensorFlow's
start-up chatter, pins the Keras backend, and puts the repository root first
on ``sys.path`` so a benchmark measures the working tree it sits in (also
without ``pip install -e .``). Import it before numpy, TensorFlow or imgcls::

    from _common import ROOT, machine_info, result_path, start_benchmark, write_result

    RESULT = result_path("bulk_memory")          # benchmarks/results/bulk_memory.json

    def main():
        bench = start_benchmark("bulk_memory")    # start time, load average, git commit
        result = {"claim": "...", "machine": machine_info(), ...}
        ...
        write_result(result, RESULT, bench)       # adds result["provenance"], writes JSON

``python benchmarks/bench_x.py`` puts ``benchmarks/`` on ``sys.path``, so
``import _common`` finds this file. Every value here is plain JSON. Nothing
here imports TensorFlow: library versions are read from the installed
distributions' metadata.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as imgcls.core.quiet: silent TF start-up (children inherit it)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

#: The repository root (the folder holding ``imgcls/`` and ``benchmarks/``).
ROOT = Path(__file__).resolve().parents[1]
#: Where each benchmark writes ``<name>.json``.
RESULTS_DIR = ROOT / "benchmarks" / "results"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: CPU flags that decide how fast TensorFlow's kernels run (SIMD and matrix extensions).
SIMD_FLAG_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx", "vnni", "neon", "asimd", "sve")
#: Distributions whose versions every result records.
VERSIONED = ("imgcls", "tensorflow", "keras", "numpy", "pandas", "pillow", "pyarrow")

__all__ = [
    "ROOT",
    "RESULTS_DIR",
    "result_path",
    "utc_now",
    "load_average",
    "cpu_model",
    "cpu_flags",
    "memory_gb",
    "machine_info",
    "package_versions",
    "git_commit",
    "child_env",
    "Provenance",
    "start_benchmark",
    "write_result",
]


def result_path(name: str) -> Path:
    """``benchmarks/results/<name>.json``."""
    return RESULTS_DIR / f"{name}.json"


def utc_now() -> str:
    """The current time, ISO 8601 in UTC to the second (``2026-01-31T12:00:00+00:00``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (rounded), or None where the OS has none.

    On a shared machine wall times are only comparable between runs with a similar load.
    """
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty off Linux)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model() -> str | None:
    """The CPU's model name (Linux ``/proc/cpuinfo``; else ``platform.processor()``)."""
    info = _cpuinfo()
    return info.get("model name") or info.get("Model") or platform.processor() or None


def cpu_flags() -> list[str]:
    """The CPU's SIMD / matrix feature flags (AVX2, AVX-512, FMA, AMX, NEON...), sorted."""
    info = _cpuinfo()
    flags = (info.get("flags") or info.get("Features") or "").split()
    return sorted(f for f in flags if f.startswith(SIMD_FLAG_PREFIXES))


def memory_gb() -> float | None:
    """Total physical memory in GB (psutil, else /proc/meminfo)."""
    try:
        import psutil

        return round(psutil.virtual_memory().total / 1e9, 1)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info(**extra: Any) -> dict[str, Any]:
    """The machine a result was measured on, plus ``extra`` keys (a benchmark's own names).

    Keys: ``platform``, ``machine``, ``processor``, ``python``, ``cpu_count``,
    ``cpu_model``, ``cpu_flags`` (SIMD subset), ``memory_gb``.
    """
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "memory_gb": memory_gb(),
    }
    info.update(extra)
    return info


def package_versions() -> dict[str, str | None]:
    """Python and the installed versions of :data:`VERSIONED` (None: not installed), without importing them."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the repository (dirty: tracked files changed), or None."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a measuring subprocess: this one's, the repository root first on
    ``PYTHONPATH`` (the child imports the same imgcls), plus ``overrides``."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), **overrides}


class Provenance:
    """When, where and from what code a benchmark ran; see :func:`start_benchmark`."""

    def __init__(self, name: str, argv: list[str] | None = None):
        self.name = name
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.started = utc_now()
        self._t0 = time.perf_counter()
        self.load_average_start = load_average()
        self.git = git_commit()

    def as_dict(self) -> dict[str, Any]:
        """The record, finished now."""
        return {
            "benchmark": self.name,
            "script": Path(sys.argv[0]).name if sys.argv and sys.argv[0] else None,
            "argv": self.argv,
            "started": self.started,
            "finished": utc_now(),
            "duration_s": round(time.perf_counter() - self._t0, 1),
            "git": self.git,
            "load_average_start": self.load_average_start,
            "load_average_end": load_average(),
            "versions": package_versions(),
        }


def start_benchmark(name: str, argv: list[str] | None = None) -> Provenance:
    """Note the start of benchmark ``name`` (time, load average, git commit)."""
    return Provenance(name, argv)


def write_result(result: dict, out: str | os.PathLike, provenance: Provenance | None = None, *,
                 default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``result`` as indented JSON to ``out`` (atomically, folders created).

    With ``provenance``, ``result["provenance"]`` is set first (the dict is
    changed in place, so the caller's copy has it too). ``default`` is
    :func:`json.dumps`' hook for values JSON does not know.

    A smoke run (``result["quick"]`` true) never replaces a real result: aimed
    at ``benchmarks/results/<name>.json`` it goes to ``<name>.quick.json``
    (ignored by git). The path written is returned.
    """
    out = Path(out)
    if result.get("quick") and out.parent.resolve() == RESULTS_DIR.resolve() and not out.name.endswith(".quick.json"):
        out = out.with_name(f"{out.stem}.quick.json")
    if provenance is not None:
        result["provenance"] = provenance.as_dict()
    text = json.dumps(result, indent=2, default=default) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
