"""From a position to a place for the city: GCJ-02, unit grid, road segment, the units
responsible for it, coverage (the normalized report's `Place`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from shapely.errors import ShapelyError

from gateway.errors import ConfigError
from gateway.geo.gcj02 import to_gcj02
from gateway.geo.grid import GridLayer, RegularGrid
from gateway.geo.layers import DistrictIndex, SegmentIndex
from gateway.geo.settings import GeoSettings
from gateway.normalize.model import Place, ResponsibleUnit


@dataclass(frozen=True, slots=True)
class Locator:
    segments: SegmentIndex
    districts: DistrictIndex
    grid: GridLayer | RegularGrid
    fallback_grid: RegularGrid | None
    tolerance_m: float = 30.0

    def place(self, lat: float, lon: float) -> Place:
        """Where a position is, for the city (the place fields of a report's location)."""
        return Place.model_validate(self.place_fields(lat, lon))

    def place_fields(self, lat: float, lon: float) -> dict[str, Any]:
        """`place` as the plain fields of a `Place`, for a caller that builds a larger
        model from them: one validation of the whole costs a third of validating each
        part as it is made (docs/decisions.md, "Code shape")."""
        gcj_lat, gcj_lon = to_gcj02(lat, lon)
        cell = self.grid.cell(lat, lon)
        if cell is None and self.fallback_grid is not None:
            cell = self.fallback_grid.cell(lat, lon)
        district = self.districts.containing(lat, lon)
        match = self.segments.match(lat, lon, self.tolerance_m)
        segment: dict[str, Any] | None = None
        units: tuple[ResponsibleUnit, ...] = ()
        basis = "none"
        if match is not None:
            nearest = match.segments[0]
            segment = {
                "segment_id": nearest.segment_id,
                "segment_ids": tuple(s.segment_id for s in match.segments),
                "road_zh": nearest.road_zh,
                "road_en": nearest.road_en,
                "extent_zh": nearest.extent_zh,
                "distance_m": match.distance_m,
            }
            units = tuple(unit.model for unit in match.units)
            basis = "segment"
        elif district is not None and district.default_unit_model is not None:
            units = (district.default_unit_model,)
            basis = "district_default"
        return {
            "gcj02": {"lat": round(gcj_lat, 7), "lon": round(gcj_lon, 7)},
            "grid_code": cell.code if cell else None,
            "grid_source": cell.source if cell else None,
            "segment": segment,
            "responsible_units": units,
            "responsible_units_basis": basis,
            "coverage": {
                "inside": bool(district and district.covered),
                "district_zh": district.district_zh if district else None,
                "district_en": district.district_en if district else None,
                "admin_code": district.admin_code if district else None,
            },
        }


def load_locator(geo: GeoSettings) -> Locator:
    """The layers named in the config, loaded and indexed; every problem is a ConfigError."""
    south, west, north, east = geo.grid_extent
    generated = RegularGrid(south, west, north, east, geo.grid_cell_m, geo.grid_area_code)
    segments, segment_table = geo.file("segments"), geo.file("segment_table")
    districts, district_table = geo.file("districts"), geo.file("district_table")
    grid = geo.grid
    return Locator(
        segments=_layer(
            lambda: SegmentIndex.load(segments, segment_table), segments, segment_table
        ),
        districts=_layer(
            lambda: DistrictIndex.load(districts, district_table, geo.default_units),
            districts,
            district_table,
        ),
        grid=_layer(lambda: GridLayer(grid), grid) if grid else generated,
        fallback_grid=generated if grid else None,
        tolerance_m=geo.match_tolerance_m,
    )


T = TypeVar("T")


def _layer(load: Callable[[], T], *files: Path) -> T:
    """A layer, or a ConfigError naming its files, whatever a broken file makes the loader
    raise (not UTF-8, a column or a geometry missing, not a file at all): `gateway
    check-config` and `gateway run` report it instead of a traceback."""
    try:
        return load()
    except (OSError, ValueError, LookupError, TypeError, AttributeError, ShapelyError) as error:
        names = " / ".join(map(str, files))
        raise ConfigError(
            [f"{names}: not a usable layer: {type(error).__name__}: {error}"]
        ) from None
