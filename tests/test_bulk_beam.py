"""Tests for imgcls.bulk.identify_beam: the local identify's table on Beam's in-process runner
(FnApiRunner, 2 workers, no download), bad files included, globs, reruns and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bulk_runs import bad_pool, tiny_run

pytest.importorskip("apache_beam")

from imgcls import bulk  # noqa: E402
from imgcls.bulk.beam import pipeline_options  # noqa: E402

SCORES = ["top1_score", "top2_score", "top3_score", "raw_top1_score", "entropy", "margin"]
EXACT = ["path", "relpath", "hash", "top1_class", "top2_class", "top3_class", "model", "run_id"]


def by_path(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("path").reset_index(drop=True)


def assert_same_table(beam: pd.DataFrame, local: pd.DataFrame) -> None:
    """Same rows, same top-k classes, scores within 1e-6 (rows compared by path)."""
    assert list(beam.columns) == list(local.columns)
    b, a = by_path(beam), by_path(local)
    assert len(b) == len(a) and b["path"].is_unique
    for col in EXACT:
        assert b[col].tolist() == a[col].tolist(), col
    np.testing.assert_allclose(b[SCORES].to_numpy(), a[SCORES].to_numpy(), atol=1e-6, rtol=0)
    assert b.dtypes.equals(a.dtypes)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny run, a pool with two bad files and a link leaving the folder, and its local table."""
    root = tmp_path_factory.mktemp("beam")
    ws, run = tiny_run(root / "ws")
    pool = bad_pool(root / "pool")
    outside = root / "outside.png"
    outside.write_bytes(next(pool.rglob("*.png")).read_bytes())
    (pool / "batch_0" / "link_out.png").symlink_to(outside)
    local = bulk.identify(ws, pool, run=run, out=root / "local.parquet", batch_size=4, progress=False)
    return ws, run, pool, local, root


@pytest.fixture(scope="module")
def beam_table(setup):
    ws, run, pool, _, _ = setup
    return bulk.identify_beam(ws, pool, run=run, batch_size=4)


def test_options_pin_the_in_process_runner_with_two_workers():
    opts = pipeline_options().get_all_options()
    assert (opts["runner"], opts["direct_num_workers"], opts["direct_running_mode"]) == \
        ("FnApiRunner", 2, "multi_threading")
    opts = pipeline_options("FnApiRunner", ["--direct_num_workers=3"]).get_all_options()
    assert opts["direct_num_workers"] == 3
    opts = pipeline_options("DataflowRunner", ["--project=p"]).get_all_options()
    assert opts["runner"] == "DataflowRunner" and opts["project"] == "p"
    with pytest.raises(ValueError, match="pipeline flags"):
        pipeline_options("FnApiRunner", ["direct_num_workers=3"])
    with pytest.raises(ValueError, match="runner"):
        pipeline_options("")


def test_beam_gives_the_local_table_bad_files_included(setup, beam_table):
    ws, run, pool, local, _ = setup
    assert len(local) == 23
    assert_same_table(beam_table, local)
    out = Path(beam_table.attrs["results_path"])
    assert out.parent == ws.bulk and out.name.startswith("tiny-run-pool-beam-")
    assert beam_table.attrs["engine"] == "beam" and beam_table.attrs["n_results"] == 23
    # The same errors, with the same reasons (and no content hash for the link).
    errs_b = by_path(bulk.load_errors(out))
    errs_a = by_path(bulk.load_errors(local.attrs["results_path"]))
    assert sorted(Path(p).name for p in errs_b["path"]) == ["link_out.png", "not_an_image.jpg", "truncated.png"]
    for col in ("path", "relpath", "hash", "reason", "run_id"):
        assert errs_b[col].tolist() == errs_a[col].tolist(), col
    assert beam_table.attrs["n_errors"] == 3
    meta = json.loads((out / "_meta.json").read_text())
    assert meta["complete"] and meta["engine"] == "beam" and meta["n_errors"] == 3
    assert meta["temperature"] == run.temperature and meta["k"] == 3
    # Readers of the local table read it as it is: load_results, pandas, the filters.
    pd.testing.assert_frame_equal(bulk.load_results(out), beam_table)
    assert len(pd.read_parquet(out)) == 23
    cls = local["top1_class"].iloc[0]
    kept_b = bulk.look_alike(beam_table, cls, min_score=0.0, max_score=1.0)
    kept_a = bulk.look_alike(local, cls, min_score=0.0, max_score=1.0)
    assert sorted(kept_b["path"]) == sorted(kept_a["path"])
    assert sorted(bulk.lowest_scores(beam_table, n=5)["path"]) == sorted(bulk.lowest_scores(local, n=5)["path"])


def test_a_glob_is_listed_by_beam_filesystems(setup, tmp_path):
    ws, run, pool, local, _ = setup
    df = bulk.identify_beam(ws, str(pool / "**"), run=run, out=tmp_path / "glob.parquet", batch_size=8)
    assert_same_table(df, local)
    errs = by_path(bulk.load_errors(tmp_path / "glob.parquet"))
    assert sorted(Path(p).name for p in errs["path"]) == ["link_out.png", "not_an_image.jpg", "truncated.png"]
    link = errs[errs["path"].str.endswith("link_out.png")].iloc[0]
    assert "outside the allowed folder" in link["reason"] and link["hash"] == ""  # never read
    local_errs = by_path(bulk.load_errors(local.attrs["results_path"]))
    assert errs["reason"].tolist()[1:] == local_errs["reason"].tolist()[1:]
    # `*` stops at a folder; only image names count.
    (pool / "batch_0" / "notes.txt").write_text("not an image name")
    one = bulk.identify_beam(ws, str(pool / "batch_0" / "*"), run=run, out=tmp_path / "one.parquet")
    assert set(one["relpath"]) == {r.split("/", 1)[1] for r in local["relpath"]
                                   if r.startswith("batch_0/") and r.count("/") == 1}


@pytest.mark.slow
def test_a_rerun_replaces_the_output_and_another_job_is_refused(setup, beam_table, tmp_path):
    ws, run, pool, _, _ = setup
    out = Path(beam_table.attrs["results_path"])
    # Leftovers a rerun must remove: a stale shard, a failed run's staging folder.
    stale = out / "part-00042.parquet"
    stale.write_bytes(next(out.glob("part-*.parquet")).read_bytes())
    (out / "_beam-deadbeef").mkdir()
    (out / "_beam-deadbeef" / "part-00000.parquet").write_bytes(b"half written")
    again = bulk.identify_beam(ws, pool, run=run, batch_size=8)  # same job: same folder
    assert again.attrs["results_path"] == str(out) and again.attrs["job_key"] == beam_table.attrs["job_key"]
    assert not stale.exists() and not (out / "_beam-deadbeef").exists()
    assert_same_table(again, beam_table)  # idempotent: rows depend only on the bytes and the run
    assert len(bulk.load_errors(out)) == 3

    # Another job (top_k=2) gets its own default folder; into this one only with overwrite.
    with pytest.raises(ValueError, match="holds Beam job"):
        bulk.identify_beam(ws, pool, run=run, out=out, top_k=2)
    two = bulk.identify_beam(ws, pool, run=run, out=out, top_k=2, overwrite=True)
    assert list(two.columns) == bulk.result_columns(2) and len(two) == 23
    assert len(bulk.load_results(out)) == 23

    # A local job's folder is never taken over silently.
    local_out = Path(setup[3].attrs["results_path"])
    with pytest.raises(ValueError, match="a local identify job"):
        bulk.identify_beam(ws, pool, run=run, out=local_out)


@pytest.mark.slow
def test_cli_identify_engine_beam(setup, tmp_path):
    ws, run, pool, local, _ = setup
    exe = Path(sys.executable).parent / "imgcls"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "imgcls.cli"]
    proc = subprocess.run(
        [*cmd, "identify", str(pool), "--workspace", str(ws.root), "--run", "tiny-run", "--engine", "beam",
         "--beam-option=--direct_num_workers=2", "--no-resume", "--quiet"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    assert proc.returncode == 0, proc.stderr  # --no-resume: the folder held the top_k=2 job
    assert "23 images identified" in proc.stdout and "-beam-" in proc.stdout
    assert "3 unreadable files" in proc.stdout
    proc = subprocess.run([*cmd, "identify", str(pool), "--workspace", str(ws.root), "--runner", "FlinkRunner"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "--engine beam" in proc.stderr
