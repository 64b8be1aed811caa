"""A verification task, from `gateway task send` to the terminal's verification report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.fleet import FleetSettings, run_fleet
from tests.sim.conftest import SMALL_PHOTO

pytestmark = pytest.mark.integration


def test_a_task_sent_while_the_terminal_is_away_is_answered_against_its_case(
    tmp_path: Path,
) -> None:
    from gateway.harness.gateway_process import GatewayProcess  # noqa: PLC0415
    from gateway.harness.mosquitto import Mosquitto  # noqa: PLC0415 - only the integration tests need it

    def settings(broker_url: str, **run: float | int | None) -> FleetSettings:
        return FleetSettings(
            broker=broker_url, terminals=1, seed=12, queue_dir=tmp_path / "queue",
            photo_size=SMALL_PHOTO, photo_pool=1, ack_timeout_s=5, task_travel_max_s=1,
            **run,  # type: ignore[arg-type]
        )  # fmt: skip

    broker = Mosquitto(tmp_path / "broker").start()
    gateway = GatewayProcess(tmp_path / "gateway", broker.url).start()
    try:
        first = run_fleet(settings(broker.url, reports_per_terminal=1))
        [report] = first.outcomes
        assert report.status == "accepted"
        assert report.case_no is not None

        # The terminal is gone; the broker keeps its session, and the task for it.
        sent = subprocess.run(
            [sys.executable, "-m", "gateway", "task", "send", "--data-dir",
             str(gateway.data_dir), "--broker", broker.url, "--device", report.device_id,
             "--case", report.case_no, "--kind", "verify", "--lat", "32.0150", "--lon",
             "120.8600"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        task_id = json.loads(sent.stdout)["task_id"]

        # Back on patrol (no new problems): the task arrives and is answered.
        second = run_fleet(settings(broker.url, duration_s=6, reports_per_hour=1e-6))
    finally:
        gateway.stop()
        broker.stop()

    assert second.tasks == {"received": 1, "answered": 1}
    [verification] = second.outcomes
    assert (verification.status, verification.task_id) == ("accepted", task_id)
    assert verification.case_no == report.case_no  # stored against its case
    assert len(gateway.cases()) == 1  # not a new case
    assert gateway.count("registry.db", "SELECT count(*) FROM verifications") == 1
