"""What a photo's EXIF says that acceptors need: orientation, capture time, GPS position.

EXIF is written by cameras of every quality and read here from strangers' files: every
value is checked, and anything odd is left out rather than trusted or allowed to fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image

ORIENTATION = 0x0112
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
DATETIME_ORIGINAL = 0x9003
OFFSET_TIME_ORIGINAL = 0x9011
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_ALT_REF, GPS_ALT = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True, slots=True)
class PhotoFacts:
    orientation: int = 1
    captured_at: str | None = None  # RFC 3339; without an offset when the camera gave none
    gps: tuple[float, float, float | None] | None = None  # lat, lon, altitude in metres

    def as_dict(self) -> dict[str, Any]:
        gps = None
        if self.gps is not None:
            gps = {"lat": self.gps[0], "lon": self.gps[1], "alt_m": self.gps[2]}
        return {"captured_at": self.captured_at, "exif_gps": gps}


def read_facts(image: Image.Image) -> PhotoFacts:
    try:
        exif = image.getexif()
        orientation = exif.get(ORIENTATION, 1)
        return PhotoFacts(
            orientation=orientation
            if isinstance(orientation, int) and 1 <= orientation <= 8
            else 1,
            captured_at=_captured_at(exif.get_ifd(EXIF_IFD)),
            gps=_gps(exif.get_ifd(GPS_IFD)),
        )
    except Exception:  # noqa: BLE001 - a broken EXIF block must never cost the photo
        return PhotoFacts()


def _captured_at(ifd: dict[int, Any]) -> str | None:
    raw = ifd.get(DATETIME_ORIGINAL)
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = ifd.get(OFFSET_TIME_ORIGINAL)
    if isinstance(offset, str):
        try:
            return datetime.fromisoformat(
                f"{when.isoformat()}{offset.strip(chr(0) + ' ')}"
            ).isoformat()
        except ValueError:
            pass
    return when.isoformat()


def _gps(ifd: dict[int, Any]) -> tuple[float, float, float | None] | None:
    lat = _degrees(ifd.get(GPS_LAT), ifd.get(GPS_LAT_REF), "S")
    lon = _degrees(ifd.get(GPS_LON), ifd.get(GPS_LON_REF), "W")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:  # a receiver without a fix writes zeros
        return None
    altitude = _number(ifd.get(GPS_ALT))
    if altitude is not None and ifd.get(GPS_ALT_REF) in (1, b"\x01"):
        altitude = -altitude
    return round(lat, 7), round(lon, 7), altitude


def _degrees(value: Any, ref: Any, negative: str) -> float | None:
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_number(part) for part in value]
    if any(part is None for part in parts):
        return None
    degrees, minutes, seconds = (float(part) for part in parts if part is not None)
    result = degrees + minutes / 60 + seconds / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -result if isinstance(ref, str) and ref.strip("\x00 ").upper() == negative else result


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None
