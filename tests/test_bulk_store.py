"""Tests for imgcls.bulk.store: resume after a real SIGKILL, empty tables, the
job folder's lock and refusals, reading results back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from bulk_runs import tiny_run, write_images

from imgcls import bulk


@pytest.fixture(scope="module")
def ws_run(tmp_path_factory):
    """A workspace with a tiny simple_cnn (32x32, 3 classes) saved as a real run."""
    return tiny_run(tmp_path_factory.mktemp("bulk") / "ws")


@pytest.mark.slow  # SIGKILLs a real identification job and reruns it
def test_resume_after_sigkill_matches_uninterrupted_run(ws_run, tmp_path):
    ws, run = ws_run
    folder = tmp_path / "big"
    write_images(folder, 240, seed=2, nested=False)
    (folder / "batch_0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    killed_out = tmp_path / "killed.parquet"
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        from imgcls import bulk as bulk
        bulk.identify({str(ws.root)!r}, {str(folder)!r}, run={str(run.path)!r}, out={str(killed_out)!r},
                      batch_size=4, chunk_size=8, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    first = killed_out / "part-00001.parquet"
    deadline = time.monotonic() + 120
    while not first.exists():
        if proc.poll() is not None:
            pytest.fail(f"identify subprocess ended early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no part file within 120 s")
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    meta = json.loads((killed_out / "_meta.json").read_text())
    assert meta["complete"] is False
    before = bulk.load_results(killed_out)
    assert 0 < len(before) < 240, "the job was not interrupted mid-way"

    resumed = bulk.identify(ws, folder, run=run, out=killed_out, batch_size=4, chunk_size=8, progress=False)
    whole = bulk.identify(ws, folder, run=run, out=tmp_path / "whole.parquet", batch_size=32, progress=False)

    assert resumed["path"].is_unique and len(resumed) == 240
    assert resumed["path"].iloc[: len(before)].tolist() == before["path"].tolist()  # kept, not redone
    a = resumed.sort_values("path").reset_index(drop=True)
    b = whole.sort_values("path").reset_index(drop=True)
    cols = [c for c in bulk.RESULT_COLUMNS if c != "time"]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=False, atol=1e-5, rtol=1e-4)
    assert bulk.load_errors(killed_out)["path"].map(lambda p: Path(p).name).tolist() == ["broken.jpg"]
    assert json.loads((killed_out / "_meta.json").read_text())["complete"] is True


def test_only_bad_files_gives_empty_table(ws_run, tmp_path):
    ws, run = ws_run
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    df = bulk.identify(ws, [bad, tmp_path / "gone.jpg"], run=run, out=tmp_path / "e.parquet", progress=False)
    assert len(df) == 0 and list(df.columns) == bulk.RESULT_COLUMNS
    assert len(bulk.load_errors(tmp_path / "e.parquet")) == 2


# --------------------------------------------------------------------------
# The job folder without a model
# --------------------------------------------------------------------------
def test_result_columns_and_schemas_agree():
    from imgcls.bulk.store import errors_schema, results_schema

    assert bulk.result_columns(2) == ["path", "relpath", "hash", "top1_class", "top1_score", "top2_class",
                                      "top2_score", "raw_top1_score", "entropy", "margin", "model", "run_id",
                                      "time"]
    assert bulk.RESULT_COLUMNS == bulk.result_columns(3) == results_schema(3).names
    assert bulk.ERROR_COLUMNS == errors_schema().names


def test_chunk_writer_writes_parts_that_read_back_as_one_table(tmp_path):
    import numpy as np

    from imgcls.bulk.store import ChunkWriter, ErrorRouter, JobStore

    store = JobStore(tmp_path / "job.parquet")
    store.create()
    writer = ChunkWriter(store.out, top_k=2, classes=["a", "b", "c"], model_name="m", run_id="r", start_part=0)
    router = ErrorRouter([("/x/bad.png", "corrupt"), ("/x/late.png", "truncated")],
                         {"/x/bad.png": 0, "/x/late.png": 3}, ["bad.png", "1", "2", "late.png"], writer)
    writer.add_batch(["/x/1.png", "/x/2.png"], ["1.png", "2.png"], np.array([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2]]))
    router.route(3)                              # the error of position 3 waits for its chunk
    assert writer.pending() == 3
    writer.flush()
    router.route(4)
    writer.flush()
    assert store.part_numbers() == [1, 1, 2] and store.has_parts()
    assert store.recorded_paths() == {"/x/1.png", "/x/2.png", "/x/bad.png", "/x/late.png"}
    df = bulk.load_results(store.out)
    assert list(df.columns) == bulk.result_columns(2) and df.attrs["n_errors"] == 2
    assert df["top1_class"].tolist() == ["b", "a"] and df["top2_class"].tolist() == ["c", "b"]  # ties: class order
    np.testing.assert_allclose(df["margin"], [0.2, 0.0])
    assert str(df["time"].dt.tz) == "UTC"
    assert bulk.load_errors(store.out)["path"].tolist() == ["/x/bad.png", "/x/late.png"]
    store.clear()
    assert not store.has_parts() and len(bulk.load_results(store.out)) == 0


def test_job_folder_lock_meta_and_refusals(tmp_path):
    from imgcls.bulk.store import JobStore

    store = JobStore(tmp_path / "job.parquet")
    store.create()
    assert store.read_meta() == {}
    store.write_meta({"run_id": "r", "k": 2})
    assert store.read_meta() == {"run_id": "r", "k": 2}
    (store.out / "_meta.json").write_text("{torn")
    assert store.read_meta() == {}
    with store.lock():
        with pytest.raises(ValueError, match="Another identify job"):
            with JobStore(store.out).lock():
                pass
    with JobStore(store.out).lock():             # released
        pass
    (store.out / ".part-00001.parquet.x.tmp").write_bytes(b"half")
    store.clean_temp()
    assert not list(store.out.glob("*.tmp"))
    (tmp_path / "file.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="must be a folder"):
        JobStore(tmp_path / "file.parquet").create()
    with pytest.raises(FileNotFoundError, match="No bulk results"):
        bulk.load_results(tmp_path / "missing.parquet")
    with pytest.raises(FileNotFoundError, match="No bulk results"):
        bulk.load_errors(tmp_path / "missing.parquet")
