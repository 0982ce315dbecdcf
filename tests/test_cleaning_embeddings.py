"""imgcls.cleaning.embeddings: the "avg_pool" features of the library, cached per run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from imgcls.cleaning import (
    EMBEDDINGS_DIR,
    embed_images,
    embedding_run,
    library_embeddings,
)
from imgcls.library import Library


@pytest.fixture
def colour_ws(tmp_path):
    from cleaning_library import colour_library, save_colour_run

    ws, _ = colour_library(tmp_path / "ws", per_class=5)
    save_colour_run(ws, "g1")
    save_colour_run(ws, "g2", parent="g1")
    return ws


def mean_colour(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64).mean(axis=(0, 1)) / 255


def test_embedding_run_is_the_runs_own_or_its_parent(colour_ws):
    run, source = embedding_run("g2", workspace=colour_ws)
    assert (run.run_id, source) == ("g2", "own")
    run, source = embedding_run("g2", workspace=colour_ws, prefer_parent=True)
    assert (run.run_id, source) == ("g1", "parent")
    run, source = embedding_run("g1", workspace=colour_ws, prefer_parent=True)
    assert (run.run_id, source) == ("g1", "own")  # a generation-1 run has no parent


def test_embedding_run_falls_back_to_its_own_when_the_parent_is_gone(colour_ws):
    from cleaning_library import save_colour_run

    save_colour_run(colour_ws, "orphan", parent="deleted-run")
    run, source = embedding_run("orphan", workspace=colour_ws, prefer_parent=True)
    assert (run.run_id, source) == ("orphan", "own")


def test_library_embeddings_are_the_avg_pool_output(colour_ws):
    emb = library_embeddings(colour_ws, "g2", prefer_parent=True)
    assert (emb.run_id, emb.source, emb.for_run) == ("g1", "parent", "g2")
    assert len(emb) == 20 and emb.dim == 3
    for row, feat in zip(emb.rows.itertuples(), emb.features):
        assert np.allclose(feat, mean_colour(row.path), atol=2e-3)
    assert set(emb.rows["label"]) == {"red", "green", "blue", "yellow"}


def test_embeddings_are_cached_per_run_by_content_hash(colour_ws):
    first = library_embeddings(colour_ws, "g2", prefer_parent=True)
    cache = colour_ws.runs / "g1" / EMBEDDINGS_DIR
    (path,) = list(cache.iterdir())
    stamp = path.stat().st_mtime_ns
    again = library_embeddings(colour_ws, "g2", prefer_parent=True)
    assert path.stat().st_mtime_ns == stamp  # nothing embedded, nothing written
    assert np.array_equal(first.features, again.features)
    # A moved picture keeps its cached features (same content); a new one is added.
    Library(colour_ws).move("library/red/red_01.png", "green")
    from cleaning_library import picture

    picture(colour_ws.library / "blue" / "new.png", (40, 40, 200), 777)
    grown = library_embeddings(colour_ws, "g2", prefer_parent=True)
    assert len(grown) == 21
    with np.load(path) as data:
        assert len(data["keys"]) == 21
    moved = grown.rows.index[grown.rows["relpath"] == "green/red_01.png"][0]
    assert grown.rows.at[moved, "label"] == "green"
    assert np.allclose(grown.features[moved], mean_colour(colour_ws.library / "green" / "red_01.png"), atol=2e-3)
    # cache=False reads and writes nothing
    os.remove(path)
    library_embeddings(colour_ws, "g2", prefer_parent=True, cache=False)
    assert not path.exists()


def test_unreadable_files_are_left_out(colour_ws):
    bad = colour_ws.library / "red" / "broken.png"
    bad.write_bytes(b"not an image")
    emb = library_embeddings(colour_ws, "g1")
    assert "red/broken.png" not in set(emb.rows["relpath"]) and len(emb) == 20


def test_embed_images_reports_files_it_cannot_decode(colour_ws):
    good = sorted((colour_ws.library / "red").iterdir())[0]
    feats, ok, skipped = embed_images("g1", [good, colour_ws.root / "missing.png"], workspace=colour_ws)
    assert feats.shape == (2, 3) and ok.tolist() == [True, False]
    assert skipped and skipped[0][0].endswith("missing.png")


def test_a_model_without_avg_pool_is_refused(colour_ws):
    import keras

    from imgcls.runs import save_run

    inp = keras.Input((32, 32, 3))
    out = keras.layers.Dense(4, activation="softmax", name="predictions")(keras.layers.Flatten()(inp))
    save_run(colour_ws, keras.Model(inp, out), classes=["blue", "green", "red", "yellow"], run_id="flat")
    with pytest.raises(ValueError, match="avg_pool"):
        library_embeddings(colour_ws, "flat")


def test_importing_the_package_loads_no_tensorflow():
    code = ("import sys, json, imgcls.cleaning; "
            "print(json.dumps([m for m in ('tensorflow', 'keras', 'sklearn', 'cleanlab') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
