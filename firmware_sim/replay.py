"""Replay a capture against a broker: one MQTT connection per device, the capture's pace.

Each device id of the capture gets its own `MqttLink` (client id = the device id, as a
terminal's), subscribed to its downlinks before anything is published, so no answer is
missed. Messages go out in capture order: the first at once, the others paced by their
`t` divided by `speed` (speed 0: as fast as the broker confirms them), at most `window`
unconfirmed at a time. After the last one, the replay waits up to `timeout_s` for a
final answer to every report.

    result = asyncio.run(replay(records, ReplaySettings(broker="mqtt://127.0.0.1:1883")))
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_sim import wire
from firmware_sim.answers import Answers
from firmware_sim.capture import CaptureHeader, CaptureReader, CaptureRecord, fresh_ids
from firmware_sim.downlink import parse_downlink
from firmware_sim.identity import Identity
from firmware_sim.link import BrokerUrl, LinkError, LinkSettings, MqttLink

_SHOWN_REPORTS = 20  # reports listed in the text summary; --json has all


class ReplayError(Exception):
    """The replay could not start (a device could not connect)."""


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    broker: str
    speed: float = 1.0  # 1: the capture's timing; 2: twice as fast; 0: no pauses
    identity: Identity = field(default_factory=Identity)  # how each device logs in
    timeout_s: float = 30.0  # after the last publish, for the final answers
    connect_timeout_s: float = 10.0
    publish_timeout_s: float = 60.0
    window: int = 16  # messages unconfirmed at once, across devices

    def __post_init__(self) -> None:
        BrokerUrl.parse(self.broker)
        if self.speed < 0 or min(self.timeout_s, self.connect_timeout_s) <= 0 or self.window < 1:
            raise ValueError("speed must be >= 0, timeouts > 0 and the window >= 1")

    def link_settings(self, device_id: str) -> LinkSettings:
        return LinkSettings.for_device(self, device_id)

    def public(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "speed": self.speed,
            **self.identity.public(),
            "timeout_s": self.timeout_s,
            "window": self.window,
        }


@dataclass(slots=True)
class ReplayResult:
    answers: Answers
    published: int = 0
    failed: list[str] = field(default_factory=list)  # publishes never confirmed, why
    duration_s: float = 0.0
    waited_s: float = 0.0  # after the last publish

    def to_json(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "failed_publishes": self.failed,
            "duration_s": round(self.duration_s, 3),
            "waited_s": round(self.waited_s, 3),
            **self.answers.to_json(),
        }


async def replay(records: Sequence[CaptureRecord], settings: ReplaySettings) -> ReplayResult:
    result = ReplayResult(Answers.of(records))
    answered = asyncio.Event()
    loop = asyncio.get_running_loop()
    links = {
        device_id: _link(device_id, settings, result.answers, answered)
        for device_id in dict.fromkeys(record.uplink.device_id for record in records)
    }
    started = loop.time()
    try:
        for link in links.values():
            link.start()
        await _connected(links, settings.connect_timeout_s)
        await _publish(records, links, settings, result)
        last_publish = loop.time()
        if result.answers.all_final:
            answered.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answered.wait(), settings.timeout_s)
        result.waited_s = loop.time() - last_publish
    finally:
        await asyncio.gather(*(link.close() for link in links.values()))
    result.duration_s = loop.time() - started
    return result


def _link(
    device_id: str, settings: ReplaySettings, answers: Answers, answered: asyncio.Event
) -> MqttLink:
    def on_message(topic: str, payload: bytes) -> None:
        answers.on_downlink(parse_downlink(topic, payload))
        if answers.all_final:
            answered.set()

    # No birth and no will: the capture holds the terminal's own status messages.
    return MqttLink(
        device_id,
        settings.link_settings(device_id),
        subscriptions=wire.downlink_subscriptions(device_id),
        on_message=on_message,
    )


async def _connected(links: dict[str, MqttLink], timeout_s: float) -> None:
    ups = await asyncio.gather(*(link.wait_connected(timeout_s) for link in links.values()))
    down = [link for link, up in zip(links.values(), ups, strict=True) if not up]
    if down:
        details = ", ".join(f"{link.client_id} ({link.last_error or 'no answer'})" for link in down)
        raise ReplayError(f"not connected within {timeout_s:g} s: {details}")


async def _publish(
    records: Sequence[CaptureRecord],
    links: dict[str, MqttLink],
    settings: ReplaySettings,
    result: ReplayResult,
) -> None:
    loop = asyncio.get_running_loop()
    window = asyncio.Semaphore(settings.window)
    # Paced from the first message: the quiet before it (a recorder waiting) is no traffic.
    started = loop.time() - (records[0].t / settings.speed if records and settings.speed else 0)

    async def one(record: CaptureRecord) -> None:
        try:
            await links[record.uplink.device_id].publish(
                wire.Uplink(record.topic, record.payload, record.retain)
            )
            result.published += 1
        except LinkError as error:
            result.failed.append(str(error))
        finally:
            window.release()

    async with asyncio.TaskGroup() as group:
        for record in records:
            if settings.speed > 0:
                await asyncio.sleep(started + record.t / settings.speed - loop.time())
            # Tasks start in creation order, so one device's messages leave in capture
            # order; the broker keeps that order per connection.
            await window.acquire()
            group.create_task(one(record), name=record.topic)


# ---- for the command line ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedCapture:
    path: Path
    header: CaptureHeader
    records: list[CaptureRecord]  # held in memory: every envelope is read before the first publish
    fresh_ids: bool

    @property
    def devices(self) -> list[str]:
        return list(dict.fromkeys(record.uplink.device_id for record in self.records))

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "started_at": self.header.started_at,
            "source": self.header.source,
            "messages": len(self.records),
            "devices": len(self.devices),
            "fresh_ids": self.fresh_ids,
        }


def load(path: Path, *, fresh: bool) -> LoadedCapture:
    """Read and check the whole capture; raises `CaptureError` or `OSError`."""
    with path.open("rb") as stream:
        reader = CaptureReader(stream)
        records = list(reader)
    return LoadedCapture(path, reader.header, list(fresh_ids(records)) if fresh else records, fresh)


def run(capture: LoadedCapture, settings: ReplaySettings) -> ReplayResult:
    return asyncio.run(replay(capture.records, settings))


def format_result(capture: LoadedCapture, settings: ReplaySettings, result: ReplayResult) -> str:
    answers = result.answers
    statuses = "  ".join(
        f"{status} {count}" for status, count in sorted(answers.statuses().items())
    )
    ids = "fresh ids" if capture.fresh_ids else "recorded ids"
    lines = [
        f"capture       {capture.path}: {len(capture.records)} messages, "
        f"{len(capture.devices)} devices, {len(answers.reports)} reports",
        f"              started {capture.header.started_at}, from {capture.header.source}",
        f"replayed      {result.published} messages in {result.duration_s:.1f} s "
        f"(speed {settings.speed:g}, {ids})",
        f"failed        {len(result.failed)} publishes",
        f"reports       {statuses or '-'}",
        f"no answer     {len(answers.pending)} (waited {result.waited_s:.1f} s)",
    ]
    if answers.errors:
        codes = "  ".join(f"{code} {n}" for code, n in sorted(answers.errors.items()))
        lines.append(f"errors        {codes}")
    for report in list(answers.reports.values())[:_SHOWN_REPORTS]:
        case_nos = ", ".join(report.case_nos) or "-"
        reason = f"  {report.reason}" if report.reason else ""
        lines.append(
            f"  {report.status or 'none':10} {report.device_id} {report.report_id} "
            f"{case_nos}{reason}"
        )
    if len(answers.reports) > _SHOWN_REPORTS:
        lines.append(f"  ... and {len(answers.reports) - _SHOWN_REPORTS} more (see --json)")
    verdict = "every report answered" if answers.all_final else "NOT every report answered"
    lines.append(f"result        {verdict}")
    return "\n".join(lines)
