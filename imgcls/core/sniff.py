"""Explaining a bad image file: what its first bytes say it is, and why it fails.

:mod:`imgcls.core.images` hands every failure to one of these functions, so the
reasons a user reads are written in one place:

* :func:`sniff_format` names the image format the first bytes announce;
* :func:`declared_truncation` and :func:`looks_truncated` tell a truncated
  file (an interrupted copy or download) from a corrupt one;
* :func:`unidentified_error` explains a file Pillow does not recognise at all
  (a web page, an SVG, a HEIC photo, a PDF, a text file, ...), and
  :func:`looks_like` says what kind of file an unknown one seems to be;
* :func:`header_error` and :func:`decode_error` explain a file whose header or
  pixel data fails to parse.

No reason ever quotes bytes read from the file (not even its first few):
messages end up in catalogs, bulk error tables, HTTP responses and logs, so a
file is described by its kind only, and Pillow's own messages pass through
:func:`pillow_message`.

This module imports only the standard library and Pillow.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

from PIL import Image

from imgcls.core.imagefiles import ImageError, PathLike

__all__ = [
    "SNIFF_BYTES",
    "sniff_format",
    "declared_truncation",
    "looks_truncated",
    "truncated_error",
    "unidentified_error",
    "looks_like",
    "pillow_message",
    "header_error",
    "decode_error",
]

#: Bytes read from the start of a file to recognise it.
SNIFF_BYTES = 512
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_FORMAT_NAMES = ("JPEG", "PNG", "GIF", "BMP", "WebP", "TIFF")


def sniff_format(head: bytes) -> str:
    """The image format the first bytes announce (``"JPEG"``, ``"PNG"``, ...), or ``""``."""
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


def declared_truncation(head: bytes, size: int) -> bool:
    """True if the header declares more bytes than the file has."""
    if head[:4] == b"RIFF" and len(head) >= 8:
        return struct.unpack("<I", head[4:8])[0] + 8 > size
    if head[:4] in (b"II*\x00", b"MM\x00*") and len(head) >= 8:
        order = "<" if head[:2] == b"II" else ">"
        return struct.unpack(order + "I", head[4:8])[0] + 2 > size
    if sniff_format(head) == "BMP":
        declared = struct.unpack("<I", head[2:6])[0]
        return declared > size
    return False


def looks_truncated(fmt: str, fh: BinaryIO, size: int) -> bool:
    """True if the file lacks the end marker its format requires (JPEG, PNG)."""
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


def truncated_error(path: PathLike, fmt: str, size: int) -> ImageError:
    """The error for a file that ends early."""
    return ImageError(
        path,
        f"the {fmt or 'image'} file is truncated (incomplete, {size:,} bytes): the copy "
        "or download was probably interrupted; copy it again from the source",
        "truncated",
    )


def unidentified_error(path: PathLike, head: bytes, size: int, fh: BinaryIO) -> ImageError:
    """The error for a file no supported image opener recognises: what it is instead.

    Args:
        path: The file.
        head: Its first :data:`SNIFF_BYTES` bytes.
        size: Its size in bytes.
        fh: The open file (its end is read to detect truncation).
    """
    fmt = sniff_format(head)
    if fmt:
        if declared_truncation(head, size) or looks_truncated(fmt, fh, size):
            return truncated_error(path, fmt, size)
        return ImageError(
            path,
            f"it starts like a {fmt} image but its header cannot be parsed: the file is "
            "damaged or truncated; copy it again from the source",
            "corrupt",
        )
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:200]:
        return ImageError(
            path,
            "it is an HTML web page, not an image; the download probably saved an error or "
            "preview page: download the image itself",
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
        name = "an AVIF" if brand.startswith("avi") else "a HEIC/HEIF" if brand[:3] in (
            "hei", "hev", "mif", "msf"
        ) else "an ISO media (MP4/MOV-style)"
        return ImageError(
            path,
            f"it is {name} file, which is not supported; convert it to JPEG or PNG",
            "unsupported_format",
        )
    if head.startswith(b"%PDF"):
        return ImageError(
            path, "it is a PDF document, not an image; export the page as PNG", "not_an_image"
        )
    if _is_text(head):
        return ImageError(
            path,
            "it is a text file, not an image; it was probably saved with an image extension "
            "by mistake",
            "not_an_image",
        )
    return ImageError(
        path,
        f"it is not a recognised image: the content is not {', '.join(_FORMAT_NAMES)} "
        f"(it looks like {looks_like(head)}). Check that the file is an image, or remove it",
        "not_an_image",
    )


#: Signatures of common files that are not images: (first bytes, what it looks like).
_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an XZ archive"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"\x00\x00\x01\x00", "a Windows icon (ICO)"),
    (b"8BPS", "a Photoshop document (PSD)"),
    (b"OggS", "an Ogg audio or video file"),
    (b"ID3", "an MP3 audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"\x80\x04\x95", "a Python pickle"),
)


def looks_like(head: bytes) -> str:
    """What kind of file the first bytes suggest, in words, never quoting them.

    Messages, tables and logs must never carry bytes read from a user's file,
    so a file that is not an image is described by its kind only.

    Args:
        head: The first bytes of the file.

    Returns:
        e.g. ``"a ZIP archive (or an Office document)"``, ``"a text file"``,
        ``"an HTML page"``, ``"empty data (only zero bytes)"`` or ``"unknown binary data"``.
    """
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return "an ISO media file (MP4/MOV/HEIC-style)"
    if head[:4] == b"RIFF":
        return "a RIFF container (WAV/AVI-style)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:200]:
        return "an HTML page"
    if text.startswith(b"<?xml") or text.startswith(b"<svg"):
        return "an XML document"
    if text.startswith((b"{", b"[")) and _is_text(head):
        return "a JSON or text file"
    if _is_text(head):
        return "a text file"
    if head and not head.strip(b"\x00"):
        return "empty data (only zero bytes)"
    return "unknown binary data"


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


_BYTES_LITERAL = re.compile(r"""b(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_MAX_MESSAGE = 160


def pillow_message(err: BaseException) -> str:
    """A Pillow exception's message, safe to show: bytes it quotes from the file are cut out.

    Pillow sometimes quotes the bytes it choked on (``not a TIFF file (header
    b'...' not valid)``); those become ``<bytes>``, anything unprintable is
    dropped and the message is cut to a sensible length.
    """
    text = _BYTES_LITERAL.sub("<bytes>", str(err))
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def header_error(path: PathLike, err: BaseException, head: bytes, size: int, fh: BinaryIO) -> ImageError:
    """The error for a recognised file whose header fails to parse (Pillow raised ``err``)."""
    fmt = sniff_format(head)
    if declared_truncation(head, size) or looks_truncated(fmt, fh, size):
        return truncated_error(path, fmt, size)
    return ImageError(
        path,
        f"the {fmt or 'image'} header is damaged ({type(err).__name__}: {pillow_message(err)}); "
        "copy it again from the source or remove it",
        "corrupt",
    )


def decode_error(
    path: PathLike, err: BaseException, fmt: str, fh: BinaryIO, head: bytes, size: int
) -> ImageError:
    """The error for a file whose pixel data fails to decode (Pillow raised ``err``)."""
    if isinstance(err, Image.DecompressionBombError):
        return ImageError(
            path, f"the image is too large to decode safely: {pillow_message(err)}", "too_large"
        )
    message = str(err)
    if (
        "truncated" in message.lower()
        or declared_truncation(head, size)
        or looks_truncated(fmt, fh, size)
    ):
        return truncated_error(path, fmt, size)
    if isinstance(err, MemoryError):
        return ImageError(path, "not enough memory to decode the image", "too_large")
    return ImageError(
        path,
        f"the {fmt} image data is corrupt ({type(err).__name__}: {pillow_message(err)}); "
        "copy it again from the source or remove it",
        "corrupt",
    )
