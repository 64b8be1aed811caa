"""NMEA 0183 as a receiver emits it: RMC and GGA for a fix, checksums right."""

from __future__ import annotations

from datetime import datetime
from functools import reduce

KNOTS_PER_MPS = 1.943844


def checksum(body: str) -> str:
    return f"{reduce(lambda value, char: value ^ ord(char), body, 0):02X}"


def sentence(body: str) -> str:
    return f"${body}*{checksum(body)}"


def _angle(value: float, degree_digits: int, positive: str, negative: str) -> tuple[str, str]:
    hemisphere = positive if value >= 0 else negative
    value = abs(value)
    degrees = int(value)
    minutes = (value - degrees) * 60
    return f"{degrees:0{degree_digits}d}{minutes:07.4f}", hemisphere


def epoch(
    when: datetime,
    lat: float,
    lon: float,
    *,
    talker: str = "GN",
    speed_mps: float = 0.0,
    course_deg: float = 0.0,
    alt_m: float = 5.0,
    satellites: int = 12,
    hdop: float = 0.9,
    valid: bool = True,
) -> list[str]:
    """The RMC and GGA sentences of one epoch (UTC `when`)."""
    time = when.strftime("%H%M%S.") + f"{when.microsecond // 10000:02d}"
    lat_text, lat_hemi = _angle(lat, 2, "N", "S")
    lon_text, lon_hemi = _angle(lon, 3, "E", "W")
    status, quality = ("A", 1) if valid else ("V", 0)
    rmc = (
        f"{talker}RMC,{time},{status},{lat_text},{lat_hemi},{lon_text},{lon_hemi},"
        f"{speed_mps * KNOTS_PER_MPS:.2f},{course_deg:.1f},{when:%d%m%y},,,{'A' if valid else 'N'}"
    )
    gga = (
        f"{talker}GGA,{time},{lat_text},{lat_hemi},{lon_text},{lon_hemi},{quality},"
        f"{satellites:02d},{hdop:.1f},{alt_m:.1f},M,3.2,M,,"
    )
    return [sentence(rmc), sentence(gga)]
