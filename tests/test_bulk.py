"""Tests for imgcls.bulk: bulk identification (streaming, resume after a real
SIGKILL, errors) and the filters on the results table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imgcls import bulk as bulk  # noqa: E402
from imgcls.core import open_workspace  # noqa: E402

CLASSES = ["antelope", "cow", "zebra"]


# --------------------------------------------------------------------------
# Fixtures: a tiny real run and folders of tiny real images
# --------------------------------------------------------------------------
def _write_images(folder: Path, n: int, *, seed: int, nested: bool = True, size: int = 32) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        sub = folder / f"batch_{i % 3}" / ("deeper" if nested and i % 5 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        pixels[: size // 2] = rng.integers(0, 256, 3, dtype=np.uint8)  # some structure per image
        p = sub / f"img_{i:04d}.{'jpg' if i % 4 == 0 else 'png'}"
        Image.fromarray(pixels).save(p)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def ws_run(tmp_path_factory):
    """A workspace with a tiny simple_cnn (32x32, 3 classes) saved as a real run."""
    from imgcls.models import create_model
    from imgcls.runs import save_run

    ws = open_workspace(tmp_path_factory.mktemp("bulk") / "ws")
    model = create_model("simple_cnn", len(CLASSES), input_shape=(32, 32, 3), seed=0)
    run = save_run(ws, model, classes=CLASSES, run_id="tiny-run", config={"model": "simple_cnn"})
    return ws, run


@pytest.fixture
def pool(tmp_path):
    folder = tmp_path / "pool"
    paths = _write_images(folder, 23, seed=1)
    (folder / "batch_1" / "not_an_image.jpg").write_text("<html>404 Not Found</html>")
    good = paths[1].read_bytes()
    (folder / "batch_2" / "truncated.png").write_bytes(good[: len(good) // 3])
    return folder


# --------------------------------------------------------------------------
# identify
# --------------------------------------------------------------------------
def test_identify_folder_any_depth_with_bad_files(ws_run, pool, tmp_path):
    ws, run = ws_run
    out = tmp_path / "res.parquet"
    df = bulk.identify(pool, run=run, out=out, k=3, batch_size=4, chunk_size=6, progress=False)

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
    df = bulk.identify(pool, run=run, out=tmp_path / "r.parquet", batch_size=8, progress=False)
    images, ok, _ = load_images(df["path"].tolist(), (32, 32))
    assert ok.all()
    probs = run.model.predict(images.astype("float32"), verbose=0)
    np.testing.assert_allclose(df["top1_score"], probs.max(axis=1), rtol=1e-4, atol=1e-6)
    assert df["top1_class"].tolist() == [CLASSES[i] for i in probs.argmax(axis=1)]


def test_production_run_default_out_and_no_duplicates(ws_run, pool):
    ws, run = ws_run
    ws.production_file.write_text(json.dumps({"run_id": run.run_id}))
    try:
        first = bulk.identify(pool, workspace=ws, batch_size=8, progress=False)
        out = ws.bulk / f"{run.run_id}-pool.parquet"
        assert first.attrs["results_path"] == str(out)
        again = bulk.identify(pool, workspace=ws, batch_size=8, progress=False)  # nothing new
        pd.testing.assert_frame_equal(first, again)
        assert len(list(out.glob("part-*.parquet"))) == 1
        assert len(bulk.load_errors(out)) == 2  # errors are not retried either
        # A list repeating paths, some already done: each image is recorded once.
        paths = sorted(pool.rglob("*.png"))
        listed = bulk.identify(paths + paths[:3], workspace=ws, out=out, progress=False)
        assert listed["path"].is_unique and len(listed) == 23
    finally:
        ws.production_file.unlink()


def test_resume_after_sigkill_matches_uninterrupted_run(ws_run, tmp_path):
    ws, run = ws_run
    folder = tmp_path / "big"
    _write_images(folder, 240, seed=2, nested=False)
    (folder / "batch_0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    killed_out = tmp_path / "killed.parquet"
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        from imgcls import bulk as bulk
        bulk.identify({str(folder)!r}, run={str(run.path)!r}, out={str(killed_out)!r},
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

    resumed = bulk.identify(folder, run=run, out=killed_out, batch_size=4, chunk_size=8, progress=False)
    whole = bulk.identify(folder, run=run, out=tmp_path / "whole.parquet", batch_size=32, progress=False)

    assert resumed["path"].is_unique and len(resumed) == 240
    assert resumed["path"].iloc[: len(before)].tolist() == before["path"].tolist()  # kept, not redone
    a = resumed.sort_values("path").reset_index(drop=True)
    b = whole.sort_values("path").reset_index(drop=True)
    cols = [c for c in bulk.RESULT_COLUMNS if c != "time"]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=False, atol=1e-5, rtol=1e-4)
    assert bulk.load_errors(killed_out)["path"].map(lambda p: Path(p).name).tolist() == ["broken.jpg"]
    assert json.loads((killed_out / "_meta.json").read_text())["complete"] is True


def test_identify_options_and_refusals(ws_run, pool, tmp_path):
    ws, run = ws_run
    out = tmp_path / "k2.parquet"
    df = bulk.identify(pool, run=run, out=out, k=5, progress=False)  # k capped at 3 classes
    assert list(df.columns) == bulk.result_columns(3)
    with pytest.raises(ValueError, match="k=3"):
        bulk.identify(pool, run=run, out=out, k=2, progress=False)
    df2 = bulk.identify(pool, run=run, out=out, k=2, resume=False, progress=False)
    assert list(df2.columns) == bulk.result_columns(2) and len(df2) == 23

    from imgcls.models import create_model
    from imgcls.runs import save_run

    other = save_run(ws, create_model("simple_cnn", 2, input_shape=(32, 32, 3), seed=1),
                     classes=["a", "b"], run_id="other-run")
    with pytest.raises(ValueError, match="tiny-run"):
        bulk.identify(pool, run=other, out=out, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        bulk.identify(pool, run=run, batch_size=0)
    with pytest.raises(FileNotFoundError):
        bulk.identify(tmp_path / "missing", run=run)
    with pytest.raises(ValueError, match="workspace"):
        bulk.identify(pool)  # no run, no workspace


def test_only_bad_files_gives_empty_table(ws_run, tmp_path):
    ws, run = ws_run
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    df = bulk.identify([bad, tmp_path / "gone.jpg"], run=run, out=tmp_path / "e.parquet", progress=False)
    assert len(df) == 0 and list(df.columns) == bulk.RESULT_COLUMNS
    assert len(bulk.load_errors(tmp_path / "e.parquet")) == 2


def test_identify_unknown_and_in_unknown(ws_run, tmp_path):
    ws, run = ws_run
    _write_images(ws.unknown, 5, seed=3, nested=False)
    (ws.library / "cow").mkdir(parents=True, exist_ok=True)
    _write_images(ws.library / "cow", 3, seed=4, nested=False)
    res = bulk.identify_unknown(ws, run, progress=False)
    assert len(res) == 5 and res["relpath"].str.startswith("unknown/").all()
    assert res.attrs["results_path"] == str(ws.bulk / f"{run.run_id}-unknown.parquet")
    assert len(bulk.in_unknown(res, ws)) == 5
    # A pool copy of an unknown image is found by content hash.
    copy = tmp_path / "incoming" / "copy.png"
    copy.parent.mkdir()
    src = sorted(ws.unknown.rglob("*.png"))[0]
    copy.write_bytes(src.read_bytes())
    pool_res = bulk.identify([copy], run=run, out=tmp_path / "in.parquet", progress=False)
    assert bulk.in_unknown(pool_res, ws)["path"].tolist() == [str(copy)]


def _colour_run(ws):
    """A run that predicts by the dominant colour channel: red antelope, green cow, blue zebra."""
    import keras

    from imgcls.runs import save_run

    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(pooled)
    model = keras.Model(inputs, outputs, name="colour_net")
    model.get_layer("predictions").set_weights([np.eye(3, dtype="float32") * 8, np.zeros(3, "float32")])
    return save_run(ws, model, classes=CLASSES, run_id="colour-run", config={"model": "colour_net"})


def _solid(path: Path, rgb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), rgb, np.uint8)).save(path)
    return path


def test_throwaway_candidates_target_only_classes_under_the_cutoff(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    run = _colour_run(ws)
    for cls, n in {"antelope": 42, "cow": 40, "zebra": 36}.items():  # only zebra is under 40
        _write_images(ws.library / cls, n, seed=len(cls), nested=False, size=16)
    pool = tmp_path / "pool"
    blue = [_solid(pool / f"blue_{i}.png", (40, 90 + 10 * i, 230)) for i in range(4)]      # zebra first
    green = [_solid(pool / "b" / f"green_{i}.png", (30, 220, 120 + 20 * i)) for i in range(3)]  # cow, then zebra
    others = [_solid(pool / f"red_{i}.png", (230, 120, 40)) for i in range(3)]               # antelope, then cow
    others.append(_solid(pool / "greenish_red.png", (150, 230, 20)))                        # cow, then antelope
    (pool / "b" / "not_an_image.jpg").write_text("<html>404</html>")

    cands = bulk.throwaway_candidates(run, ws, source=pool, batch_size=4, progress=False)
    assert cands.attrs["targets"] == ["zebra"] and cands.attrs["n_identified"] == 11
    assert (cands["candidate"] == "zebra").all()
    firsts, seconds = cands[cands["choice"] == 1], cands[cands["choice"] == 2]
    assert sorted(firsts["path"]) == sorted(map(str, blue)) and (firsts["top1_class"] == "zebra").all()
    assert sorted(seconds["path"]) == sorted(map(str, green))
    assert (seconds["top1_class"] == "cow").all() and (seconds["top2_class"] == "zebra").all()
    np.testing.assert_array_equal(firsts["candidate_score"], firsts["top1_score"])
    np.testing.assert_array_equal(seconds["candidate_score"], seconds["top2_score"])
    assert cands["choice"].tolist() == [1] * 4 + [2] * 3  # first choices first, each best score first
    assert firsts["candidate_score"].is_monotonic_decreasing and seconds["candidate_score"].is_monotonic_decreasing
    assert not set(map(str, others)) & set(cands["path"])
    assert len(bulk.load_errors(cands.attrs["results_path"])) == 1  # the bad file is reported

    # A candidate filed since (e.g. by an earlier review) is not offered again,
    # and nothing is identified twice.
    filed = ws.library / "zebra" / "filed.png"
    os.rename(blue[0], filed)
    again = bulk.throwaway_candidates(run, ws, source=pool, batch_size=4, progress=False)
    assert str(blue[0]) not in set(again["path"]) and len(again) == 6 and again.attrs["n_identified"] == 10
    assert len(bulk.load_results(again.attrs["results_path"])) == 11

    # With the usual cutoff lowered to 30 every class makes it: no targets, no candidates.
    none = bulk.throwaway_candidates(run, ws, source=pool, cutoff=30, progress=False)
    assert none.attrs["targets"] == [] and len(none) == 0


# --------------------------------------------------------------------------
# Filters on a hand-made table (no model)
# --------------------------------------------------------------------------
def _table() -> pd.DataFrame:
    rows = [
        # path, top1, s1, top2, s2, top3, s3
        ("/p/a.png", "antelope", 0.55, "zebra", 0.40, "cow", 0.05),
        ("/p/b.png", "antelope", 0.95, "cow", 0.04, "zebra", 0.01),
        ("/p/c.png", "cow", 0.34, "antelope", 0.33, "zebra", 0.33),
        ("/p/d.png", "zebra", 0.80, "cow", 0.15, "antelope", 0.05),
        ("/p/e.png", "antelope", 0.31, "cow", 0.29, "zebra", 0.28),
        ("/lib/unknown/f.png", "cow", 0.70, "zebra", 0.20, "antelope", 0.10),
        ("/p/g.png", "zebra", 0.99, "antelope", 0.005, "cow", 0.005),
    ]
    df = pd.DataFrame(rows, columns=["path", "top1_class", "top1_score", "top2_class", "top2_score",
                                     "top3_class", "top3_score"])
    probs = df[["top1_score", "top2_score", "top3_score"]].to_numpy()
    df.insert(1, "relpath", [p.split("/", 2)[2] for p in df["path"]])
    df.insert(2, "hash", [f"h{i}" for i in range(len(df))])
    df["entropy"] = -(probs * np.log(probs)).sum(axis=1)
    df["margin"] = df["top1_score"] - df["top2_score"]
    df["model"], df["run_id"] = "m", "r"
    df["time"] = pd.Timestamp("2026-01-01", tz="UTC")
    return df


def _names(df: pd.DataFrame) -> list[str]:
    return [Path(p).stem for p in df["path"]]


def test_low_count_classes():
    counts = pd.DataFrame({"label": ["antelope", "cow", "zebra"], "n": [90, 38, 36],
                           "staged": [0, 0, 36], "meets_cutoff": [True, False, False]})
    out = bulk.low_count_classes(_table(), counts, below=40)
    assert _names(out) == ["g", "d", "f", "c"]  # zebra (36) first, then cow (38); confident first
    assert out["class_count"].tolist() == [36, 36, 38, 38]
    assert _names(bulk.low_count_classes(_table(), {"antelope": 90, "cow": 38}, below=37)) == ["g", "d"]
    with pytest.raises(ValueError, match="below"):
        bulk.low_count_classes(_table(), counts, below=0)


def test_staged_classes_from_counts_and_catalog():
    counts = pd.DataFrame({"label": ["antelope", "cow", "zebra"], "n": [10, 10, 10], "staged": [0, 4, 10]})
    assert _names(bulk.staged_classes(_table(), counts)) == ["g", "d"]
    assert _names(bulk.staged_classes(_table(), counts, min_share=0.4)) == ["g", "d", "f", "c"]
    catalog = pd.DataFrame({
        "path": [f"/lib/x{i}.png" for i in range(6)],
        "label": ["cow", "cow", "cow", "zebra", "zebra", "antelope"],
        "readable": [True, True, False, True, True, True],
        "staged": [True, False, True, True, True, False],
    })
    out = bulk.staged_classes(_table(), catalog, min_share=0.5)  # cow: 1 of 2 readable staged
    assert set(out["top1_class"]) == {"cow", "zebra"}
    assert out.groupby("top1_class")["staged_share"].first().to_dict() == {"cow": 0.5, "zebra": 1.0}
    with pytest.raises(ValueError, match="min_share"):
        bulk.staged_classes(_table(), counts, min_share=2)


def test_look_alike_shows_second_choice():
    out = bulk.look_alike(_table(), "antelope", min_score=0.3, max_score=0.7)
    assert _names(out) == ["e", "a"]  # least confident first
    assert out["top2_class"].tolist() == ["cow", "zebra"]
    assert _names(bulk.look_alike(_table(), ["antelope", "cow"], min_score=0.3, max_score=0.7)) == \
        ["e", "c", "a", "f"]
    with pytest.raises(ValueError, match="min_score"):
        bulk.look_alike(_table(), "cow", min_score=0.8, max_score=0.2)


def test_in_unknown_by_path_and_hash():
    catalog = pd.DataFrame({"path": ["/lib/unknown/f.png", "/lib/unknown/other.png", "/lib/cow/x.png"],
                            "label": ["unknown", "unknown", "cow"], "hash": ["h5", "h3", "h1"]})
    assert _names(bulk.in_unknown(_table(), catalog)) == ["f", "d"]  # cow first, then zebra


def test_lowest_scores_and_sort_by():
    t = _table()
    assert _names(bulk.lowest_scores(t, n=3)) == ["e", "c", "a"]
    assert _names(bulk.lowest_scores(t, max_score=0.6)) == ["e", "c", "a"]
    assert len(bulk.lowest_scores(t)) == len(t)
    assert _names(bulk.sort_by(t, "score"))[:2] == ["g", "b"]
    assert _names(bulk.sort_by(t, "score", ascending=True))[:2] == ["e", "c"]
    assert _names(bulk.sort_by(t, "entropy"))[:2] == ["c", "e"]  # most uncertain first
    assert _names(bulk.sort_by(t, "margin"))[:2] == ["c", "e"]
    assert _names(bulk.sort_by(t, "class")) == ["b", "a", "e", "f", "c", "g", "d"]
    with pytest.raises(ValueError, match="key"):
        bulk.sort_by(t, "confidence")
    with pytest.raises(ValueError, match="top1_score"):
        bulk.lowest_scores(t.drop(columns="top1_score"))


def test_filters_combine():
    t = _table()
    out = bulk.sort_by(bulk.look_alike(bulk.lowest_scores(t, max_score=0.9), ["antelope", "cow"]), "margin")
    assert _names(out) == ["c", "e", "a", "f"]
    assert list(out.index) == list(range(len(out)))
    assert t.equals(_table())  # inputs are never modified


def test_precision_at_thresholds():
    t = _table()
    truth = pd.DataFrame({
        "path": t["path"],
        "label": ["zebra", "antelope", "cow", "zebra", "", "cow", "antelope"],  # e has no label
    })
    out = bulk.precision_at_thresholds(t, truth, thresholds=[0.0, 0.5, 0.9])
    assert list(out.columns) == ["threshold", "n_accepted", "share", "n_correct", "precision"]
    assert out["n_accepted"].tolist() == [6, 5, 2]
    assert out["n_correct"].tolist() == [4, 3, 1]
    np.testing.assert_allclose(out["precision"], [4 / 6, 3 / 5, 1 / 2])
    np.testing.assert_allclose(out["share"], [1.0, 5 / 6, 2 / 6])
    by_rel = bulk.precision_at_thresholds(t, truth.assign(relpath=t["relpath"]).drop(columns="path"),
                                          thresholds=[0.0, 0.5, 0.9])
    pd.testing.assert_frame_equal(by_rel, out)
    assert np.isnan(bulk.precision_at_thresholds(t, truth, thresholds=[1.0])["precision"].iloc[0])
