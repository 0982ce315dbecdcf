"""Tests for imgcls.core: every good and bad file is built here, in tmp_path."""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgcls.core import (
    ImageError,
    file_hash,
    image_info,
    iter_image_files,
    probe_image,
    read_image,
    read_image_resized,
)

RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
posix_only = pytest.mark.skipif(os.name != "posix", reason="needs POSIX file types")


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------
def quadrants(h: int = 24, w: int = 32) -> np.ndarray:
    """Red / green over blue / yellow: any turn or flip is visible."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = RED
    a[: h // 2, w // 2 :] = GREEN
    a[h // 2 :, : w // 2] = BLUE
    a[h // 2 :, w // 2 :] = YELLOW
    return a


def corners(a: np.ndarray) -> list[tuple[int, ...]]:
    """Colour at the centre of each quadrant: TL, TR, BL, BR."""
    h, w = a.shape[:2]
    ys, xs = (h // 4, 3 * h // 4), (w // 4, 3 * w // 4)
    return [tuple(int(v) for v in a[y, x]) for y in ys for x in xs]


def assert_close(actual, expected, tol: int) -> None:
    diff = np.abs(np.asarray(actual, int) - np.asarray(expected, int))
    assert diff.max() <= tol, (actual, expected)


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def raw_png(width: int, height: int, depth: int, color_type: int, pixels: bytes | None) -> bytes:
    """A PNG written by hand (for 16-bit colour and lying headers)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(pixels if pixels is not None else b""))
        + png_chunk(b"IEND", b"")
    )


def png16(samples: np.ndarray, color_type: int) -> bytes:
    """16-bit PNG from an (H, W, C) array of uint16 samples."""
    big = samples.astype(">u2")
    rows = b"".join(b"\x00" + big[y].tobytes() for y in range(big.shape[0]))
    return raw_png(big.shape[1], big.shape[0], 16, color_type, rows)


def with_orientation(image: Image.Image, orientation: int, fmt: str, **kw) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, fmt, exif=exif.tobytes(), **kw)


# EXIF orientation -> what the viewer must do to the stored pixels (EXIF spec).
ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


# --------------------------------------------------------------------------
# Good files
# --------------------------------------------------------------------------
FORMATS = [
    # id, extension, Pillow format, save kwargs, colour tolerance
    ("jpeg-baseline", ".jpg", "JPEG", {"quality": 95}, 40),
    ("jpeg-progressive", ".jpeg", "JPEG", {"quality": 95, "progressive": True}, 40),
    ("png", ".png", "PNG", {}, 0),
    ("gif", ".gif", "GIF", {}, 0),
    ("bmp", ".bmp", "BMP", {}, 0),
    ("webp-lossless", ".webp", "WEBP", {"lossless": True}, 0),
    ("webp-lossy", ".webp", "WEBP", {"quality": 90}, 40),
    ("tiff-raw", ".tif", "TIFF", {}, 0),
    ("tiff-lzw", ".tiff", "TIFF", {"compression": "tiff_lzw"}, 0),
    ("tiff-deflate", ".tif", "TIFF", {"compression": "tiff_adobe_deflate"}, 0),
]


@pytest.mark.parametrize(
    "ext, fmt, kw, tol", [f[1:] for f in FORMATS], ids=[f[0] for f in FORMATS]
)
def test_reads_every_format_as_uint8_rgb(tmp_path, ext, fmt, kw, tol):
    path = write_bytes(tmp_path / f"img{ext}", encode(Image.fromarray(quadrants()), fmt, **kw))

    pixels = read_image(path)

    assert pixels.shape == (24, 32, 3)
    assert pixels.dtype == np.uint8
    assert pixels.flags.writeable
    assert_close(corners(pixels), [RED, GREEN, BLUE, YELLOW], tol)


@pytest.mark.parametrize(
    "ext, fmt, kw, tol", [f[1:] for f in FORMATS], ids=[f[0] for f in FORMATS]
)
def test_image_info_and_probe_report_size_and_format(tmp_path, ext, fmt, kw, tol):
    path = write_bytes(tmp_path / f"img{ext}", encode(Image.fromarray(quadrants()), fmt, **kw))

    assert image_info(path) == {"width": 32, "height": 24, "format": fmt}
    assert probe_image(path) == {
        "readable": True, "error": "", "kind": "", "width": 32, "height": 24, "format": fmt,
    }


def test_greyscale_jpeg_becomes_three_equal_channels(tmp_path):
    grey = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (16, 1))
    path = write_bytes(tmp_path / "grey.jpg", encode(Image.fromarray(grey, "L"), "JPEG"))

    pixels = read_image(path)

    assert pixels.shape == (16, 32, 3)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert_close(pixels[8, :, 0], grey[8], 12)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan, full magenta+yellow: red
    path = write_bytes(tmp_path / "cmyk.jpg", encode(cmyk, "JPEG"))
    assert Image.open(path).mode == "CMYK"

    pixels = read_image(path)

    assert pixels.shape == (16, 16, 3)
    assert_close(pixels[8, 8], RED, 10)


def test_palette_png(tmp_path):
    image = Image.fromarray(quadrants()).quantize(colors=4)
    path = write_bytes(tmp_path / "palette.png", encode(image, "PNG"))
    assert Image.open(path).mode == "P"

    assert corners(read_image(path)) == [RED, GREEN, BLUE, YELLOW]


def test_palette_png_with_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (4, 2), 0)
    image.putpalette(list(RED) + list(BLUE) + [0] * (256 * 3 - 6))
    image.putpixel((0, 0), 1)
    path = write_bytes(tmp_path / "trns.png", encode(image, "PNG", transparency=1))

    pixels = read_image(path)

    assert tuple(pixels[0, 0]) == (255, 255, 255)  # transparent index -> white
    assert tuple(pixels[1, 3]) == RED


def test_rgba_alpha_is_composited_on_white(tmp_path):
    rgba = np.array(
        [[[255, 0, 0, 255], [255, 0, 0, 0], [255, 0, 0, 128], [0, 0, 0, 51]]], np.uint8
    )
    path = write_bytes(tmp_path / "alpha.png", encode(Image.fromarray(rgba, "RGBA"), "PNG"))

    pixels = read_image(path)

    assert pixels.shape == (1, 4, 3)
    assert pixels[0].tolist() == [[255, 0, 0], [255, 255, 255], [255, 127, 127], [204, 204, 204]]


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_alpha_composited_in_other_formats(tmp_path, fmt):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2] = 255  # blue
    rgba[:, :2, 3] = 255  # left half opaque, right half fully transparent
    path = write_bytes(
        tmp_path / f"a.{fmt.lower()}", encode(Image.fromarray(rgba, "RGBA"), fmt, lossless=True)
    )

    pixels = read_image(path)

    assert tuple(pixels[0, 0]) == BLUE
    assert tuple(pixels[0, 3]) == (255, 255, 255)


def test_grey_alpha_png(tmp_path):
    la = np.array([[[100, 255], [0, 0], [0, 255]]], np.uint8)
    path = write_bytes(tmp_path / "la.png", encode(Image.fromarray(la, "LA"), "PNG"))

    assert read_image(path)[0].tolist() == [[100] * 3, [255] * 3, [0] * 3]


def test_colour_key_transparency_in_grey_and_rgb_png(tmp_path):
    grey = Image.fromarray(np.array([[10, 20]], np.uint8), "L")
    rgb = Image.fromarray(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8), "RGB")
    grey_path = write_bytes(tmp_path / "l.png", encode(grey, "PNG", transparency=10))
    rgb_path = write_bytes(tmp_path / "rgb.png", encode(rgb, "PNG", transparency=(1, 2, 3)))

    assert read_image(grey_path)[0].tolist() == [[255] * 3, [20] * 3]
    assert read_image(rgb_path)[0].tolist() == [[255] * 3, [4, 5, 6]]


SIXTEEN = np.array([[0, 65535, 32768, 257 * 100, 1000]], np.uint16)
EIGHT = [0, 255, 128, 100, 3]  # the high byte


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_greyscale_is_scaled_to_8bit(tmp_path, fmt):
    path = write_bytes(tmp_path / f"g16.{fmt.lower()}", encode(Image.fromarray(SIXTEEN), fmt))
    assert Image.open(path).mode.startswith("I;16")

    pixels = read_image(path)

    assert pixels.dtype == np.uint8
    assert pixels[0, :, 0].tolist() == EIGHT
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_16bit_rgb_png_is_scaled_to_8bit(tmp_path):
    samples = np.stack([SIXTEEN, SIXTEEN[:, ::-1], np.full_like(SIXTEEN, 65535)], axis=2)
    path = write_bytes(tmp_path / "rgb16.png", png16(samples, color_type=2))

    pixels = read_image(path)

    assert pixels.shape == (1, 5, 3)
    assert pixels[0, :, 0].tolist() == EIGHT
    assert pixels[0, :, 1].tolist() == EIGHT[::-1]
    assert pixels[0, :, 2].tolist() == [255] * 5


def test_16bit_rgba_png_is_scaled_and_composited(tmp_path):
    samples = np.array([[[65535, 0, 0, 65535], [65535, 0, 0, 0], [0, 0, 257 * 100, 65535]]])
    path = write_bytes(tmp_path / "rgba16.png", png16(samples, color_type=6))

    assert read_image(path)[0].tolist() == [[255, 0, 0], [255, 255, 255], [0, 0, 100]]


def test_gif_first_frame_only(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, BLUE, GREEN)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3

    pixels = read_image(path)

    assert pixels.shape == (8, 8, 3)
    assert (pixels == RED).all()


def test_gif_with_transparency(tmp_path):
    image = Image.new("P", (2, 1), 0)
    image.putpalette(list(GREEN) + list(BLUE) + [0] * (256 * 3 - 6))
    image.putpixel((1, 0), 1)
    path = write_bytes(tmp_path / "t.gif", encode(image, "GIF", transparency=1))

    assert read_image(path)[0].tolist() == [list(GREEN), [255, 255, 255]]


def test_multipage_tiff_first_page(tmp_path):
    pages = [Image.new("RGB", (6, 4), c) for c in (YELLOW, BLUE)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])

    assert (read_image(path) == YELLOW).all()


def test_bilevel_image(tmp_path):
    image = Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1")
    path = write_bytes(tmp_path / "bw.png", encode(image, "PNG"))

    assert read_image(path)[0].tolist() == [[0] * 3, [255] * 3]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = quadrants(8, 12)
    path = write_bytes(
        tmp_path / f"o{orientation}.png",
        with_orientation(Image.fromarray(stored), orientation, "PNG"),
    )
    expected = ORIENT[orientation](stored)

    pixels = read_image(path)

    np.testing.assert_array_equal(pixels, expected)
    assert image_info(path)["width"] == expected.shape[1]
    assert image_info(path)["height"] == expected.shape[0]


def test_jpeg_exif_orientation_6_turns_clockwise(tmp_path):
    """Stored wide with red at the left; displayed tall with red at the top."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = RED
    stored[:, 20:] = BLUE
    path = write_bytes(
        tmp_path / "phone.jpg", with_orientation(Image.fromarray(stored), 6, "JPEG")
    )

    pixels = read_image(path)

    assert pixels.shape == (40, 20, 3)
    assert_close(pixels[5, 10], RED, 30)
    assert_close(pixels[35, 10], BLUE, 30)
    assert image_info(path) == {"width": 20, "height": 40, "format": "JPEG"}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow: "Corrupt EXIF data"
def test_corrupt_exif_does_not_make_pixels_unreadable(tmp_path):
    junk = b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + bytes(range(40))
    path = write_bytes(
        tmp_path / "junk-exif.jpg", encode(Image.new("RGB", (16, 8), BLUE), "JPEG", exif=junk)
    )

    assert read_image(path).shape == (8, 16, 3)


@pytest.mark.parametrize(
    "name",
    [
        "PHOTO.JPG",
        "Photo.JpEg",
        "scan.PNG",
        "anim.GIF",
        "old.BMP",
        "new.WEBP",
        "page.TIF",
        "page.TIFF",
        "with spaces  in name.jpg",
        "ñandú 🦒 Zürich.png",
        "-leading-dash.jpg",
        "--.png",
        "quote's & (brackets) [1].jpg",
    ],
)
def test_awkward_file_names(tmp_path, write_image, name):
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        Path(name).suffix.lower(), Path(name).suffix[1:].upper()
    )
    path = write_image(name, size=(6, 10), color=(0, 0, 255), format=fmt)

    pixels = read_image(path)

    assert pixels.shape == (6, 10, 3)
    assert_close(pixels[3, 5], BLUE, 10)
    assert path in list(iter_image_files(tmp_path))
    assert read_image(str(path)).shape == (6, 10, 3)  # str works as well as Path


@pytest.mark.skipif(sys.platform != "linux", reason="Linux allows any bytes in names")
def test_non_utf8_file_name(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    with open(raw, "wb") as fh:
        fh.write(encode(Image.new("RGB", (3, 2), GREEN), "PNG"))

    (found,) = iter_image_files(tmp_path)

    assert tuple(read_image(found)[0, 0]) == GREEN


def test_content_decides_format_not_extension(tmp_path):
    path = write_bytes(tmp_path / "really-a-png.jpg", encode(Image.new("RGB", (3, 2), RED), "PNG"))

    assert tuple(read_image(path)[1, 2]) == RED
    assert image_info(path)["format"] == "PNG"


def test_symlink_inside_root_is_fine(tmp_path, write_image):
    target = write_image("lib/cat/a.png", color=GREEN)
    link = tmp_path / "lib" / "dog" / "a-link.png"
    link.parent.mkdir()
    link.symlink_to(target)

    assert tuple(read_image(link, root=tmp_path / "lib")[0, 0]) == GREEN


# --------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------
def refused(path, kind: str, *words: str, **kwargs) -> ImageError:
    """Assert read_image, image_info and probe_image all refuse ``path``."""
    with pytest.raises(ImageError) as caught:
        read_image(path, **kwargs)
    err = caught.value
    assert err.kind == kind, err
    for word in words:
        assert word.lower() in err.reason.lower(), err
    assert str(path) in str(err)
    with pytest.raises(ImageError):
        image_info(path, **kwargs)
    with pytest.raises(ImageError):
        read_image_resized(path, (8, 8), **kwargs)
    probe = probe_image(path, **kwargs)
    assert probe["readable"] is False and probe["kind"] == kind
    assert probe["error"] == err.reason and probe["width"] == probe["height"] == 0
    return err


TRUNCATIONS = [
    # id, Pillow format, save kwargs, bytes kept (fraction, or negative = drop from end)
    ("jpeg-half", "JPEG", {}, 0.5),
    ("jpeg-90%", "JPEG", {}, 0.9),
    ("jpeg-no-eoi", "JPEG", {}, -2),
    ("jpeg-last-byte", "JPEG", {}, -1),
    ("jpeg-header-only", "JPEG", {}, 0.05),
    ("progressive-half", "JPEG", {"progressive": True}, 0.5),
    ("progressive-no-eoi", "JPEG", {"progressive": True}, -2),
    ("png-half", "PNG", {}, 0.5),
    ("png-no-iend", "PNG", {}, -12),
    ("png-header-only", "PNG", {}, 30),
    ("gif-half", "GIF", {}, 0.5),
    ("gif-90%", "GIF", {}, 0.9),
    ("bmp-half", "BMP", {}, 0.5),
    ("webp-half", "WEBP", {}, 0.5),
    ("webp-lossless-90%", "WEBP", {"lossless": True}, 0.9),
    ("tiff-half", "TIFF", {}, 0.5),
    ("tiff-lzw-half", "TIFF", {"compression": "tiff_lzw"}, 0.5),
]


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow, on cut TIFFs
@pytest.mark.parametrize(
    "fmt, kw, keep", [t[1:] for t in TRUNCATIONS], ids=[t[0] for t in TRUNCATIONS]
)
def test_truncated_files_are_refused(tmp_path, fmt, kw, keep):
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt, **kw)
    if isinstance(keep, float):
        cut = int(len(data) * keep)
    else:
        cut = keep if keep > 0 else len(data) + keep
    path = write_bytes(tmp_path / f"cut.{fmt.lower()}", data[:cut])

    refused(path, "truncated", "truncated", "copy it again")


def test_truncated_jpeg_is_found_by_the_fast_probe(tmp_path):
    """image_info decodes JPEG at 1/8 scale; it must still read every byte."""
    noise = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG")
    path = write_bytes(tmp_path / "big.jpg", data[: len(data) - 100])

    assert probe_image(path)["kind"] == "truncated"
    write_bytes(path, data)
    assert probe_image(path)["readable"] is True


def test_corrupt_png_data_is_refused(tmp_path):
    data = bytearray(encode(Image.fromarray(quadrants()), "PNG"))
    data[60] ^= 0xFF  # inside IDAT: the chunk CRC no longer matches
    path = write_bytes(tmp_path / "flipped.png", bytes(data))

    refused(path, "corrupt", "corrupt")


def test_empty_file(tmp_path):
    path = write_bytes(tmp_path / "empty.jpg", b"")

    refused(path, "empty", "empty", "0 bytes")


RANDOM = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
UNRECOGNISED = "not a recognised image"
NOT_IMAGES = [
    # id, content, kind, word the reason must contain
    ("html", b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n", "not_an_image", "HTML"),
    ("html-lower", b"\n  <html><head></head></html>", "not_an_image", "HTML"),
    ("text", b"cat, dog, antelope\nthese are notes\n", "not_an_image", "text file"),
    ("utf8-text", "zebra 🦓 and gnu\n".encode(), "not_an_image", "text file"),
    ("svg", SVG, "unsupported_format", "SVG"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not_an_image", "PDF"),
    ("heic", HEIC, "unsupported_format", "HEIC"),
    ("random", RANDOM, "not_an_image", UNRECOGNISED),
    ("zeros", bytes(1000), "not_an_image", UNRECOGNISED),
    ("ico", encode(Image.new("RGB", (16, 16)), "ICO"), "not_an_image", UNRECOGNISED),
]


@pytest.mark.parametrize(
    "data, kind, word", [n[1:] for n in NOT_IMAGES], ids=[n[0] for n in NOT_IMAGES]
)
@pytest.mark.parametrize("ext", [".jpg", ".PNG", ".webp"])
def test_files_that_are_not_images(tmp_path, data, kind, word, ext):
    path = write_bytes(tmp_path / f"fake{ext}", data)

    refused(path, kind, word)


@pytest.mark.parametrize(
    "fmt, magic",
    [
        ("JPEG", b"\xff\xd8\xff\xe0"),
        ("PNG", b"\x89PNG\r\n\x1a\n"),
        ("GIF", b"GIF89a"),
        ("WebP", b"RIFF\x10\x00\x00\x00WEBPVP8 "),
    ],
)
def test_damaged_header_names_the_format(tmp_path, fmt, magic):
    path = write_bytes(tmp_path / "damaged.jpg", magic + b"\x00\x01garbage" * 8)

    with pytest.raises(ImageError) as caught:
        read_image(path)

    assert caught.value.kind in {"corrupt", "truncated"}
    assert fmt in caught.value.reason
    assert probe_image(path)["readable"] is False


# --- decompression bombs ---------------------------------------------------
def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8), RED), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # logical screen size
    return bytes(data)


BOMBS = {
    "png-10G.png": lambda: raw_png(100_000, 100_000, 8, 2, b""),  # Pillow's hard limit
    "png-4G-grey16.png": lambda: raw_png(65_535, 65_535, 16, 0, b"\x00"),
    "jpeg-4G.jpg": lambda: jpeg_claiming(65_535, 65_535),
    "gif-4G.gif": lambda: gif_claiming(65_535, 65_535),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_decompression_bomb_headers_are_refused_without_decoding(tmp_path, name):
    path = write_bytes(tmp_path / name, BOMBS[name]())

    refused(path, "too_large", "decompression bomb")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    "name, data",
    [
        ("png-90M.png", raw_png(10_000, 9_000, 8, 2, b"")),  # Pillow only warns here
        ("jpeg-65M.jpg", jpeg_claiming(8_100, 8_100)),  # Pillow is silent; max_pixels refuses
    ],
)
def test_headers_above_max_pixels_are_refused(tmp_path, name, data):
    path = write_bytes(tmp_path / name, data)

    err = refused(path, "too_large", "max_pixels", "decompression bomb")
    assert "larger max_pixels" in err.reason


def test_small_max_pixels_refuses_a_real_image(tmp_path, write_image):
    path = write_image("a.png", size=(20, 30))

    refused(path, "too_large", "20 = 600 pixels", max_pixels=599)
    assert read_image(path, max_pixels=600).shape == (20, 30, 3)
    assert read_image(path, max_pixels=None).shape == (20, 30, 3)


@pytest.mark.parametrize("bad", [0, -5, 1.5, "big", True])
def test_invalid_max_pixels(tmp_path, write_image, bad):
    path = write_image("a.png")

    with pytest.raises(ValueError, match="max_pixels"):
        read_image(path, max_pixels=bad)


# --- paths that are not (good) files ------------------------------------------
def test_missing_file(tmp_path):
    refused(tmp_path / "nope.jpg", "missing", "does not exist")
    refused(tmp_path / "no-folder" / "nope.jpg", "missing", "does not exist")


def test_directory_named_like_an_image(tmp_path):
    folder = tmp_path / "holiday.jpg"
    folder.mkdir()

    refused(folder, "directory", "directory")


def test_dangling_symlink(tmp_path):
    link = tmp_path / "gone.png"
    link.symlink_to(tmp_path / "deleted.png")

    refused(link, "dangling_symlink", "dangling", "deleted.png")


def test_symlink_loop(tmp_path):
    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")

    refused(tmp_path / "a.jpg", "dangling_symlink", "symbolic link")


def test_symlink_leaving_root_is_refused(tmp_path, write_image):
    outside = write_image("elsewhere/secret.png")
    link = tmp_path / "lib" / "cat" / "innocent.png"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)

    refused(link, "outside_root", "outside", root=tmp_path / "lib")
    assert read_image(link).shape == (32, 32, 3)  # without root, links are followed


def test_symlinked_folder_leaving_root_is_refused(tmp_path, write_image):
    write_image("elsewhere/secret.png")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "cat").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    path = tmp_path / "lib" / "cat" / "secret.png"
    refused(path, "outside_root", "outside", root=tmp_path / "lib")


def test_plain_path_outside_root_is_refused(tmp_path, write_image):
    path = write_image("a.png")
    (tmp_path / "lib").mkdir()

    refused(path, "outside_root", "outside", root=tmp_path / "lib")
    refused(tmp_path / "lib" / ".." / "a.png", "outside_root", "outside", root=tmp_path / "lib")


@posix_only
def test_fifo_named_like_an_image_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)

    refused(fifo, "not_a_file", "not a regular file")
    with pytest.raises(ImageError):
        file_hash(fifo)


@posix_only
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path, write_image):
    path = write_image("locked.png")
    path.chmod(0)
    try:
        refused(path, "permission", "permission denied")
    finally:
        path.chmod(0o644)


# --- the error itself ------------------------------------------------------
def test_image_error_is_actionable_and_picklable(tmp_path):
    path = write_bytes(tmp_path / "notes.jpg", b"not an image at all, just words\n")

    with pytest.raises(ValueError) as caught:  # ImageError is a ValueError
        read_image(path)
    err = caught.value

    assert isinstance(err, ImageError)
    assert err.path == path
    assert str(err) == f"Cannot read image {str(path)!r}: {err.reason}"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.reason, copy.kind) == (err.path, err.reason, err.kind)
    assert str(copy) == str(err)


# --------------------------------------------------------------------------
# read_image_resized
# --------------------------------------------------------------------------
@pytest.mark.parametrize("turns", [0, 1, 2, 3, 4, -1, 7])
def test_turns_follow_np_rot90(tmp_path, turns):
    stored = quadrants(8, 12)
    path = write_bytes(tmp_path / "q.png", encode(Image.fromarray(stored), "PNG"))
    expected = np.rot90(stored, turns)

    pixels = read_image_resized(path, expected.shape[:2], turns=turns)

    np.testing.assert_array_equal(pixels, expected)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_turns_apply_after_exif_orientation(tmp_path, orientation, turns):
    stored = quadrants(8, 12)
    path = write_bytes(
        tmp_path / "q.png", with_orientation(Image.fromarray(stored), orientation, "PNG")
    )
    expected = np.rot90(ORIENT[orientation](stored), turns)

    np.testing.assert_array_equal(
        read_image_resized(path, expected.shape[:2], turns=turns), expected
    )


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (16, 40), (64, 48), (300, 7)])
@pytest.mark.parametrize("ext", [".jpg", ".png", ".gif"])
def test_resized_shape_and_colours(tmp_path, write_image, size, ext):
    path = write_image(f"solid{ext}", size=(30, 20), color=(0, 128, 255))

    pixels = read_image_resized(path, size)

    assert pixels.shape == (*size, 3) and pixels.dtype == np.uint8
    assert_close(pixels.reshape(-1, 3).mean(axis=0), (0, 128, 255), 6)


def test_resized_accepts_numpy_ints_and_lists(tmp_path, write_image):
    path = write_image("a.png")

    assert read_image_resized(path, [np.int64(5), 6], turns=np.int64(1)).shape == (5, 6, 3)


@pytest.mark.parametrize("turns", [0, 1])
@pytest.mark.parametrize("orientation", [1, 6])
def test_jpeg_draft_resize_matches_full_decode(tmp_path, orientation, turns):
    """The reduced-scale JPEG decode gives (almost) the pixels of a full one."""
    y, x = np.mgrid[0:384, 0:512]
    smooth = np.stack([x / 2, y / 1.5, (x + y) / 3.5], axis=2).astype(np.uint8)
    smooth[:192, :256] = RED  # a quadrant to catch a wrong orientation
    path = write_bytes(
        tmp_path / "big.jpg", with_orientation(Image.fromarray(smooth), orientation, "JPEG")
    )
    full = np.rot90(read_image(path), turns)
    size = (full.shape[0] // 8, full.shape[1] // 8)
    reference = np.asarray(
        Image.fromarray(np.ascontiguousarray(full)).resize(size[::-1], Image.Resampling.BILINEAR)
    )

    fast = read_image_resized(path, size, turns=turns)

    assert fast.shape == (*size, 3)
    assert np.abs(fast.astype(int) - reference.astype(int)).mean() < 3


@pytest.mark.parametrize(
    "bad", [(0, 5), (5, -1), (5,), (1, 2, 3), "64", 64, (1.5, 2), (True, 3), None]
)
def test_invalid_size(tmp_path, write_image, bad):
    path = write_image("a.png")

    with pytest.raises(ValueError, match="size"):
        read_image_resized(path, bad)


@pytest.mark.parametrize("bad", ["1", 1.0, True, None])
def test_invalid_turns(tmp_path, write_image, bad):
    path = write_image("a.png")

    with pytest.raises(ValueError, match="turns"):
        read_image_resized(path, (4, 4), turns=bad)
