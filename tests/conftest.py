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
