"""How simulated terminals log in: shared, per-device passwords, certificates."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_sim.cli import main
from firmware_sim.identity import (
    CredentialsError,
    Identity,
    Login,
    read_credentials,
    write_credentials,
)
from gateway.devices import pki


def test_each_device_gets_its_own_password_and_certificate(tmp_path: Path) -> None:
    identity = Identity(
        password="shared",  # noqa: S106 - a test value
        passwords={"tz-1": "own-1"},
        ca_file=tmp_path / "ca.crt",
        cert_dir=tmp_path,
    )
    assert identity.login("tz-1") == Login(
        "tz-1", "own-1", tmp_path / "ca.crt", tmp_path / "tz-1.crt", tmp_path / "tz-1.key"
    )
    assert identity.login("tz-2").username is None  # no own password: the shared one, anonymous
    assert identity.login("tz-2").password == "shared"  # noqa: S105 - a test value
    templated = Identity(username="term-{device_id}", passwords={"tz-1": "own-1"})
    assert templated.login("tz-1").username == "term-tz-1"
    for text in (repr(identity), repr(identity.public()), repr(identity.login("tz-1"))):
        assert "own-1" not in text
        assert "shared" not in text


def test_credentials_files_round_trip_and_refuse_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "terminals.credentials"
    write_credentials(path, {"tz-1": "a:b", "tz-2": "c"})
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_credentials(path) == {"tz-1": "a:b", "tz-2": "c"}  # a colon in a password
    path.write_text("# fleet A\n\ntz-1:x\nno-password-here\n")
    with pytest.raises(CredentialsError, match=r":4: not DEVICE_ID:PASSWORD") as caught:
        read_credentials(path)
    assert "no-password-here" not in str(caught.value)  # the line may be a secret
    with pytest.raises(CredentialsError, match="cannot read"):
        read_credentials(tmp_path / "missing")


def test_a_login_presents_its_certificate(tmp_path: Path) -> None:
    ca = pki.new_ca()
    issued = pki.issue_client(ca, "tz-1")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "tz-1.crt").write_bytes(issued.cert_pem)
    (tmp_path / "tz-1.key").write_bytes(issued.key_pem)
    login = Identity(ca_file=tmp_path / "ca.crt", cert_dir=tmp_path).login("tz-1")
    context = login.tls_context()
    assert [cert["subject"] for cert in context.get_ca_certs()] == [
        ((("commonName", "cgt-gateway throwaway CA"),),)
    ]
    with pytest.raises(FileNotFoundError):  # a device without files fails loudly at start
        Identity(cert_dir=tmp_path).login("tz-2").tls_context()


def test_the_cli_refuses_a_bad_credentials_file(tmp_path: Path) -> None:
    bad = tmp_path / "creds"
    bad.write_text("oops\n")
    result = CliRunner().invoke(
        main, ["run", "--broker", "mqtt://127.0.0.1:1", "--credentials", str(bad)]
    )
    assert result.exit_code == 2
    assert "not DEVICE_ID:PASSWORD" in result.output
