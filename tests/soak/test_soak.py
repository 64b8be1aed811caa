"""A short soak in every `make test`: terminals reporting, the gateway SIGKILLed at least
twice and the broker restarted once, then every report checked against the stores; and
the same in shared mode, three instances on PostgreSQL and S3, PostgreSQL restarted too."""

from __future__ import annotations

from pathlib import Path

import pytest
from soak import SoakResult, SoakSettings, run_soak, summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def check_soak(settings: SoakSettings, result: SoakResult) -> None:
    """What every short soak must show: nothing lost or doubled, every terminal done."""
    print(summary(result))  # shown by pytest when the test fails
    assert result.error is None, result.error
    verdict = result.verdict
    assert verdict is not None
    assert (verdict.lost, verdict.duplicated) == (0, 0), summary(result)
    assert verdict.accepted >= settings.terminals, "too few reports to mean anything"
    assert len(result.kills_at_s) >= 2, result.kills_at_s
    assert len(result.gateway_up_s) == len(result.kills_at_s), "a killed gateway stayed down"
    assert len(result.broker_restarts_at_s) == 1
    assert result.drained is not None
    assert result.drained.drained, result.drained.describe()
    assert result.sim_exit == 0
    assert not result.tasks_unanswered, summary(result)


def test_short_soak_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    settings = SoakSettings(
        duration_s=60,
        terminals=20,
        seed=20261128,
        reports_per_hour=240,  # about 80 reports in the minute
        # A kill within every 16 s: at least two while the terminals report.
        kill_every_s=(8.0, 16.0),
        broker_restarts=1,
        drain_timeout_s=60,
        work_dir=tmp_path / "soak",
        keep=True,
    )
    check_soak(settings, run_soak(settings))


@pytest.mark.timeout(600)
def test_three_instances_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    """Shared mode: instances SIGKILLed at random (any of the three), the broker and
    PostgreSQL (a crash: immediate shutdown) restarted once each while 20 terminals report;
    every report accepted once, one case, its objects in S3."""
    settings = SoakSettings(
        duration_s=75,
        terminals=20,
        seed=20261203,
        reports_per_hour=240,  # about 100 reports in the 75 s
        kill_every_s=(8.0, 16.0),  # four or more kills while the terminals report
        broker_restarts=1,
        instances=3,
        postgres_restarts=1,
        # A killed instance's leased deliveries wait out the lease (soak_stack.LEASE_S).
        drain_timeout_s=120,
        work_dir=tmp_path / "soak",
        keep=True,
    )
    result = run_soak(settings)
    check_soak(settings, result)
    assert len(result.postgres_restarts_at_s) == 1
    assert len(result.killed) == len(result.kills_at_s)
