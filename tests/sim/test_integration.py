"""The simulator against a real Mosquitto and the real gateway, in this process."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import aiomqtt
import orjson
import pytest
from PIL import Image

from firmware_sim import wire
from firmware_sim.fleet import FleetSettings, run_fleet
from firmware_sim.link import BrokerUrl, LinkSettings, MqttLink, UplinkSource
from firmware_sim.outcomes import Outcome, Progress
from firmware_sim.reports import CHINA_TIME, MediaKit, ReportPlanner, compose, load_codes
from firmware_sim.terminal import Terminal, TerminalSettings
from firmware_sim.wire import Uplink
from tests.sim.conftest import Stack

pytestmark = pytest.mark.integration

EXTENSIONS = {"image/jpeg": ".jpg", "audio/amr": ".amr"}


def test_three_terminals_two_reports_each_all_accepted(stack: Stack) -> None:
    settings = FleetSettings(
        broker=stack.broker_url,
        terminals=3,
        reports_per_terminal=2,
        seed=11,
        ack_timeout_s=15,
        photo_pool=2,
        progress_interval_s=0.2,
    )
    seen: list[Progress] = []
    summary = run_fleet(settings, seen.append)

    assert summary.all_accepted, [o for o in summary.outcomes if o.status != "accepted"]
    assert (summary.sent, summary.accepted, summary.rejected, summary.queued) == (6, 6, 0, 0)
    case_numbers = {o.case_no for o in summary.outcomes}
    assert None not in case_numbers
    assert len(case_numbers) == 6
    assert summary.latency_p50_ms is not None
    assert summary.latency_p95_ms is not None
    assert seen[-1].accepted == 6
    for outcome in summary.outcomes:
        assert outcome.media[0].kind == "photo"
        for media in outcome.media:
            key = f"originals/sha256/{media.sha256[:2]}/{media.sha256}{EXTENSIONS[media.mime]}"
            original = (stack.objects_dir / key).read_bytes()
            assert hashlib.sha256(original).hexdigest() == media.sha256
            if media.kind == "photo":
                assert Image.open(io.BytesIO(original)).size == settings.photo_size
    # Each terminal said goodbye: its retained status is offline.
    statuses = asyncio.run(retained(stack.broker_url, "cgt/v1/+/status", 3))
    assert statuses == {f"cgt/v1/sim-000{i}/status": {"online": False} for i in (1, 2, 3)}


async def retained(url: str, topic: str, count: int) -> dict[str, Any]:
    broker = BrokerUrl.parse(url)
    found: dict[str, Any] = {}
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                found[message.topic.value] = orjson.loads(message.payload)
                if len(found) == count:
                    break
    return found


class Lossy:
    """A radio that loses chosen uplinks (the terminal believes they went out)."""

    def __init__(self, link: MqttLink, lose: Callable[[Uplink], bool]) -> None:
        self.link = link
        self.lose = lose
        self.lost: list[Uplink] = []

    async def publish(self, message: Uplink) -> None:
        if self.lose(message):
            self.lost.append(message)
        else:
            await self.link.publish(message)

    async def publish_all(self, sources: Iterable[UplinkSource]) -> None:
        for source in sources:
            await self.publish(source())


async def one_report(
    stack: Stack,
    kit: MediaKit,
    device_id: str,
    lose: Callable[[Uplink], bool],
    drop_downlink: Callable[[str, bytes], bool],
) -> Outcome:
    """One terminal, one report, through a lossy uplink and a lossy downlink."""
    terminal: Terminal | None = None

    def deliver(topic: str, payload: bytes) -> None:
        if terminal is not None and not drop_downlink(topic, payload):
            terminal.on_downlink(topic, payload)

    link = MqttLink(
        device_id,
        LinkSettings(BrokerUrl.parse(stack.broker_url)),
        subscriptions=wire.downlink_subscriptions(device_id),
        on_message=deliver,
    )
    # Long enough for the gateway's first photo (its media workers start on demand).
    settings = TerminalSettings(chunk_bytes=16384, ack_timeout_s=4.0)
    terminal = Terminal(device_id, Lossy(link, lose), settings)
    rng = random.Random(device_id)
    plan = ReportPlanner(load_codes(), rng).next(datetime.now(CHINA_TIME))
    link.start()
    try:
        assert await link.wait_connected(10)
        return await terminal.submit(compose(plan, kit, "INS-0001", 16384, rng))
    finally:
        await link.close()


def test_missing_chunks_are_asked_for_and_resent(stack: Stack, small_kit: MediaKit) -> None:
    lost: list[Uplink] = []

    def lose_chunk_1_once(message: Uplink) -> bool:
        if "/media/" in message.topic and message.topic.endswith("/1") and not lost:
            lost.append(message)
            return True
        return False

    outcome = asyncio.run(one_report(stack, small_kit, "lossy-up", lose_chunk_1_once, never))
    assert len(lost) == 1
    assert outcome.status == "accepted", outcome
    assert outcome.resends == 1  # the gateway said `incomplete`; exactly that chunk went again


def test_a_lost_ack_is_recovered_by_asking_again(stack: Stack, small_kit: MediaKit) -> None:
    dropped: list[dict[str, Any]] = []

    def drop_first_accepted(topic: str, payload: bytes) -> bool:
        body = orjson.loads(payload)
        if topic.endswith("/ack") and body.get("status") == "accepted" and not dropped:
            dropped.append(body)
            return True
        return False

    outcome = asyncio.run(one_report(stack, small_kit, "lossy-down", never, drop_first_accepted))
    assert outcome.status == "accepted", outcome
    assert outcome.published == 2  # silence, so the same report again: "where does it stand?"
    assert outcome.case_no == dropped[0]["case_no"]  # and the same case, never a second one


def never(*_: object) -> bool:
    return False
