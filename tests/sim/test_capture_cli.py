"""`firmware-sim record` and `replay`: usage, bad captures, unreachable brokers."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_sim.cli import main
from firmware_sim.identity import Identity
from firmware_sim.replay import ReplaySettings

HEADER = b'{"format":"cgt-capture","version":1,"started_at":"2026-11-28T09:15:02Z","source":"t"}'
STATUS = b'{"t":0.0,"topic":"cgt/v1/tz-1/status","payload_b64":"e30=","retain":true}'


def free_port() -> int:
    from gateway.harness.mosquitto import free_port as pick  # noqa: PLC0415 - tests may use the gateway's helpers

    return pick()


@pytest.mark.parametrize(
    ("command", "options"),
    [
        pytest.param("record", ["--broker", "--out", "--devices", "--seconds"], id="record"),
        pytest.param(
            "replay", ["FILE", "--speed", "--fresh-ids", "--timeout-s", "--json"], id="replay"
        ),
    ],
)
def test_help_names_the_options(command: str, options: list[str]) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    for option in options:
        assert option in result.output


def test_replay_refuses_a_bad_capture_naming_the_line(tmp_path: Path) -> None:
    capture = tmp_path / "bad.capture"
    capture.write_bytes(HEADER + b"\n" + STATUS.replace(b"e30=", b"e30") + b"\n")
    result = CliRunner().invoke(main, ["replay", str(capture), "--broker", "mqtt://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "line 2: payload_b64 is not valid base64" in result.stderr


def test_replay_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(tmp_path / "none.capture")])
    assert result.exit_code == 2
    assert "none.capture" in result.stderr


def test_replay_to_an_unreachable_broker_names_the_devices(tmp_path: Path) -> None:
    capture = tmp_path / "one.capture"
    capture.write_bytes(HEADER + b"\n" + STATUS + b"\n")
    broker = f"mqtt://127.0.0.1:{free_port()}"
    args = ["replay", str(capture), "--broker", broker, "--connect-timeout-s", "0.3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "not connected within 0.3 s: tz-1" in result.stderr


def test_record_from_an_unreachable_broker_fails_with_counts(tmp_path: Path) -> None:
    out = tmp_path / "out.capture"
    broker = f"mqtt://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["record", "--broker", broker, "--out", str(out)])
    assert result.exit_code == 1
    assert "recorded      0 messages" in result.stdout
    assert broker in result.stderr


def test_a_bad_speed_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(tmp_path / "x"), "--speed", "-1"])
    assert result.exit_code == 2


def test_each_device_logs_in_as_itself_when_the_username_says_so() -> None:
    word = "s3cret"
    settings = ReplaySettings("mqtt://127.0.0.1:1883", identity=Identity("term-{device_id}", word))
    link = settings.link_settings("tz-7").login
    assert (link.username, link.password) == ("term-tz-7", word)
    assert word not in repr(settings)
    assert word not in repr(settings.public())
