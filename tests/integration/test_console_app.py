"""The console's application on real stores (SQLite files in a data directory), through
Flask's test client: what the map is given on a WGS-84 base map and on a GCJ-02 one,
the unit grid's cells, the page's security headers, and the pages 100 cases make."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from gateway import logs
from gateway.console.accounts import Accounts
from gateway.console.app import MapLayers, create_app
from gateway.console.settings import ConsoleSettings
from gateway.console.sources import Sources
from gateway.devices.device_registry import DeviceRegistry
from gateway.geo.gcj02 import to_gcj02
from gateway.geo.grid import RegularGrid
from gateway.geo.settings import GeoSettings
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.case_search import CaseQuery
from gateway.sinks.objects_local import LocalObjectStore
from gateway.store.db import connect
from gateway.store.inbox import MIGRATIONS as INBOX
from gateway.store.outbox import Outbox
from tests.factories import normalized, placed

TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "a password of twelve"  # noqa: S105 - a test account's
AT = (32.015, 120.86)  # in the covered districts


def layers(gcj02: bool) -> MapLayers:
    geo = GeoSettings()
    south, west, north, east = geo.grid_extent
    return MapLayers(
        geo.file("districts"), geo.file("segments"), geo.file("segment_table"),
        gcj02=gcj02, tiles="https://t{s}.example.cn/{z}/{x}/{y}.png" if gcj02 else None,
        grid=RegularGrid(south, west, north, east),
    )  # fmt: skip


@pytest.fixture(params=[False, True], ids=["wgs84", "gcj02"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FlaskClient]:
    registry = SqliteRegistry(tmp_path / "registry.db", TZ)
    registry.register([
        placed(normalized(received_at=f"2026-11-28T0{n % 10}:00:00+00:00"), district="崇川区",
               units=("一中队",), lat=AT[0], lon=AT[1])
        for n in range(100)
    ])  # fmt: skip
    accounts = Accounts(tmp_path / "console.db")
    accounts.add("v", "viewer")
    accounts.set_password("v", PASSWORD)
    sources = Sources(
        registry, LocalObjectStore(tmp_path / "objects"), connect(tmp_path / "inbox.db", INBOX),
        Outbox(tmp_path / "outbox.db"), DeviceRegistry(tmp_path / "devices.db"), TZ,
    )  # fmt: skip
    app = create_app(sources, accounts, ConsoleSettings(), layers(request.param), logs.get("t"))
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/login", data={"csrf_token": token, "name": "v",
                                       "password": PASSWORD}).status_code == 302  # fmt: skip
    client.gcj02 = request.param  # type: ignore[attr-defined]
    yield client
    sources.close()
    accounts.close()


def test_markers_and_lines_are_given_in_the_base_maps_datum(client: Any) -> None:
    (point, *_) = client.get("/api/map").get_json()["points"]
    expected = to_gcj02(*AT) if client.gcj02 else AT
    assert point[:2] == pytest.approx(list(expected), abs=1e-9)
    assert point[3:] == ["event", "0102"]
    shipped = GeoSettings().file("districts")
    lon, lat = json.loads(shipped.read_text())["features"][0]["geometry"]["coordinates"][0][0]
    drawn = client.get("/api/layers/districts").get_json()["features"][0]
    first = drawn["geometry"]["coordinates"][0][0]
    if client.gcj02:
        shifted_lat, shifted_lon = to_gcj02(lat, lon)
        assert first == pytest.approx([shifted_lon, shifted_lat], abs=1e-9)
        assert abs(first[0] - lon) > 1e-3  # a few hundred metres: the shift is real
    else:
        assert first == [lon, lat]


def test_the_unit_grid_is_given_near_in_and_not_far_out(client: Any) -> None:
    lat, lon = AT
    near = client.get(f"/api/layers/grid?bbox={lat},{lon},{lat + 0.002},{lon + 0.003}")
    cells = near.get_json()["features"]
    assert 6 <= len(cells) <= 20
    assert all(len(cell["properties"]["grid_code"]) == 15 for cell in cells)
    far = client.get("/api/layers/grid?bbox=31.9,120.7,32.1,121.0").get_json()
    assert (far["features"], far["too_many"]) == ([], True)
    assert client.get("/api/layers/grid?bbox=nonsense").status_code == 400


def test_pages_forbid_framing_caching_and_any_script_from_elsewhere(client: Any) -> None:
    answer = client.get("/reports")
    assert answer.status_code == 200
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    if client.gcj02:
        assert "https://t*.example.cn" in policy  # the configured tiles, and only them
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_a_hundred_cases_page_by_fifty(client: Any) -> None:
    first = client.get("/api/reports").get_json()["rows"]
    assert len(first) == 50
    older = client.get(f"/api/reports?before={first[-1]['id']}").get_json()["rows"]
    assert len(older) == 50
    assert not {row["id"] for row in first} & {row["id"] for row in older}
    assert client.get(f"/api/reports?before={older[-1]['id']}").get_json()["rows"] == []
    assert len(client.get("/api/reports?limit=100000").get_json()["rows"]) == 100  # capped at 200


def test_in_a_cluster_the_console_reads_the_shared_stores(
    postgres_dsn: str, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every store the console reads, opened as a cluster instance opens them: cases,
    devices and deliveries in PostgreSQL, objects in S3, accounts beside them."""
    from gateway.config import load_config  # noqa: PLC0415
    from gateway.console.accounts import open_accounts  # noqa: PLC0415
    from gateway.console.sources import open_sources  # noqa: PLC0415
    from gateway.store.postgres import upgrade  # noqa: PLC0415

    upgrade(postgres_dsn)
    s3.create_bucket("cgt-console")
    monkeypatch.setenv("CGT_TEST_S3_SECRET", "testing")
    config_file = tmp_path / "cluster.toml"
    config_file.write_text(
        f'objects = "s3://cgt-console"\n\n[cluster]\nurl = "{postgres_dsn}"\n\n'
        + s3.gateway_settings("CGT_TEST_S3_SECRET")
    )
    config = load_config(config_file, {"data_dir": str(tmp_path / "data")})
    accounts = open_accounts(config)
    accounts.add("cluster.viewer", "viewer")
    with open_sources(config) as sources:
        report = placed(normalized(), district="崇川区", units=("一中队",))
        registry: Any = sources.cases.store  # the cluster's case registry, in PostgreSQL
        registry.register([report])
        (row,) = sources.find_cases(CaseQuery(district="崇川区"))
        assert row.report.report_id == report.report_id
        assert sources.facets().units == ["一中队"]
        assert sources.fleet() == []
        assert set(sources.depths()) == {"media", "registry", "objects", "bus", "ack"}
        assert sources.dead_letters() == []
        assert sources.objects.read("reports/nothing/report.json") is None
    assert [user.name for user in accounts.users()] == ["cluster.viewer"]
    accounts.close()


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "/\\evil.example/x", "https://evil.example/"]
)
def test_a_login_never_redirects_to_another_site(client: Any, target: str) -> None:
    fresh = client.application.test_client()
    page = fresh.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = fresh.post("/login", query_string={"next": target},
                        data={"csrf_token": token, "name": "v", "password": PASSWORD})  # fmt: skip
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/reports"


def test_a_citys_own_grid_layer_is_given_cell_by_cell_within_the_box(
    client: Any, tmp_path: Path
) -> None:
    def square(code: str, lon: float, lat: float) -> dict[str, Any]:
        ring = [[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001], [lon, lat + 0.001],
                [lon, lat]]  # fmt: skip
        return {"type": "Feature", "properties": {"grid_code": code},
                "geometry": {"type": "Polygon", "coordinates": [ring]}}  # fmt: skip

    grid = tmp_path / "grid.geojson"
    grid.write_text(json.dumps({"type": "FeatureCollection", "features": [
        square("320602001001001", 120.860, 32.015), square("320602001001002", 120.900, 32.015),
    ]}))  # fmt: skip
    console = client.application.view_functions["layer"].__self__
    console.layers = replace(console.layers, grid_file=grid)
    south, west = console.layers.shown(32.014, 120.859)  # the map's own datum
    north, east = console.layers.shown(32.017, 120.862)
    cells = client.get(f"/api/layers/grid?bbox={south},{west},{north},{east}").get_json()
    assert [cell["properties"]["grid_code"] for cell in cells["features"]] == ["320602001001001"]
