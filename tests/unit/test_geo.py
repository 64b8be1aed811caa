"""Position to place: GCJ-02, segments and their units, coverage, grid, fix checks."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import shape

from gateway.cli import main
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.geo.checks import FixChecks, check
from gateway.geo.distance import haversine_m
from gateway.geo.gcj02 import to_gcj02, to_wgs84
from gateway.geo.grid import GridLayer, RegularGrid
from gateway.geo.layers import SegmentIndex
from gateway.geo.places import Locator, load_locator
from gateway.geo.report_location import build_location
from gateway.protocols.gnss import GnssFix
from gateway.settings import default_config_dir

CONFIG = default_config_dir()
TABLE = CONFIG / "responsibility_segments.csv"
with TABLE.open(encoding="utf-8") as table:
    ROWS = list(csv.DictReader(table))
FEATURES = json.loads((CONFIG / "segments.geojson").read_text(encoding="utf-8"))["features"]


@pytest.fixture(scope="module")
def locator() -> Locator:
    return load_locator(load_config(None).geo)


# ---- GCJ-02 -----------------------------------------------------------------------------


@given(lat=st.floats(18.2, 53.5), lon=st.floats(73.7, 134.7))
def test_gcj02_round_trip_within_half_a_metre_inside_china(lat: float, lon: float) -> None:
    gcj_lat, gcj_lon = to_gcj02(lat, lon)
    assert 1 < haversine_m(lat, lon, gcj_lat, gcj_lon) < 1000  # an offset, of the known size
    back = to_wgs84(gcj_lat, gcj_lon)
    assert haversine_m(lat, lon, *back) < 0.5


def test_gcj02_is_the_identity_outside_china() -> None:
    assert to_gcj02(48.8584, 2.2945) == (48.8584, 2.2945)
    assert to_wgs84(48.8584, 2.2945) == (48.8584, 2.2945)


def test_gcj02_offset_in_nantong_is_the_familiar_few_hundred_metres() -> None:
    gcj_lat, gcj_lon = to_gcj02(32.0150, 120.8600)
    # Chinese web maps draw central Nantong about 250 m south and 400 m east of WGS-84.
    assert gcj_lat < 32.0150
    assert gcj_lon > 120.8600
    assert 300 < haversine_m(32.0150, 120.8600, gcj_lat, gcj_lon) < 600


# ---- segments ---------------------------------------------------------------------------


def test_every_segment_of_the_table_has_geometry_and_the_tables_unit() -> None:
    index = SegmentIndex.load(CONFIG / "segments.geojson", TABLE)
    by_id = {segment.segment_id: segment for segment in index.segments}
    assert set(by_id) == {row["segment_id"] for row in ROWS}
    for row in ROWS:
        segment = by_id[row["segment_id"]]
        assert (segment.road_zh, segment.unit.unit_zh, segment.unit.parent_unit_zh) == (
            row["road_zh"],
            row["unit_zh"],
            row["parent_unit_zh"],
        )


def test_the_geometry_says_plainly_that_it_is_approximate() -> None:
    collection = json.loads((CONFIG / "segments.geojson").read_text(encoding="utf-8"))
    assert "APPROXIMATE" in collection["note"]
    assert all(f["properties"]["geometry_source"] == "approximate" for f in FEATURES)


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f["properties"]["segment_id"])
def test_a_point_on_each_segment_finds_it_and_its_units(locator: Locator, feature: Any) -> None:
    point = shape(feature["geometry"]).interpolate(0.37, normalized=True)
    place = locator.place(point.y, point.x).model_dump(mode="json")
    segment_id = feature["properties"]["segment_id"]
    assert segment_id in place["segment"]["segment_ids"]
    row = next(r for r in ROWS if r["segment_id"] == segment_id)
    expected = {
        "unit_zh": row["unit_zh"],
        "unit_en": row["unit_en"],
        "parent_unit_zh": row["parent_unit_zh"],
        "segment_id": segment_id,
    }
    assert expected in place["responsible_units"]
    assert place["responsible_units_basis"] == "segment"
    assert place["coverage"]["inside"]


def test_a_stretch_with_a_division_and_a_squadron_returns_both(locator: Locator) -> None:
    # Nan Dajie's southern section: the Legal Division (S03) and the 2nd Squadron (S15).
    place = locator.place(32.0050, 120.8600).model_dump(mode="json")
    assert place["segment"]["segment_ids"] == ["S03", "S15"]
    assert [u["unit_zh"] for u in place["responsible_units"]] == ["法制处", "二中队"]
    assert [u["parent_unit_zh"] for u in place["responsible_units"]] == ["市城管局", "直属执法大队"]


def test_the_match_tolerance_is_30_metres(locator: Locator) -> None:
    metres_per_degree = 111_195
    near = locator.place(32.0108 + 29 / metres_per_degree, 120.8550).model_dump(
        mode="json"
    )  # Taowu Road + 29 m
    far = locator.place(32.0108 + 31 / metres_per_degree, 120.8550).model_dump(mode="json")
    assert near["segment"]["road_en"] == "Taowu Road"
    assert 28.5 < near["segment"]["distance_m"] < 29.5
    assert far["segment"] is None


def test_off_every_segment_the_districts_default_unit_answers(locator: Locator) -> None:
    place = locator.place(32.0800, 120.8000).model_dump(
        mode="json"
    )  # Gangzha, far from the trial roads
    assert place["segment"] is None
    assert place["responsible_units_basis"] == "district_default"
    assert place["responsible_units"][0]["unit_zh"] == "港闸区城市管理监督指挥中心"
    assert place["coverage"]["district_zh"] == "港闸区"


def test_outside_coverage_is_flagged_not_dropped(locator: Locator) -> None:
    place = locator.place(31.2304, 121.4737).model_dump(mode="json")  # Shanghai
    assert place["coverage"] == {
        "inside": False,
        "district_zh": None,
        "district_en": None,
        "admin_code": None,
    }
    assert place["responsible_units"] == []
    assert place["gcj02"] is not None


def test_a_segment_without_geometry_is_a_config_error(tmp_path: Path) -> None:
    collection = json.loads((CONFIG / "segments.geojson").read_text(encoding="utf-8"))
    collection["features"] = [
        f for f in collection["features"] if f["properties"]["segment_id"] != "S07"
    ]
    path = tmp_path / "segments.geojson"
    path.write_text(json.dumps(collection))
    with pytest.raises(ConfigError, match="no geometry for segment S07"):
        SegmentIndex.load(path, TABLE)


# ---- grid --------------------------------------------------------------------------------


def test_generated_grid_codes() -> None:
    grid = RegularGrid(31.88, 120.76, 32.12, 121.02)
    cell = grid.cell(32.0150, 120.8600)
    assert cell is not None
    assert cell.source == "generated"
    assert len(cell.code) == 15
    assert cell.code.isdigit()
    assert cell.code.startswith("320600")
    assert grid.cell(32.0150 + 0.0001, 120.8600 + 0.0001) == cell  # the same 100 m cell
    neighbours = {
        grid.cell(32.0150 + dy * 0.001, 120.8600 + dx * 0.00106)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    }
    assert len(neighbours) == 9
    assert grid.cell(40.0, 116.0) is None  # outside the extent


def test_a_city_grid_layer_is_used_where_it_has_a_cell(tmp_path: Path) -> None:
    square = [
        [120.855, 32.010],
        [120.865, 32.010],
        [120.865, 32.020],
        [120.855, 32.020],
        [120.855, 32.010],
    ]
    layer = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"grid_code": "320602001002007"},
         "geometry": {"type": "Polygon", "coordinates": [square]}}]}  # fmt: skip
    path = tmp_path / "grid.geojson"
    path.write_text(json.dumps(layer))
    config = load_config(None, {"geo.grid": str(path)})
    locator = load_locator(config.geo)
    inside = locator.place(32.015, 120.860).model_dump(mode="json")
    assert (inside["grid_code"], inside["grid_source"]) == ("320602001002007", "layer")
    elsewhere = locator.place(32.05, 120.90).model_dump(mode="json")
    assert elsewhere["grid_source"] == "generated"


def test_a_grid_layer_with_bad_codes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "grid.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"grid_code": "12"},
         "geometry": {"type": "Point", "coordinates": [120.8, 32.0]}}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="is not 15 digits"):
        GridLayer(path)


# ---- fix checks and the location block ---------------------------------------------------

CREATED = datetime(2026, 11, 28, 1, 15, tzinfo=UTC)


def fix(
    lat: float = 32.0108, lon: float = 120.855, seconds_before: float = 5, **extra: Any
) -> GnssFix:
    return GnssFix(lat, lon, CREATED - timedelta(seconds=seconds_before), **extra)


@pytest.mark.parametrize(
    ("given_fix", "previous", "flags"),
    [
        pytest.param(fix(), None, [], id="good"),
        pytest.param(fix(0.0, 0.0), None, ["fix.zero"], id="zero"),
        pytest.param(fix(48.85, 2.29), None, ["fix.outside_china"], id="outside China"),
        pytest.param(fix(seconds_before=600), None, ["fix.stale"], id="stale"),
        pytest.param(fix(seconds_before=-300), None, ["fix.ahead_of_report"], id="ahead"),
        pytest.param(fix(accuracy_m=120.0), None, ["fix.inaccurate"], id="inaccurate"),
        pytest.param(fix(hdop=9.9), None, ["fix.inaccurate"], id="hdop"),
        pytest.param(
            fix(), fix(32.1108, 120.855, seconds_before=15), ["fix.jump"], id="11 km in 10 s"
        ),
        pytest.param(fix(), fix(32.0118, 120.855, seconds_before=65), [], id="110 m in a minute"),
    ],
)
def test_fix_checks(given_fix: GnssFix, previous: GnssFix | None, flags: list[str]) -> None:
    assert check(given_fix, CREATED, previous, FixChecks()) == flags


def test_location_block_from_fix_and_nmea(locator: Locator) -> None:
    terminal = fix(accuracy_m=6.5)
    agreeing = fix(32.01082, 120.85502)
    block = build_location(terminal, agreeing, CREATED, None, locator, FixChecks()).model_dump(
        mode="json"
    )
    assert block["source"] == "fix+nmea"
    assert block["flags"] == []
    assert block["wgs84"]["accuracy_m"] == 6.5
    assert block["segment"]["road_en"] == "Taowu Road"
    far = fix(32.0200, 120.855)
    assert build_location(terminal, far, CREATED, None, locator, FixChecks()).flags == (
        "fix.nmea_disagrees",
    )


def test_location_block_when_sentences_give_no_fix(locator: Locator) -> None:
    block = build_location(None, "nmea.void", CREATED, None, locator, FixChecks()).model_dump(
        mode="json"
    )
    assert block["source"] == "none"
    assert block["flags"] == ["nmea.void", "location.unknown"]
    assert block["responsible_units"] == []
    kept = build_location(fix(0.0, 0.0), None, CREATED, None, locator, FixChecks()).model_dump(
        mode="json"
    )
    assert kept["wgs84"]["lat"] == 0.0  # kept for the acceptor, not placed
    assert kept["segment"] is None
    assert kept["flags"] == ["fix.zero"]


def test_locate_command() -> None:
    result = CliRunner().invoke(main, ["locate", "32.0050", "120.8600"])
    assert result.exit_code == 0, result.output
    place = json.loads(result.output)
    assert place["segment"]["segment_ids"] == ["S03", "S15"]
    assert place["coverage"]["district_zh"] == "崇川区"
    assert len(place["grid_code"]) == 15
    assert set(place["gcj02"]) == {"lat", "lon"}
