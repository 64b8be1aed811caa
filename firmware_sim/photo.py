"""Phone-camera photos: real JPEGs at handset resolution with the EXIF a camera writes.

Encoding a 5-MP JPEG costs ~50-100 ms, too much per report for a thousand terminals
on one core. So a `PhotoPool` encodes a few base pictures once (a street scene with
grain, so they compress like photos, not like flat test cards), and each report's
photo is a base picture behind a fresh EXIF segment: capture time, GPS fix, and an
ImageUniqueID that makes its bytes and SHA-256 its own. Splicing costs microseconds.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import ExifTags, Image, ImageChops, ImageDraw, ImageOps

from firmware_sim.media import MediaFile

PHONE_SIZE = (2592, 1944)  # 5 MP at 4:3, a mid-range handset's main camera
JPEG_QUALITY = 90  # handset cameras save at 90-95
MAKE = "CGT Terminals"
MODEL = "CGT-T5"
SOFTWARE = "cgt-sim photo 1"

_SOI = b"\xff\xd8"
_APP0, _APP1 = 0xE0, 0xE1
_MAX_SEGMENT = 0xFFFF - 2  # a JPEG segment's length field is 16 bits and counts itself


@dataclass(frozen=True, slots=True)
class Capture:
    """What the camera knew when the shutter fired."""

    taken_at: datetime  # aware; written as local time with its offset
    lat: float | None  # None: the phone had no position fix, so no GPS tags
    lon: float | None
    unique_id: str  # 32 hex digits (EXIF ImageUniqueID)
    orientation: int = 1  # EXIF: 1 upright, 6 turned right, 3 upside down, 8 turned left
    alt_m: float | None = None


@dataclass(frozen=True, slots=True)
class BasePicture:
    width: int
    height: int
    body: bytes  # the JPEG after SOI, with APP0/APP1 removed: tables, frame, scan, EOI


class PhotoPool:
    def __init__(self, bases: Sequence[BasePicture]) -> None:
        if not bases:
            raise ValueError("a photo pool needs at least one base picture")
        self.bases = tuple(bases)

    def __len__(self) -> int:
        return len(self.bases)

    @classmethod
    def generate(
        cls,
        count: int = 4,
        size: tuple[int, int] = PHONE_SIZE,
        seed: int | str = 0,
        quality: int = JPEG_QUALITY,
    ) -> PhotoPool:
        rng = random.Random(f"photo-pool/{seed}")
        return cls([encode_base(render_scene(size, rng), quality) for _ in range(count)])

    def photo(self, capture: Capture, index: int) -> MediaFile:
        """Base picture `index` (modulo the pool) as the photo of one capture."""
        base = self.bases[index % len(self.bases)]
        head = _SOI + exif_segment(capture, base.width, base.height)
        return MediaFile.of("photo", "image/jpeg", head, base.body)


def encode_base(image: Image.Image, quality: int = JPEG_QUALITY) -> BasePicture:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return BasePicture(image.width, image.height, strip_app_segments(buffer.getvalue()))


def strip_app_segments(jpeg: bytes) -> bytes:
    """The JPEG after its SOI, without JFIF (APP0) and EXIF (APP1); other APPn stay."""
    if jpeg[:2] != _SOI:
        raise ValueError("not a JPEG: no SOI marker")
    position, kept = 2, []
    while jpeg[position] == 0xFF and 0xE0 <= jpeg[position + 1] <= 0xEF:
        end = position + 2 + int.from_bytes(jpeg[position + 2 : position + 4], "big")
        if jpeg[position + 1] not in (_APP0, _APP1):
            kept.append(jpeg[position:end])
        position = end
    return b"".join(kept) + jpeg[position:]


def exif_segment(capture: Capture, width: int, height: int) -> bytes:
    """An APP1 segment with the tags a handset camera writes."""
    local = capture.taken_at
    utc = local.astimezone(UTC)
    stamp = local.strftime("%Y:%m:%d %H:%M:%S")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = MAKE
    exif[ExifTags.Base.Model] = MODEL
    exif[ExifTags.Base.Software] = SOFTWARE
    exif[ExifTags.Base.Orientation] = capture.orientation
    exif[ExifTags.Base.DateTime] = stamp
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = stamp
    details[ExifTags.Base.DateTimeDigitized] = stamp
    details[ExifTags.Base.OffsetTimeOriginal] = (
        local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
    )
    details[ExifTags.Base.ExifImageWidth] = width
    details[ExifTags.Base.ExifImageHeight] = height
    details[ExifTags.Base.ImageUniqueID] = capture.unique_id
    if capture.lat is not None and capture.lon is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSVersionID] = b"\x02\x03\x00\x00"
        gps[ExifTags.GPS.GPSLatitudeRef] = "N" if capture.lat >= 0 else "S"
        gps[ExifTags.GPS.GPSLatitude] = _dms(capture.lat)
        gps[ExifTags.GPS.GPSLongitudeRef] = "E" if capture.lon >= 0 else "W"
        gps[ExifTags.GPS.GPSLongitude] = _dms(capture.lon)
        if capture.alt_m is not None:
            gps[ExifTags.GPS.GPSAltitudeRef] = b"\x00" if capture.alt_m >= 0 else b"\x01"
            gps[ExifTags.GPS.GPSAltitude] = round(abs(capture.alt_m), 1)
        gps[ExifTags.GPS.GPSTimeStamp] = (float(utc.hour), float(utc.minute), float(utc.second))
        gps[ExifTags.GPS.GPSDateStamp] = utc.strftime("%Y:%m:%d")
        gps[ExifTags.GPS.GPSMapDatum] = "WGS-84"
    data = exif.tobytes()  # starts with b"Exif\0\0", as APP1 wants
    if len(data) > _MAX_SEGMENT:
        raise ValueError(f"EXIF of {len(data)} bytes does not fit one APP1 segment")
    return bytes([0xFF, _APP1]) + (len(data) + 2).to_bytes(2, "big") + data


def _dms(degrees: float) -> tuple[float, float, float]:
    value = abs(degrees)
    whole = int(value)
    minutes = int((value - whole) * 60)
    seconds = round(((value - whole) * 60 - minutes) * 60, 4)
    return float(whole), float(minutes), seconds


# ---- the scene -------------------------------------------------------------------------


def render_scene(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A street corner with a heap in front: flat shapes, then texture and sensor grain."""
    width, height = size
    horizon = int(height * rng.uniform(0.4, 0.55))
    sky = ImageOps.colorize(
        Image.linear_gradient("L").resize((width, horizon)),
        black=_colour(rng, (90, 140), (140, 180), (190, 235)),
        white=_colour(rng, (200, 235), (210, 240), (220, 250)),
    )
    image = Image.new("RGB", size, _colour(rng, (95, 125), (95, 125), (95, 125)))
    image.paste(sky, (0, 0))
    draw = ImageDraw.Draw(image)
    _buildings(draw, rng, width, horizon)
    _road(draw, rng, width, height, horizon)
    _heap(draw, rng, width, height, horizon)
    return _grain(image, rng)


def _colour(
    rng: random.Random, red: tuple[int, int], green: tuple[int, int], blue: tuple[int, int]
) -> tuple[int, int, int]:
    return rng.randint(*red), rng.randint(*green), rng.randint(*blue)


def _buildings(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, horizon: int) -> None:
    x = -rng.randint(0, width // 20)
    while x < width:
        wide = rng.randint(width // 12, width // 5)
        top = rng.randint(horizon // 8, horizon * 2 // 3)
        wall = _colour(rng, (120, 220), (110, 210), (100, 200))
        draw.rectangle((x, top, x + wide, horizon), fill=wall)
        pane = max(width // 160, 4)
        for wy in range(top + pane, horizon - 2 * pane, 3 * pane):
            for wx in range(x + pane, x + wide - 2 * pane, 3 * pane):
                lit = rng.random() < 0.2
                glass = (
                    _colour(rng, (200, 255), (190, 240), (120, 180))
                    if lit
                    else (_colour(rng, (40, 80), (50, 90), (60, 110)))
                )
                draw.rectangle((wx, wy, wx + 2 * pane, wy + 2 * pane), fill=glass)
        x += wide + rng.randint(0, width // 40)


def _road(
    draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int, horizon: int
) -> None:
    curb = horizon + (height - horizon) // 5
    draw.rectangle((0, horizon, width, curb), fill=_colour(rng, (150, 185), (145, 175), (135, 165)))
    draw.rectangle((0, curb, width, height), fill=_colour(rng, (60, 85), (60, 85), (62, 88)))
    dash = width // 12
    for x in range(rng.randint(0, dash), width, 2 * dash):
        y = (curb + height) // 2
        draw.rectangle((x, y, x + dash, y + height // 80), fill=(225, 225, 215))


def _heap(
    draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int, horizon: int
) -> None:
    cx, cy = (
        rng.randint(width // 4, width * 3 // 4),
        rng.randint(horizon + height // 10, height - height // 6),
    )
    for _ in range(rng.randint(25, 60)):
        rx, ry = rng.randint(width // 80, width // 18), rng.randint(height // 80, height // 22)
        x, y = (
            cx + rng.randint(-width // 8, width // 8),
            cy + rng.randint(-height // 14, height // 14),
        )
        draw.ellipse(
            (x - rx, y - ry, x + rx, y + ry), fill=_colour(rng, (20, 240), (20, 240), (20, 240))
        )


def _grain(image: Image.Image, rng: random.Random) -> Image.Image:
    """Blotchy low-frequency texture, then fine per-pixel sensor noise."""
    width, height = image.size
    blotch_size = (max(width // 16, 1), max(height // 16, 1))
    blotches = Image.frombytes("L", blotch_size, rng.randbytes(blotch_size[0] * blotch_size[1]))
    blotches = blotches.resize(image.size, Image.Resampling.BICUBIC).convert("RGB")
    image = Image.blend(image, blotches, 0.12)
    # Noise of +-12 levels around 128 per channel; added with offset -128 to centre it.
    noise = [
        Image.frombytes("L", image.size, rng.randbytes(width * height)).point(
            lambda level: 116 + level * 24 // 255
        )
        for _ in range(3)
    ]
    return ImageChops.add(image, Image.merge("RGB", noise), scale=1.0, offset=-128)
