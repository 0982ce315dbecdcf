"""What decoding an image will cost in memory, read from its header before any pixel is decoded.

A pixel limit alone does not bound memory: an 8000x8000 PNG with 16-bit RGBA
samples has the same pixel count as an 8-bit greyscale one but costs many
times the memory to decode. :func:`decode_cost` opens only the header (as
:func:`imgcls.core.read_image_resized` would, with the same format whitelist)
and returns the *decode cost in bytes*: the pixels that will be decoded
(after the reduced JPEG decoding of ``Image.draft`` when a target size is
given) times the working bytes per pixel of that colour mode.

The bytes per pixel (:data:`BYTES_PER_PIXEL`) are the peak memory of
:func:`~imgcls.core.read_image_resized` per decoded pixel, measured on 9 MP
images of every mode and format it decodes (Pillow 11/12, numpy 2), rounded
up: Pillow keeps RGB as 4 bytes a pixel; an image with transparency is
composited on white in 16-bit arithmetic at full size (~24 bytes a pixel,
whether its samples have 8 or 16 bits: Pillow decodes 16-bit RGBA to 8 bits
at once); 16-bit greyscale is scaled down through 64-bit integers (~20);
WebP decodes through its own buffers (~17, ~34 with alpha). A JPEG decoded
reduced to a small target costs only its reduced pixels.

This module imports only the standard library and Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from imgcls.core.imagefiles import PathLike, open_regular_file

__all__ = ["BYTES_PER_PIXEL", "RGB_BYTES_PER_PIXEL", "DecodeCost", "decode_cost"]

#: Working bytes per decoded pixel, by kind of image (see the module docstring).
BYTES_PER_PIXEL = {
    "rgb": 4.5,  # RGB, RGBX, YCbCr, 16-bit RGB (decoded to 8 bits)
    "grey": 5.5,  # L, P, 1 (expanded to RGB)
    "cmyk": 9.0,
    "alpha": 24.5,  # RGBA, LA, PA, or any mode with a transparency key
    "wide": 20.0,  # I;16*, I, F (16/32-bit samples scaled to 8 bits)
    "webp": 17.0,
    "webp_alpha": 34.5,
    "other": 24.5,
}
#: An 8-bit RGB image's cost per pixel: ``max_pixels * RGB_BYTES_PER_PIXEL`` is a
#: decode budget that still admits an RGB image at the pixel limit.
RGB_BYTES_PER_PIXEL = BYTES_PER_PIXEL["rgb"]

_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")  # imgcls.core.images.SUPPORTED_FORMATS
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


@dataclass(frozen=True)
class DecodeCost:
    """What decoding one image will cost.

    Attributes:
        width, height: Stored size from the header.
        mode: Pillow's colour mode; format: Pillow's format name.
        decoded_pixels: Pixels actually decoded (fewer for a reduced JPEG).
        bytes_per_pixel: Working bytes per decoded pixel for this kind of image.
        bytes: The decode cost in bytes (``decoded_pixels * bytes_per_pixel``).
        kind: The key of :data:`BYTES_PER_PIXEL` used.
    """

    width: int
    height: int
    mode: str
    format: str
    decoded_pixels: int
    bytes_per_pixel: float
    bytes: int
    kind: str

    def describe(self) -> str:
        """E.g. ``"8000x8000 PNG RGBA: 1,568,000,000 bytes to decode"``."""
        return (f"{self.width}x{self.height} {self.format} {self.mode}: "
                f"{self.bytes:,} bytes to decode ({self.bytes_per_pixel:g} bytes a pixel)")


def _kind(image: Image.Image) -> str:
    mode, fmt = image.mode, image.format or ""
    alpha = mode in _ALPHA_MODES or "transparency" in image.info
    if fmt == "WEBP":
        return "webp_alpha" if alpha else "webp"
    if alpha:
        return "alpha"
    if mode.startswith("I") or mode == "F":
        return "wide"
    if mode in ("RGB", "RGBX", "YCbCr"):
        return "rgb"
    if mode in ("L", "P", "1"):
        return "grey"
    if mode == "CMYK":
        return "cmyk"
    return "other"


def decode_cost(path: PathLike, *, target: tuple[int, int] | None = None,
                root: PathLike | None = None) -> DecodeCost | None:
    """The memory decoding ``path`` will take, from its header alone.

    Args:
        path: The image file.
        target: ``(height, width)`` it will be resized to: a JPEG is then
            decoded reduced (``Image.draft``, as
            :func:`~imgcls.core.read_image_resized` does) and costs only its
            reduced pixels.
        root: As for :func:`~imgcls.core.read_image`.

    Returns:
        A :class:`DecodeCost`, or None when the header cannot be read (the
        decoder then says why the file is refused).
    """
    try:
        with open_regular_file(path, root=root) as fh:
            with Image.open(fh, formats=_FORMATS) as image:
                width, height = image.size
                kind = _kind(image)
                decoded = (width, height)
                if target is not None and image.format in ("JPEG", "MPO"):
                    decoded = _drafted_size(image, target)
                per_pixel = BYTES_PER_PIXEL[kind]
                pixels = int(decoded[0]) * int(decoded[1])
                return DecodeCost(int(width), int(height), image.mode, image.format or "",
                                  pixels, per_pixel, int(pixels * per_pixel), kind)
    except Exception:  # noqa: BLE001 - an unreadable header: the decoder says why
        return None


def _drafted_size(image: Any, target: tuple[int, int]) -> tuple[int, int]:
    """The size a JPEG decodes at when asked for at least twice ``target`` (either orientation)."""
    height, width = target
    side = 2 * max(height, width)  # the larger side covers EXIF / quarter-turn swaps
    try:
        image.draft(None, (side, side))
    except Exception:  # noqa: BLE001 - draft is only an optimisation
        return image.size
    return image.size
