"""JPEG thumbnails of library and pool images, made once and cached on disk by content hash.

Pixels come from :mod:`imgcls.core`'s safe readers (EXIF orientation applied
there, JPEG decoded at a reduced scale); this module only picks the size,
turns, encodes and caches. It never imports TensorFlow.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from imgcls.core import (
    ImageError,
    check_int,
    file_hash,
    image_info,
    read_image,
    read_image_resized,
)
from imgcls.core.fileio import write_atomic

__all__ = ["ThumbnailCache"]

# File endings whose content is usually JPEG: worth a reduced-scale decode.
_JPEG_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe"})


class ThumbnailCache:
    """JPEG thumbnails made once and kept on disk by content hash.

    A thumbnail is ``folder/<hash>_<size>.jpg`` (``_t<turns>`` added when the
    image is turned upright first). The hash is the file's content hash
    (:func:`imgcls.core.file_hash`, the ``hash`` column of results tables
    and the catalog), so a cached thumbnail is found again after the image
    was moved or renamed, and a changed file gets a new one.

    Args:
        folder: Where the thumbnails live, e.g. ``workspace.cache_dir / "thumbs"``.
        size: Longest side of a thumbnail in pixels (aspect ratio kept).
        quality: JPEG quality.

    Attributes:
        hits: Thumbnails served from the disk cache.
        misses: Thumbnails made by decoding the original image.
        failures: Images that could not be read (a placeholder was served).
    """

    def __init__(self, folder: str | os.PathLike, *, size: int = 128, quality: int = 85):
        self.size = check_int(size, "size", 16, high=1024)
        self.quality = check_int(quality, "quality", 1, high=95)
        self.folder = Path(os.fspath(folder)).expanduser()
        self.hits = 0
        self.misses = 0
        self.failures = 0
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._placeholder: bytes | None = None

    def file_for(self, digest: str, *, turns: int = 0) -> Path:
        """The cache file of the image with content hash ``digest``.

        Args:
            digest: The image's content hash.
            turns: Quarter turns counter-clockwise applied to it.
        """
        suffix = f"_t{turns % 4}" if turns % 4 else ""
        return self.folder / f"{digest}_{self.size}{suffix}.jpg"

    def _digest(self, path: str) -> str:
        st = os.stat(path)
        key = (path, int(st.st_size), int(st.st_mtime_ns))
        digest = self._hashes.get(key)
        if digest is None:
            digest = self._hashes[key] = file_hash(path)
        return digest

    def for_row(self, row: dict) -> bytes:
        """The thumbnail of a results row (a dict): its ``path``, with its ``hash`` and ``turns`` if present."""
        digest, turns = row.get("hash"), row.get("turns")
        turns = 0 if turns is None or (isinstance(turns, float) and turns != turns) else int(turns)
        return self.get(row["path"], digest=str(digest) if digest else None, turns=turns)

    def get(self, path: str | os.PathLike, *, digest: str | None = None, turns: int = 0) -> bytes:
        """JPEG bytes of the thumbnail of ``path`` (made and cached if needed).

        Args:
            path: The image file.
            digest: Its content hash if known (then the file is not read at
                all when the thumbnail is cached).
            turns: Quarter turns counter-clockwise to make it upright.

        Returns:
            JPEG bytes; a grey placeholder if the image cannot be read.
        """
        path = os.fspath(path)
        try:
            digest = digest or self._digest(path)
        except (OSError, ImageError):
            self.failures += 1
            return self.placeholder()
        target = self.file_for(digest, turns=turns)
        try:
            data = target.read_bytes()
            self.hits += 1
            return data
        except OSError:
            pass
        try:
            pixels = self._upright_pixels(path, turns)
        except ImageError:
            self.failures += 1
            return self.placeholder()
        data = self._encode(pixels)
        self._store(target, data)
        self.misses += 1
        return data

    def _upright_pixels(self, path: str, turns: int) -> np.ndarray:
        """The upright image, already at thumbnail size where a reduced decode pays (JPEG).

        Raises:
            ImageError: The file cannot be read.
        """
        if Path(path).suffix.lower() in _JPEG_SUFFIXES:
            info = image_info(path)  # upright size (EXIF applied); JPEG decoded at 1/8 scale
            width, height = info["width"], info["height"]
            if turns % 2:
                width, height = height, width
            longest = max(width, height)
            if longest > self.size and min(width, height) >= 1:
                scale = self.size / longest
                size = max(1, round(height * scale)), max(1, round(width * scale))
                return read_image_resized(path, size, turns=turns)
        pixels = read_image(path)
        if turns % 4:
            pixels = np.ascontiguousarray(np.rot90(pixels, k=turns % 4))
        return pixels

    def _encode(self, pixels: np.ndarray) -> bytes:
        from PIL import Image

        image = Image.fromarray(pixels)
        image.thumbnail((self.size, self.size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=self.quality)
        return buf.getvalue()

    def _store(self, target: Path, data: bytes) -> None:
        try:
            write_atomic(target, data)
        except OSError:
            pass  # a read-only workspace still shows thumbnails, uncached

    def placeholder(self) -> bytes:
        """A grey square with a red cross, shown for images that cannot be read."""
        if self._placeholder is None:
            pixels = np.full((self.size, self.size, 3), 205, np.uint8)
            k = max(2, self.size // 24)
            idx = np.arange(self.size)
            for d in range(-k, k + 1):  # a red cross
                j = np.clip(idx + d, 0, self.size - 1)
                pixels[idx, j] = (192, 57, 43)
                pixels[idx, self.size - 1 - j] = (192, 57, 43)
            self._placeholder = self._encode(pixels)
        return self._placeholder
