"""A fleet of simulated terminals in one event loop: N terminals, K reports each.

Every terminal is a coroutine with its own MQTT connection; nothing here starts a
thread per terminal, so one process on one core drives a large fleet. The media
they send are cut from one shared `MediaKit`, encoded once at start-up.

    summary = run_fleet(FleetSettings(broker="mqtt://127.0.0.1:1883", terminals=3,
                                      reports_per_terminal=2), on_progress=print)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path

from firmware_sim import wire
from firmware_sim.downlink import Reason
from firmware_sim.link import BrokerUrl, LinkSettings, MqttLink
from firmware_sim.outcomes import Outcome, Progress, Summary, Tally
from firmware_sim.photo import PHONE_SIZE, PhotoPool
from firmware_sim.reports import (
    CHINA_TIME,
    ClassCode,
    MediaKit,
    ReportPlanner,
    compose,
    load_codes,
)
from firmware_sim.terminal import Terminal, TerminalSettings
from firmware_sim.voice import VoiceBank

FIRMWARE = "cgt-sim 0.1"

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class FleetSettings:
    broker: str = "mqtt://127.0.0.1:1883"
    terminals: int = 1
    reports_per_terminal: int = 1
    device_prefix: str = "sim"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    seed: int | None = None  # content only; report and media ids are always fresh UUID4s
    ack_timeout_s: float = 30.0
    max_attempts: int = 3
    chunk_bytes: int = 64 * 1024
    connect_timeout_s: float = 10.0
    publish_timeout_s: float = 60.0
    publish_window: int = 8  # chunks in flight per terminal
    # Chunks in flight across the fleet: each costs about twice its size in memory until
    # the broker confirms it, so this bounds the process (256 x 64 KiB x 2: ~32 MiB).
    fleet_window: int = 256
    report_interval_s: float = 0.0  # pause between one terminal's reports
    photo_size: tuple[int, int] = PHONE_SIZE
    photo_pool: int = 4  # distinct base pictures; each report's photo is still unique
    voice_share: float = 0.85
    codes_dir: Path | None = None
    progress_interval_s: float = 1.0

    def __post_init__(self) -> None:
        BrokerUrl.parse(self.broker)
        if self.terminals < 1 or self.reports_per_terminal < 0:
            raise ValueError("terminals must be >= 1 and reports per terminal >= 0")
        if not 1 <= self.chunk_bytes <= wire.CHUNK_MAX_BYTES:
            raise ValueError(
                f"chunk_bytes must be 1-{wire.CHUNK_MAX_BYTES} (wire-v1's chunk limit)"
            )
        if min(self.max_attempts, self.publish_window, self.fleet_window, self.photo_pool) < 1:
            raise ValueError("max_attempts, publish_window, fleet_window, photo_pool must be >= 1")
        if min(self.ack_timeout_s, self.connect_timeout_s, self.publish_timeout_s) <= 0:
            raise ValueError("timeouts must be positive")
        if not 0.0 <= self.voice_share <= 1.0:
            raise ValueError("voice_share is a fraction, 0-1")
        for device_id in (self.device_id(0), self.device_id(self.terminals - 1)):
            wire.check_device_id(device_id)

    def public(self) -> dict[str, object]:
        """The settings as recorded with a run's results: everything but the password."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "password"}
        record["codes_dir"] = str(self.codes_dir) if self.codes_dir else None
        return record

    def device_id(self, index: int) -> str:
        width = max(4, len(str(self.terminals)))
        return f"{self.device_prefix}-{index + 1:0{width}d}"

    def link_settings(self) -> LinkSettings:
        return LinkSettings(
            broker=BrokerUrl.parse(self.broker),
            username=self.username,
            password=self.password,
            connect_timeout_s=self.connect_timeout_s,
            publish_timeout_s=self.publish_timeout_s,
            publish_window=self.publish_window,
        )

    def terminal_settings(self) -> TerminalSettings:
        return TerminalSettings(
            chunk_bytes=self.chunk_bytes,
            ack_timeout_s=self.ack_timeout_s,
            max_attempts=self.max_attempts,
        )


def build_kit(settings: FleetSettings, seed: int) -> MediaKit:
    """Encode the shared media once (about 0.2 s per base picture, 0.4 s of voice)."""
    return MediaKit(
        PhotoPool.generate(settings.photo_pool, settings.photo_size, seed),
        VoiceBank.generate(seed=seed),
    )


def run_fleet(settings: FleetSettings, on_progress: ProgressCallback | None = None) -> Summary:
    """Run the fleet to completion in a fresh event loop (for scripts and the CLI)."""
    return asyncio.run(run_fleet_async(settings, on_progress))


async def run_fleet_async(
    settings: FleetSettings,
    on_progress: ProgressCallback | None = None,
    kit: MediaKit | None = None,
) -> Summary:
    """Run the fleet in the running loop. `on_progress` is called about every
    `progress_interval_s` and once at the end; `kit` reuses media encoded earlier."""
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**32)
    loop = asyncio.get_running_loop()
    fleet = _Fleet(
        settings=settings,
        seed=seed,
        codes=load_codes(settings.codes_dir),
        kit=kit or build_kit(settings, seed),
        tally=Tally(settings.terminals, settings.terminals * settings.reports_per_terminal),
        window=asyncio.Semaphore(settings.fleet_window),
    )
    started = loop.time()
    ticker = None
    if on_progress is not None:
        ticker = asyncio.create_task(
            _tick(fleet.tally, on_progress, settings, started), name="progress"
        )
    try:
        async with asyncio.TaskGroup() as group:
            for index in range(settings.terminals):
                group.create_task(_drive(fleet, index), name=settings.device_id(index))
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker  # re-raises a failure of the progress callback
    elapsed = loop.time() - started
    if on_progress is not None:
        on_progress(fleet.tally.progress(elapsed))
    return Summary.of(
        settings.terminals, fleet.tally.planned, fleet.outcomes, round(elapsed, 3), seed
    )


@dataclass(slots=True)
class _Fleet:
    """What the terminals of one run share."""

    settings: FleetSettings
    seed: int
    codes: list[ClassCode]
    kit: MediaKit
    tally: Tally
    window: asyncio.Semaphore  # chunks in flight, fleet-wide
    outcomes: list[Outcome] = field(default_factory=list)


async def _tick(
    tally: Tally, on_progress: ProgressCallback, settings: FleetSettings, started: float
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(settings.progress_interval_s)
        on_progress(tally.progress(loop.time() - started))


async def _drive(fleet: _Fleet, index: int) -> None:
    """One terminal's life: connect, send its reports one after another, say goodbye."""
    settings, tally = fleet.settings, fleet.tally
    device_id = settings.device_id(index)
    # Seeded per device, so a terminal's content does not depend on scheduling order.
    rng = random.Random(f"{fleet.seed}/{device_id}")
    planner = ReportPlanner(fleet.codes, rng, voice_share=settings.voice_share)
    inspector_id = f"INS-{index + 1:04d}"
    terminal: Terminal | None = None

    def deliver(topic: str, payload: bytes) -> None:
        if terminal is not None:
            terminal.on_downlink(topic, payload)

    birth = wire.Status(
        online=True,
        battery_pct=rng.randint(35, 100),
        firmware=FIRMWARE,
        signal_dbm=rng.randint(-105, -55),
    )
    offline = wire.status_message(device_id, wire.Status(online=False))
    link = MqttLink(
        device_id,
        settings.link_settings(),
        subscriptions=wire.downlink_subscriptions(device_id),
        on_message=deliver,
        birth=wire.status_message(device_id, birth),
        will=offline,
        on_state=tally.link_state,
        shared_window=fleet.window,
    )
    terminal = Terminal(
        device_id, link, settings.terminal_settings(), tally, asyncio.get_running_loop().time
    )
    link.start()
    try:
        if not await link.wait_connected(settings.connect_timeout_s):
            reason = Reason("link.unreachable", link.last_error or "no connection in time")
            for _ in range(settings.reports_per_terminal):
                plan = planner.next(datetime.now(CHINA_TIME))
                outcome = Outcome(plan.report_id, device_id, "failed", reason=reason)
                tally.finished(outcome, was_started=False)
                fleet.outcomes.append(outcome)
            return
        for number in range(settings.reports_per_terminal):
            if number and settings.report_interval_s:
                await asyncio.sleep(settings.report_interval_s)
            plan = planner.next(datetime.now(CHINA_TIME))
            report = compose(plan, fleet.kit, inspector_id, terminal.chunk_bytes, rng)
            fleet.outcomes.append(await terminal.submit(report))
    finally:
        await link.close(farewell=offline)
