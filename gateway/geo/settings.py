"""`[geo]`: the city's layers (segments, districts, unit grid) and the checks a fix must pass."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from gateway.geo.checks import FixChecks
from gateway.settings import Finite, PositiveFloat, Section, default_config_dir

# The files shipped in config/ for each layer a city does not name.
SHIPPED = {
    "segments": "segments.geojson",
    "segment_table": "responsibility_segments.csv",
    "districts": "districts.geojson",
    "district_table": "coverage.csv",
}


class FixCheckSettings(Section):
    max_age_s: PositiveFloat = 120.0  # a fix older than this at the report's creation
    max_ahead_s: PositiveFloat = 60.0
    max_accuracy_m: PositiveFloat = 50.0
    max_hdop: PositiveFloat = 5.0
    max_speed_mps: PositiveFloat = 50.0
    agreement_m: PositiveFloat = 50.0  # terminal fix against its own NMEA

    def rules(self) -> FixChecks:
        return FixChecks(**self.model_dump())


class GeoSettings(Section):
    """The city's layers. Defaults are the shipped, APPROXIMATE files under config/."""

    segments: Path | None = None  # GeoJSON, a feature per segment_id of `segment_table`
    segment_table: Path | None = None
    districts: Path | None = None
    district_table: Path | None = None
    grid: Path | None = None  # the city's unit grid (GeoJSON with grid_code); else generated
    grid_cell_m: Annotated[float, Field(ge=10, le=1000)] = 100.0
    grid_area_code: Annotated[str, Field(pattern=r"^[0-9]{6}$")] = "320600"
    # south, west, north, east of the generated grid (the three covered districts)
    grid_extent: tuple[Finite, Finite, Finite, Finite] = (31.88, 120.76, 32.12, 121.02)
    match_tolerance_m: Annotated[float, Field(gt=0, le=500)] = 30.0
    default_units: dict[str, str] = {  # noqa: RUF012 - a pydantic field: copied per model
        "崇川区": "崇川区城市管理监督指挥中心",
        "港闸区": "港闸区城市管理监督指挥中心",
        "开发区": "开发区城市管理监督指挥中心",
    }
    checks: FixCheckSettings = FixCheckSettings()

    def file(self, name: str) -> Path:
        configured: Path | None = getattr(self, name)
        return configured or default_config_dir() / SHIPPED[name]
