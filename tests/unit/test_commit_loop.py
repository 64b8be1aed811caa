"""The intake loop: PUBACK only after the commit; a failing commit is retried, not acked."""

from __future__ import annotations

import threading
import time
from typing import Any

from gateway import logs
from gateway.harness.gateway_process import wait_until
from gateway.protocols.payloads import WireLimits
from gateway.runtime.commit_loop import CommitLoop
from gateway.runtime.intake import Arrived, Downlink
from gateway.store.settings import StoreSettings
from gateway.transports.mqtt import Received


class FakeLink:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.published: list[tuple[str, bytes]] = []

    def ack(self, message: Received) -> None:
        self.acked.append(message.mid)

    def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        self.published.append((topic, payload))


class FlakyIntake:
    """Fails its first `failures` commits, then records what it was given."""

    def __init__(self, failures: int, link: FakeLink) -> None:
        self.failures = failures
        self.link = link
        self.committed: list[Arrived] = []
        self.acked_before_commit: list[int] = []

    def apply(self, batch: list[Arrived]) -> list[Downlink]:
        self.acked_before_commit.extend(self.link.acked)
        if self.failures:
            self.failures -= 1
            raise OSError("database or disk is full")
        self.committed.extend(batch)
        return [Downlink("cgt/v1/tz-1/error", b"{}")]


def message(mid: int, payload: bytes = b"x") -> Received:
    return Received("cgt/v1/tz-1/media/0b7e4c1a-2d3f-4e5a-8b9c-0d1e2f3a4b5c/0", payload, mid, 1, 1)


def make_loop(intake: FlakyIntake, link: FakeLink, **settings: Any) -> CommitLoop:
    return CommitLoop(intake, link, WireLimits(), StoreSettings(**settings), logs.get("test"))  # type: ignore[arg-type]


def test_acks_follow_the_commit_and_a_failed_commit_is_retried() -> None:
    link = FakeLink()
    intake = FlakyIntake(failures=2, link=link)
    loop = make_loop(intake, link, commit_linger_ms=50)
    loop.start()
    for mid in range(1, 6):
        loop.submit(message(mid))
    wait_until(lambda: len(link.acked) == 5, 10, "five acks")
    loop.stop()
    assert intake.acked_before_commit == []  # nothing was acked while commits failed
    assert [a.event.seq for a in intake.committed] == [0] * 5  # type: ignore[union-attr]
    assert link.acked == [1, 2, 3, 4, 5]
    # each committed batch's downlinks went out after its acks
    assert link.published
    assert set(link.published) == {("cgt/v1/tz-1/error", b"{}")}


def test_a_full_queue_makes_the_network_thread_wait() -> None:
    link = FakeLink()
    intake = FlakyIntake(failures=1000, link=link)  # the store is down
    loop = make_loop(intake, link, intake_queue_bytes=1000, commit_batch=1)
    loop.start()
    loop.submit(message(1, b"a" * 600))  # taken into the failing batch
    loop.submit(message(2, b"b" * 600))  # queued
    blocked = threading.Thread(target=loop.submit, args=(message(3, b"c" * 600),), daemon=True)
    blocked.start()
    time.sleep(0.3)
    assert blocked.is_alive(), "submit must wait while the queue is over its byte bound"
    intake.failures = 0  # the store comes back
    blocked.join(10)
    assert not blocked.is_alive()
    wait_until(lambda: len(link.acked) == 3, 10, "three acks")
    loop.stop()
