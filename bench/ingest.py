"""End-to-end ingest: text-only reports through real Mosquitto into the registry, with acks,
against a bare paho-mqtt subscriber draining the same messages from the same broker.

Both sides drain the same kind of backlog: N reports queued by the broker for a persistent
session, then the consumer connects and the clock runs until it is done. For the bare
subscriber, done is the N-th message received (auto PUBACK). For the gateway, done is every
report registered as a case and its `accepted` ack confirmed by the broker, each report
committed to the inbox before its PUBACK.
"""

from __future__ import annotations

import json
import ssl
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.common import summary, write
from gateway.broker import Mosquitto
from gateway.process import GatewayProcess, wait_until

REPORTS = 20_000
DEVICES = 200
ROUNDS = 3
RECEIVE_MAXIMUM = 500  # the gateway's default
GATEWAY_CLIENT_ID = "cgt-gateway"  # the default [mqtt] client_id


def payloads() -> list[tuple[str, bytes]]:
    messages = []
    for n in range(REPORTS):
        body = {
            "v": 1,
            "report_id": str(uuid.uuid4()),
            "created_at": "2026-11-28T09:15:02+08:00",
            "kind": "event",
            "class_code": "0102",
            "description": "路边暴露垃圾一堆",
            "inspector_id": f"INS-{n % DEVICES:04d}",
            "fix": {"lat": 32.0302, "lon": 120.8651, "accuracy_m": 6.5},
        }
        messages.append((f"cgt/v1/bench-{n % DEVICES:04d}/report", json.dumps(body).encode()))
    return messages


def client(
    client_id: str, port: int, *, persistent: bool, tls: ssl.SSLContext | None = None
) -> paho.Client:
    """Connected (TLS handshake done, CONNECT sent; the CONNACK comes in the loop)."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    if tls is not None:
        c.tls_set_context(tls)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600 if persistent else 0
    properties.ReceiveMaximum = RECEIVE_MAXIMUM
    c.connect("127.0.0.1", port, clean_start=not persistent, properties=properties)
    return c


def publish_backlog(
    port: int, messages: list[tuple[str, bytes]], tls: ssl.SSLContext | None = None
) -> None:
    publisher = client(f"bench-pub-{uuid.uuid4().hex[:6]}", port, persistent=False, tls=tls)
    publisher.loop_start()
    infos = [publisher.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(60)
    publisher.disconnect()
    publisher.loop_stop()


def raw_round(
    port: int, messages: list[tuple[str, bytes]], tls: ssl.SSLContext | None = None
) -> float:
    """The bare subscriber's rate; every connection, the backlog's too, to `port` over `tls`."""
    client_id = f"bench-raw-{uuid.uuid4().hex[:6]}"
    subscribed = threading.Event()
    subscriber = client(client_id, port, persistent=True, tls=tls)
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.loop_start()
    subscriber.subscribe("cgt/v1/+/report", qos=1)
    subscribed.wait(10)
    subscriber.disconnect()
    subscriber.loop_stop()
    publish_backlog(port, messages, tls)

    received = 0
    done = threading.Event()

    def on_message(*_: Any) -> None:
        nonlocal received
        received += 1
        if received == len(messages):
            done.set()

    start = time.perf_counter()
    subscriber = client(client_id, port, persistent=True, tls=tls)
    subscriber.on_message = on_message
    subscriber.loop_start()
    done.wait(300)
    elapsed = time.perf_counter() - start
    # Its session ends with it: left behind, it would have every later backlog queued too.
    ending = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
    ending.SessionExpiryInterval = 0
    subscriber.disconnect(properties=ending)
    subscriber.loop_stop()
    return len(messages) / elapsed


def gateway_round(
    broker_url: str,
    messages: list[tuple[str, bytes]],
    scratch: Path,
    *,
    tls: ssl.SSLContext | None = None,
    config: Path | None = None,
) -> dict[str, float]:
    """The gateway's rates through `broker_url`; the backlog goes to the same port over `tls`
    (an mqtts:// URL needs it, and the gateway its CA in `config`)."""
    port = urlsplit(broker_url).port
    assert port is not None, broker_url
    gateway = GatewayProcess(scratch / f"gw-{uuid.uuid4().hex[:6]}", broker_url, config=config)
    gateway.start()  # registers the gateway's persistent session and subscriptions
    gateway.stop()
    publish_backlog(port, messages, tls)
    start = time.perf_counter()
    gateway.start(timeout_s=60)
    committed_at = None

    def finished() -> bool:
        nonlocal committed_at
        committed = gateway.count("inbox.db", "SELECT count(*) FROM reports")
        if committed_at is None and committed == len(messages):
            committed_at = time.perf_counter()
        acked = gateway.count(
            "outbox.db", "SELECT count(*) FROM deliveries WHERE sink = 'ack' AND state = 'done'"
        )
        return acked == len(messages)

    wait_until(finished, 600, "every report registered and acknowledged")
    elapsed = time.perf_counter() - start
    cases = gateway.count("registry.db", "SELECT count(*) FROM cases")
    gateway.stop()
    assert cases == len(messages), cases
    assert committed_at is not None
    return {
        "end_to_end": len(messages) / elapsed,
        "inbox_commit": len(messages) / (committed_at - start),
    }


def end_session(port: int, client_id: str) -> None:
    """Discard a persistent session and its subscriptions (clean start, expiry 0)."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    connected = threading.Event()
    c.on_connect = lambda *_: connected.set()
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0
    c.connect("127.0.0.1", port, clean_start=True, properties=properties)
    c.loop_start()
    if not connected.wait(10):
        raise TimeoutError(f"no CONNACK for {client_id}")
    c.disconnect()
    c.loop_stop()


def run() -> dict[str, Any]:
    messages = payloads()
    raw: list[float] = []
    end_to_end: list[float] = []
    intake: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="cgt-bench-") as scratch,
        Mosquitto(Path(scratch) / "broker") as broker,
    ):
        for _ in range(ROUNDS):  # interleaved, so drift in the machine hits both alike
            raw.append(raw_round(broker.port, messages))
            rates = gateway_round(broker.url, messages, Path(scratch))
            end_to_end.append(rates["end_to_end"])
            intake.append(rates["inbox_commit"])
            # Else the next subscriber round's backlog is queued for the gateway's session
            # too, and the next gateway round drains twice the reports (half duplicates).
            end_session(broker.port, GATEWAY_CLIENT_ID)
    raw_summary, gateway_summary = summary(raw), summary(end_to_end)
    result = {
        "benchmark": "ingest",
        "reports": REPORTS,
        "rounds": ROUNDS,
        "unit": "reports per second",
        "raw_paho_subscriber": raw_summary,
        "gateway_end_to_end": gateway_summary,
        "gateway_inbox_commit": summary(intake),
        "ratio_end_to_end_to_raw": gateway_summary["median"] / raw_summary["median"],
    }
    write("ingest", result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
