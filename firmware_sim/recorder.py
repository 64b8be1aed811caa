"""Record terminal traffic from a broker into a capture (`firmware-sim record`).

One MQTT 5 connection subscribed to every uplink topic of wire-v1. Retained messages
the broker holds from before are not sent to us (retain handling 2): a capture is what
happened while it ran. Live messages keep their retain flag (retain-as-published), so a
replay republishes a terminal's status as retained, as the terminal did.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from firmware_sim.capture import CaptureWriter, parse_uplink_topic
from firmware_sim.identity import Login
from firmware_sim.link import BrokerUrl

_KINDS = ("report", "media", "status", "track")
UPLINK_FILTERS = ("cgt/v1/+/report", "cgt/v1/+/media/#", "cgt/v1/+/status", "cgt/v1/+/track")


@dataclass(frozen=True, slots=True)
class RecordSettings:
    broker: BrokerUrl
    login: Login = field(default_factory=Login)  # an account that may read every uplink
    devices: str = "*"  # a glob over device ids, e.g. "sim-*"
    seconds: float | None = None  # None: until stopped
    connect_timeout_s: float = 10.0


@dataclass(slots=True)
class RecordCounts:
    kinds: Counter[str] = field(default_factory=Counter)  # recorded, by uplink kind
    other_devices: int = 0  # not matching --devices
    not_uplinks: int = 0  # matched a filter but are no wire-v1 uplink (a bad chunk topic)

    @property
    def recorded(self) -> int:
        return sum(self.kinds.values())

    def format(self, path: Path, duration_s: float) -> str:
        kinds = "  ".join(f"{kind} {self.kinds[kind]}" for kind in _KINDS)
        return "\n".join(
            [
                f"recorded      {self.recorded} messages in {duration_s:.1f} s to {path}",
                f"  {kinds}",
                f"skipped       {self.other_devices} of other devices, "
                f"{self.not_uplinks} not wire-v1 uplinks",
            ]
        )


def record_file(
    path: Path, settings: RecordSettings, counts: RecordCounts, on_ready: Callable[[], None]
) -> None:
    """Record into `path` until Ctrl-C (SIGINT), SIGTERM or `settings.seconds`."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        with path.open("wb") as out:
            writer = CaptureWriter(out, source=f"firmware-sim record {settings.broker}")
            await record(settings, writer, out, stop, counts, on_ready)

    asyncio.run(main())


async def record(
    settings: RecordSettings,
    writer: CaptureWriter,
    out: IO[bytes],
    stop: asyncio.Event,
    counts: RecordCounts,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Record until `stop` is set or `settings.seconds` pass; raises `aiomqtt.MqttError`
    if the broker cannot be reached or the connection drops (what was written stays)."""
    async with _client(settings) as client:
        options = SubscribeOptions(
            qos=1, retainAsPublished=True, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND
        )
        await client.subscribe(
            [(topic, options) for topic in UPLINK_FILTERS], timeout=settings.connect_timeout_s
        )
        on_ready()
        consume = asyncio.create_task(
            _consume(client, settings, writer, out, counts), name="consume"
        )
        stopped = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait(
                (consume, stopped), timeout=settings.seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (consume, stopped):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # re-raises the consumer's failure (a dropped connection)


def _client(settings: RecordSettings) -> aiomqtt.Client:
    return aiomqtt.Client(
        settings.broker.host,
        settings.broker.port,
        identifier=f"cgt-record-{uuid.uuid4().hex[:12]}",
        username=settings.login.username,
        password=settings.login.password,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=settings.connect_timeout_s,
        tls_context=settings.login.tls_context() if settings.broker.tls else None,
    )


async def _consume(
    client: aiomqtt.Client,
    settings: RecordSettings,
    writer: CaptureWriter,
    out: IO[bytes],
    counts: RecordCounts,
) -> None:
    async for message in client.messages:
        topic = message.topic.value
        uplink = parse_uplink_topic(topic)
        if uplink is None:
            counts.not_uplinks += 1
            continue
        if not fnmatch.fnmatchcase(uplink.device_id, settings.devices):
            counts.other_devices += 1
            continue
        writer.write(topic, _bytes(message.payload), message.retain)
        out.flush()  # a capture cut short (power, kill -9) keeps every line written
        counts.kinds[uplink.kind] += 1


def _bytes(payload: object) -> bytes:
    """aiomqtt hands over bytes for everything we receive; the rest is for its types."""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
