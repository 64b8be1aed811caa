"""The guard that keeps servers out of the fast tier (tests/server_guard.py) catches what
it should and nothing else."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.server_guard import GUARD, ServerStarted, server_in

PG_BIN = "/usr/lib/postgresql/15/bin"
PYTHON = "/work/main/.venv/bin/python3"


@pytest.mark.parametrize(
    ("command", "server"),
    [
        (["/usr/sbin/mosquitto", "-c", "/tmp/b/mosquitto.conf"], "mosquitto"),
        (["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", "/tmp/d"], "initdb"),
        (
            ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "start", "-D", "d"],
            "pg_ctl start",
        ),
        ([f"{PG_BIN}/postgres", "-D", "/tmp/d"], "postgres"),
        ([PYTHON, "-P", "/work/main/tests/s3_server.py", "--port", "1"], "s3_server.py"),
        (["/usr/bin/gpsfake", "-q", "-P", "2947", "x.log"], "gpsfake"),
        (["python3", "/usr/bin/gpsfake", "x.log"], "gpsfake"),
        ([PYTHON, "-m", "gateway", "run", "--data-dir", "d"], "gateway run"),
        (["/work/main/.venv/bin/gateway", "demo", "--data-dir", "d"], "gateway demo"),
        (["env", "A=1", "mosquitto"], "mosquitto"),
        ("mosquitto -c conf", "mosquitto"),
        (["/bin/sh", "-c", "exec mosquitto -c conf"], None),  # the watcher sees that one
        (["/bin/sh", "-c", "mosquitto -c conf"], "mosquitto"),
        # Tools that do their job and exit:
        (["mosquitto_passwd", "-b", "/tmp/passwd", "tz-1", "pw"], None),
        (["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "status", "-D", "d"], None),
        (["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "stop", "-D", "d"], None),
        ([PYTHON, "-m", "gateway", "nmea", "parse", "x.log"], None),
        ([PYTHON, "-m", "gateway", "devices", "add", "run"], None),
        ([PYTHON, "-m", "firmware_sim", "gps", "--seconds", "30"], None),
        ([PYTHON, "-c", "import gateway.cli"], None),
        (["openssl", "req", "-x509"], None),
        ([], None),
    ],
)
def test_what_counts_as_starting_a_server(command: list[str] | str, server: str | None) -> None:
    assert server_in(command) == server


def test_a_server_started_by_a_test_outside_the_integration_tier_is_refused() -> None:
    with GUARD.expecting() as caught, pytest.raises(ServerStarted, match="mosquitto"):
        subprocess.Popen(["/usr/sbin/mosquitto", "-c", "/nonexistent.conf"])
    assert caught == ["mosquitto"]


def test_a_server_started_one_step_removed_is_seen() -> None:
    """The test starts a shell; the shell becomes a "mosquitto" (a `sleep` by that name)."""
    with GUARD.expecting() as caught:
        process = subprocess.Popen(["bash", "-c", "exec -a mosquitto sleep 30"])
        try:
            deadline = time.monotonic() + 10
            while not caught_so_far() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            process.kill()
            process.wait()
    assert len(caught) == 1
    assert caught[0].startswith(f"mosquitto (pid {process.pid}: mosquitto 30")


def caught_so_far() -> bool:
    return bool(GUARD.caught)
