"""A GNSS fix: the one value every position source (NMEA, gpsd, the terminal) turns into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

FixSource = Literal["nmea", "gpsd", "terminal"]


@dataclass(frozen=True, slots=True)
class GnssFix:
    """A position at a time, WGS-84. `mode` is 2 (2D) or 3 (3D); no fix is no GnssFix."""

    lat: float
    lon: float
    time: datetime | None  # UTC; None when the receiver gave no date (GGA alone)
    mode: int = 2
    alt_m: float | None = None  # above mean sea level
    speed_mps: float | None = None
    track_deg: float | None = None  # course over ground, true north
    satellites: int | None = None  # used in the solution
    hdop: float | None = None
    accuracy_m: float | None = None  # horizontal, as the source estimated it
    source: FixSource = "nmea"

    def as_json(self) -> dict[str, Any]:
        """The JSON line of `gateway nmea parse`: RFC 3339 UTC time, unknowns left out."""
        fields: dict[str, Any] = {
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if self.time else None,
            "lat": self.lat,
            "lon": self.lon,
            "mode": self.mode,
            "alt": self.alt_m,
            "speed": self.speed_mps,
            "track": self.track_deg,
            "satellites": self.satellites,
            "hdop": self.hdop,
        }
        return {key: value for key, value in fields.items() if value is not None}
