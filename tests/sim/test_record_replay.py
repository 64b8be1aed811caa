"""`firmware-sim record` and `replay` against a real Mosquitto and the real gateway."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from click.testing import CliRunner

from firmware_sim.capture import CaptureError, CaptureReader, CaptureRecord
from firmware_sim.cli import main
from firmware_sim.link import BrokerUrl
from gateway.harness.gateway_process import wait_until
from tests.sim.conftest import Stack

pytestmark = pytest.mark.integration

SIM = [sys.executable, "-m", "firmware_sim"]
OFFLINE = b'{"online":false}'


def test_a_recorded_run_replays_as_new_cases_with_fresh_ids_and_as_the_same_without(
    stack: Stack, tmp_path: Path
) -> None:
    capture, run_json = tmp_path / "run.capture", tmp_path / "run.json"
    record = [*SIM, "record", "--broker", stack.broker_url, "--out", str(capture)]
    recorder = subprocess.Popen(
        [*record, "--devices", "sim-*"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert recorder.stderr is not None
        assert "recording" in recorder.stderr.readline()  # subscribed: nothing will be missed
        asyncio.run(publish(stack.broker_url, "cgt/v1/other-1/status", b'{"online":true}'))
        run = [*SIM, "run", "--broker", stack.broker_url, "--terminals", "2"]
        run += ["--reports-per-terminal", "1", "--seed", "5", "--json", str(run_json)]
        ran = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        # Each terminal's last word is its offline status; then the capture is complete.
        wait_until(lambda: offline_statuses(capture) == 2, 10, "both farewells recorded")
    finally:
        recorder.send_signal(signal.SIGINT)
        out, err = recorder.communicate(timeout=10)
    assert recorder.returncode == 0, err
    assert "report 2" in out
    assert "1 of other devices" in out

    records = read(capture)
    statuses = [r for r in records if r.uplink.kind == "status"]
    assert {r.uplink.device_id for r in records} == {"sim-0001", "sim-0002"}
    assert all(r.retain for r in statuses), "retain-as-published keeps the terminal's flag"
    recorded = {o["report_id"]: o["case_no"] for o in load(run_json)["outcomes"]}
    assert len(recorded) == 2
    assert None not in recorded.values()

    fresh = replay(stack, capture, tmp_path / "fresh.json", "--fresh-ids")
    assert (fresh["statuses"], fresh["published"], fresh["failed_publishes"]) == (
        {"accepted": 2},
        len(records),
        [],
    )
    fresh_cases = {o["report_id"]: o["case_no"] for o in fresh["outcomes"]}
    assert fresh_cases.keys().isdisjoint(recorded)
    assert len(set(fresh_cases.values()) | set(recorded.values())) == 4  # two new cases

    again = replay(stack, capture, tmp_path / "again.json")
    assert again["statuses"] == {"accepted": 2}
    # The gateway answers a known report with where it stands: the same case, not a new one.
    assert {o["report_id"]: o["case_no"] for o in again["outcomes"]} == recorded
    assert all(len(o["case_nos"]) == 1 for o in again["outcomes"])


def replay(stack: Stack, capture: Path, out: Path, *options: str) -> dict[str, Any]:
    args = ["replay", str(capture), "--broker", stack.broker_url, "--speed", "0"]
    args += ["--timeout-s", "15", "--json", str(out), *options]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "every report answered" in result.stdout
    return load(out)


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text())
    return body


def read(path: Path) -> list[CaptureRecord]:
    with path.open("rb") as stream:
        return list(CaptureReader(stream))


def offline_statuses(path: Path) -> int:
    try:
        records = read(path)
    except CaptureError:  # a line half written
        return -1
    return sum(1 for r in records if r.uplink.kind == "status" and r.payload == OFFLINE)


async def publish(url: str, topic: str, payload: bytes) -> None:
    broker = BrokerUrl.parse(url)
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(topic, payload, qos=1)
