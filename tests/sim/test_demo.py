"""`make demo` in small: the operator's set-up (registered terminals, TLS, the ACL), the
gateway, a fleet, and the summary that says where everything is."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_demo_runs_a_district_over_tls_with_a_password_per_terminal(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--data-dir", str(data_dir),
         "--terminals", "3", "--reports-per-terminal", "1"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted 3, rejected 0, not answered 0" in result.stdout
    assert "cases registered        3" in result.stdout
    assert "mqtts://127.0.0.1:" in result.stderr
    credentials = data_dir / "terminals.credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    passwords = dict(line.split(":", 1) for line in credentials.read_text().splitlines())
    assert sorted(passwords) == ["demo-0001", "demo-0002", "demo-0003"]
    conf = (data_dir / "broker" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "certfile" in conf
    log = (data_dir / "gateway.log").read_text()
    assert '"devices.enforcing"' in log  # the gateway checked every device itself
    for password in passwords.values():
        assert password not in log
        assert password not in result.stdout + result.stderr
