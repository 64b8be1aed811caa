"""Servers for the integration tests. tests/conftest.py marks every test in this
directory `integration` (a `pytestmark` here would be ignored: pytest reads it only in
test modules)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import logs
from gateway.harness.mosquitto import Mosquitto
from gateway.sinks.case_registry_postgres import PostgresRegistry
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.settings import PostgresSettings
from tests.integration.helpers import GatewayProcess
from tests.servers import PostgresCluster, S3Server


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto from the Debian package, with the project's config, on a free port."""
    with Mosquitto(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def gateway(tmp_path: Path, broker: Mosquitto) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path / "gateway", broker.url).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the whole session (initdb takes a second)."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_dsn(request: pytest.FixtureRequest, postgres: PostgresCluster) -> Iterator[str]:
    """The DSN of a fresh, empty database for this test, dropped afterwards."""
    postgres.start()  # a test that stopped the cluster and failed may have left it down
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40].strip("_")
    database = f"t_{name}_{uuid.uuid4().hex[:8]}"
    yield postgres.create_database(database)
    postgres.start()
    postgres.drop_database(database)


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server, one per module: it takes about a second to start."""
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def s3(s3_server: S3Server) -> S3Server:
    """The module's S3 server, listening and empty: no bucket, no object."""
    s3_server.start()  # in case a test stopped it
    s3_server.resume()  # in case a test left it in an outage
    s3_server.reset()
    return s3_server


REGISTRY_TZ = ZoneInfo("Asia/Shanghai")


def open_case_registry(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """An empty case registry: SQLite in `tmp_path`, or a fresh PostgreSQL database."""
    if kind == "sqlite":
        return SqliteRegistry(tmp_path / "registry.db", REGISTRY_TZ)
    dsn = request.getfixturevalue("postgres_dsn")
    return PostgresRegistry(dsn, PostgresSettings(pool_max=2), REGISTRY_TZ, logs.get("test"))


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each test that asks for it runs on both registries: what one engine answers, the
    other must too."""
    found = open_case_registry(request.param, request, tmp_path)
    yield found
    found.close()
