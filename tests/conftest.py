"""Shared pytest fixtures for the imgcls test suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def write_image(tmp_path):
    """Factory: write a small real image file under ``tmp_path`` and return its path.

    ``write_image("cat/a.png")`` writes a 32x32 red PNG (parent folders are
    created). Pass ``array`` (uint8, (H, W, 3) or (H, W)) or ``size``/``color``,
    and ``format`` when the name's extension should not decide it; extra
    keyword arguments go to ``PIL.Image.Image.save``.
    """

    def _write(
        name: str | Path,
        array: np.ndarray | None = None,
        *,
        size: tuple[int, int] = (32, 32),
        color: tuple[int, int, int] = (255, 0, 0),
        format: str | None = None,
        **save_kwargs,
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if array is None:
            image = Image.new("RGB", (size[1], size[0]), color)
        else:
            image = Image.fromarray(np.asarray(array, dtype=np.uint8))
        image.save(path, format=format, **save_kwargs)
        return path

    return _write


#: The one zoo sample of a test session: 48 px images, 600 pool images, seed 0.
ZOO_SAMPLE = dict(image_size=48, pool_size=600, seed=0)


def copy_workspace(src, dest):
    """Copy a workspace folder to ``dest`` (its ``.imgcls/`` caches left behind) and open it."""
    import shutil

    from imgcls.core import open_workspace

    shutil.copytree(src.root, dest, symlinks=True, ignore=shutil.ignore_patterns(".imgcls"))
    return open_workspace(dest, cutoff=src.cutoff, create=False)


@pytest.fixture(scope="session")
def zoo_sample_template(tmp_path_factory):
    """The zoo sample built once per test session (:data:`ZOO_SAMPLE`).

    Never change it: tests that change a workspace take a copy (the
    ``zoo_sample`` fixture, or :func:`copy_workspace` in a module-scoped fixture).
    """
    from imgcls.sample import build_sample

    return build_sample(tmp_path_factory.mktemp("zoo-template") / "zoo", **ZOO_SAMPLE)


@pytest.fixture
def zoo_sample(zoo_sample_template, tmp_path):
    """A private copy of the session's zoo sample, for one test."""
    return copy_workspace(zoo_sample_template, tmp_path / "zoo")


# --- the transaction log on both engines (imgcls.translog) --------------------
@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the whole session (tests/postgres_server.py); skipped without one."""
    from postgres_server import PostgresServer, find_bindir

    pytest.importorskip("psycopg", reason="the postgres extra (psycopg 3) is not installed")
    if find_bindir() is None:
        pytest.skip("PostgreSQL binaries not found (make test installs Debian's postgresql)")
    server = PostgresServer(fsync=False).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log_url(request, tmp_path):
    """A fresh, empty log's URL on each engine: ``sqlite:///<tmp>/log.sqlite``, then a new PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "log.sqlite")
    return request.getfixturevalue("postgres_server").new_database()
