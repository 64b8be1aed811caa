"""The console with 100,000 cases in the registry (SQLite and PostgreSQL), and its map
with 10,000 reports.

Reports page: 100,000 cases spread over 60 days, 3 districts, 24 responsible units, 300
inspectors, 40 classes, a tenth outside the acceptance window and a twentieth outside
the coverage, registered through each registry's own `register` (so each case's facts
are kept as a gateway keeps them). The console's Flask application answers through its
test client (the server's own time: routing, the login check, the queries, the page
rendered; no network), each page and each filter asked 7 times, median and range:
`/reports?...` (the whole page, with the filters' choices) and `/api/reports?...` (what
the page's script asks for). Baseline in the same run, on the same tables: each filter
made the naive way, by reading the field out of every case's JSON report
(`json_extract` / `jsonb #>>`), newest first, 50 rows, as the registry would have to
without the facts columns and their indexes.

Map: the 10,000 newest of them, served by a real `waitress` and drawn by Debian's
headless Chromium (Leaflet and Leaflet.markercluster): the time from navigation to every
marker clustered and drawn, a zoom step (two levels, without animation) and a pan, each
measured in the page (`performance.now()`), 5 times.

    .venv/bin/python -m bench.console          # about 5 minutes
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import cpu_model, summary, write
from gateway import logs
from gateway.console.accounts import Accounts
from gateway.console.app import Console, MapLayers, create_app
from gateway.console.settings import ConsoleSettings
from gateway.console.sources import Sources
from gateway.devices.device_registry import DeviceRegistry
from gateway.geo.settings import GeoSettings
from gateway.harness.gateway_process import wait_until
from gateway.harness.mosquitto import free_port
from gateway.normalize.model import NormalizedReport
from gateway.sinks.case_registry_postgres import PostgresRegistry
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.case_search import CaseQuery
from gateway.sinks.objects_local import LocalObjectStore
from gateway.sinks.settings import PostgresSettings
from gateway.store.db import connect
from gateway.store.inbox import MIGRATIONS as INBOX
from gateway.store.outbox import Outbox
from tests.factories import normalized, placed
from tests.servers import PostgresCluster

TZ = ZoneInfo("Asia/Shanghai")
CASES = 100_000
MAP_POINTS = 10_000
REPEATS = 7
BATCH = 2_000
DISTRICTS = ("崇川区", "港闸区", "开发区")
UNITS = tuple(f"第{n}中队" for n in range(1, 25))
INSPECTORS = tuple(f"INS-{n:04d}" for n in range(1, 301))
CLASSES = tuple(f"{major:02d}{minor:02d}" for major in range(1, 5) for minor in range(1, 11))
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account's


def case(rng: random.Random, when: datetime) -> NormalizedReport:
    outside = rng.random() < 0.05
    return placed(
        normalized(class_code=rng.choice(CLASSES), received_at=when.isoformat()),
        district=None if outside else rng.choice(DISTRICTS),
        units=tuple(rng.sample(UNITS, rng.randint(1, 3))),
        inspector=rng.choice(INSPECTORS),
        inside_window=rng.random() >= 0.1,
        lat=rng.uniform(31.95, 32.08),
        lon=rng.uniform(120.80, 120.95),
    )


def fill(registry: Any, count: int) -> float:
    """`count` cases over 60 days, oldest first; seconds taken."""
    rng = random.Random(30428)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    step = timedelta(days=60) / count
    began = time.perf_counter()
    for first in range(0, count, BATCH):
        registry.register([case(rng, start + step * n) for n in range(first, first + BATCH)])
    return time.perf_counter() - began


def filters(registry: Any) -> dict[str, str]:
    """The queries: each filter alone, one combination, and a page deep in the list."""
    newest = registry.find_cases(CaseQuery(limit=1))[0].id
    return {
        "newest": "",
        "district": "district=港闸区",
        "unit": "unit=第7中队",
        "inspector": "inspector=INS-0123",
        "class": "class=0305",
        "day": "day=2026-11-11",
        "outside window": "window=0",
        "outside coverage": "coverage=0",
        "combined": "district=崇川区&class=0203&window=1",
        "page 1,000": f"before={newest - 50_000}",
    }


# The naive way, for the same filters: the field read out of each case's report.
NAIVE_FIELDS = {
    "district": ("$.location.coverage.district_zh", "{location,coverage,district_zh}", "港闸区"),
    "inspector": ("$.reporter.inspector_id", "{reporter,inspector_id}", "INS-0123"),
    "class": ("$.class.code", "{class,code}", "0305"),
}
INDEXED = {
    "district": CaseQuery(district="港闸区"),
    "inspector": CaseQuery(inspector_id="INS-0123"),
    "class": CaseQuery(class_code="0305"),
}


def measure_indexed(registry: Any) -> dict[str, Any]:
    found = {}
    for name, query in INDEXED.items():

        def find(query: CaseQuery = query) -> None:
            registry.find_cases(query)

        found[name] = summary(timed(find))
    return found


@contextmanager
def console(registry: Any, data_dir: Path, layers: MapLayers) -> Iterator[Any]:
    """The console's Flask application on this registry (and empty other stores)."""
    accounts = Accounts.in_data_dir(data_dir)
    if accounts.get("bench") is None:
        accounts.add("bench", "operator")
        accounts.set_password("bench", PASSWORD)
    sources = Sources(
        registry, LocalObjectStore(data_dir / "objects"), connect(data_dir / "inbox.db", INBOX),
        Outbox(data_dir / "outbox.db"), DeviceRegistry.in_data_dir(data_dir), TZ,
    )  # fmt: skip
    app = create_app(Console(sources, accounts, ConsoleSettings(), layers, logs.get("bench")))
    try:
        yield app
    finally:
        sources.close()
        accounts.close()


def logged_in(app: Any) -> Any:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/login", data={"csrf_token": token, "name": "bench",
                                         "password": PASSWORD})  # fmt: skip
    if answer.status_code != 302:
        raise RuntimeError(f"login: {answer.status_code}")
    return client


def timed(call: Callable[[], Any]) -> list[float]:
    call()  # warm: caches, prepared statements
    samples = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def measure_pages(app: Any, queries: dict[str, str]) -> dict[str, Any]:
    client = logged_in(app)
    began = time.perf_counter()
    client.get("/reports")  # the first page since start: the filters' choices read
    found: dict[str, Any] = {"first page": {"page_ms": (time.perf_counter() - began) * 1000}}
    for name, query in queries.items():

        def page(path: str, query: str = query) -> None:
            answer = client.get(f"{path}?{query}")
            if answer.status_code != 200:
                raise RuntimeError(f"{path}?{query}: {answer.status_code}")

        found[name] = {
            "page_ms": summary(timed(lambda: page("/reports"))),
            "api_ms": summary(timed(lambda: page("/api/reports"))),
            "rows": len(client.get(f"/api/reports?{query}").get_json()["rows"]),
        }
    return found


def measure_naive_sqlite(path: Path) -> dict[str, Any]:
    conn = connect(path)
    found = {}
    for name, (json_path, _, value) in NAIVE_FIELDS.items():

        def query(json_path: str = json_path, value: str = value) -> None:
            conn.execute(
                "SELECT id, report FROM cases WHERE json_extract(report, ?) = ?"
                " ORDER BY id DESC LIMIT 50",
                (json_path, value),
            ).fetchall()

        found[name] = summary(timed(query))
    conn.close()
    return found


def measure_naive_postgres(dsn: str) -> dict[str, Any]:
    import psycopg  # noqa: PLC0415

    found = {}
    with psycopg.connect(dsn) as conn:
        for name, (_, pg_path, value) in NAIVE_FIELDS.items():

            def query(pg_path: str = pg_path, value: str = value) -> None:
                conn.execute(
                    "SELECT id, report FROM cases WHERE report #>> %s::text[] = %s"
                    " ORDER BY id DESC LIMIT 50",
                    (pg_path, value),
                ).fetchall()

            found[name] = summary(timed(query))
    return found


def measure_map(app: Any) -> dict[str, Any]:
    from waitress.server import create_server  # noqa: PLC0415

    from tests.browser import chromium, screenshot  # noqa: PLC0415

    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    browser = chromium()
    try:
        browser.get(f"{url}/login")
        browser.find_element("id", "name").send_keys("bench")
        browser.find_element("id", "password").send_keys(PASSWORD)
        browser.find_element("id", "login-submit").click()
        wait_until(lambda: "/login" not in browser.current_url, 10, "the login")
        ready, zoom, pan, points = [], [], [], 0
        for _ in range(5):
            browser.get(f"{url}/map")
            wait_until(lambda: browser.execute_script("return !!window.cgtMapReadyMs"), 60,
                       "the map with every report")  # fmt: skip
            ready.append(browser.execute_script("return window.cgtMapReadyMs"))
            points = browser.execute_script("return window.cgtCluster.getLayers().length")
            # Until the frame after the move: the clusters are made again and drawn.
            zoom.append(browser.execute_async_script(
                "const done = arguments[0], m = window.cgtMap, t = performance.now();"
                " m.once('zoomend', () => requestAnimationFrame("
                " () => done(performance.now() - t)));"
                " m.setZoom(m.getZoom() + 2, { animate: false })"
            ))  # fmt: skip
            pan.append(browser.execute_async_script(
                "const done = arguments[0], m = window.cgtMap, t = performance.now();"
                " m.once('moveend', () => requestAnimationFrame("
                " () => done(performance.now() - t)));"
                " m.panBy([300, 200], { animate: false })"
            ))  # fmt: skip
        screenshot(browser, "bench-console-map-10000")
    finally:
        browser.quit()
        server.close()
    return {
        "points": points,
        "ready_ms": summary(ready),
        "zoom_step_ms": summary(zoom),
        "pan_ms": summary(pan),
    }


def run(cases: int = CASES) -> dict[str, Any]:
    geo = GeoSettings()
    layers = MapLayers(geo.file("districts"), geo.file("segments"), geo.file("segment_table"),
                       gcj02=False, tiles=None)  # fmt: skip
    result: dict[str, Any] = {"benchmark": "console", "cpu_model": cpu_model(), "cases": cases}
    with tempfile.TemporaryDirectory(prefix="cgt-bench-console-") as scratch:
        root = Path(scratch)
        sqlite = SqliteRegistry(root / "sqlite" / "registry.db", TZ)
        fill_s = fill(sqlite, cases)
        queries = filters(sqlite)
        with console(sqlite, root / "sqlite", layers) as app:
            result["sqlite"] = {
                "fill_s": fill_s,
                "pages": measure_pages(app, queries),
                "indexed_ms": measure_indexed(sqlite),
                "naive_ms": measure_naive_sqlite(root / "sqlite" / "registry.db"),
            }
            result["map"] = measure_map(app)
        with PostgresCluster() as postgres:
            dsn = postgres.create_database("console")
            registry = PostgresRegistry(dsn, PostgresSettings(pool_max=4), TZ, logs.get("b"))
            fill_s = fill(registry, cases)
            with console(registry, root / "postgres", layers) as app:
                result["postgres"] = {
                    "version": postgres.version,
                    "fill_s": fill_s,
                    "pages": measure_pages(app, filters(registry)),
                    "indexed_ms": measure_indexed(registry),
                    "naive_ms": measure_naive_postgres(dsn),
                }
    for engine in ("sqlite", "postgres"):
        measured = result[engine]
        measured["slowest_page_ms"] = max(
            page["page_ms"]["median"] for name, page in measured["pages"].items()
            if name != "first page"
        )  # fmt: skip
        measured["naive_over_indexed"] = {
            name: measured["naive_ms"][name]["median"] / measured["indexed_ms"][name]["median"]
            for name in NAIVE_FIELDS
        }
    write("console", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console")
    parser.add_argument("--cases", type=int, default=CASES)
    args = parser.parse_args()
    print(json.dumps(run(args.cases), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
