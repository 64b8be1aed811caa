"""The intake's thread: batch received messages, commit them, then PUBACK and answer.

paho's network thread only enqueues (`submit`). This thread takes what has arrived (up
to a batch, waiting at most `commit_linger_ms` for stragglers), decodes it, applies it
in one transaction, and only then acknowledges each message to the broker. The queue is
bounded in bytes: when it is full the network thread waits, the broker stops sending
(its in-flight window is full), and memory stays flat.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from datetime import UTC, datetime

from structlog.typing import FilteringBoundLogger

from gateway.protocols.payloads import WireLimits
from gateway.protocols.terminal import decode_uplink
from gateway.runtime.intake import Arrived, Downlink, Intake
from gateway.store.db import is_conflict
from gateway.store.settings import StoreSettings
from gateway.transports.mqtt import MqttLink, Received

# A batch rolled back this many times in a row for conflicts is treated as any failure.
MAX_CONFLICT_RETRIES = 20


class CommitLoop:
    def __init__(
        self,
        intake: Intake,
        link: MqttLink,
        limits: WireLimits,
        settings: StoreSettings,
        log: FilteringBoundLogger,
    ) -> None:
        self.intake = intake
        self.link = link
        self.limits = limits
        self.settings = settings
        self.log = log
        self._queue: deque[tuple[Received, float]] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="intake-commit", daemon=True)
        self.committed = 0  # messages made durable since start, for progress and tests

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def submit(self, message: Received) -> None:
        """Called on paho's thread for every message."""
        size = len(message.payload)
        with self._cond:
            while self._queued_bytes + size > self.settings.intake_queue_bytes and self._queue:
                self._cond.wait()
            self._queue.append((message, time.time()))
            self._queued_bytes += size
            self._cond.notify_all()

    def _take(self) -> list[tuple[Received, float]]:
        limit, byte_limit = self.settings.commit_batch, self.settings.commit_batch_bytes
        linger = self.settings.commit_linger_ms / 1000
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            deadline = time.monotonic() + linger
            while len(self._queue) < limit and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    break
            batch: list[tuple[Received, float]] = []
            size = 0
            while self._queue and len(batch) < limit and (size < byte_limit or not batch):
                message, at = self._queue.popleft()
                size += len(message.payload)
                batch.append((message, at))
            self._queued_bytes -= size
            self._cond.notify_all()
        return batch

    def _commit(self, arrived: list[Arrived]) -> list[Downlink]:
        """Apply the batch, retrying until the store takes it (a full disk, a locked file).

        Nothing is acknowledged meanwhile: the broker holds the rest, the queue fills, the
        network thread waits, and intake resumes where it stopped once the store is back."""
        pause = 0.5
        conflicts = 0
        while True:
            try:
                return self.intake.apply(arrived)
            except Exception as error:
                if is_conflict(error) and conflicts < MAX_CONFLICT_RETRIES:
                    # Another instance's batch touched the same rows (a shared inbox):
                    # the server chose ours to roll back. Nothing was acknowledged: again.
                    conflicts += 1
                    self.log.info("intake.commit_conflict", error=str(error), attempt=conflicts)
                    time.sleep(random.uniform(0.001, 0.02))  # noqa: S311 - jitter
                    continue
                self.log.exception("intake.commit_failed", messages=len(arrived), retry_in_s=pause)
                time.sleep(pause)
                pause = min(pause * 2, 30.0)

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return  # stopping, and nothing left
            arrived = [
                Arrived(
                    decode_uplink(message.topic, message.payload, self.limits),
                    datetime.fromtimestamp(at, UTC).isoformat(),
                )
                for message, at in batch
            ]
            downlinks = self._commit(arrived)
            for message, _ in batch:
                self.link.ack(message)
            for downlink in downlinks:
                self.link.publish(downlink.topic, downlink.payload)
            self.committed += len(batch)
