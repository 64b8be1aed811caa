"""Real parts for integration tests: the gateway as a process, a terminal, a backend."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from tests.factories import Upload, encode


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@dataclass
class GatewayProcess:
    """`gateway run` as operators start it, logging JSON lines to a file."""

    data_dir: Path
    broker_url: str
    config: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self, timeout_s: float = 20) -> GatewayProcess:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "gateway", "run", "--broker", self.broker_url,
                   "--data-dir", str(self.data_dir)]  # fmt: skip
        if self.config is not None:
            command += ["--config", str(self.config)]
        before = len(self.log_lines())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stderr=log, stdout=log, env=os.environ | self.env
            )
        self.starts += 1
        wait_until(
            lambda: (
                self._started_since(before)
                or self.process is None
                or self.process.poll() is not None
            ),
            timeout_s,
            "the gateway to subscribe",
        )
        if self.process.poll() is not None:
            raise AssertionError(
                f"gateway exited {self.process.returncode}: {self.log_path.read_text()}"
            )
        return self

    def _started_since(self, before: int) -> bool:
        events = [line.get("event") for line in self.log_lines()[before:]]
        return "mqtt.subscribed" in events and "pipeline.started" in events

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        lines = []
        for raw in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"event": "<not json>", "text": raw})
        return lines

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def cases(self) -> list[tuple[str, str]]:
        """(report_id, case_no) rows of the SQLite registry."""
        path = self.data_dir / "registry.db"
        if not path.exists():
            return []
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT report_id, case_no FROM cases ORDER BY id").fetchall()


class Client:
    """A paho client that collects what it receives."""

    def __init__(self, url: str, client_id: str, subscriptions: list[str], **tls: Any) -> None:
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, m.payload))
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
    """A minimal terminal: chunks first, then the envelope; collects acks and errors."""

    def __init__(self, url: str, device_id: str) -> None:
        self.device_id = device_id
        super().__init__(
            url,
            f"{device_id}-{uuid.uuid4().hex[:6]}",
            [f"cgt/v1/{device_id}/ack", f"cgt/v1/{device_id}/error"],
        )
        self.acks: dict[str, list[dict[str, Any]]] = {}
        self.errors: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any], uploads: list[Upload] = ()) -> None:  # type: ignore[assignment]
        for upload in uploads:
            for seq, data in enumerate(upload.chunks):
                self.publish(upload.chunk_topic(self.device_id, seq), data)
        self.publish(f"cgt/v1/{self.device_id}/report", encode(body))

    def pump(self) -> None:
        while True:
            try:
                topic, payload = self.received.get_nowait()
            except queue.Empty:
                return
            message = json.loads(payload)
            if topic.endswith("/error"):
                self.errors.append(message)
            else:
                self.acks.setdefault(message["report_id"], []).append(message)

    def final(self, report_id: str) -> dict[str, Any] | None:
        self.pump()
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
