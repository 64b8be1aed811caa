"""What every GnssFix promises, whichever parser made it: WGS-84 in range, finite numbers,
a 2D or 3D mode, a UTC time if any, and a JSON line for `gateway nmea parse`."""

from __future__ import annotations

import math
from datetime import timedelta

from fuzz.invariant import require
from gateway.protocols.gnss import GnssFix


def check_fix(fix: GnssFix) -> None:
    require(isinstance(fix, GnssFix), f"{type(fix).__name__} is not a GnssFix")
    check_position(fix.lat, fix.lon)
    require(fix.mode in (2, 3), f"mode {fix.mode}")
    for name in ("alt_m", "speed_mps", "track_deg", "hdop", "accuracy_m"):
        value = getattr(fix, name)
        require(value is None or math.isfinite(value), f"{name} {value!r}")
    if fix.time is not None:
        require(fix.time.utcoffset() == timedelta(0), f"time {fix.time!r} is not UTC")
    fix.as_json()


def check_position(lat: float | None, lon: float | None) -> None:
    require((lat is None) == (lon is None), f"lat {lat!r} without lon {lon!r} or the reverse")
    if lat is not None and lon is not None:
        require(math.isfinite(lat) and -90 <= lat <= 90, f"lat {lat!r}")
        require(math.isfinite(lon) and -180 <= lon <= 180, f"lon {lon!r}")
