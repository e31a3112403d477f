"""Upload validation for /cloak (no torch, no HTTP): every kind of bad input gets its own status and message,
odd pixel formats are converted or refused explicitly, orientation is applied and metadata never survives."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.ml.cloak import uploads
from app.ml.cloak.uploads import UploadRejected, to_png, validate_upload


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header claims width x height (what a decompression bomb looks like)."""
    data = encode(Image.new("RGB", (1, 1)), "PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:8] + patched + data[8 + len(patched) :]


def rejected(data: bytes, **kwargs: object) -> UploadRejected:
    with pytest.raises(UploadRejected) as info:
        validate_upload(data, **kwargs)  # type: ignore[arg-type]
    return info.value


def photo(size: tuple[int, int] = (40, 30)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_three_formats_are_accepted_as_rgb(fmt: str) -> None:
    image = validate_upload(encode(photo(), fmt))
    assert image.pixels.shape == (30, 40, 3) and image.pixels.dtype == np.uint8
    assert image.source_format == fmt


def test_empty_and_non_images_are_refused() -> None:
    assert rejected(b"").status_code == 422 and rejected(b"").message == uploads.EMPTY
    for data in (b"hello, not an image", b"%PDF-1.7\n" + bytes(200), encode(photo(), "GIF"), encode(photo(), "BMP")):
        error = rejected(data)
        assert (error.status_code, error.message) == (415, uploads.NOT_AN_IMAGE)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_refused(fmt: str) -> None:
    data = encode(photo((200, 150)), fmt)
    error = rejected(data[: len(data) // 2])
    assert (error.status_code, error.message) == (422, uploads.TRUNCATED)


def test_oversize_files_and_images_are_refused_before_decoding() -> None:
    data = encode(photo(), "PNG")
    error = rejected(data, max_bytes=len(data) - 1)
    assert error.status_code == 413 and "MB" in error.message
    error = rejected(data, max_pixels=40 * 30 - 1)
    assert error.status_code == 413 and "megapixels" in error.message
    # a header claiming 50 megapixels in a file of a few bytes: refused from the header, nothing decoded
    error = rejected(png_claiming(10_000, 5_000))
    assert error.status_code == 413 and "50,000,000 pixels" in error.message


def test_a_decompression_bomb_is_refused() -> None:
    error = rejected(png_claiming(30_000, 30_000), max_pixels=10**10)  # past Pillow's own guard as well
    assert (error.status_code, error.message) == (413, uploads.BOMB)
    # a real one: 48 megapixels of zeros compress to a few dozen kilobytes
    bomb = encode(Image.new("L", (8000, 6000)), "PNG")
    assert len(bomb) < 200_000
    assert rejected(bomb).status_code == 413


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_images_are_refused(fmt: str) -> None:
    frames = [photo(), photo((40, 30)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    error = rejected(data)
    assert (error.status_code, error.message) == (422, uploads.ANIMATED)


def test_cmyk_is_converted() -> None:
    image = validate_upload(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=100))
    r, g, b = image.pixels[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta+yellow full: red
    assert any("CMYK" in note for note in image.notes)


def test_sixteen_bit_greyscale_is_scaled_to_eight_bits() -> None:
    grey16 = np.array([[0, 32896, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(grey16), "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I")  # really stored as 16-bit
    image = validate_upload(data)
    assert image.pixels[0, :, 0].tolist() == [0, 128, 255]
    assert image.pixels.shape == (1, 3, 3)


def test_alpha_is_flattened_onto_white() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half fully transparent
    image = validate_upload(encode(Image.fromarray(rgba), "PNG"))
    assert image.pixels[0, 0].tolist() == [255, 0, 0]
    assert image.pixels[3, 0].tolist() == [255, 255, 255]
    assert any("transparent" in note for note in image.notes)


def test_exif_orientation_is_applied_and_all_metadata_is_dropped() -> None:
    base = photo((40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}  # GPS IFD
    data = encode(base, "JPEG", exif=exif.tobytes(), quality=95, comment=b"my home address")
    image = validate_upload(data)
    assert image.pixels.shape == (40, 30, 3)  # displayed upright: 30 wide, 40 high
    png = to_png(image.pixels)
    assert b"SecretCam" not in png and b"my home" not in png
    with Image.open(io.BytesIO(png)) as out:
        assert not out.getexif() and "exif" not in out.info and "comment" not in out.info
        assert not [key for key in out.info if key not in ("dpi",)]


def test_large_photos_are_scaled_to_the_working_size() -> None:
    image = validate_upload(encode(photo((400, 300)), "PNG"), max_side=100)
    assert image.pixels.shape == (75, 100, 3)
    assert image.source_size == (400, 300)


@pytest.mark.anyio
async def test_results_left_by_a_killed_server_are_deleted_at_start(tmp_path: object) -> None:
    import secrets
    from pathlib import Path

    from app.ml.cloak.service import CloakService

    root = Path(str(tmp_path))
    stale = root / secrets.token_urlsafe(16)
    stale.mkdir()
    (stale / "original.png").write_bytes(b"someone's photo")
    keep = root / "README"
    keep.write_text("not a result")
    service = CloakService(result_dir=root)
    await service.start()
    await service.stop()
    assert not stale.exists() and keep.exists()


@pytest.mark.anyio
async def test_without_the_extra_cloaking_says_how_to_install_it(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from app.errors import ServiceUnavailable
    from app.ml.cloak import service as cloak_service

    monkeypatch.setattr(cloak_service, "imagenet_installed", lambda: False)
    service = cloak_service.CloakService(result_dir=Path(str(tmp_path)))
    await service.start()
    try:
        assert not service.available
        with pytest.raises(ServiceUnavailable) as info:
            await service.submit(encode(photo(), "PNG"), cloak_service.CloakOptions())
        assert "pip install -e '.[imagenet]'" in info.value.message
    finally:
        await service.stop()
