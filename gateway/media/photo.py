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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pillow_heif
from PIL import Image, ImageCms, JpegImagePlugin, UnidentifiedImageError

from gateway.errors import MediaError, Reason
from gateway.media.exif import PhotoFacts, read_facts
from gateway.media.stage_settings import PhotoSettings

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
        """What the report's `PhotoMetadata` says of the original (gateway.normalize.model)."""
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
    start = stream.tell()
    with _quiet():
        image = _open(stream, start, settings)
        with image:
            width, height = image.size
            # MPO (a JPEG with more images behind it: phones' gain maps and depth maps)
            # is a JPEG to the decoder, and scales while it decodes just the same.
            if isinstance(image, JpegImagePlugin.JpegImageFile):
                scale = settings.display_px / max(width, height)
                if scale < 1:  # decode at the smallest of 1/2, 1/4, 1/8 still big enough
                    image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            # Decode before reading the EXIF: a PNG's EXIF may follow its pixels, so Pillow
            # decodes to find it, and a decoder error swallowed there would leave a blank
            # image that loads "successfully" the second time.
            _load(image, stream, start)
            facts = read_facts(image)
            orientation = facts.orientation
            # pillow-heif turns a HEIC upright as it opens it and resets its EXIF tag to 1;
            # the metadata still says how the camera stored it.
            stored = image.info.get("original_orientation") or orientation
            rgb, color = _to_srgb(image, settings.display_px)
    display = _orient(_shrink(rgb, settings.display_px), orientation)
    thumbnail = _shrink(display, settings.thumb_px)
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return PhotoResult(
        display=_encode(display, settings.quality),
        thumbnail=_encode(thumbnail, settings.thumb_quality),
        format=image.format or "unknown",
        width=upright[0],
        height=upright[1],
        orientation=stored,
        color=color,
        facts=facts,
    )


@contextmanager
def _quiet() -> Iterator[None]:
    """Pillow's warnings are not ours to pass on: its decompression-bomb warning fires at a
    fixed 89 MP, below `max_pixels` (which `_open` applies itself), and its complaints about
    broken EXIF describe hostile input that `read_facts` already leaves out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _open(stream: BinaryIO, start: int, settings: PhotoSettings) -> Image.Image:
    try:
        image = Image.open(stream, formats=FORMATS)
        width, height = image.size
    except Image.DecompressionBombError as error:  # over twice Pillow's own 89 MP
        raise MediaError(Reason.PHOTO_TOO_MANY_PIXELS, str(error)) from None
    except UnidentifiedImageError:
        reason = _diagnose(stream, start)
        detail = "not a JPEG, PNG or HEIC image" if reason is Reason.PHOTO_UNREADABLE else None
        raise MediaError(reason, detail) from None
    except (OSError, ValueError, SyntaxError, EOFError, RuntimeError) as error:
        reason = _diagnose(stream, start)
        reason = Reason.PHOTO_CORRUPT if reason is Reason.PHOTO_UNREADABLE else reason
        raise MediaError(reason, f"header: {error}") from None
    if width <= 0 or height <= 0:
        image.close()
        raise MediaError(Reason.PHOTO_EMPTY, f"{width}×{height}")
    if width * height > settings.max_pixels:
        image.close()
        raise MediaError(
            Reason.PHOTO_TOO_MANY_PIXELS, f"{width}×{height} > {settings.max_pixels} pixels"
        )
    return image


# What Pillow's decoders raise on bad data; RuntimeError is libheif's, through pillow-heif
# (a damaged HEIC, or one whose coded size is beyond libheif's own limits).
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    MemoryError,
    RuntimeError,
    struct.error,
)


def _load(image: Image.Image, stream: BinaryIO, start: int) -> None:
    try:
        image.load()
    except _DECODE_ERRORS as error:
        truncated = "truncated" in str(error) or _diagnose(stream, start) is Reason.PHOTO_TRUNCATED
        reason = Reason.PHOTO_TRUNCATED if truncated else Reason.PHOTO_CORRUPT
        raise MediaError(reason, f"{type(error).__name__}: {error}") from None


# How much of a file `_diagnose` reads: JPEG headers carry EXIF (at most 64 KiB) and ICC
# profiles (a few segments of 64 KiB) before the frame header.
_HEADER_BYTES = 1 << 20
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers, not DHT/JPG/DAC
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length


def _diagnose(stream: BinaryIO, start: int) -> Reason:
    """Why a file Pillow could not open or decode is refused: not a JPEG, PNG or HEIF at
    all, or one whose structure runs past the end of the file (truncated), whose header
    declares no pixels (empty), or that is damaged some other way (corrupt). Pillow
    reports most of these as "cannot identify image file"."""
    total = stream.seek(0, io.SEEK_END) - start
    stream.seek(start)
    head = stream.read(_HEADER_BYTES)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _diagnose_png(head, total)
    if head.startswith(b"\xff\xd8"):
        return _diagnose_jpeg(head, total)
    if head[4:8] == b"ftyp":
        return _diagnose_boxes(stream, start, total)
    return Reason.PHOTO_UNREADABLE


def _beyond(head: bytes, total: int) -> Reason:
    """The header goes on past what was read: past the end of the file, or too far to look."""
    return Reason.PHOTO_TRUNCATED if len(head) == total else Reason.PHOTO_CORRUPT


def _diagnose_png(head: bytes, total: int) -> Reason:
    at = 8  # after the signature: chunks of length, type, data and CRC
    while True:
        if at + 8 > len(head):
            return _beyond(head, total)
        length, kind = struct.unpack(">I4s", head[at : at + 8])
        if kind == b"IHDR" and at + 16 <= len(head):
            width, height = struct.unpack(">II", head[at + 8 : at + 16])
            if width == 0 or height == 0:
                return Reason.PHOTO_EMPTY
        if kind == b"IDAT":  # the header is complete: truncated in the data, or corrupt
            return Reason.PHOTO_TRUNCATED if at + 12 + length > total else Reason.PHOTO_CORRUPT
        at += 12 + length


def _diagnose_jpeg(head: bytes, total: int) -> Reason:
    at = 2
    while True:
        if at + 4 > len(head):
            return _beyond(head, total)
        if head[at] != 0xFF:
            return Reason.PHOTO_CORRUPT
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        (length,) = struct.unpack(">H", head[at + 2 : at + 4])
        if length < 2:
            return Reason.PHOTO_CORRUPT
        if marker in _JPEG_SOF and at + 9 <= len(head):
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            if width == 0 or height == 0:  # height 0 ("set by a DNL marker") is unsupported
                return Reason.PHOTO_EMPTY
        if marker == 0xDA:  # start of scan: the header is complete
            return Reason.PHOTO_TRUNCATED if at + 2 + length > total else Reason.PHOTO_CORRUPT
        at += 2 + length


def _diagnose_boxes(stream: BinaryIO, start: int, total: int) -> Reason:
    """HEIF is ISO media: a file of boxes, each with its size up front."""
    at = 0
    while at < total:
        stream.seek(start + at)
        header = stream.read(16)
        if len(header) < 8:
            return Reason.PHOTO_TRUNCATED
        (size,) = struct.unpack(">I", header[:4])
        if size == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                return Reason.PHOTO_TRUNCATED
            (size,) = struct.unpack(">Q", header[8:16])
        elif size == 0:  # "to the end of the file": nothing to measure against
            return Reason.PHOTO_CORRUPT
        if size < 8:
            return Reason.PHOTO_CORRUPT
        if at + size > total:
            return Reason.PHOTO_TRUNCATED
        at += size
    return Reason.PHOTO_CORRUPT


def _to_srgb(image: Image.Image, long_edge: int) -> tuple[Image.Image, str]:
    """An RGB image in sRGB, and a word on what it took; one with transparency is also
    fitted within `long_edge` on the way."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit) grayscale: keep the top byte
        scale = 1 / 256 if mode != "I" or _max_value(image) > 255 else 1
        return image.point(lambda value: value * scale).convert("L").convert("RGB"), "16-bit gray"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Shrunk before it is flattened: flattening a 120-MP RGBA PNG whole peaked at
        # 1.06 GB.
        flat = image if mode in ("RGBA", "LA") else image.convert("RGBA")
        rgba = _shrink(_reduce_in_bands(flat, long_edge), long_edge).convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))  # transparency over white paper
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return _apply_icc(canvas, image.info.get("icc_profile"), "flattened")
    if mode not in ("RGB", "L", "CMYK", "P", "1", "YCbCr"):
        return image.convert("RGB"), f"converted from {mode}"
    return _apply_icc(image, image.info.get("icc_profile"), mode)


def _reduce_in_bands(image: Image.Image, long_edge: int) -> Image.Image:
    """Box-reduced by a whole factor to no less than twice `long_edge`, a band of rows at a
    time. Pillow reduces an image with alpha by premultiplying a copy of it whole first,
    as big again as a full-size decode; a band's copy is a few megabytes."""
    width, height = image.size
    factor = max(width, height) // (2 * long_edge)
    if factor < 2:
        return image
    band = 64 * factor  # whole boxes per band, so the bands meet without a seam
    reduced = Image.new(image.mode, (math.ceil(width / factor), math.ceil(height / factor)))
    for top in range(0, height, band):
        part = image.crop((0, top, width, min(height, top + band)))
        reduced.paste(part.reduce(factor), (0, top // factor))
    return reduced


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
    # After the decoder's own scaling the factor is under 2 (1.25 for a 12-MP photo), where
    # bicubic keeps SSIM 0.974 against naive Lanczos from full size at 0.79 of Lanczos'
    # time; `reducing_gap` only matters when a PNG or HEIC arrives full size
    # (docs/decisions.md).
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
