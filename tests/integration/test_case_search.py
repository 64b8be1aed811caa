"""Finding cases in both registries (SQLite and a real PostgreSQL): the console's filters,
newest first, paged by id, and the facts of cases registered before the migration."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from gateway import logs
from gateway.sinks import case_registry_sqlite
from gateway.sinks.case_registry_postgres import PostgresRegistry
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.case_search import CaseQuery
from gateway.sinks.settings import PostgresSettings
from gateway.store.db import migrate
from tests.factories import normalized, placed

TZ = ZoneInfo("Asia/Shanghai")


REPORTS = [
    placed(normalized(received_at="2026-11-28T01:00:00+00:00"), district="黄浦区",
           units=("南京东路街道", "环卫一所")),
    placed(normalized(received_at="2026-11-28T02:00:00+00:00", class_code="0101"),
           district="静安区", units=("环卫一所",), inspector="INS-0007"),
    placed(normalized(received_at="2026-11-28T11:00:00+00:00"), district="黄浦区",
           inside_window=False),
    placed(normalized(received_at="2026-11-29T03:00:00+00:00"), district=None),
]  # fmt: skip


@pytest.fixture
def registry(registry: Any) -> Any:
    """Both registries (tests/integration/conftest.py), holding REPORTS."""
    registry.register(REPORTS)
    return registry


def numbers(registry: Any, **query: Any) -> list[str]:
    return [row.report.report_id for row in registry.find_cases(CaseQuery(**query))]


def ids(*indexes: int) -> list[str]:
    return [REPORTS[index].report_id for index in indexes]


def test_cases_come_newest_first_and_each_filter_narrows_them(registry: Any) -> None:
    assert numbers(registry) == ids(3, 2, 1, 0)
    assert numbers(registry, district="黄浦区") == ids(2, 0)
    assert numbers(registry, unit="环卫一所") == ids(1, 0)
    assert numbers(registry, inspector_id="INS-0007") == ids(1)
    assert numbers(registry, class_code="0101") == ids(1)
    assert numbers(registry, inside_window=False) == ids(2)
    assert numbers(registry, inside_coverage=False) == ids(3)
    # A day is the registry's local day: 2026-11-28 in Shanghai ends at 16:00 UTC.
    assert numbers(registry, day=date(2026, 11, 28)) == ids(2, 1, 0)
    assert numbers(registry, day=date(2026, 11, 29)) == ids(3)
    assert numbers(registry, district="黄浦区", inside_window=True) == ids(0)


def test_pages_follow_on_by_id_and_live_updates_ask_for_newer_ones(registry: Any) -> None:
    first = registry.find_cases(CaseQuery(limit=2))
    assert [row.report.report_id for row in first] == ids(3, 2)
    after = registry.find_cases(CaseQuery(limit=2, before_id=first[-1].id))
    assert [row.report.report_id for row in after] == ids(1, 0)
    assert numbers(registry, after_id=after[0].id) == ids(3, 2)


def test_a_case_reads_back_with_its_number_and_the_filters_know_their_values(
    registry: Any,
) -> None:
    row = registry.find_cases(CaseQuery(limit=1))[0]
    again = registry.get_case(row.case_no)
    assert again is not None
    assert again.report.case_no == row.case_no
    assert registry.get_case("E0102202611280999999") is None
    facets = registry.facets()
    assert sorted(facets.districts) == sorted(["静安区", "黄浦区"])
    assert sorted(facets.units) == ["南京东路街道", "环卫一所"]
    assert facets.inspectors == ["INS-0007", "INS-0042"]
    assert facets.classes == ["0101", "0102"]


def test_cases_registered_before_the_migration_get_their_facts(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    before = case_registry_sqlite.MIGRATIONS[:-2]  # before the facts (and the lifecycle)
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, before)
    report = REPORTS[0].with_case_no("E0102202611280000001")
    conn.execute(
        "INSERT INTO cases (case_no, report_id, kind, class_code, received_at, report)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (report.case_no, report.report_id, "event", "0102", report.received_at.isoformat(),
         report.to_json().decode()),
    )  # fmt: skip
    conn.close()

    registry = SqliteRegistry(path, TZ)  # applies the last migrations
    assert numbers(registry, district="黄浦区", unit="南京东路街道") == ids(0)
    life = registry.life(str(report.case_no))
    assert life is not None
    assert life.state == "reported"
    (day,) = registry.conn.execute("SELECT received_day FROM cases").fetchone()
    assert day == "2026-11-28"
    registry.close()


def test_postgres_cases_registered_before_the_migration_get_their_facts(
    postgres_dsn: str,
) -> None:
    from gateway.sinks import case_registry_postgres  # noqa: PLC0415 - this test's subject

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, script in enumerate(case_registry_postgres.MIGRATIONS[:-2], start=1):
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        report = REPORTS[1].with_case_no("E0101202611280000001")
        conn.execute(
            "INSERT INTO cases (case_no, report_id, kind, class_code, received_at, report)"
            " VALUES (%s, %s, 'event', '0101', %s, %s)",
            (report.case_no, report.report_id, report.received_at, report.to_json().decode()),
        )

    registry = PostgresRegistry(postgres_dsn, PostgresSettings(pool_max=2), TZ, logs.get("t"))
    assert numbers(registry, district="静安区", unit="环卫一所", inspector_id="INS-0007") == ids(1)
    life = registry.life(str(report.case_no))
    assert life is not None
    assert life.state == "reported"
    assert registry._query("SELECT received_day FROM cases", (), "t") == [("2026-11-28",)]
    registry.close()
