"""A short soak in every `make test`: terminals reporting, the gateway SIGKILLed at least
twice and the broker restarted once, then every report checked against the stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from soak import SoakSettings, run_soak, summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
    result = run_soak(settings)
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
