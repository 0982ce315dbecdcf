"""imgcls.runs.rollback and production_history: back to the previous production run, recorded, no gate."""

from __future__ import annotations

import json

import pytest

from imgcls.cli import main
from imgcls.core import open_workspace
from imgcls.runs import (
    append_promotion,
    production_history,
    production_run_id,
    promotion_log,
    rollback,
    set_production,
    version_label,
)


def promote(ws, run_id, accepted=True):
    """What the gate leaves behind for an accepted (or refused) candidate."""
    if accepted:
        set_production(ws, run_id, previous_run_id=production_run_id(ws))
    append_promotion(ws, {"time": "2025-01-01T00:00:00Z", "run_id": run_id, "action": "promote",
                          "accepted": accepted})


@pytest.fixture
def ws(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    for run_id in ("run-a", "run-b", "run-c"):
        (ws.runs / run_id).mkdir(parents=True)
        (ws.runs / run_id / "config.json").write_text(json.dumps({"model": "simple_cnn"}))
    return ws


def test_rollback_walks_back_the_history(ws):
    with pytest.raises(ValueError, match="no production run"):
        rollback(ws)
    promote(ws, "run-a")
    with pytest.raises(ValueError, match="only production run"):
        rollback(ws)
    promote(ws, "run-b")
    promote(ws, "run-c", accepted=False)  # refused: never production
    promote(ws, "run-b")  # promoted again while in production: no new step
    promote(ws, "run-c")
    assert production_history(ws) == ["run-a", "run-b", "run-c"]

    entry = rollback(ws, reason="v3 misreads zebras")
    assert entry["run_id"] == "run-b" and entry["previous_run_id"] == "run-c"
    assert production_run_id(ws) == "run-b" and production_history(ws) == ["run-a", "run-b"]
    log = promotion_log(ws)
    last = log.iloc[-1]
    assert last["action"] == "rollback" and last["accepted"] and last["reason"] == "v3 misreads zebras"
    assert version_label(ws, "run-b") == "v2" and version_label(ws, "run-c") == "v3"  # labels stay

    rollback(ws)
    assert production_run_id(ws) == "run-a"
    with pytest.raises(ValueError, match="nothing to roll back"):
        rollback(ws)
    promote(ws, "run-c")  # promoting again after a rollback starts from there
    assert production_history(ws) == ["run-a", "run-c"]


def test_pointer_set_elsewhere_and_missing_runs(ws):
    promote(ws, "run-a")
    promote(ws, "run-b")
    set_production(ws, "run-a")  # someone pointed production back by hand
    assert production_history(ws) == ["run-a"]
    set_production(ws, "run-c")  # ... or at a run never promoted: it goes on top
    assert production_history(ws) == ["run-a", "run-b", "run-c"]
    (ws.runs / "run-b" / "config.json").unlink()
    with pytest.raises(ValueError, match="folder runs/run-b is gone"):
        rollback(ws)
    assert production_run_id(ws) == "run-c"


def test_cli_rollback(ws, capsys):
    promote(ws, "run-a")
    promote(ws, "run-b")
    assert main(["rollback", "-w", str(ws.root), "--reason", "bad week"]) == 0
    out = capsys.readouterr().out
    assert "run-b -> run-a (v1)" in out and production_run_id(ws) == "run-a"
    assert main(["rollback", "-w", str(ws.root)]) == 2
    assert "nothing to roll back" in capsys.readouterr().err


def test_rollback_waits_for_another_writer_of_the_workspace(ws, monkeypatch):
    """Read-decide-write under the workspace lock: while another process holds it, nothing changes."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    from imgcls.core.lock import WorkspaceLockedError

    promote(ws, "run-a")
    promote(ws, "run-b")
    holder = textwrap.dedent("""
        import sys, time
        from imgcls.core.lock import WorkspaceLock
        with WorkspaceLock(sys.argv[1]):
            print("held", flush=True)
            time.sleep(30)
    """)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", holder, str(ws.root)], stdout=subprocess.PIPE,
                            env={**__import__("os").environ, "PYTHONPATH": str(root)})
    try:
        assert proc.stdout.readline().strip() == b"held"
        monkeypatch.setenv("IMGCLS_LOCK_TIMEOUT", "0.5")
        with pytest.raises(WorkspaceLockedError):
            rollback(ws)
        assert production_run_id(ws) == "run-b" and len(promotion_log(ws)) == 2
    finally:
        proc.kill()
        proc.wait()
    assert rollback(ws)["run_id"] == "run-a"
