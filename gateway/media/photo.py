"""Photos: a display JPEG and a thumbnail from an inspector's JPEG, PNG or HEIC. Pure:
bytes (or a file) and settings in, bytes and metadata out.

The derivatives are upright (the EXIF orientation is applied), sRGB (an embedded ICC
profile is converted), progressive JPEG, and carry no metadata at all: no EXIF, so no GPS
and no device serial. What the acceptors need from the EXIF, the capture time and the GPS
position, is extracted into the metadata first. The original is not touched.

Speed comes from decoding at reduced size: a JPEG decoder can scale by 1/2, 1/4 or 1/8
while it decodes (`Image.draft`), so a 4000×3000 photo bound for 1600 px is decoded at
2000×1500, shrunk, and only then rotated. Memory stays bounded the same way, and a pixel
limit refuses decompression bombs before a single pixel is decoded.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pillow_heif
from PIL import Image, ImageCms, UnidentifiedImageError

from gateway.errors import MediaError, Reason
from gateway.media.exif import PhotoFacts, read_facts

pillow_heif.register_heif_opener()

FORMATS = ("JPEG", "PNG", "HEIF")
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True, slots=True)
class PhotoSettings:
    display_px: int = 1600  # long edge of the display derivative
    thumb_px: int = 320  # long edge of the thumbnail
    quality: int = 80
    thumb_quality: int = 75
    # A 108-MP phone sensor is the largest in the field; anything beyond is refused
    # before decoding (a decompression bomb declares billions of pixels in a few bytes).
    max_pixels: int = 120_000_000


@dataclass(frozen=True, slots=True)
class Rendition:
    data: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class PhotoResult:
    display: Rendition
    thumbnail: Rendition
    format: str
    width: int  # of the original, upright
    height: int
    orientation: int
    color: str  # what was done to make it sRGB
    facts: PhotoFacts = field(default_factory=PhotoFacts)

    def metadata(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "orientation": self.orientation,
            "color": self.color,
            **self.facts.as_dict(),
        }


def render_photo(source: bytes | BinaryIO, settings: PhotoSettings | None = None) -> PhotoResult:
    """Make the display photo and thumbnail, or refuse with a `MediaError` and its reason."""
    settings = settings or PhotoSettings()
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    image = _open(stream, settings)
    with image:
        width, height = image.size
        facts = read_facts(image)
        orientation = facts.orientation
        if image.format == "JPEG":
            scale = settings.display_px / max(width, height)
            if scale < 1:  # decode at the smallest of 1/2, 1/4, 1/8 that is still big enough
                image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        _load(image)
        rgb, color = _to_srgb(image)
    display = _orient(_shrink(rgb, settings.display_px), orientation)
    thumbnail = _shrink(display, settings.thumb_px)
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return PhotoResult(
        display=_encode(display, settings.quality),
        thumbnail=_encode(thumbnail, settings.thumb_quality),
        format=image.format or "unknown",
        width=upright[0],
        height=upright[1],
        orientation=orientation,
        color=color,
        facts=facts,
    )


def _open(stream: BinaryIO, settings: PhotoSettings) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=FORMATS)
            width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise MediaError(Reason.PHOTO_TOO_MANY_PIXELS, str(error)) from None
    except UnidentifiedImageError:
        raise MediaError(Reason.PHOTO_UNREADABLE, "not a JPEG, PNG or HEIC image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise MediaError(Reason.PHOTO_CORRUPT, f"header: {error}") from None
    if width <= 0 or height <= 0:
        image.close()
        raise MediaError(Reason.PHOTO_EMPTY, f"{width}×{height}")
    if width * height > settings.max_pixels:
        image.close()
        raise MediaError(
            Reason.PHOTO_TOO_MANY_PIXELS, f"{width}×{height} > {settings.max_pixels} pixels"
        )
    return image


def _load(image: Image.Image) -> None:
    try:
        image.load()
    except OSError as error:
        reason = Reason.PHOTO_TRUNCATED if "truncated" in str(error) else Reason.PHOTO_CORRUPT
        raise MediaError(reason, str(error)) from None
    except (ValueError, SyntaxError, EOFError, MemoryError, struct.error) as error:
        raise MediaError(Reason.PHOTO_CORRUPT, f"{type(error).__name__}: {error}") from None


def _to_srgb(image: Image.Image) -> tuple[Image.Image, str]:
    """An RGB image in sRGB, and a word on what it took."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit) grayscale: keep the top byte
        scale = 1 / 256 if mode != "I" or _max_value(image) > 255 else 1
        return image.point(lambda value: value * scale).convert("L").convert("RGB"), "16-bit gray"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))  # transparency over white paper
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return _apply_icc(canvas, image.info.get("icc_profile"), "flattened")
    if mode not in ("RGB", "L", "CMYK", "P", "1", "YCbCr"):
        return image.convert("RGB"), f"converted from {mode}"
    return _apply_icc(image, image.info.get("icc_profile"), mode)


def _max_value(image: Image.Image) -> int:
    extrema = image.getextrema()
    return int(extrema[1]) if isinstance(extrema[1], int | float) else 255


def _apply_icc(image: Image.Image, icc: bytes | None, label: str) -> tuple[Image.Image, str]:
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            name = ImageCms.getProfileDescription(source).strip()
            if "srgb" not in name.lower():
                converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
                if converted is not None:
                    return converted, f"{label}, {name} to sRGB"
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the plain conversion below
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return rgb, "sRGB" if label == "RGB" else f"{label} to sRGB"


def _shrink(image: Image.Image, long_edge: int) -> Image.Image:
    """Fit within `long_edge`, never enlarging. Integral factors take the fast box reduce."""
    width, height = image.size
    scale = long_edge / max(width, height)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    factor = max(width, height) / long_edge
    if factor == int(factor) and width % int(factor) == 0 and height % int(factor) == 0:
        return image.reduce(int(factor))
    # Bicubic from at most 2x (after the decoder's own scaling) keeps SSIM > 0.98 against
    # Lanczos from full size, at two thirds of Lanczos' cost (docs/decisions.md).
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    for step in _TRANSPOSE.get(orientation, ()):
        image = image.transpose(step)
    return image


def _encode(image: Image.Image, quality: int) -> Rendition:
    out = io.BytesIO()
    # No exif=, no icc_profile=: the derivative carries no metadata (sRGB is the default).
    image.save(out, "JPEG", quality=quality, progressive=True)
    return Rendition(out.getvalue(), image.width, image.height)
