"""Distances on the ground: great-circle for any two fixes, and a local metric plane for
matching against a city's geometry (a few tens of kilometres, where the plane's error is
well under a metre per kilometre)."""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlam = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class LocalPlane:
    """Equirectangular metres around a reference point: x east, y north."""

    lat0: float
    lon0: float

    @property
    def _kx(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        ky = math.radians(1) * EARTH_RADIUS_M
        return (lon - self.lon0) * self._kx, (lat - self.lat0) * ky

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        ky = math.radians(1) * EARTH_RADIUS_M
        return self.lat0 + y / ky, self.lon0 + x / self._kx
