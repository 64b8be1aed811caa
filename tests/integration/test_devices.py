"""Device identity against the real Mosquitto, configured as an operator does it:

    gateway devices add ID --inspector I --unit U --data-dir DIR     (password on stdout)
    gateway broker-config --data-dir DIR --port N --out CONF
    mosquitto -c CONF/mosquitto.conf
    gateway run --broker mqtt://127.0.0.1:N --data-dir DIR         (its own login from DIR)

The broker's ACL keeps each terminal to its own topics; `gateway devices revoke` cuts a
terminal off while everything keeps running; the gateway refuses unknown, suspended and
revoked devices itself too (shown through an open broker, where only the gateway checks).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.devices.credentials import password_path
from gateway.devices.gate import REFRESH_S
from gateway.harness.mosquitto import Mosquitto, free_port
from tests.factories import encode, envelope
from tests.integration.helpers import (
    Client,
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
def stack(tmp_path: Path) -> Iterator[Stack]:
    with operator_stack(tmp_path, ("tz-a", "tz-b")) as running:
        yield running


def stored(gateway: GatewayProcess, report_id: str) -> int:
    return gateway.count(
        "inbox.db",
        f"SELECT count(*) FROM reports WHERE report_id = '{report_id}'",  # noqa: S608 - a UUID of ours
    )


def test_the_gateway_logs_in_with_its_own_account_and_devices_with_theirs(
    stack: Stack,
) -> None:
    [started] = [line for line in stack.gateway.log_lines() if line["event"] == "gateway.started"]
    assert started["username"] == "cgt.gateway"
    assert stack.passwords["tz-a"] not in stack.gateway.log_path.read_text()
    backend_password = password_path(stack.data_dir, "backend").read_text().strip()
    backend = Client(
        stack.broker.url, "backend-1", ["cgt/v1/normalized/#"],
        username="cgt.backend", password=backend_password,
    )  # fmt: skip
    terminal = Terminal(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    try:
        body = envelope()
        terminal.send(body)
        assert terminal.wait_final(body["report_id"])["status"] == "accepted"
        topic, payload = backend.received.get(timeout=20)
        assert topic.startswith("cgt/v1/normalized/event/")
        assert json.loads(payload)["report_id"] == body["report_id"]
    finally:
        terminal.close()
        backend.close()
    wrong = Probe(stack.broker.url, "tz-a", "not-the-password")
    assert wrong.connack() == "Not authorized"
    wrong.close()
    anonymous = Probe(stack.broker.url, "", "")
    assert anonymous.connack() == "Not authorized"
    anonymous.close()


def test_a_device_cannot_publish_on_another_devices_topics(stack: Stack) -> None:
    a = Probe(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    assert a.connack() == "Success"
    forged = envelope()
    assert a.publish("cgt/v1/tz-b/report", encode(forged)) == "Not authorized"
    assert a.publish("cgt/v1/tz-b/status", b'{"online": false}') == "Not authorized"
    assert a.publish(f"cgt/v1/tz-b/media/{uuid.uuid4()}/0", b"x") == "Not authorized"
    assert a.publish("cgt/v1/normalized/event/0102", b"{}") == "Not authorized"
    assert a.publish("cgt/v1/tz-b/ack", b"{}") == "Not authorized"  # nor fake B's answers
    a.close()
    # Its own topic works, and the gateway has seen it: so the forged one, sent first on
    # the same connection, would have been there if the broker had let it through.
    terminal = Terminal(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    own = envelope()
    terminal.send(own)
    assert terminal.wait_final(own["report_id"])["status"] == "accepted"
    terminal.close()
    assert stored(stack.gateway, own["report_id"]) == 1
    assert stored(stack.gateway, forged["report_id"]) == 0
    assert forged["report_id"] not in stack.gateway.log_path.read_text()


def test_a_device_cannot_read_another_devices_acks(stack: Stack) -> None:
    """Mosquitto grants any subscription and checks each message as it delivers it."""
    a = Probe(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    assert a.connack() == "Success"
    for topic in ("cgt/v1/tz-b/ack", "cgt/v1/+/ack", "cgt/v1/#", "#"):
        a.subscribe(topic)
    b = Terminal(stack.broker.url, "tz-b", stack.passwords["tz-b"])
    theirs = envelope()
    b.send(theirs)
    assert b.wait_final(theirs["report_id"])["status"] == "accepted"  # B got its ack
    b.close()
    # A's own ack comes after B's on the same gateway connection: once A has it, B's would
    # have arrived too, had the broker let it through.
    ours = envelope()
    assert a.publish("cgt/v1/tz-a/report", encode(ours)) == "Success"
    wait_until(lambda: bool(a.messages), 20, "A's own ack")
    a.close()
    assert {topic for topic, _ in a.messages} == {"cgt/v1/tz-a/ack"}
    assert theirs["report_id"].encode() not in b"".join(payload for _, payload in a.messages)


def test_a_revoked_device_is_cut_off_without_restarting_anything(stack: Stack) -> None:
    broker_pid = stack.broker.process.pid if stack.broker.process else None
    b = Probe(stack.broker.url, "tz-b", stack.passwords["tz-b"])
    assert b.connack() == "Success"
    assert b.publish("cgt/v1/tz-b/report", encode(envelope())) == "Success"
    revoked = stack.devices("revoke", "tz-b")
    assert revoked.stdout == "device tz-b is revoked\n"
    assert f"SIGHUP to pid {broker_pid}" in revoked.stderr
    assert b.disconnected.wait(5), "the broker kept the revoked device's connection"
    b.close()
    again = Probe(stack.broker.url, "tz-b", stack.passwords["tz-b"])
    assert again.connack() == "Not authorized"
    again.close()
    # Nothing restarted: the same broker and gateway serve tz-a as before.
    assert stack.broker.process is not None
    assert stack.broker.process.pid == broker_pid
    assert stack.broker.process.poll() is None
    assert stack.gateway.process is not None
    assert stack.gateway.process.poll() is None
    terminal = Terminal(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    body = envelope()
    terminal.send(body)
    assert terminal.wait_final(body["report_id"])["status"] == "accepted"
    terminal.close()


def test_suspend_resume_and_rotate_take_effect_on_the_running_broker(stack: Stack) -> None:
    stack.devices("suspend", "tz-a")
    suspended = Probe(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    assert suspended.connack() == "Not authorized"
    suspended.close()
    stack.devices("resume", "tz-a")
    resumed = Probe(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    assert resumed.connack() == "Success"
    new_password = stack.devices("rotate", "tz-a").stdout.strip()
    assert resumed.disconnected.wait(5)  # its old password no longer holds
    resumed.close()
    old = Probe(stack.broker.url, "tz-a", stack.passwords["tz-a"])
    assert old.connack() == "Not authorized"
    old.close()
    new = Probe(stack.broker.url, "tz-a", new_password)
    assert new.connack() == "Success"
    new.close()


def test_the_gateway_refuses_unregistered_and_suspended_devices_itself(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """An open (anonymous) broker, as configured by hand: only the gateway checks."""
    data_dir = tmp_path / "gateway"
    add_device(data_dir, "tz-a")
    gateway = GatewayProcess(data_dir, broker.url).start()
    try:
        stranger = Terminal(broker.url, "tz-x")
        known = Terminal(broker.url, "tz-a")
        refused, accepted = envelope(), envelope()
        stranger.send(refused)
        known.send(accepted)
        assert stranger.wait_final(refused["report_id"])["reason"]["code"] == "device.unknown"
        assert known.wait_final(accepted["report_id"])["status"] == "accepted"
        assert stored(gateway, refused["report_id"]) == 0
        gateway_cli("devices", "suspend", "tz-a", "--data-dir", str(data_dir))
        time.sleep(REFRESH_S + 0.5)  # the gateway re-reads the registry within a second
        late = envelope()
        known.send(late)
        assert known.wait_final(late["report_id"])["reason"]["code"] == "device.suspended"
        assert stored(gateway, late["report_id"]) == 0
        assert [report_id for report_id, _ in gateway.cases()] == [accepted["report_id"]]
        stranger.close()
        known.close()
    finally:
        gateway.stop()
    events = [line["event"] for line in gateway.log_lines()]
    assert "devices.open_mode" not in events
    rejected = [line for line in gateway.log_lines() if line["event"] == "uplink.rejected"]
    assert {line["reason"] for line in rejected} == {"device.unknown", "device.suspended"}


def test_the_gateway_account_reads_through_a_shared_subscription(tmp_path: Path) -> None:
    """`mqtt.shared_group` (several gateways sharing the uplinks) under the project's ACL:
    Mosquitto checks the `$share/GROUP/` filter's topic, and each delivery, against it."""
    data_dir, conf_dir, port = tmp_path / "gateway", tmp_path / "broker", free_port()
    password = add_device(data_dir, "tz-a")
    gateway_cli(
        "broker-config", "--data-dir", str(data_dir), "--port", str(port),
        "--out", str(conf_dir), "--bind", "127.0.0.1",
    )  # fmt: skip
    config = tmp_path / "gateway.toml"
    config.write_text('[mqtt]\nshared_group = "cgt"\n')
    with Mosquitto(conf_dir, port=port, conf=conf_dir / "mosquitto.conf") as broker:
        gateway = GatewayProcess(data_dir, broker.url, config=config).start()
        try:
            terminal = Terminal(broker.url, "tz-a", password)
            body = envelope()
            terminal.send(body)
            assert terminal.wait_final(body["report_id"])["status"] == "accepted"
            terminal.close()
        finally:
            gateway.stop()
    refused = [e for e in gateway.log_lines() if e["event"] == "mqtt.subscribe_refused"]
    assert not refused
