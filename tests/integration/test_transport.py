"""The MQTT transport's options against real Mosquitto: credentials, MQTT 3.1.1, TLS,
shared subscriptions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.devices import pki
from gateway.devices.tls_files import write_broker_tls
from gateway.harness.mosquitto import Mosquitto
from tests.factories import envelope
from tests.integration.helpers import GatewayProcess, Terminal, wait_until

pytestmark = pytest.mark.integration


def accepted_through(broker: Mosquitto, gateway: GatewayProcess, device: str = "tz-0100") -> None:
    terminal = Terminal(broker.url, device)
    body = envelope()
    terminal.send(body)
    assert terminal.wait_final(body["report_id"])["status"] == "accepted"
    terminal.close()
    gateway.stop()


def password_file(directory: Path, users: dict[str, str]) -> Path:
    path = directory / "passwords"
    directory.mkdir(parents=True, exist_ok=True)
    path.touch()
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True)
    path.chmod(0o600)
    return path


def test_username_password_from_the_environment_over_mqtt_311(tmp_path: Path) -> None:
    passwords = password_file(
        tmp_path / "auth", {"cgt-gateway": "s3cret-gw", "tz-0100": "s3cret-tz"}
    )
    broker = Mosquitto(tmp_path / "broker", auth_lines=f"password_file {passwords}")
    broker.allow_anonymous = True  # the test terminal connects without credentials
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[mqtt]\nprotocol = "3.1.1"\nusername = "cgt-gateway"\n'
        'password_env = "CGT_TEST_MQTT_PASSWORD"\n'
    )
    with broker:
        gateway = GatewayProcess(
            tmp_path / "gw", broker.url, config=config, env={"CGT_TEST_MQTT_PASSWORD": "s3cret-gw"}
        ).start()
        accepted_through(broker, gateway)
        assert "s3cret-gw" not in gateway.log_path.read_text()


def test_wrong_password_is_refused_and_logged(tmp_path: Path) -> None:
    passwords = password_file(tmp_path / "auth", {"cgt-gateway": "right"})
    config = tmp_path / "gateway.toml"
    config.write_text('[mqtt]\nusername = "cgt-gateway"\npassword_env = "CGT_TEST_MQTT_PASSWORD"\n')
    with Mosquitto(
        tmp_path / "broker", auth_lines=f"password_file {passwords}", allow_anonymous=False
    ) as broker:
        gateway = GatewayProcess(
            tmp_path / "gw",
            broker.url,
            config=config,
            env={"CGT_TEST_MQTT_PASSWORD": "Pa55-not-this-one"},
        )
        with pytest.raises(TimeoutError, match="timed out"):
            gateway.start(timeout_s=3)

        def refused() -> list[dict[str, object]]:
            return [e for e in gateway.log_lines() if e.get("event") == "mqtt.connect_refused"]

        # Logged at its first attempt; the timeout only stops a hung test.
        wait_until(lambda: bool(refused()), 20, "the refusal in the gateway's log")
        gateway.stop()
        assert refused()
        assert "Pa55-not-this-one" not in gateway.log_path.read_text()


def test_tls_with_the_configured_ca(tmp_path: Path) -> None:
    certs = write_broker_tls(tmp_path, pki.new_ca("cgt test CA"), ["127.0.0.1"])
    tls_lines = f"cafile {certs.ca_file}\ncertfile {certs.cert_file}\nkeyfile {certs.key_file}"
    tls_broker = Mosquitto(tmp_path / "tls-broker", auth_lines=tls_lines, tls=True)
    config = tmp_path / "gateway.toml"
    config.write_text(f'[mqtt.tls]\nca_file = "{certs.ca_file}"\n')
    with tls_broker:
        gateway = GatewayProcess(tmp_path / "gw", tls_broker.url, config=config).start()
        assert any(line.get("event") == "mqtt.subscribed" for line in gateway.log_lines())
        gateway.stop()


def test_shared_subscription_group(tmp_path: Path, broker: Mosquitto) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[mqtt]\nshared_group = "cgt"\n')
    gateway = GatewayProcess(tmp_path / "gw", broker.url, config=config).start()
    accepted_through(broker, gateway, "tz-0101")


def test_gateway_rides_out_a_broker_restart(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        gateway = GatewayProcess(tmp_path / "gw", broker.url).start()
        first = Terminal(broker.url, "tz-0102")
        body = envelope()
        first.send(body)
        assert first.wait_final(body["report_id"])["status"] == "accepted"
        first.close()

        broker.stop()
        broker.start()  # same port, same persistence: the gateway's session survives
        wait_until(
            lambda: (
                sum(line.get("event") == "mqtt.subscribed" for line in gateway.log_lines()) >= 2
            ),
            30,
            "the gateway to reconnect",
        )
        second = Terminal(broker.url, "tz-0102")
        again = envelope()
        second.send(again)
        assert second.wait_final(again["report_id"])["status"] == "accepted"
        second.close()
        assert len(gateway.cases()) == 2
        gateway.stop()
    finally:
        broker.stop()
