"""Tests for imgcls.ui.thumbnails: the disk cache by content hash, placeholders,
turns and EXIF orientation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from ui_results import make_workspace, results_for

from imgcls.core import file_hash
from imgcls.library import Library
from imgcls.ui import ReviewGrid, ThumbnailCache


@pytest.fixture
def ws(tmp_path):
    """A small workspace: 4 classes x 3 images, 60 pool images in nested folders."""
    return make_workspace(tmp_path / "ws")


def test_thumbnail_cache_is_reused_without_reading_originals(ws):
    res = results_for(ws)
    grid = ReviewGrid(res, Library(ws), page_size=48)
    assert grid.thumbnails.misses == 48 and grid.thumbnails.hits == 0
    thumbs = sorted((ws.cache_dir / "thumbs").glob("*.jpg"))
    assert len(thumbs) == 48
    assert {t.name for t in thumbs} == {f"{h}_128.jpg" for h in res["hash"].iloc[:48]}
    first = [t.image.value for t in grid.tiles]
    assert all(v[:2] == b"\xff\xd8" for v in first)  # JPEG bytes

    # Spoil the originals: a second render that read them would fail or differ.
    for p in res["path"].iloc[:48]:
        Path(p).write_bytes(b"not an image any more")
    grid2 = ReviewGrid(res, Library(ws), page_size=48)
    assert grid2.thumbnails.misses == 0 and grid2.thumbnails.failures == 0 and grid2.thumbnails.hits == 48
    assert [t.image.value for t in grid2.tiles] == first
    grid2.next_button.click()                   # a page never shown: made now (12 images)
    assert grid2.thumbnails.misses == 12
    grid2.prev_button.click()                   # back: all 48 from the cache, fast
    assert grid2.thumbnails.misses == 12 and grid2.thumbnails.hits == 96
    assert grid2.last_render_seconds < 0.5, grid2.last_render_seconds


def test_unreadable_image_gets_a_placeholder(ws, tmp_path):
    cache = ThumbnailCache(tmp_path / "thumbs", size=64)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    data = cache.get(bad)
    assert data == cache.placeholder() and cache.failures == 1
    assert cache.get(tmp_path / "missing.png") == cache.placeholder() and cache.failures == 2
    good = tmp_path / "wide.png"
    Image.new("RGB", (200, 100), (10, 200, 30)).save(good)
    img = Image.open(io.BytesIO(cache.get(good, turns=1)))
    assert img.size == (32, 64)                 # aspect kept, turned upright first
    assert (tmp_path / "thumbs" / f"{file_hash(good)}_64_t1.jpg").exists()
    with pytest.raises(ValueError, match="`size` must be"):
        ThumbnailCache(tmp_path, size=4)


def test_thumbnails_are_upright_and_keep_the_aspect(tmp_path):
    cache = ThumbnailCache(tmp_path / "thumbs", size=64)
    exif = Image.Exif()
    exif[0x0112] = 6                            # stored sideways: upright is 100 wide, 300 high
    rotated = tmp_path / "sideways.jpg"
    Image.new("RGB", (300, 100), (200, 30, 30)).save(rotated, exif=exif.tobytes(), quality=90)
    assert Image.open(io.BytesIO(cache.get(rotated))).size == (21, 64)
    assert Image.open(io.BytesIO(cache.get(rotated, turns=1))).size == (64, 21)
    small = tmp_path / "small.jpg"
    Image.new("RGB", (40, 20), (10, 10, 200)).save(small)
    assert Image.open(io.BytesIO(cache.get(small))).size == (40, 20)  # never enlarged
    big = tmp_path / "big.png"
    Image.new("RGB", (640, 320), (10, 200, 30)).save(big)
    assert Image.open(io.BytesIO(cache.get(big, turns=3))).size == (32, 64)
    assert cache.misses == 4 and cache.failures == 0
    with pytest.raises(ValueError, match="`quality` must be an int in"):
        ThumbnailCache(tmp_path, quality=0)
