"""Validation of a photo a visitor uploads to be cloaked. Pillow and numpy only: no torch, no HTTP.

Everything happens in memory: the bytes are checked, decoded once and turned into a fresh RGB uint8 array, so
nothing of the original file (EXIF, GPS, ICC profile, comments, XMP) survives into anything we keep or send back.
Each refusal is an :class:`UploadRejected` with the HTTP status that fits it and a message that says what to do.

Rules:

- JPEG, PNG or WebP only, judged from the content (never the file name or the declared type);
- at most ``max_bytes`` bytes (413) and ``max_pixels`` pixels (413); the pixel count is read from the header
  before anything is decoded, and Pillow's decompression-bomb guard is turned into a refusal as well;
- animated images (APNG, animated WebP) are refused (422); truncated or corrupt files are refused (422);
- EXIF orientation is applied, then the image is converted to 8-bit RGB: greyscale, palette and CMYK are
  converted; 16-bit greyscale is scaled to 8 bits; an alpha channel is flattened onto white (each conversion is
  reported in ``notes``); 32-bit float images are refused (415);
- a photo larger than ``max_side`` on its long side is scaled down (antialiased) to that working size.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import ArenaError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000

EMPTY = "The upload is empty. Choose a JPEG, PNG or WebP photo."
NOT_AN_IMAGE = "That file is not a JPEG, PNG or WebP image. Choose a photo in one of those formats."
TOO_LARGE = "The file is larger than {limit_mb:g} MB. Save it smaller (or as JPEG) and try again."
TOO_MANY_PIXELS = (
    "The image has {pixels:,} pixels; the limit is {limit:,} ({limit_mp:g} megapixels). Scale it down and try again."
)
BOMB = "The image claims to be far larger than its file (a decompression bomb); it was not opened."
TRUNCATED = "The image is truncated or corrupt and could not be decoded. Export it again and retry."
ANIMATED = "Animated images are not supported. Upload a single still frame (JPEG, PNG or WebP)."
UNSUPPORTED_MODE = "Images with {mode} pixels are not supported. Save the photo as 8-bit RGB and try again."


class UploadRejected(ArenaError):
    """A bad upload: the status says which kind (413 too big, 415 not a supported image, 422 unusable)."""

    status_code = 422


@dataclass(frozen=True)
class ValidatedImage:
    """A clean RGB copy of the upload: (H,W,3) uint8, metadata gone, orientation applied."""

    pixels: np.ndarray
    source_format: str
    source_size: tuple[int, int]  # (width, height) as stored in the file, before orientation and scaling
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.pixels.shape[1]), int(self.pixels.shape[0]))


def validate_upload(
    data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS, max_side: int | None = None
) -> ValidatedImage:
    if not data:
        raise UploadRejected(EMPTY, status_code=422)
    if len(data) > max_bytes:
        raise UploadRejected(TOO_LARGE.format(limit_mb=max_bytes / 1024 / 1024), status_code=413)
    notes: list[str] = []
    with warnings.catch_warnings():
        # Pillow warns (and above twice its limit raises) for images bigger than Image.MAX_IMAGE_PIXELS. We check
        # our own, stricter limit from the header first; the guard stays on as a second line, as an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadRejected(BOMB, status_code=413) from None
        except UnidentifiedImageError:
            raise UploadRejected(NOT_AN_IMAGE, status_code=415) from None
        except (OSError, SyntaxError, ValueError):
            raise UploadRejected(TRUNCATED, status_code=422) from None
        with image:
            width, height = image.size
            source_format = str(image.format)
            if width * height > max_pixels:
                raise UploadRejected(
                    TOO_MANY_PIXELS.format(pixels=width * height, limit=max_pixels, limit_mp=max_pixels / 1e6),
                    status_code=413,
                )
            if getattr(image, "is_animated", False) or getattr(image, "n_frames", 1) > 1:
                raise UploadRejected(ANIMATED, status_code=422)
            try:
                image.load()
                oriented = ImageOps.exif_transpose(image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UploadRejected(BOMB, status_code=413) from None
            except (OSError, SyntaxError, ValueError, EOFError):
                raise UploadRejected(TRUNCATED, status_code=422) from None
            if oriented is not image and oriented.size != image.size:
                notes.append("rotated upright from its EXIF orientation")
            rgb = _to_rgb(oriented, notes)
    if max_side is not None and max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        new_size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        notes.append(f"scaled from {rgb.width}x{rgb.height} to {new_size[0]}x{new_size[1]} to be cloaked")
        rgb = rgb.resize(new_size, Image.Resampling.LANCZOS)
    pixels = np.array(rgb, dtype=np.uint8)  # a fresh array: no reference to the decoded file or its metadata
    return ValidatedImage(pixels=pixels, source_format=source_format, source_size=(width, height), notes=tuple(notes))


def _to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        if mode == "P" and "transparency" in image.info:
            return _flatten(image.convert("RGBA"), notes)
        if mode == "CMYK":
            notes.append("converted from CMYK to RGB")
        elif mode in ("L", "1"):
            notes.append("converted from greyscale to RGB")
        return image.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _flatten(image.convert("RGBA"), notes)
    if mode.startswith("I;16") or mode == "I":
        array = np.asarray(image).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 1.0)
        notes.append(f"converted from {mode} ({'16-bit' if mode.startswith('I;16') else '32-bit'}) to 8-bit RGB")
        grey = np.clip(np.round(array * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    raise UploadRejected(UNSUPPORTED_MODE.format(mode=mode), status_code=415)


def _flatten(rgba: Image.Image, notes: list[str]) -> Image.Image:
    alpha = rgba.getchannel("A")
    if alpha.getextrema() != (255, 255):
        notes.append("transparent areas flattened onto white")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=alpha)
    return background


def to_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG with no metadata chunks (no text, EXIF or ICC): only what the pixels are."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected (H,W,3) uint8 pixels, got {pixels.dtype} {pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
