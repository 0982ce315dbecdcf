"""Tests for imgcls.bulk.identify: a real tiny run over folders, lists and the
unknown folder, with bad files, the production default and refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bulk_runs import CLASSES, bad_pool, tiny_run, write_images

from imgcls import bulk


@pytest.fixture(scope="module")
def ws_run(tmp_path_factory):
    """A workspace with a tiny simple_cnn (32x32, 3 classes) saved as a real run."""
    return tiny_run(tmp_path_factory.mktemp("bulk") / "ws")


@pytest.fixture
def pool(tmp_path):
    return bad_pool(tmp_path / "pool")


def test_identify_folder_any_depth_with_bad_files(ws_run, pool, tmp_path):
    ws, run = ws_run
    out = tmp_path / "res.parquet"
    df = bulk.identify(ws, pool, run=run, out=out, top_k=3, batch_size=4, chunk_size=6, progress=False)

    assert list(df.columns) == bulk.RESULT_COLUMNS
    assert len(df) == 23 and df["path"].is_unique
    assert df["path"].map(os.path.isabs).all()
    assert any("/deeper/" in r for r in df["relpath"])  # nested folders are found
    assert set(df["top1_class"]) <= set(CLASSES)
    assert (df["top1_score"] >= df["top2_score"]).all() and (df["top2_score"] >= df["top3_score"]).all()
    np.testing.assert_allclose(df[["top1_score", "top2_score", "top3_score"]].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(df["margin"], df["top1_score"] - df["top2_score"])
    assert ((df["entropy"] >= 0) & (df["entropy"] <= np.log(3) + 1e-9)).all()
    assert (df["top1_class"] != df["top2_class"]).all()
    assert set(df["model"]) == {"simple_cnn"} and set(df["run_id"]) == {"tiny-run"}
    assert str(df["time"].dt.tz) == "UTC"
    assert df["hash"].str.len().eq(64).all()

    errors = bulk.load_errors(out)
    assert sorted(Path(p).name for p in errors["path"]) == ["not_an_image.jpg", "truncated.png"]
    assert errors["reason"].str.len().gt(0).all()
    assert df.attrs["n_errors"] == 2 and df.attrs["results_path"] == str(out)
    # Several part files were written as it went; the folder reads as one table.
    assert len(list(out.glob("part-*.parquet"))) >= 3
    pd.testing.assert_frame_equal(bulk.load_results(out), df)
    assert len(pd.read_parquet(out)) == 23  # error files are hidden from plain readers


def test_results_match_the_training_decode(ws_run, pool, tmp_path):
    from imgcls.inputs import load_images

    ws, run = ws_run
    df = bulk.identify(ws, pool, run=run, out=tmp_path / "r.parquet", batch_size=8, progress=False)
    images, ok, _ = load_images(df["path"].tolist(), (32, 32))
    assert ok.all()
    probs = run.model.predict(images.astype("float32"), verbose=0)
    np.testing.assert_allclose(df["top1_score"], probs.max(axis=1), rtol=1e-4, atol=1e-6)
    assert df["top1_class"].tolist() == [CLASSES[i] for i in probs.argmax(axis=1)]


def test_production_run_default_out_and_no_duplicates(ws_run, pool):
    ws, run = ws_run
    ws.production_file.write_text(json.dumps({"run_id": run.run_id}))
    try:
        first = bulk.identify(ws, pool, batch_size=8, progress=False)
        out = ws.bulk / f"{run.run_id}-pool.parquet"
        assert first.attrs["results_path"] == str(out)
        again = bulk.identify(ws, pool, batch_size=8, progress=False)  # nothing new
        pd.testing.assert_frame_equal(first, again)
        assert len(list(out.glob("part-*.parquet"))) == 1
        assert len(bulk.load_errors(out)) == 2  # errors are not retried either
        # A list repeating paths, some already done: each image is recorded once.
        paths = sorted(pool.rglob("*.png"))
        listed = bulk.identify(ws, paths + paths[:3], out=out, progress=False)
        assert listed["path"].is_unique and len(listed) == 23
    finally:
        ws.production_file.unlink()


def test_identify_options_and_refusals(ws_run, pool, tmp_path):
    ws, run = ws_run
    out = tmp_path / "k2.parquet"
    df = bulk.identify(ws, pool, run=run, out=out, top_k=5, progress=False)  # top_k capped at 3 classes
    assert list(df.columns) == bulk.result_columns(3)
    with pytest.raises(ValueError, match="k=3"):
        bulk.identify(ws, pool, run=run, out=out, top_k=2, progress=False)
    df2 = bulk.identify(ws, pool, run=run, out=out, top_k=2, resume=False, progress=False)
    assert list(df2.columns) == bulk.result_columns(2) and len(df2) == 23

    from imgcls.models import create_model
    from imgcls.runs import save_run

    other = save_run(ws, create_model("simple_cnn", 2, input_shape=(32, 32, 3), seed=1),
                     classes=["a", "b"], run_id="other-run")
    with pytest.raises(ValueError, match="tiny-run"):
        bulk.identify(ws, pool, run=other, out=out, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        bulk.identify(ws, pool, run=run, batch_size=0)
    with pytest.raises(FileNotFoundError):
        bulk.identify(ws, tmp_path / "missing", run=run)
    with pytest.raises(ValueError, match="workspace"):
        bulk.identify(None, pool)  # no workspace


def test_identify_unknown_and_in_unknown(ws_run, tmp_path):
    ws, run = ws_run
    write_images(ws.unknown, 5, seed=3, nested=False)
    (ws.library / "cow").mkdir(parents=True, exist_ok=True)
    write_images(ws.library / "cow", 3, seed=4, nested=False)
    res = bulk.identify_unknown(ws, run=run, progress=False)
    assert len(res) == 5 and res["relpath"].str.startswith("unknown/").all()
    assert res.attrs["results_path"] == str(ws.bulk / f"{run.run_id}-unknown.parquet")
    assert len(bulk.in_unknown(res, ws)) == 5
    # A pool copy of an unknown image is found by content hash.
    copy = tmp_path / "incoming" / "copy.png"
    copy.parent.mkdir()
    src = sorted(ws.unknown.rglob("*.png"))[0]
    copy.write_bytes(src.read_bytes())
    pool_res = bulk.identify(ws, [copy], run=run, out=tmp_path / "in.parquet", progress=False)
    assert bulk.in_unknown(pool_res, ws)["path"].tolist() == [str(copy)]
