"""Claim: after `make demo`, the notebook series runs in order at its default parameters in under 15 minutes
in all, with no error and no stderr output, and the scripted reviewers file 0 images wrong.

The README's path, timed: ``imgcls demo`` builds the workspace (timed separately: it is ``make demo``,
not the series), then every notebook of ``notebooks/`` runs in order with papermill at its default
parameters, opening the demo's workspace through a relative ``SAMPLE_DIR`` exactly as
``../demo-workspace`` does (the throw-away notebook builds its own sample, as it does by default,
here in a temporary folder). Per notebook: wall time, the machine's load average before and after,
error and stderr outputs, and for bulk identification and the throw-away run the scripted
reviewer's filings checked against the hidden labels (and whether the throw-away targets reached
the cutoff).

The machine may be shared: the load averages are recorded beside every time, so a slow run on a
loaded machine reads as such.

Usage::

    python benchmarks/bench_notebooks.py [--workspace DIR] [--reuse] [--keep]

``--reuse`` times the notebooks on an existing demo workspace (``DIR`` must hold one) without
running the demo again. Writes ``benchmarks/results/notebooks.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, child_env, load_average, machine_info, result_path, start_benchmark, write_result

RESULT = result_path("notebooks")
NOTEBOOKS = ROOT / "notebooks"
BUDGET_S = 15 * 60
_FILED = re.compile(r"(\d+) images filed into a class, (\d+) wrong against the hidden labels")


def _outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _text(outputs: list[dict]) -> str:
    parts = []
    for o in outputs:
        t = o.get("text", "")
        parts.append("".join(t) if isinstance(t, list) else t)
        plain = o.get("data", {}).get("text/plain", "")
        parts.append("".join(plain) if isinstance(plain, list) else plain)
    return "\n".join(parts)


def run_one(name: str, params: dict, out_dir: Path) -> dict:
    """Execute one notebook with papermill; its time, load and what its outputs say."""
    import papermill

    out = out_dir / name
    load_before = load_average()
    t0 = time.perf_counter()
    failure = None
    try:
        papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=params, cwd=str(NOTEBOOKS),
                                   kernel_name="python3", progress_bar=False, log_output=False, iopub_timeout=120)
    except Exception as err:  # the record says which notebook failed and why; the series stops there
        failure = f"{type(err).__name__}: {str(err)[-400:]}"
    seconds = time.perf_counter() - t0
    outputs = _outputs(json.loads(out.read_text())) if out.exists() else []
    text = _text(outputs)
    row = {
        "notebook": name,
        "seconds": round(seconds, 1),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "errors": sum(o.get("output_type") == "error" for o in outputs) + (failure is not None),
        "failure": failure,
        "stderr_outputs": sum(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outputs),
    }
    filed = _FILED.search(text)
    if filed:
        row["filed"], row["wrong_filings"] = int(filed.group(1)), int(filed.group(2))
    if "Targets now at the cutoff:" in text:
        row["targets_at_cutoff"] = text.split("Targets now at the cutoff:")[1].splitlines()[0].strip()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", help="the demo workspace (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="time the notebooks on an existing demo workspace")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args(argv)
    bench = start_benchmark("notebooks", argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-notebooks-"))
    ws = Path(args.workspace).resolve() if args.workspace else tmp / "demo-workspace"
    demo = None
    if not args.reuse:
        load_before = load_average()
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "imgcls.cli", "demo", "--workspace", str(ws)],
                              env=child_env(), capture_output=True, text=True)
        demo = {"command": "imgcls demo --workspace WS (the defaults of make demo)",
                "seconds": round(time.perf_counter() - t0, 1), "returncode": proc.returncode,
                "load_average_before": load_before, "load_average_after": load_average()}
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
    out_dir = tmp / "executed"
    out_dir.mkdir()
    rel = os.path.relpath(ws, NOTEBOOKS)
    rows = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        params = {"SAMPLE_DIR": str(tmp / "throwaway-sample") if path.name.startswith("06_") else rel}
        row = run_one(path.name, params, out_dir)
        rows.append(row)
        print(f"{row['notebook']}: {row['seconds']:.0f} s, load {row['load_average_before']} -> "
              f"{row['load_average_after']}, errors {row['errors']}, stderr {row['stderr_outputs']}"
              + (f", filed {row['filed']} / wrong {row['wrong_filings']}" if "filed" in row else ""), flush=True)
        if row["failure"]:
            break
    total = sum(r["seconds"] for r in rows)
    result = {
        "claim": "After `make demo`, the notebooks run in order at their defaults in under 15 minutes in all, "
                 "with no error or stderr output and 0 wrong filings by the scripted reviewers.",
        "machine": machine_info(cpu_count=os.cpu_count()),
        "demo": demo,
        "notebooks": rows,
        "series_seconds": round(total, 1),
        "budget_seconds": BUDGET_S,
        "within_budget": total < BUDGET_S,
        "all_ran": len(rows) == len(list(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))) and not any(r["failure"] for r in rows),
        "errors": sum(r["errors"] for r in rows),
        "stderr_outputs": sum(r["stderr_outputs"] for r in rows),
        "wrong_filings": sum(r.get("wrong_filings", 0) for r in rows),
        "note": "Wall times on a shared machine: read them with the load averages beside them.",
    }
    write_result(result, args.out, bench)
    print(f"series: {total:.0f} s (budget {BUDGET_S} s); written to {args.out}")
    if not args.keep:  # the executed notebooks (and a temporary demo workspace); never a --workspace given
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
