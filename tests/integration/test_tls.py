"""TLS against the real Mosquitto, configured as an operator does it:

    gateway devices add ID --inspector I --unit U --data-dir DIR
    gateway broker-config --data-dir DIR --port N --out CONF --tls --cert-port M
    gateway devices cert ID --out CERTS --data-dir DIR       (terminals with certificates)
    mosquitto -c CONF/mosquitto.conf
    gateway run --broker mqtts://127.0.0.1:N --data-dir DIR  (its login and CA from DIR)

The CA is a throwaway one `broker-config --tls` makes in DIR/pki; an imported one is made
with the openssl command line, as a city's PKI would hand it over.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.devices.tls_files import ca_cert_path
from gateway.harness.mosquitto import Mosquitto, free_port
from tests.factories import encode, envelope
from tests.integration.helpers import (
    GatewayProcess,
    Probe,
    Terminal,
    add_device,
    gateway_cli,
    operator_stack,
    wait_until,
)
from tests.integration.helpers import OperatorStack as Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_stack(tmp_path: Path) -> Iterator[Stack]:
    """tz-c logs in by certificate; tz-b may, too."""
    with operator_stack(tmp_path, ("tz-a", "tz-b", "tz-c"), cert_devices=("tz-c", "tz-b")) as s:
        yield s


def send_and_wait(terminal: Terminal) -> dict[str, object]:
    body = envelope()
    terminal.send(body)
    final = terminal.wait_final(body["report_id"])
    terminal.close()
    return final


def answered(url: str, context: ssl.SSLContext | None) -> bool:
    """Whether the broker answers a terminal's CONNECT over this link at all."""
    parts = urlsplit(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.username_pw_set("tz-a", "irrelevant")
    if context is not None:
        # TLS 1.3: a broker refusing the client's certificate says so after the handshake,
        # not in it, so paho's connect returns and the refusal shows as a dropped link.
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        client.tls_set_context(context)
    connacks: list[str] = []
    dropped = threading.Event()
    client.on_connect = lambda c, u, f, reason, p: connacks.append(str(reason))
    client.on_disconnect = lambda c, u, f, reason, p: dropped.set()
    client.connect(parts.hostname or "", parts.port or 0)
    client.loop_start()
    # A CONNACK, or the link dropped, comes within milliseconds on loopback: the timeout
    # only stops a hung test.
    wait_until(lambda: bool(connacks) or dropped.is_set(), 20, "a CONNACK or the link to drop")
    client.disconnect()
    client.loop_stop()
    return bool(connacks)


def handshake_error(url: str, context: ssl.SSLContext) -> str | None:
    """The TLS handshake's failure as the terminal sees it, or None if it completes."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    with socket.create_connection((host, parts.port or 0), timeout=5) as raw:
        try:
            context.wrap_socket(raw, server_hostname=host).close()
        except ssl.SSLError as error:
            return error.reason
    return None


def test_terminals_and_the_gateway_speak_tls_with_the_generated_ca(
    tls_stack: Stack,
) -> None:
    [started] = [e for e in tls_stack.gateway.log_lines() if e["event"] == "gateway.started"]
    assert started["broker"].startswith("mqtts://")
    assert started["username"] == "cgt.gateway"
    assert started["ca_file"] == str(tls_stack.ca)  # found in its data dir, no config
    terminal = Terminal(
        tls_stack.broker.url, "tz-a", tls_stack.passwords["tz-a"], tls=tls_stack.context()
    )
    final = send_and_wait(terminal)
    assert final["status"] == "accepted"
    assert final["case_no"]
    for secret in (tls_stack.data_dir / "pki" / "ca.key", tls_stack.certs / "tz-c.key"):
        key = secret.read_text()
        assert secret.stat().st_mode & 0o077 == 0, f"{secret} is readable by others"
        assert key not in tls_stack.gateway.log_path.read_text()


def test_plain_text_and_a_wrong_ca_are_refused(tls_stack: Stack, tmp_path: Path) -> None:
    url = tls_stack.broker.url
    # MQTT in clear to the TLS listener: the broker reads no CONNECT and never answers.
    assert not answered(url.replace("mqtts", "mqtt"), None)
    assert answered(url, tls_stack.context())  # (the same client over TLS is answered)
    # A terminal that trusts another CA refuses the broker's certificate.
    other = tmp_path / "other"
    make_openssl_ca(other)
    stranger_ca = ssl.create_default_context(cafile=other / "ca.crt")
    assert handshake_error(url, stranger_ca) == "CERTIFICATE_VERIFY_FAILED"
    # The gateway likewise, given that CA in its config.
    config = tmp_path / "gateway.toml"
    config.write_text(f'[mqtt.tls]\nca_file = "{other / "ca.crt"}"\n')
    stranger = GatewayProcess(tmp_path / "gw2", url, config=config)
    with pytest.raises(TimeoutError, match="timed out"):
        stranger.start(timeout_s=3)

    def failures() -> list[dict[str, object]]:
        return [e for e in stranger.log_lines() if "CERTIFICATE_VERIFY_FAILED" in json.dumps(e)]

    # Said at its first attempt; the timeout only stops a hung test.
    wait_until(lambda: bool(failures()), 20, "the gateway to log why it cannot connect")
    stranger.stop()
    assert failures(), "the gateway's log does not say why it could not connect"


def test_a_terminal_logs_in_by_certificate_its_cn_its_identity(tls_stack: Stack) -> None:
    terminal = Terminal(tls_stack.cert_url, "tz-c", tls=tls_stack.context("tz-c"))
    assert send_and_wait(terminal)["status"] == "accepted"
    # The CN is the username the ACL confines: tz-c's certificate writes tz-c's topics only.
    probe = Probe(tls_stack.cert_url, None, None, tls=tls_stack.context("tz-c"))
    assert probe.connack() == "Success"
    assert probe.publish("cgt/v1/tz-a/report", encode(envelope())) == "Not authorized"
    assert probe.publish("cgt/v1/tz-c/status", b'{"online": true}') == "Success"
    probe.close()
    # No certificate, no entry on that listener, whatever the password.
    assert not answered(tls_stack.cert_url, tls_stack.context())


def test_revoking_a_certificate_device_cuts_it_off_without_restarts(
    tls_stack: Stack,
) -> None:
    broker_pid = tls_stack.broker.process.pid if tls_stack.broker.process else None
    connected = Probe(tls_stack.cert_url, None, None, tls=tls_stack.context("tz-b"))
    assert connected.connack() == "Success"
    assert connected.publish("cgt/v1/tz-b/status", b'{"online": true}') == "Success"
    revoked = tls_stack.devices("revoke", "tz-b")
    assert f"SIGHUP to pid {broker_pid}" in revoked.stderr
    # The connection it holds may publish nothing any more (the ACL) ...
    wait_until(
        lambda: connected.publish("cgt/v1/tz-b/status", b'{"online": true}') == "Not authorized",
        5,
        "the ACL to deny the revoked device",
    )
    connected.close()
    # ... and its certificate is refused at the next handshake (the CRL).
    assert not answered(tls_stack.cert_url, tls_stack.context("tz-b"))
    # Nothing restarted; tz-c's certificate still works.
    assert tls_stack.broker.process is not None
    assert tls_stack.broker.process.pid == broker_pid
    terminal = Terminal(tls_stack.cert_url, "tz-c", tls=tls_stack.context("tz-c"))
    assert send_and_wait(terminal)["status"] == "accepted"


def test_a_citys_own_ca_is_imported(tmp_path: Path) -> None:
    """`--ca-cert/--ca-key`: a CA made with openssl (RSA) signs the broker's certificate."""
    city = tmp_path / "city-ca"
    make_openssl_ca(city)
    data_dir, conf_dir = tmp_path / "gateway", tmp_path / "broker"
    password = add_device(data_dir, "tz-a")
    port = free_port()
    gateway_cli(
        "broker-config", "--data-dir", str(data_dir), "--port", str(port), "--out",
        str(conf_dir), "--bind", "127.0.0.1", "--tls", "--hostname", "127.0.0.1",
        "--ca-cert", str(city / "ca.crt"), "--ca-key", str(city / "ca.key"),
    )  # fmt: skip
    assert ca_cert_path(data_dir).read_bytes() == (city / "ca.crt").read_bytes()
    with Mosquitto(conf_dir, port=port, conf=conf_dir / "mosquitto.conf", tls=True) as broker:
        gateway = GatewayProcess(data_dir, broker.url).start()
        try:
            context = ssl.create_default_context(cafile=city / "ca.crt")
            final = send_and_wait(Terminal(broker.url, "tz-a", password, tls=context))
            assert final["status"] == "accepted"
        finally:
            gateway.stop()
    # A key that is not the certificate's is refused with a clear message.
    other = tmp_path / "other"
    make_openssl_ca(other)
    wrong = gateway_cli(
        "broker-config", "--data-dir", str(tmp_path / "d2"), "--port", str(port),
        "--out", str(tmp_path / "b2"), "--tls",
        "--ca-cert", str(city / "ca.crt"), "--ca-key", str(other / "ca.key"), check=False,
    )  # fmt: skip
    assert wrong.returncode == 2
    assert "the CA key does not belong to the CA certificate" in wrong.stderr


def make_openssl_ca(directory: Path) -> None:
    """An RSA CA as the openssl command line makes one (Debian package)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=city test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.crt")],
        check=True, capture_output=True,
    )  # fmt: skip


def test_a_simulated_fleet_logs_in_by_certificate(tls_stack: Stack) -> None:
    """firmware-sim's `--cert-dir` and `--ca-file`, as a technician runs it."""
    fleet = ("fleet-0001", "fleet-0002")
    for device in fleet:
        add_device(tls_stack.data_dir, device)
        tls_stack.devices("cert", device, "--out", str(tls_stack.certs))
    time.sleep(1.5)  # the gateway re-reads the registry within a second
    result = subprocess.run(
        [sys.executable, "-m", "firmware_sim", "run", "--broker", tls_stack.cert_url,
         "--terminals", "2", "--reports-per-terminal", "1", "--device-prefix", "fleet",
         "--ca-file", str(tls_stack.ca), "--cert-dir", str(tls_stack.certs)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    cases = {report_id for report_id, _ in tls_stack.gateway.cases()}
    assert len(cases) == 2
