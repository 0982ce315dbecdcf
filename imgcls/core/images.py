"""Reading one image safely: pixels out, or an :class:`ImageError` with a reason.

Every image that enters ``imgcls`` goes through this module, so it is strict
about what it accepts and explicit about why it refuses a file:

* Only the formats behind :data:`imgcls.core.IMAGE_EXTENSIONS` are decoded
  (JPEG incl. MPO, PNG, GIF, BMP, WebP, TIFF), chosen by the file's content,
  not its name. Other Pillow plugins (EPS, PSD, ...) are never tried.
* The pixel count is checked from the header *before* any pixel is decoded
  (``max_pixels``), so a decompression bomb costs a few bytes of reading.
* Truncated files are refused, not padded with grey: Pillow's default
  ``ImageFile.LOAD_TRUNCATED_IMAGES = False`` is relied upon (and never set
  here); PNG files are additionally checked chunk by chunk up to ``IEND``.
* Only regular files are opened (never a FIFO, device or directory), a
  symbolic link may not leave ``root`` when one is given, and no global Pillow
  or ``warnings`` state is changed, so the functions are safe to call from
  several threads (e.g. a ``tf.data`` pipeline). Pillow's own guard still
  runs: its ``DecompressionBombError`` (above ``2 * PIL.Image.MAX_IMAGE_PIXELS``,
  about 179 Mpx) becomes an ``ImageError``; its ``DecompressionBombWarning``
  (above about 89 Mpx) is left as a warning, because escalating it would mean
  editing the process-wide warning filters, and with the default
  ``max_pixels`` (64 Mpx) such an image is refused by this module anyway.

For a library scan, :func:`probe_image` is the one call per file: it never
raises for a bad file and returns ``readable``, ``error``, ``kind``,
``width``, ``height`` and ``format``, decoding the whole file (JPEG at 1/8
scale, which still reads every compressed byte). Pair it with
:func:`~imgcls.core.file_hash` for the content hash.

Pixels come out as ``uint8`` RGB arrays of shape ``(height, width, 3)`` with
the EXIF orientation applied, transparency composited on white and 16-bit
samples scaled to 8 bits.

Files are opened by :mod:`imgcls.core.imagefiles`; the reasons a bad file is
refused are written in :mod:`imgcls.core.sniff`. This module imports only the
standard library, numpy and Pillow.
"""

from __future__ import annotations

import operator
import os
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgcls.core.checks import check_int, shown
from imgcls.core.imagefiles import ImageError, PathLike, open_regular_file
from imgcls.core.sniff import (
    SNIFF_BYTES,
    decode_error,
    header_error,
    unidentified_error,
)
from imgcls.core.workspace import DEFAULT_MAX_PIXELS

__all__ = [
    "ImageError",
    "read_image",
    "read_image_resized",
    "image_info",
    "probe_image",
    "SUPPORTED_FORMATS",
]

#: Pillow format names that are decoded. Anything else is refused, whatever
#: the file is called. (Pillow's JPEG opener also returns ``"MPO"``, the
#: multi-picture JPEG many cameras write.)
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")

_JPEG_FORMATS = ("JPEG", "MPO")
_EXIF_ORIENTATION = 0x0112
# EXIF orientations 5-8 swap width and height.
_SWAPS_AXES = frozenset({5, 6, 7, 8})
# Quarter turns counter-clockwise (np.rot90 convention) -> Pillow transpose.
_TURNS = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def read_image(
    path: PathLike,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    root: PathLike | None = None,
) -> np.ndarray:
    """Read an image file as RGB pixels.

    Args:
        path: The image file. Its extension does not matter; its content does.
        max_pixels: Refuse images whose header claims more pixels than this
            (decompression-bomb guard), before decoding anything. ``None``
            switches this check off; Pillow's own process-wide limit
            (``PIL.Image.MAX_IMAGE_PIXELS``, about 179 million pixels for an
            outright error) still applies.
        root: If given, the file (after resolving symbolic links) must lie
            inside this folder (after resolving it too).

    Returns:
        A writable ``uint8`` array of shape ``(height, width, 3)``, RGB, with
        the EXIF orientation applied, alpha composited on white, 16-bit
        samples scaled to 8 bits and, for animations, the first frame.

    Raises:
        ImageError: The file is missing, not a regular file, outside ``root``,
            empty, not a supported image, truncated, corrupt or too large.
            No ``OSError`` or Pillow exception escapes.
        ValueError: ``max_pixels`` is not a positive int or ``None``.
    """
    _check_max_pixels(max_pixels)
    image, _ = _load_rgb(path, max_pixels=max_pixels, root=root)
    return _to_array(image)


def read_image_resized(
    path: PathLike,
    size: tuple[int, int],
    *,
    turns: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    root: PathLike | None = None,
) -> np.ndarray:
    """Read an image, turn it upright and resize it to exactly ``size``.

    The EXIF orientation is applied first, then ``turns`` quarter turns
    counter-clockwise (the ``np.rot90`` convention, i.e. the catalog's
    ``turns`` column), then the image is stretched to ``size`` with Pillow's
    bilinear filter (which widens its support when shrinking, so downscaling
    averages like an area filter). The aspect ratio is not kept, as in
    ``keras.utils.image_dataset_from_directory``. JPEG files are decoded at a
    reduced DCT scale (``Image.draft``) when the target is at most half the
    stored size, which is several times faster for large photos.

    Args:
        path: The image file.
        size: ``(height, width)`` of the result.
        turns: Quarter turns counter-clockwise applied before resizing; any
            int, taken modulo 4.
        max_pixels: See :func:`read_image`.
        root: See :func:`read_image`.

    Returns:
        A ``uint8`` array of shape ``(height, width, 3)``.

    Raises:
        ImageError: As :func:`read_image`.
        ValueError: ``size``, ``turns`` or ``max_pixels`` is invalid.
    """
    height, width = _check_size(size)
    turns = _check_turns(turns)
    _check_max_pixels(max_pixels)
    image, _ = _load_rgb(
        path, max_pixels=max_pixels, root=root, target=(height, width), turns=turns
    )
    if turns:
        image = image.transpose(_TURNS[turns])
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return _to_array(image)


def image_info(
    path: PathLike,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    root: PathLike | None = None,
) -> dict[str, Any]:
    """Check that an image fully decodes and return its size and format.

    The whole file is decoded (so truncation and corrupt data are found), but
    JPEG files are decoded at 1/8 scale, which still reads every byte of the
    compressed data and costs a fraction of a full decode.

    Args:
        path: The image file.
        max_pixels: See :func:`read_image`.
        root: See :func:`read_image`.

    Returns:
        ``{"width": int, "height": int, "format": str}`` where width and
        height are those of the array :func:`read_image` returns (EXIF
        orientation applied) and format is Pillow's name (``"JPEG"``,
        ``"PNG"``, ...).

    Raises:
        ImageError: As :func:`read_image`.
    """
    _check_max_pixels(max_pixels)
    _, header = _load_rgb(path, max_pixels=max_pixels, root=root, probe=True)
    return header


def probe_image(
    path: PathLike,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    root: PathLike | None = None,
) -> dict[str, Any]:
    """Like :func:`image_info`, but report a bad file instead of raising.

    This is the call a library scan makes once per file.

    Args:
        path: The image file.
        max_pixels: See :func:`read_image`.
        root: See :func:`read_image`.

    Returns:
        ``{"readable": bool, "error": str, "kind": str, "width": int,
        "height": int, "format": str}``. For a readable file ``error`` and
        ``kind`` are ``""``; for an unreadable one ``readable`` is False,
        ``error`` is :attr:`ImageError.reason`, ``kind`` is
        :attr:`ImageError.kind`, width and height are 0 and format is ``""``.

    Raises:
        ValueError: ``max_pixels`` is invalid (never for a bad file).
    """
    try:
        info = image_info(path, max_pixels=max_pixels, root=root)
    except ImageError as err:
        return {
            "readable": False,
            "error": err.reason,
            "kind": err.kind,
            "width": 0,
            "height": 0,
            "format": "",
        }
    return {"readable": True, "error": "", "kind": "", **info}


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------
def _check_max_pixels(max_pixels: Any) -> None:
    check_int(max_pixels, "max_pixels", allow_none=True)


def _check_size(size: Any) -> tuple[int, int]:
    message = (
        "`size` must be a pair (height, width) of ints >= 1, "
        f"e.g. size=(64, 64). Received: size={shown(size)}"
    )
    try:
        height, width = size
        if isinstance(height, bool) or isinstance(width, bool):
            raise TypeError
        height, width = operator.index(height), operator.index(width)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if height < 1 or width < 1:
        raise ValueError(message)
    return height, width


def _check_turns(turns: Any) -> int:
    try:
        if isinstance(turns, bool):
            raise TypeError
        return operator.index(turns) % 4
    except TypeError:
        raise ValueError(
            "`turns` must be an int (quarter turns counter-clockwise, 0-3). "
            f"Received: turns={shown(turns)}"
        ) from None


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------
def _load_rgb(
    path: PathLike,
    *,
    max_pixels: int | None,
    root: PathLike | None,
    target: tuple[int, int] | None = None,
    turns: int = 0,
    probe: bool = False,
) -> tuple[Image.Image, dict[str, Any]]:
    """Decode ``path`` to an upright RGB Pillow image (detached from the file).

    ``target`` (height, width after ``turns``) lets JPEG decode at a reduced
    scale; ``probe`` decodes JPEG at 1/8 scale. Returns the image and a
    header dict with the full-resolution upright width, height and format.
    """
    with open_regular_file(path, root=root) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(SNIFF_BYTES)
            fh.seek(0)
        except OSError as err:
            raise ImageError(path, f"reading failed: {err}", "io_error") from None
        image = _open_pil(fh, path, head, size)
        width, height = image.size
        fmt = image.format or ""
        if max_pixels is not None and width * height > max_pixels:
            raise ImageError(
                path,
                f"the image claims {width}x{height} = {width * height:,} pixels, more "
                f"than max_pixels={max_pixels:,} (possible decompression bomb). If "
                "the file is trusted, pass a larger max_pixels",
                "too_large",
            )
        if fmt == "PNG":
            image = _verify_png(image, fh, path, head, size)
        if fmt in _JPEG_FORMATS and (probe or target is not None):
            # JPEG parses EXIF at open, so this reads no pixels.
            _draft(image, target=target, turns=turns, orientation=_orientation(image), probe=probe)
        try:
            image.load()
        except Exception as err:  # noqa: BLE001 - anything Pillow raises is a bad file
            raise decode_error(path, err, fmt, fh, head, size) from None
    # The pixels are in memory now; Pillow does not read ``fh`` again. The
    # image is not closed explicitly: ImageFile.close() would close ``fh``.
    orientation = _orientation(image)
    upright = _exif_transpose(image, orientation)
    try:
        rgb = _to_rgb_image(upright)
    except Exception as err:  # noqa: BLE001
        raise ImageError(
            path,
            f"cannot convert its colour mode {upright.mode!r} to RGB ({err})",
            "unsupported_format",
        ) from None
    if orientation in _SWAPS_AXES:
        width, height = height, width
    return rgb, {"width": int(width), "height": int(height), "format": fmt}


def _open_pil(fh: BinaryIO, path: PathLike, head: bytes, size: int) -> Image.Image:
    try:
        return Image.open(fh, formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as err:
        raise ImageError(
            path,
            f"the image is too large to decode safely (possible decompression bomb): {err}",
            "too_large",
        ) from None
    except UnidentifiedImageError:
        raise unidentified_error(path, head, size, fh) from None
    except Exception as err:  # noqa: BLE001 - any parser failure is a bad file
        raise header_error(path, err, head, size, fh) from None


def _verify_png(image: Image.Image, fh: BinaryIO, path: PathLike, head: bytes, size: int) -> Image.Image:
    """Check every PNG chunk (CRCs, up to IEND) and reopen for decoding.

    Pillow's decoder stops once it has the pixel data, so a PNG that lost its
    end would otherwise pass. Reading the chunks costs no decompression.
    """
    # No image.close() here or below: Pillow would close our file handle,
    # which the caller's ``with`` block owns.
    try:
        image.verify()
    except Exception as err:  # noqa: BLE001
        raise decode_error(path, err, "PNG", fh, head, size) from None
    fh.seek(0)
    return _open_pil(fh, path, head, size)


def _orientation(image: Image.Image) -> int:
    try:
        value = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF: keep the stored orientation
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_transpose(image: Image.Image, orientation: int) -> Image.Image:
    if orientation == 1:
        return image
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - damaged EXIF must not make pixels unreadable
        return image


def _draft(
    image: Image.Image,
    *,
    target: tuple[int, int] | None,
    turns: int,
    orientation: int,
    probe: bool,
) -> None:
    """Ask the JPEG decoder for a reduced scale (1/2, 1/4 or 1/8)."""
    if probe:
        request = (1, 1)
    else:
        height, width = target  # after EXIF and turns
        # Back to the stored orientation: each of EXIF and odd turns swaps axes.
        if (orientation in _SWAPS_AXES) != (turns % 2 == 1):
            height, width = width, height
        # Keep at least twice the target so the final resize still averages.
        request = (2 * width, 2 * height)
    try:
        image.draft(None, request)
    except Exception:  # noqa: BLE001 - draft is only an optimisation
        pass


def _to_rgb_image(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode.startswith("I;16") or mode == "I":
        # 16-bit samples: keep the high byte, as Pillow does for 16-bit RGB.
        values = np.asarray(image).astype(np.int64)
        grey = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        "transparency" in image.info and mode in ("P", "L", "RGB", "1")
    )
    if not has_alpha:
        return image.convert("RGB")
    rgba = np.asarray(image.convert("RGBA"))
    alpha = rgba[..., 3:4].astype(np.uint16)
    # Composite on white, rounded: out = (c * a + 255 * (255 - a)) / 255.
    out = (rgba[..., :3].astype(np.uint16) * alpha + 255 * (255 - alpha) + 127) // 255
    return Image.fromarray(out.astype(np.uint8), "RGB")


def _to_array(image: Image.Image) -> np.ndarray:
    array = np.asarray(image)
    if not array.flags.writeable:
        array = array.copy()
    return array

