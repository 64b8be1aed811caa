"""Real parts for integration tests: a terminal and a backend (the gateway process is
`gateway.harness.gateway_process.GatewayProcess`)."""

from __future__ import annotations

import json
import queue
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.devices.tls_files import ca_cert_path
from gateway.harness.gateway_process import GatewayProcess, wait_until
from gateway.harness.mosquitto import Mosquitto, free_port
from tests.factories import Upload, encode

__all__ = [
    "Client",
    "GatewayProcess",
    "OperatorStack",
    "Probe",
    "Terminal",
    "add_device",
    "gateway_cli",
    "operator_stack",
    "wait_until",
]


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or parts.hostname is None or parts.port is None:
        raise ValueError(f"not an mqtt:// or mqtts:// URL with a port: {url}")
    return parts.hostname, parts.port


def gateway_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, check=check
    )


def add_device(data_dir: Path, device_id: str) -> str:
    """`gateway devices add`; returns the password it printed."""
    added = gateway_cli(
        "devices", "add", device_id, "--inspector", f"INS-{device_id}", "--unit", "崇川区",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    return added.stdout.strip()


class Client:
    """A paho client that collects what it receives."""

    def __init__(
        self,
        url: str,
        client_id: str,
        subscriptions: list[str],
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        host, port = _address(url)
        self.received: queue.Queue[tuple[str, bytes | bytearray]] = queue.Queue()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, m.payload))
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        subscribed = queue.Queue[int]()
        self.client.on_subscribe = lambda c, u, mid, rc, p: subscribed.put(mid)
        self.client.connect(host, port)
        self.client.loop_start()
        if subscriptions:
            self.client.subscribe([(topic, 1) for topic in subscriptions])
            subscribed.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Terminal(Client):
    """A minimal terminal: chunks first, then the envelope; collects acks, errors and
    tasks."""

    def __init__(
        self,
        url: str,
        device_id: str,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """With a password, it logs in as the device (username = device id); with a client
        certificate in `tls`, the broker takes the certificate's CN instead."""
        self.device_id = device_id
        super().__init__(
            url,
            f"{device_id}-{uuid.uuid4().hex[:6]}",
            [f"cgt/v1/{device_id}/{name}" for name in ("ack", "error", "task")],
            username=device_id if password is not None else None,
            password=password,
            tls=tls,
        )
        self.acks: dict[str, list[dict[str, Any]]] = {}
        self.errors: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any], uploads: Sequence[Upload] = ()) -> None:
        for upload in uploads:
            for seq, data in enumerate(upload.chunks):
                self.publish(upload.chunk_topic(self.device_id, seq), data)
        self.publish(f"cgt/v1/{self.device_id}/report", encode(body))

    def pump(self) -> Literal[False]:
        """Takes what arrived into `acks`, `errors` and `tasks`. False, so that a predicate
        can pump before it looks: `lambda: terminal.pump() or bool(terminal.errors)`."""
        while True:
            try:
                topic, payload = self.received.get_nowait()
            except queue.Empty:
                return False
            message = json.loads(payload)
            if topic.endswith("/error"):
                self.errors.append(message)
            elif topic.endswith("/task"):
                self.tasks.append(message)
            else:
                self.acks.setdefault(message["report_id"], []).append(message)

    def final(self, report_id: str) -> dict[str, Any] | None:
        self.pump()
        ack: dict[str, Any]  # reversed() of a list holding Any-typed dicts infers Any
        for ack in reversed(self.acks.get(report_id, [])):
            if ack["status"] in ("accepted", "rejected"):
                return ack
        return None

    def wait_final(self, report_id: str, timeout_s: float = 20) -> dict[str, Any]:
        wait_until(
            lambda: self.final(report_id) is not None, timeout_s, f"an answer to {report_id}"
        )
        answer = self.final(report_id)
        assert answer is not None
        return answer

    def wait_tasks(self, count: int, timeout_s: float = 20) -> list[dict[str, Any]]:
        wait_until(lambda: self.pump() or len(self.tasks) >= count, timeout_s, f"{count} tasks")
        return self.tasks


@dataclass
class Probe:
    """A bare MQTT v5 connection that records every answer of the broker."""

    url: str
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None = None
    connacks: queue.Queue[str] = field(default_factory=queue.Queue)
    subacks: queue.Queue[list[str]] = field(default_factory=queue.Queue)
    pubacks: dict[int, str] = field(default_factory=dict)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        host, port = _address(self.url)
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"probe-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls is not None:
            client.tls_set_context(self.tls)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda c, u, mid, codes, p: self.subacks.put([str(x) for x in codes])
        client.on_publish = self._on_publish
        client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        client.on_disconnect = lambda c, u, f, reason, p: self.disconnected.set()
        self.client = client
        client.connect(host, port)
        client.loop_start()

    def _on_connect(
        self, c: paho.Client, u: Any, f: Any, reason: ReasonCode, p: Properties | None
    ) -> None:
        self.connacks.put(str(reason))

    def _on_publish(
        self, c: paho.Client, u: Any, mid: int, reason: ReasonCode, p: Properties | None
    ) -> None:
        self.pubacks[mid] = str(reason)

    def connack(self) -> str:
        return self.connacks.get(timeout=10)

    def subscribe(self, topic: str) -> list[str]:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> str:
        """The broker's PUBACK reason for a QoS 1 publish."""
        info = self.client.publish(topic, payload, qos=1)
        wait_until(lambda: info.mid in self.pubacks, 10, f"the PUBACK of {topic}")
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class OperatorStack:
    """A broker and a gateway set up as an operator does (docs/operations.md):
    `gateway devices add` per device, `gateway broker-config [--tls --cert-port M]`,
    `mosquitto -c`, `gateway run --data-dir DIR` (its login and CA found in DIR)."""

    data_dir: Path
    broker: Mosquitto
    gateway: GatewayProcess
    passwords: dict[str, str]
    certs: Path  # client certificates (`gateway devices cert`), for `cert_devices`
    cert_port: int | None = None

    @property
    def ca(self) -> Path:
        return ca_cert_path(self.data_dir)

    @property
    def cert_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.cert_port}"

    def context(self, device_id: str | None = None) -> ssl.SSLContext | None:
        """What a terminal trusts (the gateway's CA) and, given a device, presents; None
        without TLS."""
        if not self.broker.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ca))
        if device_id is not None:
            certs = self.certs
            context.load_cert_chain(certs / f"{device_id}.crt", certs / f"{device_id}.key")
        return context

    def terminal(self, device_id: str) -> Terminal:
        """A terminal logged in with its own password (over TLS when the broker has it)."""
        return Terminal(self.broker.url, device_id, self.passwords[device_id], self.context())

    def devices(self, *args: str) -> subprocess.CompletedProcess[str]:
        return gateway_cli("devices", *args, "--data-dir", str(self.data_dir))


@contextmanager
def operator_stack(
    directory: Path,
    devices: Sequence[str],
    *,
    tls: bool = False,
    cert_devices: Sequence[str] = (),
    config: Path | None = None,
) -> Iterator[OperatorStack]:
    """`cert_devices` get client certificates and a certificate listener (implies TLS)."""
    data_dir, conf_dir = directory / "gateway", directory / "broker"
    passwords = {device: add_device(data_dir, device) for device in devices}
    port = free_port()
    options = ["--tls"] if tls or cert_devices else []
    cert_port = free_port() if cert_devices else None
    if cert_port is not None:
        options += ["--cert-port", str(cert_port)]
    gateway_cli(
        "broker-config", "--data-dir", str(data_dir), "--port", str(port),
        "--out", str(conf_dir), "--bind", "127.0.0.1", *options,
    )  # fmt: skip
    certs = directory / "certs"
    for device in cert_devices:
        gateway_cli("devices", "cert", device, "--out", str(certs), "--data-dir", str(data_dir))
    conf = conf_dir / "mosquitto.conf"
    with Mosquitto(conf_dir, port=port, conf=conf, tls=bool(options)) as broker:
        gateway = GatewayProcess(data_dir, broker.url, config=config).start()
        try:
            yield OperatorStack(data_dir, broker, gateway, passwords, certs, cert_port)
        finally:
            gateway.stop()


# ---- casework backends (docs/cases.md) -----------------------------------------------------


class Backend(Client):
    """A casework backend logged in as its own account: commands out, answers and events in."""

    def __init__(self, stack: OperatorStack, username: str, password: str) -> None:
        super().__init__(
            stack.broker.url,
            f"{username}-{uuid.uuid4().hex[:6]}",
            [f"cgt/v1/cases/answers/{username}", "cgt/v1/cases/events/#"],
            username=username,
            password=password,
        )
        self.username = username
        self.answers: dict[str | None, dict[str, Any]] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []

    def pump(self) -> Literal[False]:
        """Takes what arrived into `answers` and `events`; False, for predicates."""
        while True:
            try:
                topic, payload = self.received.get_nowait()
            except queue.Empty:
                return False
            body = json.loads(payload)
            if topic.startswith("cgt/v1/cases/events/"):
                self.events.append((topic, body))
            else:
                self.answers[body["command_id"]] = body

    def ask(
        self, case_no: str, action: str, command_id: str | None = None, **more: Any
    ) -> dict[str, Any]:
        command_id = command_id or str(uuid.uuid4())
        body = {
            "v": 1,
            "command_id": command_id,
            "case_no": case_no,
            "action": action,
            "by": "王受理",
        }
        self.publish(f"cgt/v1/cases/commands/{self.username}", json.dumps(body | more).encode())
        self.answers.pop(command_id, None)
        wait_until(lambda: self.pump() or command_id in self.answers, 20, f"the answer to {action}")
        return self.answers[command_id]

    def wait_events(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        wait_until(lambda: self.pump() or len(self.events) >= count, 20, f"{count} case events")
        return self.events


def casework_account(stack: OperatorStack, name: str) -> str:
    added = stack.devices("casework", "add", name)
    assert added.returncode == 0, added.stderr
    assert "broker reloaded" in added.stderr
    return added.stdout.strip()


def connected(stack: OperatorStack, username: str, password: str) -> Backend:
    """The broker reloads its password file on SIGHUP, a moment after the command."""
    deadline = time.monotonic() + 10
    while True:
        probe = Probe(stack.broker.url, username, password)
        answer = probe.connack()
        probe.close()
        if answer == "Success" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert answer == "Success"
    return Backend(stack, username, password)
