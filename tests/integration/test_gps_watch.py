"""`gateway gps watch` on a real receiver's stream: a simulated receiver on a pty, and a
real gpsd fed by gpsfake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.harness.mosquitto import free_port
from tests.commands import json_lines
from tests.gnss import LOGS
from tests.integration.test_gpsd import gpsfake

pytestmark = pytest.mark.integration


def test_a_receiver_on_a_serial_port_gives_checked_fixes() -> None:
    # The simulator's receiver walking segment S01, live: NMEA at 20 Hz on a new pty.
    feeder = [sys.executable, "-m", "firmware_sim", "gps", "--segment", "S01",
              "--seconds", "120", "--interval-s", "0.05", "--seed", "3"]  # fmt: skip
    with subprocess.Popen(feeder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as receiver:
        assert receiver.stdout is not None
        pty = receiver.stdout.readline().decode().strip()
        try:
            lines = json_lines("gps", "watch", "--serial", pty, "--count", "5", "--timeout", "30")
        finally:
            receiver.terminate()
            receiver.wait(10)
    assert len(lines) == 5
    for line in lines:
        assert 31.9 < float(str(line["lat"])) < 32.1
        assert 120.8 < float(str(line["lon"])) < 121.0
        assert line["mode"] == 3
        # the simulator's clock is this machine's: neither stale nor ahead, and no jump
        assert line["flags"] == [], line


def test_a_gpsd_replaying_an_old_log_gives_stale_fixes(tmp_path: Path) -> None:
    port = free_port()
    log = LOGS / "ublox-neo-m9n-nmea.log"
    with gpsfake(log, port, tmp_path):
        lines = json_lines(
            "gps", "watch", "--gpsd", f"127.0.0.1:{port}", "--count", "8", "--timeout", "30"
        )
    assert len(lines) == 8
    # gpsd reports its first fixes before any sentence has told it the date
    untimed = [line for line in lines if "time" not in line]
    timed = [line for line in lines if "time" in line]
    assert all(line["flags"] == ["fix.outside_china", "fix.no_time"] for line in untimed)
    assert timed, lines
    for line in timed:
        # a log recorded in California years ago: the receiver's clock against this one's
        assert line["flags"] == ["fix.outside_china", "fix.stale"], line
        assert str(line["time"]).endswith("Z")
