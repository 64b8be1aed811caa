"""`gateway gps watch`: each fix with the checks the gateway applies, as a JSON line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.cli.gnss import _host_port, checked
from gateway.geo.checks import FixChecks
from gateway.protocols.gnss import GnssFix
from tests.commands import gateway

NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


def fix(lat: float = 32.0150, lon: float = 120.8600, **fields: object) -> GnssFix:
    values: dict[str, object] = {"time": NOW - timedelta(seconds=1), "mode": 3} | fields
    return GnssFix(lat, lon, **values)  # type: ignore[arg-type]


def test_a_good_fix_has_no_flags_and_says_when_it_came() -> None:
    line = checked(fix(hdop=0.9, satellites=9), NOW, None, FixChecks())
    assert line["flags"] == []
    assert line["received_at"] == "2026-12-03T01:00:00.000+00:00"
    assert (line["lat"], line["lon"], line["hdop"], line["satellites"]) == (32.015, 120.86, 0.9, 9)
    json.dumps(line)  # one JSON line, as printed


@pytest.mark.parametrize(
    ("found", "previous", "flags"),
    [
        pytest.param(
            fix(time=NOW - timedelta(days=7168)), None, ["fix.stale"], id="GPS week rollover"
        ),
        pytest.param(
            fix(time=NOW + timedelta(hours=8)),
            None,
            ["fix.ahead_of_report"],
            id="local time as UTC",
        ),
        pytest.param(fix(time=None), None, ["fix.no_time"], id="GGA only, no date yet"),
        pytest.param(fix(hdop=9.9), None, ["fix.inaccurate"], id="poor geometry"),
        pytest.param(fix(lat=0.0, lon=0.0), None, ["fix.zero"], id="null island"),
        pytest.param(fix(lat=48.85, lon=2.35), None, ["fix.outside_china"], id="Paris"),
        pytest.param(
            fix(lat=32.0150),
            fix(lat=32.0050, time=NOW - timedelta(seconds=2)),
            ["fix.jump"],
            id="1.1 km in a second",
        ),
    ],
)
def test_a_receivers_trouble_shows_as_a_flag(
    found: GnssFix, previous: GnssFix | None, flags: list[str]
) -> None:
    assert checked(found, NOW, previous, FixChecks())["flags"] == flags


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("gpsd.local", ("gpsd.local", 2947)),
        ("127.0.0.1:2948", ("127.0.0.1", 2948)),
        ("[::1]", ("::1", 2947)),
        ("[::1]:3000", ("::1", 3000)),
    ],
)
def test_a_gpsd_address_is_a_host_and_an_optional_port(
    address: str, expected: tuple[str, int]
) -> None:
    assert _host_port(address) == expected


@pytest.mark.parametrize("address", ["", ":2947", "host:port", "host:0", "host:70000", "[::1]:x"])
def test_a_bad_gpsd_address_is_a_usage_error(address: str) -> None:
    with pytest.raises(click.BadParameter):
        _host_port(address)


@pytest.mark.parametrize(
    "arguments", [[], ["--gpsd", "localhost", "--serial", "/dev/ttyUSB0"]], ids=["none", "both"]
)
def test_one_receiver_at_a_time(arguments: list[str]) -> None:
    result = CliRunner().invoke(main, ["gps", "watch", *arguments])
    assert result.exit_code == 2
    assert "give one of --gpsd HOST[:PORT] or --serial DEVICE" in result.output


def test_no_fix_before_the_timeout_exits_1_with_what_it_got() -> None:
    # In a process of its own: the command sets up logging for the whole process.
    command = ["gps", "watch", "--serial", "/dev/cgt-no-such-port", "--count", "3"]
    done = gateway(*command, "--timeout", "0.5")
    assert done.returncode == 1
    assert done.stdout == ""  # stdout is the fixes'; the reader's complaints go to stderr
    assert "0 of 3 fixes before the timeout" in done.stderr
    assert "serial.open_failed" in done.stderr
