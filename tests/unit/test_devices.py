"""The device registry, Mosquitto's password hashes, the broker files, the devices CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import load_config
from gateway.devices.acl import render_acl, render_passwords
from gateway.devices.broker_files import reload_broker
from gateway.devices.credentials import password_path, with_own_credentials
from gateway.devices.device_registry import Account, DeviceRegistry, RegistryError
from gateway.devices.passwords import hash_password, new_password, verify_password
from gateway.devices.tls_files import ensure_ca


@pytest.fixture
def registry(tmp_path: Path) -> DeviceRegistry:
    return DeviceRegistry(tmp_path / "devices.db")


def test_our_hash_is_mosquittos_format_and_verifies() -> None:
    hashed = hash_password("s3cret", salt=bytes(12))
    assert hashed.startswith("$7$101$AAAAAAAAAAAAAAAA$")
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3creT", hashed)
    assert not verify_password("s3cret", "$6$rounds$junk")
    assert hash_password("s3cret") != hash_password("s3cret")  # a fresh salt each time


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto not installed")
def test_a_hash_written_by_mosquitto_passwd_verifies(tmp_path: Path) -> None:
    """Same algorithm as Mosquitto's own tool (the broker tests check the other way)."""
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "tz-1", "pa55"], check=True)
    _, hashed = passwd.read_text().strip().split(":", 1)
    assert verify_password("pa55", hashed)
    assert not verify_password("pa56", hashed)


def test_new_passwords_are_long_and_distinct() -> None:
    passwords = {new_password() for _ in range(100)}
    assert len(passwords) == 100
    assert all(len(p) == 32 for p in passwords)


def test_status_moves(registry: DeviceRegistry) -> None:
    registry.add("tz-1", "INS-1", "崇川区", hash_password("x"))
    assert registry.move("tz-1", "suspend").status == "suspended"
    assert registry.move("tz-1", "resume").status == "active"
    assert registry.move("tz-1", "revoke").status == "revoked"
    for command in ("suspend", "resume"):
        with pytest.raises(RegistryError, match="revoked: cannot"):
            registry.move("tz-1", command)
    with pytest.raises(RegistryError, match="revoked"):
        registry.set_credential("tz-1", hash_password("y"))
    with pytest.raises(RegistryError, match="already exists \\(revoked\\)"):
        registry.add("tz-1", "INS-2", "港闸区", hash_password("z"))
    with pytest.raises(RegistryError, match="no device tz-9"):
        registry.move("tz-9", "suspend")


@pytest.mark.parametrize("device_id", ["normalized", "cases", "tz/1", "tz+1", "", "x" * 65, "tz.1"])
def test_ids_that_would_escape_their_topic_tree_are_refused(
    registry: DeviceRegistry, device_id: str
) -> None:
    with pytest.raises(RegistryError):
        registry.add(device_id, "INS-1", "崇川区", hash_password("x"))
    assert registry.devices() == []


def test_password_file_holds_accounts_and_active_devices_only(registry: DeviceRegistry) -> None:
    for device_id in ("tz-1", "tz-2", "tz-3"):
        registry.add(device_id, "INS", "崇川区", hash_password(device_id))
    registry.move("tz-2", "suspend")
    registry.move("tz-3", "revoke")
    gateway = registry.set_account("gateway", hash_password("g"))
    text = render_passwords(registry.devices(), registry.accounts())
    users = [line.split(":", 1)[0] for line in text.splitlines()]
    assert users == ["cgt.gateway", "tz-1"]
    assert f"cgt.gateway:{gateway.credential_hash}" in text.splitlines()


def test_acl_confines_terminals_and_the_backend() -> None:
    accounts = [Account("gateway", "cgt.gateway", "h"), Account("backend", "cgt.backend", "h")]
    lines = render_acl(accounts).splitlines()
    assert "pattern write cgt/v1/%u/report" in lines
    assert "pattern read cgt/v1/%u/ack" in lines
    assert not [line for line in lines if line.startswith("pattern") and "+/" in line[:20]]
    backend = lines[lines.index("user cgt.backend") + 1 :]
    assert backend[0] == "topic read cgt/v1/normalized/#"
    assert not backend[1].startswith("topic")  # nothing else for the backend


def _section(lines: list[str], username: str) -> list[str]:
    rest = lines[lines.index(f"user {username}") + 1 :]
    return rest[: next((i for i, line in enumerate(rest) if not line.startswith("topic")), None)]


def test_acl_gives_each_casework_backend_its_own_commands_and_answers() -> None:
    accounts = [
        Account("gateway", "cgt.gateway", "h"),
        Account("casework", "casework.desk", "h"),
        Account("casework", "casework.dispatch", "h"),
    ]
    lines = render_acl(accounts).splitlines()
    assert _section(lines, "casework.desk") == [
        "topic write cgt/v1/cases/commands/casework.desk",
        "topic read cgt/v1/cases/answers/casework.desk",
        "topic read cgt/v1/cases/events/#",
        "topic read cgt/v1/normalized/#",
    ]
    assert "topic write cgt/v1/cases/commands/casework.dispatch" in _section(
        lines, "casework.dispatch"
    )
    gateway = _section(lines, "cgt.gateway")
    assert "topic read cgt/v1/cases/commands/+" in gateway
    assert "topic write cgt/v1/cases/answers/+" in gateway
    assert "topic write cgt/v1/cases/events/#" in gateway
    # Nothing of the cases tree for every user: terminals match the patterns too.
    assert not [line for line in lines if line.startswith("pattern") and "cases" in line]


def test_casework_accounts_are_several_and_their_names_are_not_reused(
    registry: DeviceRegistry,
) -> None:
    registry.add_casework("desk", hash_password("x"), "受理台")
    registry.add_casework("casework.dispatch", hash_password("y"))
    usernames = [a.username for a in registry.accounts() if a.role == "casework"]
    assert usernames == ["casework.desk", "casework.dispatch"]
    with pytest.raises(RegistryError, match="already exists"):
        registry.add_casework("desk", hash_password("z"))
    for wrong in ("Desk", "desk/1", "desk+", "", "tz.1", "d" * 33):
        with pytest.raises(RegistryError, match="not a casework account name"):
            registry.add_casework(wrong, hash_password("z"))
    registry.remove_casework("desk")
    assert [a.username for a in registry.accounts() if a.role == "casework"] == [
        "casework.dispatch"
    ]
    assert "casework.desk" not in render_passwords(registry.devices(), registry.accounts())
    with pytest.raises(RegistryError, match="names are not reused"):
        registry.add_casework("desk", hash_password("z"))
    with pytest.raises(RegistryError, match="removed"):
        registry.set_casework_credential("desk", hash_password("z"))
    assert "hash" not in repr(registry.casework_accounts(removed=True))


def test_casework_cli(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    added = runner.invoke(
        main, ["devices", "casework", "add", "desk", "--description", "受理台", *data]
    )
    assert added.exit_code == 0, added.output
    password = added.stdout.strip()
    assert len(password) == 32
    assert "casework.desk" in added.stderr
    registry = DeviceRegistry(tmp_path / "data" / "devices.db")
    [account] = registry.casework_accounts()
    assert verify_password(password, account.credential_hash)
    rotated = runner.invoke(main, ["devices", "casework", "rotate", "desk", *data])
    assert rotated.exit_code == 0, rotated.output
    [account] = registry.casework_accounts()
    assert verify_password(rotated.stdout.strip(), account.credential_hash)
    listed = runner.invoke(main, ["devices", "casework", "list", "--json", *data])
    assert '"username": "casework.desk"' in listed.stdout
    assert "$7$" not in listed.stdout
    removed = runner.invoke(main, ["devices", "casework", "remove", "desk", *data])
    assert removed.stdout == "casework account casework.desk is removed\n"
    assert runner.invoke(main, ["devices", "casework", "list", *data]).stdout.count("\n") == 1
    assert runner.invoke(main, ["devices", "casework", "remove", "nobody", *data]).exit_code == 2
    registry.close()


def test_hashes_stay_out_of_reprs(registry: DeviceRegistry) -> None:
    device = registry.add("tz-1", "INS-1", "崇川区", hash_password("x"))
    assert "$7$" not in repr(device)
    assert "$7$" not in repr(registry.set_account("backend", hash_password("b")))


def test_the_gateway_finds_its_own_credentials_in_its_data_dir(tmp_path: Path) -> None:
    config = load_config(None, {"data_dir": str(tmp_path)})
    assert with_own_credentials(config).mqtt.username is None  # nothing there: anonymous
    path = password_path(tmp_path, "gateway")
    path.parent.mkdir()
    path.write_text("pw\n")
    own = with_own_credentials(config).mqtt
    assert own.username == "cgt.gateway"
    password = own.password()
    assert password is not None
    assert password.get_secret_value() == "pw"
    named = load_config(None, {"data_dir": str(tmp_path), "mqtt.username": "someone"})
    assert with_own_credentials(named).mqtt.username == "someone"  # the config wins


def test_the_gateway_trusts_its_own_ca_for_an_mqtts_broker(tmp_path: Path) -> None:
    def tls_ca(**overrides: str) -> Path | None:
        config = load_config(None, {"data_dir": str(tmp_path), **overrides})
        tls = with_own_credentials(config).mqtt.tls
        return tls.ca_file if tls else None

    mqtts = {"mqtt.broker": "mqtts://broker.example:8883"}
    assert tls_ca(**mqtts) is None  # no CA in the data dir: the system's
    ensure_ca(tmp_path)
    assert tls_ca(**mqtts) == tmp_path / "pki" / "ca.crt"
    assert tls_ca() is None  # mqtt://: no TLS, whatever the data dir holds
    named = tls_ca(**mqtts, **{"mqtt.tls.ca_file": "/etc/city-ca.pem"})
    assert named == Path("/etc/city-ca.pem")  # the config wins


def test_a_pid_file_naming_another_program_is_not_signalled(tmp_path: Path) -> None:
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # this test runner: SIGHUP would end it
    pid, why = reload_broker(pid_file)
    assert pid is None
    assert "not mosquitto" in why
    assert reload_broker(tmp_path / "none.pid") == (
        None,
        "no broker running (no pid file): it reads them when it starts",
    )


def test_devices_cli(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    added = runner.invoke(
        main, ["devices", "add", "tz-1", "--inspector", "I1", "--unit", "U", *data]
    )
    assert added.exit_code == 0, added.output
    password = added.stdout.strip()
    assert len(password) == 32  # the password alone on stdout
    assert "\n" not in password
    assert "broker-config" in added.stderr  # no broker configured yet
    registry = DeviceRegistry(tmp_path / "data" / "devices.db")
    assert verify_password(password, registry.require("tz-1").credential_hash)
    again = runner.invoke(
        main, ["devices", "add", "tz-1", "--inspector", "I", "--unit", "U", *data]
    )
    assert again.exit_code == 2
    assert "already exists" in again.stderr

    rotated = runner.invoke(main, ["devices", "rotate", "tz-1", *data])
    assert rotated.exit_code == 0
    assert verify_password(rotated.stdout.strip(), registry.require("tz-1").credential_hash)
    assert not verify_password(password, registry.require("tz-1").credential_hash)

    for command, status in (("suspend", "suspended"), ("resume", "active"), ("revoke", "revoked")):
        moved = runner.invoke(main, ["devices", command, "tz-1", *data])
        assert moved.exit_code == 0
        assert moved.stdout == f"device tz-1 is {status}\n"
    assert runner.invoke(main, ["devices", "resume", "tz-1", *data]).exit_code == 2
    assert runner.invoke(main, ["devices", "suspend", "tz-9", *data]).exit_code == 2
    listed = runner.invoke(main, ["devices", "list", "--json", *data])
    assert '"status": "revoked"' in listed.stdout
    assert "$7$" not in listed.stdout
    registry.close()


def test_devices_list_without_a_registry_makes_none(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["devices", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert not (tmp_path / "devices.db").exists()


def test_broker_config_keeps_the_accounts_and_its_ca(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["broker-config", "--data-dir", str(data), "--port", "1883", "--out"]
    first = CliRunner().invoke(main, [*args, str(tmp_path / "conf")])
    assert first.exit_code == 0, first.output
    gateway_password = password_path(data, "gateway").read_text()
    assert oct(password_path(data, "gateway").stat().st_mode & 0o777) == "0o600"
    assert gateway_password.strip() not in first.output
    second = CliRunner().invoke(main, [*args, str(tmp_path / "conf")])
    assert "password kept" in second.stdout
    assert password_path(data, "gateway").read_text() == gateway_password
    conf = (tmp_path / "conf" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert f"pid_file {tmp_path / 'conf' / 'mosquitto.pid'}" in conf
    assert "listener 1883 0.0.0.0\n" in conf
    assert "cafile" not in conf  # no TLS unless asked
    misuse = CliRunner().invoke(main, [*args, str(tmp_path / "conf"), "--cert-port", "8884"])
    assert misuse.exit_code == 2
    assert "need --tls" in misuse.output
    tls_args = [*args, str(tmp_path / "conf"), "--tls", "--cert-port", "8884"]
    tls = CliRunner().invoke(main, tls_args)
    assert tls.exit_code == 0, tls.output
    assert "new throwaway CA" in tls.output
    ca = (data / "pki" / "ca.crt").read_bytes()
    assert oct((data / "pki" / "ca.key").stat().st_mode & 0o777) == "0o600"
    conf = (tmp_path / "conf" / "mosquitto.conf").read_text()
    assert conf.count("certfile") == 2  # the password listener and the certificate one
    assert "require_certificate true\nuse_identity_as_username true\ncrlfile" in conf
    again = CliRunner().invoke(main, tls_args)
    assert "CA kept" in again.output
    assert (data / "pki" / "ca.crt").read_bytes() == ca
    same = CliRunner().invoke(main, [*tls_args[:-2], "--cert-port", "1883"])
    assert same.exit_code == 2
