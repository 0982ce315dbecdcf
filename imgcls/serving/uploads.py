"""What a served request brings: image bytes, a file path, an array or a Pillow image.

:func:`decode_image` turns any accepted input into the pixels the model sees,
decoded exactly as training decodes (:func:`imgcls.core.read_image_resized`
at the run's input size), plus the sha256 of the input and, when inputs are
kept, where it was stored (``served/<yyyy-mm-dd>/<sha256>.<ext>``, the
extension sniffed from the first bytes). Uploads go through a temporary file
in the workspace cache, so bytes, paths and arrays share one decoder.

Before any pixel is decoded, the header gives the decode cost in bytes
(:func:`imgcls.core.decode_cost`): over ``max_decode_bytes`` the image is
refused (``too_large``, 413); otherwise its decoding holds that much of the
server's :class:`~imgcls.serving.budget.DecodeBudget` memory.

A request refused because of its image raises :class:`RejectedImage`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import os
import secrets
import shutil
import time as _time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from imgcls.core import ImageError, decode_cost, file_hash, read_image_resized
from imgcls.serving.budget import DecodeBudget
from imgcls.serving.limits import DEFAULT_MAX_BYTES
from imgcls.translog import SERVED_DIR

__all__ = ["DEFAULT_MAX_BYTES", "SERVED_DIR", "RejectedImage", "decode_image"]

_MAGIC = (  # (prefix, offset, extension): the formats imgcls.core decodes
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"WEBP", 8, "webp"),
    (b"II*\x00", 0, "tif"),
    (b"MM\x00*", 0, "tif"),
)
_TMP_SUFFIX = ".upload"


class RejectedImage(ImageError):
    """A request refused because of its image; it was logged as a failed transaction.

    Attributes:
        path: The file or upload name (``"<upload>"`` for bare bytes).
        reason: Why it was refused (what a client sees).
        kind: :attr:`imgcls.core.ImageError.kind`, or ``"too_large"`` for
            an upload over ``max_bytes`` / ``max_decode_bytes``,
            ``"no_file"`` for a request without an image, ``"overloaded"``
            when no decode slot or memory freed up in time.
        status_code: The HTTP status the server answers with (400, 413 or 503).
        transaction_id: The failed transaction's id (None without a log).
        retry_after: Seconds to wait before retrying (``overloaded`` only).
    """

    def __init__(self, path, reason: str, kind: str, *, status_code: int = 400,
                 transaction_id: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(path, reason, kind)
        self.status_code = status_code
        self.transaction_id = transaction_id
        self.retry_after = retry_after


def status_for(kind: str) -> int:
    """The HTTP status for an :class:`~imgcls.core.ImageError` kind."""
    if kind == "too_large":
        return 413
    if kind == "overloaded":
        return 503
    if kind in ("io_error", "permission", "missing", "not_a_file", "directory"):
        return 500  # our own temp file went wrong, not the client's image
    return 400


def extension(head: bytes) -> str:
    """The file extension the first bytes announce (``"png"``, ...; ``"img"`` when unknown)."""
    for magic, offset, ext in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return ext
    return "img"


def upload_digest(image: Any, err: ImageError) -> str | None:
    """The sha256 of a rejected upload (logged with the failed transaction),
    as :func:`decode_image` computed it; None for paths and arrays."""
    return getattr(err, "digest", None) if isinstance(image, (bytes, bytearray, memoryview)) else None


def remove_stale(folder: Path, *, age_s: float = 3600.0) -> None:
    """Delete upload temp files an earlier, killed process left behind."""
    cutoff = _time.time() - age_s
    for path in folder.glob(f"*{_TMP_SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass  # another process removed it, or it is not ours to remove


def _is_pil(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Image.Image)


def _encode_png(image: Any) -> bytes:
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(
                "An image array must be uint8 pixels 0-255 of shape (H, W, 3) or (H, W). "
                f"Received dtype {image.dtype}; convert with np.clip(a, 0, 255).astype('uint8')."
            )
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
            raise ValueError(
                "An image array must have shape (H, W, 3), (H, W, 4) or (H, W). "
                f"Received shape {image.shape}."
            )
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _kept_path(served_root: Path, digest: str, ext: str, when: _dt.datetime) -> Path:
    folder = served_root / f"{when:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{digest}.{ext}"


def _checked_read(path: Path, name: str, *, image_size: tuple[int, int], max_pixels: int,
                  max_decode_bytes: int | None, budget: DecodeBudget | None,
                  deadline: float | None) -> np.ndarray:
    """Read the image resized, after refusing a decode cost over ``max_decode_bytes`` from
    the header and while holding the cost in ``budget`` (may raise ``Overloaded``)."""
    cost = decode_cost(path, target=image_size) if (max_decode_bytes or budget) else None
    if cost is not None and max_decode_bytes is not None and cost.bytes > max_decode_bytes:
        raise ImageError(
            name,
            f"decoding it would take {cost.bytes:,} bytes ({cost.width}x{cost.height} "
            f"{cost.format} {cost.mode}, {cost.bytes_per_pixel:g} bytes a pixel), more than "
            f"the decode limit max_decode_bytes={max_decode_bytes:,}; send a smaller image "
            "(an 8-bit RGB JPEG or PNG costs least)",
            "too_large",
        )
    hold = budget.memory(cost.bytes, deadline=deadline) if (budget and cost) else nullcontext()
    with hold:
        return read_image_resized(path, image_size, max_pixels=max_pixels)


def _decode_bytes(data: bytes, name: str, when: _dt.datetime, *, image_size: tuple[int, int],
                  max_bytes: int, max_pixels: int, tmp_dir: Path, served_root: Path | None,
                  **budgeted: Any):
    """(pixels, sha256, kept path or None) for an uploaded image; ImageError on a
    bad one, with the upload's sha256 as its ``digest`` (see :func:`upload_digest`)."""
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > max_bytes:
        err = ImageError(
            name,
            f"the upload has {len(data):,} bytes, more than max_bytes={max_bytes:,}; "
            "send a smaller image",
            "too_large",
        )
        err.digest = digest
        raise err
    tmp = tmp_dir / f"{secrets.token_hex(8)}{_TMP_SUFFIX}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        try:
            pixels = _checked_read(tmp, name, image_size=image_size, max_pixels=max_pixels,
                                   **budgeted)
        except ImageError as err:
            bad = ImageError(name, err.reason, err.kind)
            bad.digest = digest
            raise bad from None
        kept = None
        if served_root is not None:
            kept = _kept_path(served_root, digest, extension(data[:16]), when)
            os.replace(tmp, kept)
        return pixels, digest, kept
    finally:
        tmp.unlink(missing_ok=True)


def _decode_path(path: Path, when: _dt.datetime, *, image_size: tuple[int, int], max_pixels: int,
                 tmp_dir: Path, served_root: Path | None, **budgeted: Any):
    digest = file_hash(path)
    pixels = _checked_read(path, str(path), image_size=image_size, max_pixels=max_pixels, **budgeted)
    kept = str(path.resolve())
    if served_root is not None:
        with open(path, "rb") as fh:
            head = fh.read(16)
        target = _kept_path(served_root, digest, extension(head), when)
        if not target.exists():
            tmp = tmp_dir / f"{secrets.token_hex(8)}{_TMP_SUFFIX}"
            try:
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        kept = target
    return pixels, digest, kept


def decode_image(
    image: Any,
    when: _dt.datetime,
    *,
    image_size: tuple[int, int],
    max_bytes: int,
    max_pixels: int,
    tmp_dir: Path,
    served_root: Path | None = None,
    max_decode_bytes: int | None = None,
    budget: DecodeBudget | None = None,
    deadline: float | None = None,
) -> tuple[np.ndarray, str, Any, str]:
    """Decode one served input as training decodes it.

    Args:
        image: Image file bytes, a file path, a uint8 array ``(H, W, 3)`` /
            ``(H, W, 4)`` / ``(H, W)`` or a PIL image (arrays and PIL images
            are PNG-encoded first, so every input takes the same decoder).
        when: The request's time (names the day folder of a kept input).
        image_size: The run's input size ``(height, width)``.
        max_bytes: Largest accepted bytes / array upload.
        max_pixels: Largest pixel count, read from the header before decoding.
        tmp_dir: Folder for upload temp files (``*.upload``).
        served_root: Keep every input under this folder
            (``<served_root>/<yyyy-mm-dd>/<sha256>.<ext>``); None keeps nothing.
        max_decode_bytes: Largest decode cost (bytes, from the header,
            :func:`imgcls.core.decode_cost`); None: no limit.
        budget: Hold the decode cost in this budget's memory while decoding.
        deadline: ``time.monotonic()`` by which the budget must have room.

    Returns:
        ``(pixels, sha256, image_path, name)``: uint8 pixels at ``image_size``;
        the kept path (or a file input's own resolved path, or None); the
        name used in messages (``"<upload>"``, ``"<array>"`` or the path).

    Raises:
        ImageError: Unreadable, truncated or too large; an upload's carries
            its sha256 as ``digest``.
        Overloaded: The budget had no room before the deadline.
        ValueError: ``image`` is of an unsupported type or array shape.
    """
    budgeted = {"max_decode_bytes": max_decode_bytes, "budget": budget, "deadline": deadline}
    if isinstance(image, (bytes, bytearray, memoryview)):
        pixels, digest, kept = _decode_bytes(
            bytes(image), "<upload>", when, image_size=image_size, max_bytes=max_bytes,
            max_pixels=max_pixels, tmp_dir=tmp_dir, served_root=served_root, **budgeted)
        return pixels, digest, kept, "<upload>"
    if isinstance(image, (str, os.PathLike)):
        path = Path(os.fspath(image)).expanduser()
        pixels, digest, kept = _decode_path(
            path, when, image_size=image_size, max_pixels=max_pixels, tmp_dir=tmp_dir,
            served_root=served_root, **budgeted)
        return pixels, digest, kept, str(path)
    if isinstance(image, np.ndarray) or _is_pil(image):
        pixels, digest, kept = _decode_bytes(
            _encode_png(image), "<array>", when, image_size=image_size, max_bytes=max_bytes,
            max_pixels=max_pixels, tmp_dir=tmp_dir, served_root=served_root, **budgeted)
        return pixels, digest, kept, "<array>"
    raise ValueError(
        "`image` must be image bytes, a file path, a uint8 numpy array (H, W, 3) or "
        f"a PIL image. Received: {type(image).__name__}"
    )
