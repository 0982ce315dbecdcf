"""Shared pieces of the imgcls.library tests: small distinct pictures in a workspace."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def png(path: Path, seed: int, size: int = 32) -> Path:
    """A small picture (coloured ellipses on a plain ground): distinct seeds
    give perceptual hashes far apart, as distinct photos do."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.integers(0, size - 8, 2)
        w, h = rng.integers(6, size // 2 + 4, 2)
        draw.ellipse([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    img.save(path)
    return path


def tree(ws, spec: dict[str, int]) -> dict[str, list[Path]]:
    out, seed = {}, 0
    for label, n in spec.items():
        out[label] = []
        for i in range(n):
            seed += 1
            out[label].append(png(ws.library / label / f"{label}_{i}.png", seed))
    return out


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }
