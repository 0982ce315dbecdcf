"""Write PNG files of any colour type and bit depth (16-bit RGBA too, which Pillow cannot save), row by row.

Shared by the decode-budget tests and benchmarks/bench_serving_hostile.py (not a test module).
"""

from __future__ import annotations

import struct
import zlib

CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, *, color_type: int = 6, bit_depth: int = 16, seed: int = 0) -> bytes:
    """A valid PNG of ``width`` x ``height`` (colour type 0/2/4/6, bit depth 8/16): a repeated
    random row, so it compresses to almost nothing while it decodes to full size."""
    import random

    row_bytes = width * CHANNELS[color_type] * bit_depth // 8
    rnd = random.Random(seed)
    pattern = bytes(rnd.randrange(256) for _ in range(64))
    row = b"\x00" + (pattern * (row_bytes // 64 + 1))[:row_bytes]  # filter type 0
    compress = zlib.compressobj(9)
    parts = [compress.compress(row) for _ in range(height)]
    parts.append(compress.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))
