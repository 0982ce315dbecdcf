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
:func:`file_hash` for the content hash.

Pixels come out as ``uint8`` RGB arrays of shape ``(height, width, 3)`` with
the EXIF orientation applied, transparency composited on white and 16-bit
samples scaled to 8 bits.

This module imports only the standard library, numpy and Pillow.
"""

from __future__ import annotations

import hashlib
import operator
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgcls.core.workspace import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS

__all__ = [
    "ImageError",
    "read_image",
    "read_image_resized",
    "image_info",
    "probe_image",
    "iter_image_files",
    "file_hash",
    "SUPPORTED_FORMATS",
]

PathLike = str | os.PathLike

#: Pillow format names that are decoded. Anything else is refused, whatever
#: the file is called. (Pillow's JPEG opener also returns ``"MPO"``, the
#: multi-picture JPEG many cameras write.)
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")

_JPEG_FORMATS = ("JPEG", "MPO")
_SNIFF_BYTES = 512
_EXIF_ORIENTATION = 0x0112
# EXIF orientations 5-8 swap width and height.
_SWAPS_AXES = frozenset({5, 6, 7, 8})
# Quarter turns counter-clockwise (np.rot90 convention) -> Pillow transpose.
_TURNS = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


class ImageError(ValueError):
    """An image file that cannot be read, and why.

    Attributes:
        path: The file as given (a :class:`~pathlib.Path`).
        reason: What is wrong with it and, where possible, what to do about it.
        kind: A short stable code for filtering, one of ``"missing"``,
            ``"dangling_symlink"``, ``"outside_root"``, ``"directory"``,
            ``"not_a_file"``, ``"permission"``, ``"empty"``,
            ``"not_an_image"``, ``"unsupported_format"``, ``"truncated"``,
            ``"too_large"``, ``"corrupt"``, ``"io_error"``.

    Example:
        >>> try:
        ...     read_image("missing.jpg")
        ... except ImageError as err:
        ...     print(err.kind)
        missing
    """

    def __init__(self, path: PathLike, reason: str, kind: str = "corrupt") -> None:
        # All three go into ``args`` so the error survives pickling
        # (multiprocessing, tf.data workers).
        super().__init__(path, reason, kind)
        self.path = Path(os.fspath(path))
        self.reason = reason
        self.kind = kind

    def __str__(self) -> str:
        return f"Cannot read image {str(self.path)!r}: {self.reason}"


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


def iter_image_files(folder: PathLike, *, recursive: bool = True) -> Iterator[Path]:
    """Yield the image files under ``folder``, in sorted order, lazily.

    A file counts as an image by its extension (any case) in
    :data:`imgcls.core.IMAGE_EXTENSIONS`; its content is not opened.
    Names starting with a dot (files or folders) are skipped. Symbolic links
    to folders are never followed. A symbolic link to a file is yielded (as
    the link's path) only if its target is a regular file inside ``folder``;
    links leading out of ``folder``, dangling links, FIFOs, sockets and
    devices are skipped. Folders are read one at a time with
    :func:`os.scandir`; only one folder's listing is held in memory per level.

    The order is depth-first with names sorted within each folder, which is
    the sort order of the yielded :class:`~pathlib.Path` objects.

    Args:
        folder: The folder to walk.
        recursive: Also walk sub-folders.

    Yields:
        Paths starting with ``folder`` as given.

    Raises:
        ValueError: ``folder`` is not an existing directory.
    """
    folder = Path(os.fspath(folder))
    if not folder.is_dir():
        raise ValueError(
            "`folder` must be an existing directory. "
            f"Received: folder={str(folder)!r}, which "
            f"{'is not a directory' if folder.exists() else 'does not exist'}."
        )
    real_root = folder.resolve()
    stack: list[Iterator[os.DirEntry]] = [iter(_sorted_entries(folder))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    stack.append(iter(_sorted_entries(Path(entry.path))))
                continue
            if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if not target.is_relative_to(real_root) or not target.is_file():
                    continue
            elif not entry.is_file(follow_symlinks=False):
                continue  # FIFO, socket, device
        except (OSError, RuntimeError):  # vanished, unreadable, symlink loop
            continue
        yield Path(entry.path)


def file_hash(path: PathLike, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (the "content hash"), read in chunks.

    Args:
        path: The file (any regular file; it need not be a valid image).
        chunk_size: Bytes read at a time.

    Returns:
        64 lower-case hex digits.

    Raises:
        ImageError: The file is missing, not a regular file or unreadable
            (an empty file is fine: it has a hash).
        ValueError: ``chunk_size`` is not an int >= 1.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(
            f"`chunk_size` must be an int >= 1. Received: chunk_size={chunk_size!r}"
        )
    digest = hashlib.sha256()
    with _open_regular_file(path, root=None, allow_empty=True) as fh:
        try:
            # A buffer no larger than the file: zeroing 1 MiB for an 8 KB image
            # cost as much as hashing it. A file that grows meanwhile is read whole.
            buffer = bytearray(max(1, min(chunk_size, os.fstat(fh.fileno()).st_size)))
            view = memoryview(buffer)
            while n := fh.readinto(buffer):
                digest.update(view[:n])
        except OSError as err:
            raise ImageError(path, f"reading failed: {err}", "io_error") from None
    return digest.hexdigest()


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------
def _check_max_pixels(max_pixels: Any) -> None:
    if max_pixels is None:
        return
    is_int = isinstance(max_pixels, (int, np.integer)) and not isinstance(max_pixels, bool)
    if not is_int or max_pixels < 1:
        raise ValueError(
            "`max_pixels` must be an int >= 1 or None. "
            f"Received: max_pixels={max_pixels!r}"
        )


def _check_size(size: Any) -> tuple[int, int]:
    message = (
        "`size` must be a pair (height, width) of ints >= 1, "
        f"e.g. size=(64, 64). Received: size={size!r}"
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
            f"Received: turns={turns!r}"
        ) from None


# --------------------------------------------------------------------------
# Opening the file
# --------------------------------------------------------------------------
def _open_regular_file(path: PathLike, *, root: PathLike | None, allow_empty: bool = False):
    """Open ``path`` for binary reading after checking it is a sane file.

    Never blocks (a FIFO is refused, not opened for reading and waited on)
    and raises only :class:`ImageError` for a bad file (``ValueError`` if
    ``path`` is not a path at all).
    """
    try:
        given = Path(os.fspath(path))
    except TypeError:
        raise ValueError(
            f"`path` must be a str or os.PathLike. Received: path={path!r}"
        ) from None
    target = given
    if root is not None:
        root_real = Path(os.fspath(root)).resolve()
        try:
            target = given.resolve()
        except (OSError, RuntimeError):
            raise ImageError(
                given, "it is a symbolic link loop; remove or fix the link", "dangling_symlink"
            ) from None
        if not target.is_relative_to(root_real):
            raise ImageError(
                given,
                f"it resolves to {str(target)!r}, outside the allowed folder "
                f"{str(root_real)!r}; symbolic links may not lead out of it. "
                "Copy the file into the folder instead of linking it",
                "outside_root",
            )

    try:
        link_info = os.lstat(given)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(
            given, "the file does not exist; check the path or rescan the folder", "missing"
        ) from None
    except PermissionError:
        raise ImageError(given, _PERMISSION_REASON, "permission") from None
    except (OSError, ValueError) as err:
        raise ImageError(given, f"cannot access the file ({err})", "io_error") from None
    if stat.S_ISLNK(link_info.st_mode):
        try:
            os.stat(given)
        except FileNotFoundError:
            raise ImageError(
                given,
                f"it is a dangling symbolic link (its target {_readlink(given)!r} does "
                "not exist); remove the link or restore the target",
                "dangling_symlink",
            ) from None
        except OSError as err:
            raise ImageError(
                given, f"it is a broken symbolic link ({err.strerror})", "dangling_symlink"
            ) from None

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError:
        raise ImageError(
            given, "the file does not exist; check the path or rescan the folder", "missing"
        ) from None
    except IsADirectoryError:
        raise ImageError(given, _DIRECTORY_REASON, "directory") from None
    except PermissionError:
        raise ImageError(given, _PERMISSION_REASON, "permission") from None
    except OSError as err:
        raise ImageError(given, f"cannot open the file ({err.strerror})", "io_error") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(given, _DIRECTORY_REASON, "directory")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(
                given,
                "it is not a regular file (a FIFO, socket or device); only files can be images",
                "not_a_file",
            )
        if info.st_size == 0 and not allow_empty:
            raise ImageError(
                given,
                "the file is empty (0 bytes); the copy or download probably failed, "
                "copy it again",
                "empty",
            )
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


_DIRECTORY_REASON = "it is a directory, not an image file (only its name looks like an image)"
_PERMISSION_REASON = "permission denied; make the file readable (e.g. chmod a+r)"


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


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
    with _open_regular_file(path, root=root) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(_SNIFF_BYTES)
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
            raise _decode_error(path, err, fmt, fh, head, size) from None
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


def _open_pil(fh, path: PathLike, head: bytes, size: int) -> Image.Image:
    try:
        return Image.open(fh, formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as err:
        raise ImageError(
            path,
            f"the image is too large to decode safely (possible decompression bomb): {err}",
            "too_large",
        ) from None
    except UnidentifiedImageError:
        raise _unidentified_error(path, head, size, fh) from None
    except Exception as err:  # noqa: BLE001 - any parser failure is a bad file
        fmt = _sniff(head)
        if _declared_truncation(head, size) or _looks_truncated(fmt, fh, size):
            raise _truncated_error(path, fmt, size) from None
        raise ImageError(
            path,
            f"the {fmt or 'image'} header is damaged ({type(err).__name__}: {err}); "
            "copy it again from the source or remove it",
            "corrupt",
        ) from None


def _truncated_error(path: PathLike, fmt: str, size: int) -> ImageError:
    return ImageError(
        path,
        f"the {fmt or 'image'} file is truncated (incomplete, {size:,} bytes): the copy "
        "or download was probably interrupted; copy it again from the source",
        "truncated",
    )


def _verify_png(image: Image.Image, fh, path: PathLike, head: bytes, size: int) -> Image.Image:
    """Check every PNG chunk (CRCs, up to IEND) and reopen for decoding.

    Pillow's decoder stops once it has the pixel data, so a PNG that lost its
    end would otherwise pass. Reading the chunks costs no decompression.
    """
    # No image.close() here or below: Pillow would close our file handle,
    # which the caller's ``with`` block owns.
    try:
        image.verify()
    except Exception as err:  # noqa: BLE001
        raise _decode_error(path, err, "PNG", fh, head, size) from None
    fh.seek(0)
    return _open_pil(fh, path, head, size)


def _decode_error(
    path: PathLike, err: BaseException, fmt: str, fh, head: bytes, size: int
) -> ImageError:
    if isinstance(err, Image.DecompressionBombError):
        return ImageError(
            path, f"the image is too large to decode safely: {err}", "too_large"
        )
    message = str(err)
    if (
        "truncated" in message.lower()
        or _declared_truncation(head, size)
        or _looks_truncated(fmt, fh, size)
    ):
        return _truncated_error(path, fmt, size)
    if isinstance(err, MemoryError):
        return ImageError(path, "not enough memory to decode the image", "too_large")
    return ImageError(
        path,
        f"the {fmt} image data is corrupt ({type(err).__name__}: {message}); "
        "copy it again from the source or remove it",
        "corrupt",
    )


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


# --------------------------------------------------------------------------
# Explaining bad files
# --------------------------------------------------------------------------
def _sniff(head: bytes) -> str:
    """The image format the first bytes announce, or ``""``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if (
        head[:2] == b"BM"
        and len(head) >= 18
        and struct.unpack("<I", head[14:18])[0] in (12, 16, 40, 52, 56, 64, 108, 124)
    ):
        return "BMP"
    return ""


def _declared_truncation(head: bytes, size: int) -> bool:
    """True if the header declares more bytes than the file has."""
    if head[:4] == b"RIFF" and len(head) >= 8:
        return struct.unpack("<I", head[4:8])[0] + 8 > size
    if head[:4] in (b"II*\x00", b"MM\x00*") and len(head) >= 8:
        order = "<" if head[:2] == b"II" else ">"
        return struct.unpack(order + "I", head[4:8])[0] + 2 > size
    if _sniff(head) == "BMP":
        declared = struct.unpack("<I", head[2:6])[0]
        return declared > size
    return False


def _looks_truncated(fmt: str, fh, size: int) -> bool:
    """True if the file lacks the end marker its format requires."""
    try:
        fh.seek(max(0, size - 12))
        tail = fh.read(12)
    except (OSError, ValueError):
        return False
    if fmt in ("JPEG", "MPO"):
        return not tail.endswith(b"\xff\xd9")
    if fmt == "PNG":
        return tail != _PNG_IEND
    return False


def _unidentified_error(path: PathLike, head: bytes, size: int, fh) -> ImageError:
    fmt = _sniff(head)
    if fmt:
        if _declared_truncation(head, size) or _looks_truncated(fmt, fh, size):
            return _truncated_error(path, fmt, size)
        return ImageError(
            path,
            f"it starts like a {fmt} image but its header cannot be parsed: the file is "
            "damaged or truncated; copy it again from the source",
            "corrupt",
        )
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    snippet = head[:40]
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:200]:
        return ImageError(
            path,
            f"it is an HTML web page, not an image (starts with {snippet!r}); the "
            "download probably saved an error or preview page: download the image itself",
            "not_an_image",
        )
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return ImageError(
            path,
            "it is an SVG vector drawing, which is not supported; convert it to PNG",
            "unsupported_format",
        )
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace")
        name = "AVIF" if brand.startswith("avi") else "HEIC/HEIF" if brand[:3] in (
            "hei", "hev", "mif", "msf"
        ) else f"ISO media ({brand})"
        return ImageError(
            path,
            f"it is a {name} file, which is not supported; convert it to JPEG or PNG",
            "unsupported_format",
        )
    if head.startswith(b"%PDF"):
        return ImageError(
            path, "it is a PDF document, not an image; export the page as PNG", "not_an_image"
        )
    if _is_text(head):
        return ImageError(
            path,
            f"it is a text file, not an image (starts with {snippet!r}); it was probably "
            "saved with an image extension by mistake",
            "not_an_image",
        )
    return ImageError(
        path,
        f"it is not a recognised image: the content is not {', '.join(_FORMAT_NAMES)} "
        f"(it starts with bytes {snippet[:16].hex(' ')}). Check that the file is an image, "
        "or remove it",
        "not_an_image",
    )


_FORMAT_NAMES = ("JPEG", "PNG", "GIF", "BMP", "WebP", "TIFF")


def _is_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        # The sniff window may cut a multi-byte character at its end.
        try:
            decoded = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    if not decoded:
        return False
    printable = sum(ch.isprintable() or ch in "\t\r\n\f" for ch in decoded)
    return printable / len(decoded) > 0.95


# --------------------------------------------------------------------------
# Walking folders
# --------------------------------------------------------------------------
def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as err:
        warnings.warn(
            f"Skipping folder {str(folder)!r}: cannot list it ({err.strerror}).",
            RuntimeWarning,
            stacklevel=3,
        )
        return []
