"""The console in a real browser (Debian's headless Chromium through Selenium), against a
real `gateway run --console`, Mosquitto and the firmware simulator's terminals.

Each test saves a screenshot of its page in var/screenshots/console-*.png.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from firmware_sim import wire
from firmware_sim.fleet import FleetSettings, run_fleet
from firmware_sim.outcomes import Summary
from gateway.cases.settings import CasesSettings
from gateway.cases.timekeeping import timekeeper
from gateway.cases.workflow import Action, Command, Refusal
from gateway.console.accounts import Accounts, Role
from gateway.harness.gateway_process import GatewayProcess, wait_until
from gateway.harness.mosquitto import Mosquitto, free_port
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from tests.browser import chromium, screenshot
from tests.integration.helpers import gateway_cli

ZONE = ZoneInfo("Asia/Shanghai")  # the acceptance zone the stack's gateway runs in
PASSWORDS = {"viewer": "viewer-password-1", "operator": "operator-password-1",
             "technician": "technician-password-1"}  # fmt: skip


@dataclass
class Stack:
    """A broker, a gateway with its console, and accounts of each role."""

    url: str
    data_dir: Path
    broker: Mosquitto
    gateway: GatewayProcess
    summary: Summary | None = None
    fleet_lock: threading.Lock = field(default_factory=threading.Lock)

    def run_fleet(self) -> Summary:
        """Two terminals, two reports each, with photos and mostly voice notes (once)."""
        with self.fleet_lock:
            if self.summary is None:
                self.summary = run_fleet(
                    FleetSettings(broker=self.broker.url, terminals=2, reports_per_terminal=2,
                                  device_prefix="web", seed=11, photo_size=(1280, 960),
                                  voice_share=1.0, drain_s=20)
                )  # fmt: skip
                assert self.summary.accepted == 4
        return self.summary

    def cases(self) -> list[dict[str, Any]]:
        session = login_session(self.url, "operator")
        answer: list[dict[str, Any]] = session.get(f"{self.url}/api/reports").json()["rows"]
        return answer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("console")
    port = free_port()
    config = root / "gateway.toml"
    config.write_text(f'[console]\nlisten = "127.0.0.1:{port}"\nrefresh_s = 0.5\n')
    data_dir = root / "gateway"
    accounts = Accounts.in_data_dir(data_dir)
    roles: tuple[Role, ...] = ("viewer", "operator", "technician")
    for role in roles:
        accounts.add(role, role)
        accounts.set_password(role, PASSWORDS[role])
    accounts.close()
    with Mosquitto(root / "broker") as broker:
        gateway = GatewayProcess(data_dir, broker.url, config=config).start()
        try:
            yield Stack(f"http://127.0.0.1:{port}", data_dir, broker, gateway)
        finally:
            gateway.stop()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def login_session(url: str, role: str) -> requests.Session:
    session = requests.Session()
    token = csrf_of(session.get(f"{url}/login").text)
    answer = session.post(f"{url}/login", data={"csrf_token": token, "name": role,
                                                "password": PASSWORDS[role]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.url.endswith("/reports")
    return session


def log_in(browser: WebDriver, url: str, name: str, password: str) -> None:
    browser.get(f"{url}/login")
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "login-submit").click()
    wait_until(lambda: "/login" not in browser.current_url, 10, "the login to go through")


def arrives(browser: WebDriver, path: str) -> None:
    wait_until(lambda: browser.current_url.endswith(path), 10, f"the browser to reach {path}")


def test_an_anonymous_visitor_gets_the_login_page_and_no_report_data(
    stack: Stack, browser: WebDriver
) -> None:
    stack.run_fleet()
    anonymous = requests.Session()
    page = anonymous.get(f"{stack.url}/reports", allow_redirects=False)
    assert page.status_code == 302
    assert "/login" in page.headers["Location"]
    api = anonymous.get(f"{stack.url}/api/reports")
    assert (api.status_code, api.json()) == (401, {"error": "login needed"})
    for path in ("/map", "/api/map", "/fleet", "/pipeline", "/api/layers/districts"):
        assert anonymous.get(f"{stack.url}{path}", allow_redirects=False).status_code in (302, 401)

    browser.get(f"{stack.url}/reports")
    assert "/login" in browser.current_url
    assert browser.find_elements(By.ID, "login-form")
    case_numbers = [case["case_no"] for case in stack.cases()]
    assert case_numbers
    assert not any(number in browser.page_source for number in case_numbers)
    screenshot(browser, "console-login")


def test_reports_sent_by_the_simulator_appear_without_a_reload(
    stack: Stack, browser: WebDriver
) -> None:
    # A new acceptor, made as an operator makes one: a one-time password on stdout.
    one_time = gateway_cli("users", "add", "acceptor", "--role", "operator",
                           "--data-dir", str(stack.data_dir)).stdout.strip()  # fmt: skip
    log_in(browser, stack.url, "acceptor", one_time)
    arrives(browser, "/password")  # a one-time password must go
    browser.find_element(By.ID, "current").send_keys(one_time)
    browser.find_element(By.ID, "new").send_keys("acceptor-password-1")
    browser.find_element(By.ID, "again").send_keys("acceptor-password-1")
    browser.find_element(By.ID, "password-submit").click()
    arrives(browser, "/reports")
    before = len(browser.find_elements(By.CSS_SELECTOR, "#case-rows tr[data-id]"))
    browser.execute_script("window.stillTheSamePage = true")

    sent = Stack.run_fleet(_fresh(stack))  # four more reports while the page is open

    wait_until(
        lambda: (
            len(browser.find_elements(By.CSS_SELECTOR, "#case-rows tr[data-id]"))
            >= before + sent.accepted
        ),
        30,
        "the new reports to appear in the list",
    )
    assert browser.execute_script("return window.stillTheSamePage") is True  # no reload
    top = browser.find_element(By.CSS_SELECTOR, "#case-rows tr[data-id]")
    assert re.fullmatch(r"[CE]\d{4,5}\d{8}\d{6,}", top.find_element(By.TAG_NAME, "a").text)
    screenshot(browser, "console-reports-live")


def _fresh(stack: Stack) -> Stack:
    """The same broker and gateway, but a fleet of its own (new report ids)."""
    return Stack(stack.url, stack.data_dir, stack.broker, stack.gateway)


def test_a_report_page_shows_its_photos_and_its_voice_note_plays_to_the_end(
    stack: Stack, browser: WebDriver
) -> None:
    stack.run_fleet()
    case = next(case for case in stack.cases() if case["voice"] and case["photos"])
    log_in(browser, stack.url, "viewer", PASSWORDS["viewer"])
    browser.get(f"{stack.url}/reports/{case['case_no']}")
    photos = browser.find_elements(By.CSS_SELECTOR, "#photos img.display")
    assert len(photos) == case["photos"]
    wait_until(
        lambda: all(browser.execute_script("return arguments[0].naturalWidth", p) > 0
                    for p in photos),
        10,
        "the photos to load",
    )  # fmt: skip
    assert len(browser.find_elements(By.CSS_SELECTOR, "#thumbs img.thumb")) == case["photos"]
    assert not browser.find_elements(By.CSS_SELECTOR, "a.download")  # a viewer: no originals
    browser.execute_script(
        "const a = document.querySelector('audio.voice'); a.muted = true; a.play()"
    )
    wait_until(
        lambda: browser.execute_script("return document.querySelector('audio.voice').ended"),
        30,
        "the voice note to play to its end",
    )
    duration = browser.execute_script("return document.querySelector('audio.voice').duration")
    assert duration > 0.5
    screenshot(browser, "console-report")


def test_the_marker_sits_at_the_reports_place_on_the_map(stack: Stack, browser: WebDriver) -> None:
    stack.run_fleet()
    case = stack.cases()[0]
    session = login_session(stack.url, "viewer")
    report = session.get(f"{stack.url}/reports/{case['case_no']}")
    lat = float(re.search(r'data-lat="([-0-9.]+)"', report.text).group(1))  # type: ignore[union-attr]
    lon = float(re.search(r'data-lon="([-0-9.]+)"', report.text).group(1))  # type: ignore[union-attr]

    log_in(browser, stack.url, "viewer", PASSWORDS["viewer"])
    browser.get(f"{stack.url}/reports/{case['case_no']}")
    wait_until(lambda: browser.execute_script("return !!window.cgtMap"), 10, "the map")
    element = browser.find_element(By.ID, "minimap")
    browser.execute_script("arguments[0].scrollIntoView()", element)
    time.sleep(0.5)
    zoom, center_lat, center_lon, width, height = browser.execute_script(
        "const m = window.cgtMap, c = m.getCenter(), s = m.getSize();"
        " return [m.getZoom(), c.lat, c.lng, s.x, s.y]"
    )
    # Web Mercator, computed here and not by Leaflet: where the report must be drawn.
    x, y = _mercator(lat, lon, zoom)
    cx, cy = _mercator(center_lat, center_lon, zoom)
    px, py = width / 2 + (x - cx), height / 2 + (y - cy)
    image = Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")
    scale = image.width / width  # device pixels per CSS pixel
    red, green, blue = _rgb(image, px * scale, py * scale)
    assert (red > 150, green < 110, blue < 110) == (True, True, True), (red, green, blue)
    far = _rgb(image, (px + 40) * scale, py * scale)
    assert not (far[0] > 150 and far[1] < 110), far  # and only there
    # At this zoom the unit grid is drawn, and the cell under the marker is the report's.
    wait_until(lambda: browser.execute_script("return window.cgtGrid.getLayers().length") > 0,
               10, "the unit grid")  # fmt: skip
    under = browser.execute_script(
        "const p = L.latLng(arguments[0], arguments[1]); let code = null;"
        " window.cgtGrid.eachLayer(l => { if (l.getBounds().contains(p))"
        " code = l.feature.properties.grid_code }); return code",
        lat, lon,
    )  # fmt: skip
    assert under == case["grid"]
    screenshot(browser, "console-report-map")


def _rgb(image: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    pixel = image.getpixel((round(x), round(y)))
    assert isinstance(pixel, tuple)
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def _mercator(lat: float, lon: float, zoom: float) -> tuple[float, float]:
    size = 256 * 2**zoom
    siny = math.sin(math.radians(lat))
    return (lon + 180) / 360 * size, (
        0.5 - math.log((1 + siny) / (1 - siny)) / (4 * math.pi)
    ) * size


def test_the_map_clusters_every_placed_report(stack: Stack, browser: WebDriver) -> None:
    stack.run_fleet()
    placed = login_session(stack.url, "viewer").get(f"{stack.url}/api/map").json()["points"]
    log_in(browser, stack.url, "viewer", PASSWORDS["viewer"])
    browser.get(f"{stack.url}/map")
    wait_until(lambda: browser.execute_script("return !!window.cgtMapReadyMs"), 10, "the map")
    assert browser.execute_script("return window.cgtCluster.getLayers().length") == len(placed)
    assert len(placed) >= 4
    # Reports at the same few places: drawn as clusters with their counts, not one by one.
    counts = [int(icon.text) for icon in browser.find_elements(By.CSS_SELECTOR, ".marker-cluster")]
    assert counts
    assert sum(counts) + len(browser.find_elements(By.CSS_SELECTOR, ".leaflet-interactive")) >= 1
    screenshot(browser, "console-map")


def test_a_terminal_whose_link_drops_shows_offline(stack: Stack, browser: WebDriver) -> None:
    device = "web-drop"
    status = wire.status_message(device, wire.Status(online=True, battery_pct=76.0,
                                                     firmware="2.4.1", signal_dbm=-71))  # fmt: skip
    will = wire.status_message(device, wire.Status(online=False))
    terminal = paho.Client(CallbackAPIVersion.VERSION2, client_id=device)
    terminal.will_set(will.topic, will.payload, qos=1, retain=True)
    host, port = stack.broker.url.removeprefix("mqtt://").split(":")
    terminal.connect(host, int(port), keepalive=30)
    terminal.loop_start()
    terminal.publish(status.topic, status.payload, qos=1, retain=True).wait_for_publish(10)

    log_in(browser, stack.url, "technician", PASSWORDS["technician"])
    browser.get(f"{stack.url}/fleet")

    def presence() -> str:
        rows = browser.find_elements(By.ID, f"device-{device}")
        return rows[0].find_element(By.CSS_SELECTOR, ".presence").text if rows else ""

    wait_until(lambda: presence() == "在线", 15, "the terminal to show online")
    row = browser.find_element(By.ID, f"device-{device}").text
    assert "76%" in row
    assert "2.4.1" in row
    assert "-71 dBm" in row
    dropped = time.monotonic()
    terminal.loop_stop()
    link = terminal.socket()
    assert link is not None
    link.close()  # no DISCONNECT: the broker publishes the will
    wait_until(lambda: presence() == "离线", 15, "the terminal to show offline")
    assert time.monotonic() - dropped < 10
    # A terminal whose uplinks are refused at the door: counted with the reason.
    garbage = paho.Client(CallbackAPIVersion.VERSION2, client_id="web-bad")
    garbage.connect(host, int(port))
    garbage.loop_start()
    garbage.publish(wire.report_topic("web-bad"), b"{not json", qos=1).wait_for_publish(10)
    garbage.loop_stop()
    garbage.disconnect()

    def refusals() -> str:
        rows = browser.find_elements(By.ID, "device-web-bad")
        return rows[0].find_elements(By.TAG_NAME, "td")[9].text if rows else ""

    wait_until(lambda: refusals().startswith("1 "), 15, "the refusal on the fleet page")
    assert re.fullmatch(r"1 [a-z_]+\.[a-z_.]+", refusals())
    # A terminal of the fleet that sent reports: its track of today, drawn on a click.
    stack.run_fleet()
    browser.find_element(By.ID, "device-web-0001").click()
    wait_until(lambda: browser.execute_script("return window.cgtTrack && window.cgtTrack.points"),
               10, "the track to be drawn")  # fmt: skip
    screenshot(browser, "console-fleet-offline")


def test_roles_are_enforced_on_the_server_and_every_action_needs_its_csrf_token(
    stack: Stack, browser: WebDriver
) -> None:
    stack.run_fleet()
    case = stack.cases()[0]
    report = login_session(stack.url, "operator").get(f"{stack.url}/reports/{case['case_no']}").text
    media_id = re.search(r"/original/[^/]+/([0-9a-f-]{36})", report).group(1)  # type: ignore[union-attr]
    original = f"{stack.url}/original/{case['case_no']}/{media_id}"
    report_id = _dead_letter(stack.data_dir)  # a bus delivery that failed for good

    viewer = login_session(stack.url, "viewer")
    assert viewer.get(original).status_code == 403
    token = csrf_of(viewer.get(f"{stack.url}/reports").text)
    refused = viewer.post(f"{stack.url}/pipeline/retry", data={
        "csrf_token": token, "report_id": report_id, "sink": "bus", "confirm": "yes"})  # fmt: skip
    assert refused.status_code == 403
    assert viewer.get(f"{stack.url}/api/fleet").status_code == 403

    technician = login_session(stack.url, "technician")
    no_token = technician.post(f"{stack.url}/pipeline/retry", data={
        "report_id": report_id, "sink": "bus", "confirm": "yes"})  # fmt: skip
    assert no_token.status_code == 400
    assert "CSRF" in no_token.text
    assert technician.get(original).status_code == 403  # evidence is the operators'

    operator = login_session(stack.url, "operator")
    download = operator.get(original)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == download.headers["X-Content-SHA256"]
    assert "attachment" in download.headers["Content-Disposition"]

    log_in(browser, stack.url, "technician", PASSWORDS["technician"])
    browser.get(f"{stack.url}/pipeline")
    assert report_id in browser.find_element(By.ID, "letters").text
    instance = browser.find_element(By.ID, "instance").text
    assert "已连接" in instance  # the broker link
    assert "运行中" in instance  # the pipeline process
    screenshot(browser, "console-pipeline-dead-letter")
    browser.find_element(By.CSS_SELECTOR, "form.retry button").click()
    browser.switch_to.alert.accept()  # "Retry this dead letter?"
    wait_until(lambda: bool(browser.find_elements(By.ID, "retried")), 10, "the retry")
    assert report_id in browser.find_element(By.ID, "retried").text

    log_in(browser, stack.url, "viewer", PASSWORDS["viewer"])
    browser.get(f"{stack.url}/pipeline")
    assert browser.find_element(By.ID, "refused")
    screenshot(browser, "console-viewer-refused")

    accounts = Accounts.in_data_dir(stack.data_dir)
    actions = {(entry.name, entry.action, entry.allowed) for entry in accounts.audit_log(100)}
    accounts.close()
    assert ("viewer", "refused:original", False) in actions
    assert ("viewer", "refused:retry", False) in actions
    assert ("technician", "csrf_refused", False) in actions
    assert ("operator", "download_original", True) in actions
    assert ("technician", "retry_dead_letter", True) in actions


def _dead_letter(data_dir: Path) -> str:
    """Turn one delivered bus delivery into a dead letter, as a broker refusing it for good
    would have left it; its report id."""
    conn = sqlite3.connect(data_dir / "outbox.db", timeout=10)
    try:
        (report_id,) = conn.execute(
            "SELECT report_id FROM deliveries WHERE sink = 'bus' AND state = 'done' LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE deliveries SET state = 'dead', last_error = 'test: refused for good'"
            " WHERE report_id = ? AND sink = 'bus'",
            (report_id,),
        )
        conn.commit()
    finally:
        conn.close()
    return str(report_id)


def test_a_case_is_moved_along_its_lifecycle_on_its_page(stack: Stack, browser: WebDriver) -> None:
    """A case long past its deadline shows red with its history; an acceptor moves another
    through the form (受理 → 立案 → 派遣); the list filters the late one; the statistics."""
    stack.run_fleet()
    late, moved = stack.cases()[-1], stack.cases()[-2]
    _dispatch_long_ago(stack.data_dir, late["case_no"], late["units"][0] if late["units"]
                       else "市政养护处")  # fmt: skip

    log_in(browser, stack.url, "operator", PASSWORDS["operator"])
    browser.get(f"{stack.url}/reports/{late['case_no']}")
    assert browser.find_element(By.ID, "light").get_attribute("data-light") == "red"
    assert "超期" in browser.find_element(By.ID, "deadline").text
    history = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert [row.get_attribute("data-action") for row in history] == ["accept", "file", "dispatch"]
    browser.execute_script("document.getElementById('lifecycle').scrollIntoView()")
    screenshot(browser, "console-case-red")

    browser.get(f"{stack.url}/reports/{moved['case_no']}")
    assert browser.find_element(By.ID, "state").text == "上报 reported"
    _choose(browser, "accept")
    browser.find_element(By.ID, "act-note").send_keys("属实,予以受理")
    _submit(browser, "accept")
    _choose(browser, "file")
    conditions = Select(browser.find_element(By.ID, "act-condition"))
    if "紧急" in [option.get_attribute("value") for option in conditions.options]:
        conditions.select_by_value("紧急")  # a class whose limit table names it
    _submit(browser, "file")
    _choose(browser, "dispatch")  # to no unit first: refused, with the reason shown
    browser.find_element(By.ID, "act-submit").click()
    wait_until(lambda: bool(browser.find_elements(By.ID, "refusal")), 10, "the refusal")
    assert browser.find_element(By.ID, "refusal").get_attribute("data-code") == "case.unit_required"
    assert browser.find_element(By.ID, "state").text == "立案 filed"
    screenshot(browser, "console-case-refused")
    _choose(browser, "dispatch")
    boxes = browser.find_elements(By.CSS_SELECTOR, "#act-form input[name=unit]")
    if boxes:
        boxes[0].click()
    else:  # a case outside the coverage has no responsible unit: typed instead
        browser.find_element(By.ID, "act-units-other").send_keys("市政养护处")
    _submit(browser, "dispatch")
    assert browser.find_element(By.ID, "state").text == "处置中 handling"
    assert browser.find_element(By.ID, "light").get_attribute("data-light") in ("green", "yellow")
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert [row.get_attribute("data-action") for row in rows] == ["accept", "file", "dispatch"]
    assert "console:operator" in rows[0].text
    assert "属实,予以受理" in rows[0].text
    browser.execute_script("document.getElementById('lifecycle').scrollIntoView()")
    screenshot(browser, "console-case-transition")

    browser.get(f"{stack.url}/reports?overdue=1")
    listed = [link.text for link in browser.find_elements(By.CSS_SELECTOR, "#case-rows tr a")]
    assert listed == [late["case_no"]]
    assert browser.find_elements(By.CSS_SELECTOR, "#case-rows span.light-red")
    screenshot(browser, "console-reports-overdue")

    browser.get(f"{stack.url}/stats?by=unit")
    total = browser.find_element(By.ID, "stats-total").text
    assert total.startswith("合计")
    assert browser.find_element(By.ID, "bulletin-pdf").text.startswith("数字城管通报-")
    screenshot(browser, "console-stats")

    accounts = Accounts.in_data_dir(stack.data_dir)
    actions = {(entry.name, entry.action, entry.target, entry.allowed)
               for entry in accounts.audit_log(200)}  # fmt: skip
    accounts.close()
    for action in ("accept", "file", "dispatch"):
        assert ("operator", f"case:{action}", moved["case_no"], True) in actions
    refused = f"{moved['case_no']} case.unit_required"
    assert ("operator", "case:dispatch", refused, False) in actions


def _choose(browser: WebDriver, action: str) -> None:
    Select(browser.find_element(By.ID, "act-action")).select_by_value(action)


def _submit(browser: WebDriver, action: str) -> None:
    browser.find_element(By.ID, "act-submit").click()
    wait_until(lambda: f"done={action}" in browser.current_url, 10, f"the {action}")
    assert browser.find_element(By.ID, "done")


def _dispatch_long_ago(data_dir: Path, case_no: str, unit: str) -> None:
    """受理, 立案 and 派遣 three weeks ago, through the registry as `gateway case` applies
    them (the CLI takes no past time): whatever the class's limit, it has run out."""
    clock = timekeeper(CasesSettings(), ZONE)
    registry = SqliteRegistry(data_dir / "registry.db", ZONE)
    at = datetime.now(ZONE) - timedelta(days=21)
    try:
        for action, units in ((Action.ACCEPT, ()), (Action.FILE, ()), (Action.DISPATCH, (unit,))):
            done = registry.act(Command(case_no, action, at, via="cli", by="zhang.wei",
                                        units=units), clock)  # fmt: skip
            assert not isinstance(done, Refusal), done
            at += timedelta(minutes=20)
    finally:
        registry.close()
