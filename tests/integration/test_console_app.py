"""The console's application on real stores (SQLite files in a data directory), through
Flask's test client: what the map is given on a WGS-84 base map and on a GCJ-02 one,
the unit grid's cells, the page's security headers, the pages 100 cases make, and the
case lifecycle: transitions by role (CSRF, audit), history, lights, the list's filters by
state and overdue, the statistics and the bulletin's downloads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway import logs
from gateway.cases.settings import CasesSettings
from gateway.cases.timekeeping import timekeeper
from gateway.cases.workflow import Action, Command, Refusal, RefusalCode, State
from gateway.console.accounts import Accounts
from gateway.console.app import Console, MapLayers, create_app
from gateway.console.i18n import WORDS
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
    app = create_app(
        Console(sources, accounts, ConsoleSettings(), layers(request.param), logs.get("t"))
    )
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
        # The lifecycle's filters and the list's states, in PostgreSQL's SQL too.
        assert sources.find_cases(CaseQuery(state="reported")) == [row]
        assert sources.find_cases(CaseQuery(state="handling")) == []
        assert sources.find_cases(CaseQuery(overdue_at=datetime.now(TZ))) == []
        assert sources.lives([row])[row.case_no].state is State.REPORTED
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


# ---- the case lifecycle: transitions, history, lights, filters, statistics ---------------


@dataclass
class Desk:
    """A console with one account of each role, a city's Timekeeper, and three cases of
    the kind `0801` (whose time-limit entry names two filing conditions)."""

    app: Flask
    registry: SqliteRegistry
    accounts: Accounts
    cases: list[str]

    def client(self, name: str) -> FlaskClient:
        client = self.app.test_client()
        token = csrf(client.get("/login").get_data(as_text=True))
        answer = client.post("/login", data={"csrf_token": token, "name": name,
                                             "password": PASSWORD})  # fmt: skip
        assert answer.status_code == 302
        return client

    def audit(self) -> list[tuple[str | None, str, str | None, bool]]:
        return [(e.name, e.action, e.target, e.allowed) for e in self.accounts.audit_log(200)]


def csrf(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    registry = SqliteRegistry(tmp_path / "registry.db", TZ)
    numbers = registry.register([
        placed(normalized(received_at=f"2026-11-0{n + 1}T02:00:00+00:00", class_code="0801"),
               district="崇川区", units=("一中队", "市政养护处"), lat=AT[0], lon=AT[1])
        for n in range(3)
    ])  # fmt: skip
    accounts = Accounts(tmp_path / "console.db")
    for name, role in (("v", "viewer"), ("o", "operator"), ("te", "technician")):
        accounts.add(name, role)  # type: ignore[arg-type]
        accounts.set_password(name, PASSWORD)
    sources = Sources(
        registry, LocalObjectStore(tmp_path / "objects"), connect(tmp_path / "inbox.db", INBOX),
        Outbox(tmp_path / "outbox.db"), DeviceRegistry(tmp_path / "devices.db"), TZ,
    )  # fmt: skip
    settings = CasesSettings()
    app = create_app(Console(sources, accounts, ConsoleSettings(), layers(False), logs.get("t"),
                             clock=timekeeper(settings, TZ), cases=settings))  # fmt: skip
    yield Desk(app, registry, accounts, [str(number) for number in numbers])
    sources.close()
    accounts.close()


def overdue(desk: Desk, case_no: str) -> None:
    """Take a case to handling a month ago, through the registry as the CLI would: its
    deadline has long passed."""
    clock = timekeeper(CasesSettings(), TZ)
    at = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
    for action, units in ((Action.ACCEPT, ()), (Action.FILE, ()),
                          (Action.DISPATCH, ("市政养护处",))):  # fmt: skip
        done = desk.registry.act(Command(case_no, action, at, via="cli", by="zhang.wei",
                                         units=units, note="现场核实"), clock)  # fmt: skip
        assert not isinstance(done, Refusal), done
        at += timedelta(minutes=30)


def act(client: FlaskClient, case_no: str, **form: Any) -> Any:
    page = client.get(f"/reports/{case_no}").get_data(as_text=True)
    return client.post(f"/reports/{case_no}/act", data={"csrf_token": csrf(page), **form})


def test_the_transition_form_is_the_operators_and_offers_only_legal_actions(desk: Desk) -> None:
    case_no = desk.cases[0]
    for name in ("v", "te"):
        page = desk.client(name).get(f"/reports/{case_no}").get_data(as_text=True)
        assert 'id="lifecycle"' in page
        assert "上报 reported" in page
        assert 'id="act-form"' not in page
    page = desk.client("o").get(f"/reports/{case_no}").get_data(as_text=True)
    assert 'id="act-form"' in page
    offered = re.findall(r'<option value="([a-z-]+)">', page.split('id="act-action"')[1])
    assert offered[:3] == ["accept", "refuse", "self-handled"]  # from 上报, and nothing else
    assert "一般" in page
    assert "紧急" in page
    assert 'value="市政养护处"' in page  # the case's responsible units, to tick


def test_a_legal_transition_applies_and_shows_in_the_history_and_the_audit(desk: Desk) -> None:
    case_no, operator = desk.cases[0], desk.client("o")
    answer = act(operator, case_no, action="accept", note="属实")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/reports/{case_no}?done=accept#lifecycle")
    assert act(operator, case_no, action="file", condition="紧急").status_code == 302
    dispatched = act(operator, case_no, action="dispatch", unit="市政养护处",
                     units_other="二中队、 一中队")  # fmt: skip
    assert dispatched.status_code == 302
    page = operator.get(f"/reports/{case_no}?done=dispatch").get_data(as_text=True)
    assert 'id="done"' in page
    assert 'data-state="handling"' in page
    assert "处置中 handling" in page
    assert 'data-light="green"' in page  # just dispatched, 4 natural hours to go
    (life,) = [desk.registry.life(case_no)]
    assert life is not None
    assert (life.state, life.units, life.condition, life.time_limit) == (
        State.HANDLING,
        ("市政养护处", "二中队", "一中队"),
        "紧急",
        "4 hours",
    )
    history = desk.registry.history(case_no)
    assert [event.action for event in history] == [Action.ACCEPT, Action.FILE, Action.DISPATCH]
    assert {(event.by, event.via) for event in history} == {("o", "console:o")}
    assert history[0].note == "属实"
    rows = page.split('id="history"')[1]
    assert rows.count("<tr data-seq=") == 3
    assert "派遣 <small>dispatch</small>" in rows
    assert "立案 filed → 处置中 handling" in rows
    audit = desk.audit()
    for action in ("accept", "file", "dispatch"):
        assert ("o", f"case:{action}", case_no, True) in audit
    # The same form sent twice (a double click): applied once.
    page = operator.get(f"/reports/{case_no}").get_data(as_text=True)
    command_id = re.search(r'name="command_id" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": csrf(page), "action": "feedback", "command_id": command_id}
    assert operator.post(f"/reports/{case_no}/act", data=form).status_code == 302
    assert operator.post(f"/reports/{case_no}/act", data=form).status_code == 302
    assert [event.action for event in desk.registry.history(case_no)][-1:] == [Action.FEEDBACK]
    assert len(desk.registry.history(case_no)) == 4


def test_an_illegal_transition_is_refused_with_its_reason_and_audited(desk: Desk) -> None:
    case_no, operator = desk.cases[1], desk.client("o")
    refused = act(operator, case_no, action="close")
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert 'data-code="case.illegal_transition"' in page
    assert "cannot close a case that is reported (上报)" in page
    assert "当前状态不允许此操作" in page  # the reason in Chinese, then the workflow's detail
    assert all(f"refusal_{code.value.replace('.', '_')}" in WORDS for code in RefusalCode)
    assert ("o", "case:close", f"{case_no} case.illegal_transition", False) in desk.audit()
    act(operator, case_no, action="accept")
    act(operator, case_no, action="file")
    no_unit = act(operator, case_no, action="dispatch")
    assert no_unit.status_code == 409
    assert 'data-code="case.unit_required"' in no_unit.get_data(as_text=True)
    unknown = act(operator, case_no, action="teleport")
    assert unknown.status_code == 409
    assert 'data-code="case.action_unknown"' in unknown.get_data(as_text=True)
    life = desk.registry.life(case_no)
    assert life is not None
    assert life.state is State.FILED


def test_a_transition_needs_the_role_and_the_csrf_token(desk: Desk) -> None:
    case_no = desk.cases[0]
    viewer = desk.client("v")
    assert act(viewer, case_no, action="accept").status_code == 403
    technician = desk.client("te")
    assert act(technician, case_no, action="accept").status_code == 403
    operator = desk.client("o")
    bare = operator.post(f"/reports/{case_no}/act", data={"action": "accept"})
    assert bare.status_code == 400
    assert "CSRF" in bare.get_data(as_text=True)
    life = desk.registry.life(case_no)
    assert life is not None
    assert life.state is State.REPORTED
    audit = desk.audit()
    assert ("v", "refused:act", f"/reports/{case_no}/act", False) in audit
    assert ("te", "refused:act", f"/reports/{case_no}/act", False) in audit
    assert ("o", "csrf_refused", f"/reports/{case_no}/act", False) in audit


def test_a_late_case_is_red_and_the_list_filters_by_state_and_overdue(desk: Desk) -> None:
    late, accepted, fresh = desk.cases
    overdue(desk, late)
    act(desk.client("o"), accepted, action="accept")
    viewer = desk.client("v")
    page = viewer.get(f"/reports/{late}").get_data(as_text=True)
    assert 'data-light="red"' in page
    assert "超期" in page
    assert "zhang.wei" in page
    assert "现场核实" in page

    def listed(query: str) -> list[tuple[str, str, str | None]]:
        rows = viewer.get(f"/api/reports?{query}").get_json()["rows"]
        return [(row["case_no"], row["state"], row["light"]) for row in rows]

    assert listed("overdue=1") == [(late, "handling", "red")]
    assert listed("state=accepted") == [(accepted, "accepted", None)]
    assert listed("state=handling&overdue=1") == [(late, "handling", "red")]
    assert listed("state=closed") == []
    assert len(listed("state=nonsense")) == 3  # an unknown state filters nothing
    assert listed("")[2] == (late, "handling", "red")
    assert fresh in {number for number, _, _ in listed("state=reported")}
    page = viewer.get("/reports?overdue=1").get_data(as_text=True)
    assert "light-red" in page
    assert late in page
    assert accepted not in page
    assert 'id="filter-overdue" checked' in page


def test_the_statistics_page_shows_the_figures_and_serves_the_bulletin(desk: Desk) -> None:
    late, _accepted, _ = desk.cases
    overdue(desk, late)
    viewer = desk.client("v")
    page = viewer.get("/stats?from=2026-11-01&to=2026-11-30&by=unit").get_data(as_text=True)
    assert 'id="stats"' in page
    total = page.split('id="stats-total"')[1].split("</tr>")[0]
    cells = re.findall(r'<th class="num">([^<]*)</th>', total)
    # reported, filed, dispatched, handled, closed, due, overdue; then the unit's rates.
    assert cells[:7] == ["3", "1", "1", "0", "0", "1", "1"]
    assert "0.0%" in cells  # the closing rate of the one case due, as a percentage
    assert "市政养护处" in page
    assert "未派遣" in page
    by_day = viewer.get("/stats?from=2026-11-01&to=2026-11-30&by=day").get_data(as_text=True)
    assert "2026-11-02" in by_day
    reversed_ = viewer.get("/stats?from=2026-11-30&to=2026-11-01").get_data(as_text=True)
    assert 'id="stats-problem"' in reversed_
    assert 'href="/stats/bulletin/2026-11.pdf"' in page

    html = viewer.get("/stats/bulletin/2026-11.html")
    assert html.status_code == 200
    assert html.mimetype == "text/html"
    named = quote("数字城管通报-2026-11.html")
    assert f"filename*=UTF-8''{named}" in html.headers["Content-Disposition"]
    assert "数字城管" in html.get_data(as_text=True)
    pdf = viewer.get("/stats/bulletin/2026-11.pdf")
    assert (pdf.status_code, pdf.mimetype) == (200, "application/pdf")
    assert pdf.data.startswith(b"%PDF")
    assert viewer.get("/stats/bulletin/2026-13.pdf").status_code == 404
    assert ("v", "download_bulletin", "2026-11.pdf", True) in desk.audit()
