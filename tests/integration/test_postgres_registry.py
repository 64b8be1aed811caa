"""The PostgreSQL case registry against a real server: several gateways, one truth."""

from __future__ import annotations

import threading
import uuid
from zoneinfo import ZoneInfo

import psycopg
import pytest

from gateway import logs
from gateway.errors import RetryableSinkError
from gateway.harness.gateway_process import wait_until
from gateway.normalize.model import NormalizedReport
from gateway.sinks.case_registry_postgres import MIGRATIONS, PostgresRegistry
from gateway.sinks.ports import TaskUnknown
from gateway.sinks.settings import PostgresSettings
from tests.factories import normalized
from tests.servers import PostgresCluster

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = PostgresSettings(pool_max=2, connect_timeout_s=1)


def case(report_id: str | None = None) -> NormalizedReport:
    return normalized(report_id or str(uuid.uuid4()))


def registry(dsn: str) -> PostgresRegistry:
    return PostgresRegistry(dsn, SETTINGS, TZ, logs.get("test"))


def test_gateways_registering_together_never_collide_and_never_double(postgres_dsn: str) -> None:
    shared = [case() for _ in range(50)]  # every gateway sees these (redelivery, races)
    gateways = [registry(postgres_dsn) for _ in range(4)]
    results: list[dict[str, str | TaskUnknown]] = [{} for _ in gateways]

    def work(index: int) -> None:
        own = [case() for _ in range(100)]
        for start in range(0, 150, 25):
            batch = (own + shared)[start : start + 25]
            numbers = gateways[index].register(batch)
            results[index].update(zip([c.report_id for c in batch], numbers, strict=True))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(gateways))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute("SELECT report_id, case_no, report->>'case_no' FROM cases").fetchall()
    assert len(rows) == 4 * 100 + 50  # one case per report
    assert len({case_no for _, case_no, _ in rows}) == len(rows)  # no number twice
    assert all(case_no == stamped for _, case_no, stamped in rows)  # the jsonb carries it
    registered = {report_id: case_no for report_id, case_no, _ in rows}
    for seen in results:  # every gateway was told the one case number of each report
        assert all(registered[report_id] == case_no for report_id, case_no in seen.items())
    assert all(case_no.startswith("E010220261128") for case_no in registered.values())
    with psycopg.connect(postgres_dsn) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
    assert versions == [(n,) for n in range(1, len(MIGRATIONS) + 1)]  # applied once
    for gateway in gateways:
        gateway.close()


def test_down_at_start_it_migrates_at_the_first_registration(
    postgres: PostgresCluster, postgres_dsn: str
) -> None:
    postgres.stop()
    try:
        late = registry(postgres_dsn)  # starts, says so, does not fail
        with pytest.raises(RetryableSinkError):
            late.register([case()])
    finally:
        postgres.start()
    # The pool reconnects on its own backoff (a second or more after refusals), so the
    # first registrations may still fail and are retried, as the outbox would.
    first = case()
    numbers: list[list[str | TaskUnknown]] = []

    def registered() -> bool:
        try:
            numbers.append(late.register([first]))
        except RetryableSinkError:
            return False
        return True

    wait_until(registered, 30, "the registry back")
    assert numbers[0] == late.register([first])
    with psycopg.connect(postgres_dsn) as conn:
        applied = conn.execute("SELECT version FROM schema_migrations").fetchall()
    assert applied == [(n,) for n in range(1, len(MIGRATIONS) + 1)]
    late.close()
