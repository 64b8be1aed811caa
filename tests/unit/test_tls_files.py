"""The gateway's small CA, its files, the revocation list, and the ACL's denials."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.cli import main
from gateway.devices import pki
from gateway.devices.acl import render_acl
from gateway.devices.device_registry import Account, DeviceRegistry
from gateway.devices.tls_files import crl_path, ensure_ca, refresh_crl, write_crl
from gateway.harness.mosquitto import Listener, ListenerTls, write_config


def certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_a_ca_issues_server_and_client_certificates_that_verify() -> None:
    ca = pki.new_ca()
    server = pki.issue_server(ca, ["broker.city.example", "10.0.0.5", "broker.city.example"])
    client = pki.issue_client(ca, "tz-0001")
    root = certificate(ca.cert_pem)
    for issued in (server, client):
        cert = certificate(issued.cert_pem)
        cert.verify_directly_issued_by(root)
        assert cert.not_valid_before_utc < datetime.now(UTC) - timedelta(minutes=30)  # backdated
    names = certificate(server.cert_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.DNSName) == ["broker.city.example"]
    assert [str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    usage = certificate(client.cert_pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(usage.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert pki.subject_cn(client.cert_pem) == "tz-0001"
    assert "PRIVATE" not in repr(client)  # the key stays out of reprs (and so of logs)
    # Python's own TLS stack takes them (as the gateway and the simulator do).
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "cgt-gateway throwaway CA"),),)


def test_bad_cas_are_refused_with_a_reason(tmp_path: Path) -> None:
    ca, other = pki.new_ca(), pki.new_ca("other")
    leaf = pki.issue_client(ca, "tz-1")
    with pytest.raises(pki.PkiError, match="does not belong"):
        pki.load_ca(ca.cert_pem, other.key_pem)
    with pytest.raises(pki.PkiError, match="not a CA"):
        pki.load_ca(leaf.cert_pem, leaf.key_pem)
    with pytest.raises(pki.PkiError, match="cannot read the CA"):
        pki.load_ca(b"garbage", ca.key_pem)
    with pytest.raises(pki.PkiError, match="at least one host"):
        pki.issue_server(ca, [])
    with pytest.raises(pki.PkiError, match="1-64"):
        pki.issue_client(ca, "x" * 65)
    with pytest.raises(pki.PkiError, match="both"):
        ensure_ca(tmp_path, import_cert=tmp_path / "ca.crt")


def test_the_crl_lists_the_certificates_of_suspended_and_revoked_devices(tmp_path: Path) -> None:
    data, conf = tmp_path / "data", tmp_path / "conf"
    ca = ensure_ca(data).ca
    registry = DeviceRegistry.in_data_dir(data)
    serials = {}
    for device in ("tz-a", "tz-b", "tz-c"):
        registry.add(device, "I", "U", "$7$hash")
        issued = pki.issue_client(ca, device)
        serials[device] = pki.serial_number(issued.cert_pem)
        registry.add_certificate(
            device,
            serials[device],
            pki.fingerprint(issued.cert_pem),
            pki.not_after(issued.cert_pem),
        )
    refresh_crl(conf, registry)  # no certificate listener: no list written
    assert not crl_path(conf).exists()
    write_crl(conf, ca, registry)
    assert certificate_revocations(crl_path(conf), ca) == set()
    registry.move("tz-a", "suspend")
    registry.move("tz-b", "revoke")
    refresh_crl(conf, registry)
    assert certificate_revocations(crl_path(conf), ca) == {serials["tz-a"], serials["tz-b"]}
    registry.move("tz-a", "resume")  # back: its certificate works again
    refresh_crl(conf, registry)
    assert certificate_revocations(crl_path(conf), ca) == {serials["tz-b"]}
    registry.close()


def certificate_revocations(path: Path, ca: pki.Issued) -> set[int]:
    crl = x509.load_pem_x509_crl(path.read_bytes())
    assert crl.is_signature_valid(certificate(ca.cert_pem).public_key())  # type: ignore[arg-type]
    assert crl.next_update_utc is not None
    assert crl.next_update_utc > datetime.now(UTC) + timedelta(days=365)
    return {revoked.serial_number for revoked in crl}


def test_the_acl_denies_suspended_and_revoked_devices_everything(tmp_path: Path) -> None:
    registry = DeviceRegistry.in_data_dir(tmp_path)
    for device in ("tz-a", "tz-b", "tz-c"):
        registry.add(device, "I", "U", "$7$hash")
    registry.move("tz-b", "suspend")
    registry.move("tz-c", "revoke")
    acl = render_acl([Account("gateway", "cgt.gateway", "$7$x")], registry.devices())
    registry.close()
    assert "user tz-b\ntopic deny #" in acl
    assert "user tz-c\ntopic deny #" in acl
    assert "user tz-a" not in acl  # active devices live by the patterns alone


def test_listeners_render_tls_and_client_certificates(tmp_path: Path) -> None:
    tls = ListenerTls(tmp_path / "ca.crt", tmp_path / "server.crt", tmp_path / "server.key")
    conf = write_config(
        tmp_path,
        [Listener(8883, "0.0.0.0", tls), Listener(8884, "0.0.0.0", tls, tmp_path / "crl.pem")],  # noqa: S104
    ).read_text()
    first, second = conf.split("listener 8884")
    assert "listener 8883 0.0.0.0\ncafile" in first
    assert "require_certificate" not in first
    assert f"crlfile {tmp_path / 'crl.pem'}" in second
    with pytest.raises(ValueError, match="need a TLS listener"):
        write_config(tmp_path, [Listener(8884, client_certificates_crl=tmp_path / "crl.pem")])
    with pytest.raises(ValueError, match="at least one listener"):
        write_config(tmp_path, [])


def test_devices_cert_needs_an_active_device_and_a_ca(tmp_path: Path) -> None:
    data, out = str(tmp_path / "data"), str(tmp_path / "certs")
    runner = CliRunner()
    runner.invoke(main, ["devices", "add", "tz-a", "--inspector", "I", "--unit", "U",
                         "--data-dir", data])  # fmt: skip
    no_ca = runner.invoke(main, ["devices", "cert", "tz-a", "--out", out, "--data-dir", data])
    assert no_ca.exit_code == 2
    assert "broker-config --tls" in no_ca.output
    runner.invoke(main, ["broker-config", "--data-dir", data, "--port", "8883",
                         "--out", str(tmp_path / "conf"), "--tls"])  # fmt: skip
    issued = runner.invoke(main, ["devices", "cert", "tz-a", "--out", out, "--data-dir", data])
    assert issued.exit_code == 0, issued.output
    assert pki.subject_cn((tmp_path / "certs" / "tz-a.crt").read_bytes()) == "tz-a"
    assert oct((tmp_path / "certs" / "tz-a.key").stat().st_mode & 0o777) == "0o600"
    unknown = runner.invoke(main, ["devices", "cert", "tz-x", "--out", out, "--data-dir", data])
    assert unknown.exit_code == 2
    runner.invoke(main, ["devices", "revoke", "tz-a", "--data-dir", data])
    revoked = runner.invoke(main, ["devices", "cert", "tz-a", "--out", out, "--data-dir", data])
    assert revoked.exit_code == 2
    assert "revoked" in revoked.output
