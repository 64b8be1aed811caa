"""The city's layers, indexed: responsibility segments, covered districts, the unit grid.

Each is loaded once from configuration (GeoJSON plus the seed's CSV tables), projected
onto a local metric plane and put in an STR-tree (shapely), so a lookup costs the same
for a 33-segment trial area as for a city of 10,000 segments.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from gateway.errors import ConfigError
from gateway.geo.distance import LocalPlane
from gateway.normalize.model import ResponsibleUnit

# Two segments this close to the nearest are the same stretch of road (the seed gives one
# stretch to a bureau division and a squadron as two rows): both answer for it.
SAME_STRETCH_M = 1.0


@dataclass(frozen=True, slots=True)
class Unit:
    unit_zh: str
    unit_en: str
    parent_unit_zh: str
    segment_id: str | None = None
    # As a report names it; made once with the layer, not once a report.
    model: ResponsibleUnit = field(init=False, compare=False)

    def __post_init__(self) -> None:
        model = ResponsibleUnit(
            unit_zh=self.unit_zh,
            unit_en=self.unit_en,
            parent_unit_zh=self.parent_unit_zh,
            segment_id=self.segment_id,
        )
        object.__setattr__(self, "model", model)


@dataclass(frozen=True, slots=True)
class Segment:
    segment_id: str
    road_zh: str
    road_en: str
    extent_zh: str
    extent_en: str
    unit: Unit


@dataclass(frozen=True, slots=True)
class SegmentMatch:
    segments: tuple[Segment, ...]  # nearest first; more than one on a shared stretch
    distance_m: float

    @property
    def units(self) -> list[Unit]:
        return [segment.unit for segment in self.segments]


@dataclass(frozen=True, slots=True)
class District:
    district_zh: str
    district_en: str
    admin_code: str | None
    covered: bool
    default_unit: str | None
    # The default unit as a report names it, made once with the layer.
    default_unit_model: ResponsibleUnit | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        model = None
        if self.default_unit:
            model = ResponsibleUnit(
                unit_zh=self.default_unit, unit_en="", parent_unit_zh="", segment_id=None
            )
        object.__setattr__(self, "default_unit_model", model)


def read_geojson(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError([f"{path}: {error}"]) from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise ConfigError([f"{path}: not a GeoJSON FeatureCollection"])
    return features


def project(plane: LocalPlane, geometries: list[BaseGeometry]) -> list[BaseGeometry]:
    """Longitude/latitude geometries onto the plane's metres."""

    def to_xy(lonlat: Any) -> Any:  # an (n, 2) array; the plane's arithmetic takes arrays
        return np.column_stack(plane.to_xy(lonlat[:, 1], lonlat[:, 0]))

    return [shapely.transform(geometry, to_xy) for geometry in geometries]


class Indexed:
    """Geometries on a local plane, in an STR-tree."""

    def __init__(self, plane: LocalPlane, geometries: list[BaseGeometry]) -> None:
        self.plane = plane
        self.geometries = project(plane, geometries)
        self.tree = STRtree(self.geometries)

    def point(self, lat: float, lon: float) -> Point:
        return Point(*self.plane.to_xy(lat, lon))


def plane_for(geometries: Iterable[BaseGeometry]) -> LocalPlane:
    bounds = shapely.total_bounds(list(geometries))
    return LocalPlane(lat0=(bounds[1] + bounds[3]) / 2, lon0=(bounds[0] + bounds[2]) / 2)


class SegmentIndex:
    def __init__(self, segments: list[Segment], geometries: list[BaseGeometry]) -> None:
        self.segments = segments
        self.index = Indexed(plane_for(geometries), geometries)

    @classmethod
    def load(cls, geojson: Path, table: Path) -> SegmentIndex:
        """Every row of the table needs geometry; a feature without a row is an error too."""
        with table.open(encoding="utf-8", newline="") as handle:
            rows = {row["segment_id"]: row for row in csv.DictReader(handle)}
        problems: list[str] = []
        segments: list[Segment] = []
        geometries: list[BaseGeometry] = []
        seen: set[str] = set()
        for number, feature in enumerate(read_geojson(geojson)):
            properties = feature.get("properties") or {}
            segment_id = properties.get("segment_id")
            if segment_id not in rows:
                problems.append(f"{geojson}: feature {number} has no segment_id of {table.name}")
                continue
            try:
                geometry = shape(feature["geometry"])
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                problems.append(f"{geojson}: feature {segment_id}: bad geometry ({error})")
                continue
            row = rows[segment_id]
            seen.add(segment_id)
            unit = Unit(row["unit_zh"], row["unit_en"], row["parent_unit_zh"], segment_id)
            road = (row["road_zh"], row["road_en"], row["extent_zh"], row["extent_en"])
            segments.append(Segment(segment_id, *road, unit))
            geometries.append(geometry)
        problems += [f"{geojson}: no geometry for segment {s}" for s in sorted(set(rows) - seen)]
        if problems:
            raise ConfigError(problems)
        return cls(segments, geometries)

    def match(self, lat: float, lon: float, tolerance_m: float) -> SegmentMatch | None:
        point = self.index.point(lat, lon)
        candidates = self.index.tree.query(point, predicate="dwithin", distance=tolerance_m)
        if len(candidates) == 0:
            return None
        distances = {int(i): self.index.geometries[int(i)].distance(point) for i in candidates}
        nearest = min(distances.values())
        chosen = sorted(
            (i for i, d in distances.items() if d <= nearest + SAME_STRETCH_M),
            key=lambda i: (distances[i], self.segments[i].segment_id),
        )
        return SegmentMatch(tuple(self.segments[i] for i in chosen), round(nearest, 1))


class DistrictIndex:
    def __init__(self, districts: list[District], geometries: list[BaseGeometry]) -> None:
        self.districts = districts
        self._plane = plane_for(geometries)
        # A city has a handful of districts: one vectorized test against all of them,
        # prepared, beats a tree query (and needs no Point object): 4 against 20 µs.
        self._prepared = np.array(project(self._plane, geometries), dtype=object)
        shapely.prepare(self._prepared)

    @classmethod
    def load(cls, geojson: Path, table: Path, default_units: dict[str, str]) -> DistrictIndex:
        with table.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        covered = {row["district_zh"]: row["covered"] == "yes" for row in rows}
        districts, geometries = [], []
        for feature in read_geojson(geojson):
            properties = feature.get("properties") or {}
            name = properties.get("district_zh", "")
            districts.append(
                District(
                    district_zh=name,
                    district_en=properties.get("district_en", ""),
                    admin_code=properties.get("admin_code"),
                    covered=covered.get(name, False),
                    default_unit=default_units.get(name),
                )
            )
            geometries.append(shape(feature["geometry"]))
        return cls(districts, geometries)

    def containing(self, lat: float, lon: float) -> District | None:
        x, y = self._plane.to_xy(lat, lon)
        hits = np.flatnonzero(shapely.intersects_xy(self._prepared, x, y))
        return self.districts[int(hits[0])] if len(hits) else None
