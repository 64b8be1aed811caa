"""Patrol routes: where a simulated inspector walks, along the responsibility segments.

Read straight from the project's `config/segments.geojson` (approximate centrelines of the
seed's roads), without importing the gateway. A position on a route is a distance along
its polylines; noise is added the way a phone's receiver scatters around the truth.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from firmware_sim.shipped import config_path

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Road:
    segment_id: str
    road_zh: str
    points: tuple[tuple[float, float], ...]  # (lat, lon) along the centreline

    @property
    def length_m(self) -> float:
        return sum(metres(a, b) for a, b in zip(self.points, self.points[1:], strict=False))

    def at(self, distance_m: float) -> tuple[float, float]:
        """The point `distance_m` along the road (clamped to its ends)."""
        remaining = max(0.0, distance_m)
        for a, b in zip(self.points, self.points[1:], strict=False):
            step = metres(a, b)
            if remaining <= step and step > 0:
                share = remaining / step
                return a[0] + (b[0] - a[0]) * share, a[1] + (b[1] - a[1]) * share
            remaining -= step
        return self.points[-1]


@dataclass(frozen=True, slots=True)
class Walk:
    """Someone patrolling a road at a steady pace: to its end, then back, over and over."""

    road: Road
    speed_mps: float

    def at(self, elapsed_s: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """Where the walker is after `elapsed_s`, and a point 1 m further on (the heading)."""
        length = max(self.road.length_m, 1.0)
        lap = (self.speed_mps * elapsed_s) % (2 * length)
        outward = lap <= length
        along = lap if outward else 2 * length - lap  # back the way it came
        ahead = min(length, along + 1.0) if outward else max(0.0, along - 1.0)
        return self.road.at(along), self.road.at(ahead)


def default_segments_file() -> Path:
    """The project's `config/segments.geojson`, in a checkout or in the wheel."""
    return config_path("segments.geojson", "segments_file")


def load_roads(path: Path | None = None) -> list[Road]:
    collection = json.loads((path or default_segments_file()).read_text(encoding="utf-8"))
    roads = []
    for feature in collection["features"]:
        properties, geometry = feature["properties"], feature["geometry"]
        lines = (
            [geometry["coordinates"]]
            if geometry["type"] == "LineString"
            else geometry["coordinates"]
        )
        for line in lines:
            points = tuple((lat, lon) for lon, lat in line)
            roads.append(Road(properties["segment_id"], properties["road_zh"], points))
    return roads


def scatter(point: tuple[float, float], sigma_m: float, rng: random.Random) -> tuple[float, float]:
    """A receiver's reading of `point`: Gaussian error of `sigma_m` metres each way."""
    north, east = rng.gauss(0, sigma_m), rng.gauss(0, sigma_m)
    lat = point[0] + math.degrees(north / EARTH_RADIUS_M)
    lon = point[1] + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(point[0]))))
    return lat, lon


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = math.radians(b[0] - a[0]) * EARTH_RADIUS_M
    east = math.radians(b[1] - a[1]) * EARTH_RADIUS_M * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(north, east)
