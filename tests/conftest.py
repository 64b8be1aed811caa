"""The test tiers, and what keeps them honest.

- `integration`: a test that starts or talks to a server. It is marked here, not by each
  module remembering a `pytestmark`: every test under `tests/integration/`, and every
  test anywhere that uses a fixture starting one (`SERVER_FIXTURES`). A test that starts
  a server by other means carries the mark itself (`tests/sim/test_link.py`,
  `tests/soak/test_soak.py`, ...).
- the fast tier, `make unit` (`pytest -m "not integration"`): the rest. No server.

`tests/server_guard.py` fails any test not marked `integration` that starts a server
anyway, in every run, so a missing mark shows at once rather than as a slow fast tier.

Hypothesis runs without its per-example deadline (200 ms unless a test sets one) and its
too-slow health check: both fail a test because the machine was busy. A test that means
to bound a time compares it with a baseline measured in the same test (tests/timing.py).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.server_guard import GUARD, ServerStarted

TESTS = Path(__file__).resolve().parent
INTEGRATION_DIRS = frozenset({"integration"})
SERVER_FIXTURES = frozenset(
    {
        "broker",  # Mosquitto (tests/integration/conftest.py)
        "gateway",  # `gateway run` in a process, and its broker
        "postgres",  # a PostgreSQL cluster (tests/servers.py)
        "postgres_dsn",
        "s3_server",  # moto's S3 server (tests/servers.py)
        "s3",
        "stack",  # Mosquitto and the gateway (tests/sim/conftest.py)
    }
)

settings.register_profile("cgt", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cgt")


def needs_servers(item: pytest.Item) -> bool:
    try:
        where = item.path.resolve().relative_to(TESTS).parts
    except ValueError:
        where = ()
    return bool(
        (where and where[0] in INTEGRATION_DIRS)
        or SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("integration") is None and needs_servers(item):
            item.add_marker(pytest.mark.integration)


def pytest_configure(config: pytest.Config) -> None:
    GUARD.install()


def _armed_for(item: pytest.Item) -> str | None:
    return None if item.get_closest_marker("integration") else item.nodeid


def _guarded(item: pytest.Item) -> Generator[None, None, None]:
    """One phase of a test (set-up, call, tear-down) under the guard."""
    with GUARD.armed(_armed_for(item)) as started:
        yield
    if started:
        raise ServerStarted(
            f"started {'; '.join(started)} without the `integration` mark:"
            " the fast tier (`make unit`) starts no server"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    yield from _guarded(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    yield from _guarded(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield from _guarded(item)


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, None, None]:
    with GUARD.armed("<collection>"):  # importing a test module starts nothing
        return (yield)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(
        f"server guard: {GUARD.started_by_integration} server start(s) by integration tests,"
        f" {len(GUARD.caught)} by other tests"
    )
    for nodeid, what in GUARD.caught:
        terminalreporter.write_line(f"  {nodeid}: {what}", red=True)
