"""End-to-end ingest: text-only reports through real Mosquitto into the registry, with acks,
against a bare paho-mqtt subscriber draining the same messages from the same broker, and
against the floor: bare paho-mqtt clients doing only the MQTT work the wire contract leaves
any gateway per report.

Every side drains the same kind of backlog: N reports queued by the broker for a persistent
session, then the consumer connects and the clock runs until it is done. For the bare
subscriber, done is the N-th message received (auto PUBACK). For the gateway, done is every
report registered as a case and its `accepted` ack confirmed by the broker, each report
committed to the inbox before its PUBACK. For the floor, done is every report PUBACKed
after its two QoS 1 publishes (the `accepted` ack, the normalized report) were queued, and
all 2N publishes confirmed by the broker; in one process, or in two sharing the backlog
through a shared subscription.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import MutableSequence
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.common import summary, write
from gateway.harness.gateway_process import GatewayProcess, wait_until
from gateway.harness.mosquitto import Mosquitto
from gateway.protocols import terminal
from gateway.transports.mqtt import no_delay

REPORTS = 20_000
DEVICES = 200
ROUNDS = 3
RECEIVE_MAXIMUM = 500  # the gateway's default
GATEWAY_CLIENT_ID = "cgt-gateway"  # the default [mqtt] client_id
REPORT_TOPIC = "cgt/v1/+/report"
FLOOR_PROCESSES = 2  # one per core of the benchmark machine
CASE_NO = "E010220261128000001"  # an `accepted` ack's case number, as the registry makes it


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
    client_id: str,
    port: int,
    *,
    persistent: bool,
    tls: ssl.SSLContext | None = None,
    manual_ack: bool = False,
    max_inflight: int = 1000,
) -> paho.Client:
    """Connected (TLS handshake done, CONNECT sent; the CONNACK comes in the loop)."""
    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    c.max_inflight_messages_set(max_inflight)
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


def subscribe_session(
    port: int, client_id: str, topic: str, tls: ssl.SSLContext | None = None
) -> None:
    """Leave a persistent session subscribed to `topic`, offline: the broker queues for it."""
    subscribed = threading.Event()
    subscriber = client(client_id, port, persistent=True, tls=tls)
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.loop_start()
    subscriber.subscribe(topic, qos=1)
    subscribed.wait(10)
    subscriber.disconnect()
    subscriber.loop_stop()


def raw_round(
    port: int, messages: list[tuple[str, bytes]], tls: ssl.SSLContext | None = None
) -> float:
    """The bare subscriber's rate; every connection, the backlog's too, to `port` over `tls`."""
    client_id = f"bench-raw-{uuid.uuid4().hex[:6]}"
    subscribe_session(port, client_id, REPORT_TOPIC, tls)
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Floor:
    """Per report, what the wire contract obliges any gateway to do over MQTT, and nothing
    else: PUBACK the report only once handled, publish its `accepted` ack and its normalized
    copy at QoS 1, and see both confirmed. The report is parsed only to name the topics."""

    counts: MutableSequence[int]  # received, confirmed; shared memory in a child process
    expected: int | None = None  # reports; None when a parent process sums the children's
    finished_at: float = 0.0  # wall clock, so that processes' times compare
    done: threading.Event = field(default_factory=threading.Event)

    def connect(self, client_id: str, port: int) -> paho.Client:
        # No window, as the gateway's link: with one full, paho walks the messages in flight
        # on every PUBACK to find the next queued one (measured: half the rate at 1000).
        c = client(client_id, port, persistent=True, manual_ack=True, max_inflight=0)
        no_delay(c)  # as the gateway's link does
        c.on_message = self.handle
        c.on_publish = self.confirmed
        return c

    def handle(self, c: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        report = orjson.loads(message.payload)
        device_id = message.topic.split("/")[2]
        ack = {"report_id": report["report_id"], "status": "accepted", "case_no": CASE_NO}
        c.publish(terminal.ack_topic(device_id), orjson.dumps(ack), qos=1)
        bus = terminal.normalized_topic(report["kind"], report["class_code"])
        c.publish(bus, message.payload, qos=1)
        c.ack(message.mid, message.qos)
        self.counts[0] += 1

    def confirmed(self, *_: Any) -> None:
        self.counts[1] += 1
        self.finished_at = time.time()
        if self.expected is not None and self.counts[1] == 2 * self.expected:
            self.done.set()


def floor_rates(reports: int, elapsed: float, cpu: float, broker_cpu: float) -> dict[str, float]:
    return {
        "rate": reports / elapsed,
        "cpu_us_per_report": cpu / reports * 1e6,
        "broker_cpu_us_per_report": broker_cpu / reports * 1e6,
    }


def floor_one_process_round(
    port: int, messages: list[tuple[str, bytes]], broker_pid: int
) -> dict[str, float]:
    """The floor in this process: one connection, paho's loop thread doing all of it."""
    client_id = f"bench-floor-{uuid.uuid4().hex[:6]}"
    subscribe_session(port, client_id, REPORT_TOPIC)
    publish_backlog(port, messages)
    floor = Floor([0, 0], expected=len(messages))
    cpu, broker_cpu = cpu_seconds(os.getpid()), cpu_seconds(broker_pid)
    start = time.time()
    consumer = floor.connect(client_id, port)
    consumer.loop_start()
    if not floor.done.wait(300):
        raise TimeoutError(f"floor: {list(floor.counts)} of {len(messages)} reports")
    cpu, broker_cpu = cpu_seconds(os.getpid()) - cpu, cpu_seconds(broker_pid) - broker_cpu
    consumer.disconnect()
    consumer.loop_stop()
    end_session(port, client_id)
    return floor_rates(len(messages), floor.finished_at - start, cpu, broker_cpu)


def floor_child(
    client_id: str,
    port: int,
    counts: MutableSequence[int],
    start: Barrier,
    stop: ProcessEvent,
    results: Queue[tuple[float, float, float]],
) -> None:
    """One process of the two-process floor; it cannot know its share, so the parent
    watches `counts` and says when all are done."""
    floor = Floor(counts)
    start.wait(60)  # spawned and imported: the clock runs from here
    started_at, cpu = time.time(), cpu_seconds(os.getpid())
    consumer = floor.connect(client_id, port)
    consumer.loop_start()
    stop.wait(300)
    results.put((started_at, floor.finished_at, cpu_seconds(os.getpid()) - cpu))
    consumer.disconnect()
    consumer.loop_stop()


def floor_two_processes_round(
    port: int, messages: list[tuple[str, bytes]], broker_pid: int
) -> dict[str, float]:
    """The floor on both cores: a process each, the broker splitting the backlog between
    their sessions through a shared subscription (it queues for offline members too)."""
    tag = uuid.uuid4().hex[:6]
    client_ids = [f"bench-floor{n}-{tag}" for n in range(FLOOR_PROCESSES)]
    for client_id in client_ids:
        subscribe_session(port, client_id, f"$share/floor/{REPORT_TOPIC}")
    publish_backlog(port, messages)
    context = multiprocessing.get_context("spawn")
    counts: list[MutableSequence[int]] = [context.RawArray("q", 2) for _ in client_ids]
    start, stop = context.Barrier(len(client_ids) + 1), context.Event()
    results: Queue[tuple[float, float, float]] = context.Queue()
    children = [
        context.Process(target=floor_child, args=(client_id, port, shared, start, stop, results))
        for client_id, shared in zip(client_ids, counts, strict=True)
    ]
    for child in children:
        child.start()
    start.wait(60)
    broker_cpu = cpu_seconds(broker_pid)

    def finished() -> bool:
        received, confirmed = (sum(shared[n] for shared in counts) for n in (0, 1))
        return received == len(messages) and confirmed == 2 * len(messages)

    wait_until(finished, 300, "the floor processes to handle every report")
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    stop.set()
    reported = [results.get(timeout=30) for _ in children]
    for child in children:
        child.join(30)
    for client_id in client_ids:
        end_session(port, client_id)
    elapsed = max(end for _, end, _ in reported) - min(begin for begin, _, _ in reported)
    return floor_rates(len(messages), elapsed, sum(cpu for *_, cpu in reported), broker_cpu)


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
    variants = {"one_process": floor_one_process_round, "two_processes": floor_two_processes_round}
    floors: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
    end_to_end: list[float] = []
    intake: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="cgt-bench-") as scratch,
        Mosquitto(Path(scratch) / "broker") as broker,
    ):
        assert broker.process is not None
        for _ in range(ROUNDS):  # interleaved, so drift in the machine hits all alike
            raw.append(raw_round(broker.port, messages))
            for variant, floor_round in variants.items():
                floors[variant].append(floor_round(broker.port, messages, broker.process.pid))
            rates = gateway_round(broker.url, messages, Path(scratch))
            end_to_end.append(rates["end_to_end"])
            intake.append(rates["inbox_commit"])
            # Else the next subscriber round's backlog is queued for the gateway's session
            # too, and the next gateway round drains twice the reports (half duplicates).
            end_session(broker.port, GATEWAY_CLIENT_ID)
    raw_summary, gateway_summary = summary(raw), summary(end_to_end)
    result: dict[str, Any] = {
        "benchmark": "ingest",
        "reports": REPORTS,
        "rounds": ROUNDS,
        "unit": "reports per second",
        "raw_paho_subscriber": raw_summary,
        "gateway_end_to_end": gateway_summary,
        "gateway_inbox_commit": summary(intake),
        "ratio_end_to_end_to_raw": gateway_summary["median"] / raw_summary["median"],
    }
    for variant, samples in floors.items():
        # rate in reports/s; CPU of the floor's process(es) and of Mosquitto while it drains
        measured = {key: summary([sample[key] for sample in samples]) for key in samples[0]}
        rate = measured["rate"]["median"]
        result[f"floor_{variant}"] = measured
        result[f"ratio_floor_{variant}_to_raw"] = rate / raw_summary["median"]
        result[f"ratio_end_to_end_to_floor_{variant}"] = gateway_summary["median"] / rate
    write("ingest", result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
