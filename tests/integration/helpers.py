"""Real parts for integration tests: a terminal and a backend (the gateway process is
`gateway.process.GatewayProcess`)."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.process import GatewayProcess, wait_until
from tests.factories import Upload, encode

__all__ = ["Client", "GatewayProcess", "Terminal", "wait_until"]


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
    ) -> None:
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        self.received: queue.Queue[tuple[str, bytes | bytearray]] = queue.Queue()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, m.payload))
        if username is not None:
            self.client.username_pw_set(username, password)
        subscribed = queue.Queue[int]()
        self.client.on_subscribe = lambda c, u, mid, rc, p: subscribed.put(mid)
        self.client.connect(host, int(port))
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

    def __init__(self, url: str, device_id: str, password: str | None = None) -> None:
        """With a password, it logs in as the device (username = device id)."""
        self.device_id = device_id
        super().__init__(
            url,
            f"{device_id}-{uuid.uuid4().hex[:6]}",
            [f"cgt/v1/{device_id}/{name}" for name in ("ack", "error", "task")],
            username=device_id if password is not None else None,
            password=password,
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
