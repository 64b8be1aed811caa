"""`make demo` in small: the operator's set-up (registered terminals, TLS, the ACL), the
gateway, a fleet, and the summary that says where everything is."""

from __future__ import annotations

import re
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_demo_runs_a_district_over_tls_with_a_password_per_terminal(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--data-dir", str(data_dir),
         "--terminals", "3", "--reports-per-terminal", "1", "--exit"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted 3, rejected 0, not answered 0" in result.stdout
    assert "cases registered        3" in result.stdout
    # The demo's command center took the three cases on over MQTT, with its own account.
    desk = re.search(r"command center \(casework\.desk over MQTT.*\): (.*)", result.stderr)
    assert desk is not None, result.stderr
    assert desk.group(1) == (
        "accept applied 1, file applied 1, refuse applied 1, self-handled applied 1"
    )
    assert "mqtts://127.0.0.1:" in result.stderr
    assert re.search(r"console  http://127\.0\.0\.1:\d+", result.stderr)
    assert re.search(r"acceptor +\S{16}  \(operator\)", result.stderr)  # a login to use
    assert re.search(r"technician +\S{16}  \(technician\)", result.stderr)
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


def test_the_demo_keeps_serving_its_console_until_ctrl_c(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--data-dir", str(tmp_path / "demo"),
         "--terminals", "1", "--reports-per-terminal", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ) as demo:  # fmt: skip
        try:
            assert demo.stderr is not None
            said = ""
            for line in demo.stderr:
                said += line
                if "keeps serving until Ctrl-C" in line:
                    break
            found = re.search(r"console  (http://127\.0\.0\.1:\d+)", said)
            assert found, said
            with urllib.request.urlopen(f"{found.group(1)}/login", timeout=10) as page:  # noqa: S310 - http:// only
                assert page.status == 200
                assert "登录" in page.read().decode()
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(60)
    assert demo.returncode == 0
