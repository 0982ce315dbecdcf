"""The `imgcls` command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "imgcls"


def run(*args, cwd=None, check=True):
    exe = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "imgcls.cli"]
    proc = subprocess.run([*exe, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"imgcls {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory):
    ws = tmp_path_factory.mktemp("cli") / "zoo"
    out = run("sample", "--workspace", ws, "--image-size", 32, "--pool-size", 200)
    assert "Zoo sample workspace ready" in out.stdout
    return ws


def test_help_lists_commands():
    out = run("--help").stdout
    for cmd in ("sample", "library", "duplicates", "move", "undo", "journal", "flag", "rename-class",
                "merge-class"):
        assert cmd in out


def test_library_json(sample_ws):
    info = json.loads(run("library", "-w", sample_ws, "--json").stdout)
    assert "sheep" not in info["classes"] and "bear" in info["classes"]
    lowered = json.loads(run("library", "-w", sample_ws, "--cutoff", 35, "--json").stdout)
    assert {"sheep", "giraffe"} <= set(lowered["classes"])
    assert info["unreadable"] == 1


def test_library_table_and_duplicates(sample_ws):
    out = run("library", "-w", sample_ws).stdout
    assert "Unreadable images" in out and "Splits of the trainable classes" in out
    dups = json.loads(run("duplicates", "-w", sample_ws, "--json").stdout)
    assert {d["kind"] for d in dups} == {"exact", "near"}


def test_move_journal_undo_round_trip(sample_ws):
    src = sorted((sample_ws / "library" / "cat").glob("cat_*.png"))[0]
    out = run("move", "-w", sample_ws, src, "--to", "lynx").stdout
    assert "lynx" in out and not src.exists()
    journal = json.loads(run("journal", "-w", sample_ws, "--json").stdout)
    assert journal[-1]["op"] == "move"
    run("undo", "-w", sample_ws)
    assert src.exists()


def test_errors_are_actionable_and_exit_2(sample_ws):
    src = next((sample_ws / "library" / "dog").glob("*.png"))
    bad = run("move", "-w", sample_ws, src, "--to", "../escape", check=False)
    assert bad.returncode == 2 and "Invalid class name" in bad.stderr and src.exists()
    missing = run("library", "-w", sample_ws / "nope", check=False)
    assert missing.returncode == 2 and "No workspace" in missing.stderr


def test_move_of_several_files_is_one_batch_and_all_or_nothing(sample_ws):
    srcs = sorted((sample_ws / "library" / "cat").glob("cat_*.png"))[:3]
    missing = sample_ws / "library" / "cat" / "no-such-cat.png"
    bad = run("move", "-w", sample_ws, srcs[0], missing, srcs[2], "--to", "lynx", check=False)
    assert bad.returncode == 2 and "Nothing was moved" in bad.stderr and "no-such-cat.png" in bad.stderr
    assert all(p.exists() for p in srcs)  # not even the first one moved
    out = run("move", "-w", sample_ws, *srcs, "--to", "lynx").stdout
    assert "3 images moved as one batch" in out and not any(p.exists() for p in srcs)
    shown = run("journal", "-w", sample_ws).stdout
    assert "batch" in shown and "Last" in shown and "batches" in shown
    journal = json.loads(run("journal", "-w", sample_ws, "--json").stdout)
    assert len({e["batch"] for e in journal[-3:]}) == 1
    run("undo", "-w", sample_ws)  # one step restores all three
    assert all(p.exists() for p in srcs)


def test_rename_and_merge_class_commands_are_undoable(sample_ws):
    lib = sample_ws / "library"
    n_dog = len(list((lib / "dog").iterdir()))
    run("rename-class", "-w", sample_ws, "dog", "Dog")
    assert not (lib / "dog").exists() and len(list((lib / "Dog").iterdir())) == n_dog
    refused = run("move", "-w", sample_ws, next((lib / "cat").glob("*.png")), "--to", "DOG", check=False)
    assert refused.returncode == 2 and "looks the same as the existing class 'Dog'" in refused.stderr
    run("undo", "-w", sample_ws)
    assert len(list((lib / "dog").iterdir())) == n_dog and not (lib / "Dog").exists()
    n_cat = len(list((lib / "cat").iterdir()))
    run("merge-class", "-w", sample_ws, "dog", "--into", "cat")
    assert not (lib / "dog").exists() and len(list((lib / "cat").iterdir())) == n_cat + n_dog
    run("undo", "-w", sample_ws)
    assert len(list((lib / "dog").iterdir())) == n_dog and len(list((lib / "cat").iterdir())) == n_cat


@pytest.mark.slow  # trains a throw-away run and identifies the pool
def test_train_throwaway_finds_candidates_and_is_never_promoted(sample_ws):
    """`imgcls train --throwaway`: the lowered cutoff (35 by default) takes in
    sheep (38) and giraffe (36), the run is flagged throw-away, the pool is
    identified for exactly those two classes, and the gate refuses the run."""
    out = run("train", "-w", sample_ws, "--throwaway", "--max-epochs", 8, "--min-epochs", 3, "--image-size", 32,
              "--batch-size", 64, "--quiet").stdout
    runs = json.loads(run("runs", "-w", sample_ws, "--json").stdout)
    assert len(runs) == 1 and runs[0]["throwaway"] is True and runs[0]["n_classes"] == 9
    run_id = runs[0]["run_id"]
    from imgcls.bulk import throwaway_candidates
    from imgcls.runs import load_run

    trained = load_run(run_id, workspace=sample_ws)
    assert trained.throwaway and trained.config["cutoff"] == 35
    assert trained.config["min_epochs"] == 3 and trained.metrics["training"]["epochs_trained"] >= 3
    assert {"sheep", "giraffe"} <= set(trained.classes) and "zebra" not in trained.classes
    assert f"run {run_id} (mini_inception, 9 classes, throw-away" in out
    assert "200 pool images identified. Classes under the usual cutoff of 40: giraffe, sheep" in out

    # The same candidates from the API (identify resumes from the results file the command wrote).
    cands = throwaway_candidates(sample_ws, run_id, progress=False)
    assert cands.attrs["targets"] == ["giraffe", "sheep"] and cands.attrs["n_identified"] == 200
    assert len(cands) > 0 and set(cands["candidate"]) <= {"giraffe", "sheep"}  # 41 here, 1 after 3 epochs
    assert f"{len(cands)} candidate images" in out
    printed = [" ".join(line.split()) for line in out.splitlines()]
    for candidate, group in cands.groupby("candidate"):
        firsts, seconds = int((group["choice"] == 1).sum()), int((group["choice"] == 2).sum())
        assert f"{candidate} {firsts} {seconds}" in printed, (candidate, firsts, seconds, out)

    refused = run("promote", "-w", sample_ws, run_id, check=False)
    assert refused.returncode == 1 and "REFUSED" in refused.stdout and "throw-away" in refused.stdout
    assert not (sample_ws / "runs" / "production.json").exists()
