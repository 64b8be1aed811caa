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
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from firmware_sim import wire
from firmware_sim.duty import Duty, DutySettings
from firmware_sim.faults import FaultCounts, FaultDice, Faults
from firmware_sim.gps import WALKING_MPS
from firmware_sim.identity import Identity
from firmware_sim.link import BrokerUrl, LinkSettings, MqttLink
from firmware_sim.outcomes import Progress, Summary, Tally
from firmware_sim.photo import PHONE_SIZE, PhotoPool
from firmware_sim.queue import BlobStore, ReportQueue
from firmware_sim.reports import ClassCode, MediaKit, ReportPlanner, load_codes
from firmware_sim.routes import Road, Walk, load_roads
from firmware_sim.terminal import Terminal, TerminalSettings
from firmware_sim.voice import VoiceBank

FIRMWARE = "cgt-sim 0.2"
CYCLING_MPS = 4.0

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class FleetSettings:
    broker: str = "mqtt://127.0.0.1:1883"
    terminals: int = 1
    # None: as many as the duration brings, or 1 without a duration
    reports_per_terminal: int | None = None
    duration_s: float | None = None  # on patrol this long; None: the K reports back to back
    reports_per_hour: float = 12.0  # per terminal, on patrol
    device_prefix: str = "sim"
    identity: Identity = field(default_factory=Identity)  # how each terminal logs in
    seed: int | None = None  # content only; report and media ids are always fresh UUID4s
    queue_dir: Path | None = None  # None: a temporary queue, gone with the run
    ack_timeout_s: float = 30.0
    max_attempts: int = 3  # envelope publications per try; the queue tries again later
    chunk_bytes: int = 64 * 1024
    connect_timeout_s: float = 10.0
    publish_timeout_s: float = 60.0
    publish_window: int = 8  # chunks in flight per terminal
    # Chunks in flight across the fleet: each costs about twice its size in memory until
    # the broker confirms it, so this bounds the process (256 x 64 KiB x 2: ~32 MiB).
    fleet_window: int = 256
    report_interval_s: float = 0.0  # pause between one terminal's reports, back to back
    drain_s: float = 60.0  # after the last report: stop once no terminal is answered this long
    track_interval_s: float = 30.0  # on patrol: a `track` of 1 Hz fixes this often
    retry_min_s: float = 2.0  # a queued report's next try, doubling up to retry_max_s
    retry_max_s: float = 60.0
    task_travel_max_s: float = 60.0  # walking to a task's place takes at most this
    cycling_share: float = 0.3  # inspectors on bicycles; the rest walk
    photo_size: tuple[int, int] = PHONE_SIZE
    photo_pool: int = 4  # distinct base pictures; each report's photo is still unique
    voice_share: float = 0.85
    codes_dir: Path | None = None
    progress_interval_s: float = 1.0
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        BrokerUrl.parse(self.broker)
        if self.terminals < 1:
            raise ValueError("terminals must be >= 1")
        if self.reports_per_terminal is None and self.duration_s is None:
            object.__setattr__(self, "reports_per_terminal", 1)  # frozen: set once, here
        if self.reports_per_terminal is not None and self.reports_per_terminal < 0:
            raise ValueError("reports per terminal must be >= 0")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("the duration must be positive")
        if not 1 <= self.chunk_bytes <= wire.CHUNK_MAX_BYTES:
            raise ValueError(
                f"chunk_bytes must be 1-{wire.CHUNK_MAX_BYTES} (wire-v1's chunk limit)"
            )
        if min(self.max_attempts, self.publish_window, self.fleet_window, self.photo_pool) < 1:
            raise ValueError("max_attempts, publish_window, fleet_window, photo_pool must be >= 1")
        positive = (
            self.ack_timeout_s, self.connect_timeout_s, self.publish_timeout_s, self.drain_s,
            self.track_interval_s, self.retry_min_s, self.reports_per_hour,
        )  # fmt: skip
        if min(positive) <= 0:
            raise ValueError("timeouts, intervals and rates must be positive")
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        if not (0.0 <= self.voice_share <= 1.0 and 0.0 <= self.cycling_share <= 1.0):
            raise ValueError("voice_share and cycling_share are fractions, 0-1")
        for device_id in (self.device_id(0), self.device_id(self.terminals - 1)):
            wire.check_device_id(device_id)

    def public(self) -> dict[str, object]:
        """The settings as recorded with a run's results: everything but the passwords."""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["identity"] = self.identity.public()
        record["codes_dir"] = str(self.codes_dir) if self.codes_dir else None
        record["queue_dir"] = str(self.queue_dir) if self.queue_dir else None
        record["faults"] = self.faults.to_json()
        return record

    def device_id(self, index: int) -> str:
        width = max(4, len(str(self.terminals)))
        return f"{self.device_prefix}-{index + 1:0{width}d}"

    def link_settings(self, device_id: str) -> LinkSettings:
        # A terminal resumes its broker session: tasks queued while it was away arrive.
        return LinkSettings.for_device(
            self, device_id, publish_window=self.publish_window, clean_first=False
        )

    def terminal_settings(self) -> TerminalSettings:
        return TerminalSettings(
            chunk_bytes=self.chunk_bytes,
            ack_timeout_s=self.ack_timeout_s,
            max_attempts=self.max_attempts,
        )

    def duty_settings(self) -> DutySettings:
        return DutySettings(
            reports_per_terminal=self.reports_per_terminal,
            duration_s=self.duration_s,
            reports_per_hour=self.reports_per_hour,
            report_interval_s=self.report_interval_s,
            drain_s=self.drain_s,
            track_interval_s=self.track_interval_s,
            retry_min_s=self.retry_min_s,
            retry_max_s=self.retry_max_s,
            task_travel_max_s=self.task_travel_max_s,
            connect_timeout_s=self.connect_timeout_s,
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
    with contextlib.ExitStack() as stack:
        queue_dir = settings.queue_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="firmware-sim-"))
        )
        fleet = _Fleet(
            settings=settings,
            seed=seed,
            codes=load_codes(settings.codes_dir),
            roads=load_roads(),
            kit=kit or build_kit(settings, seed),
            tally=Tally(settings.terminals),
            window=asyncio.Semaphore(settings.fleet_window),
            blobs=BlobStore(queue_dir / "blobs"),
            queue_dir=queue_dir,
        )
        return await _run(fleet, on_progress)


async def _run(fleet: _Fleet, on_progress: ProgressCallback | None) -> Summary:
    settings, tally = fleet.settings, fleet.tally
    loop = asyncio.get_running_loop()
    duties = [_duty(fleet, index) for index in range(settings.terminals)]
    # Parts no queued report refers to any more (a finished earlier run's) can go.
    fleet.blobs.collect(set().union(*(duty.queue.blob_refs() for duty in duties)))
    started = loop.time()
    ticker = None
    if on_progress is not None:
        ticker = asyncio.create_task(_tick(tally, on_progress, settings, started), name="progress")
    try:
        async with asyncio.TaskGroup() as group:
            for duty in duties:
                group.create_task(_live(duty), name=duty.device_id)
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker  # re-raises a failure of the progress callback
    elapsed = loop.time() - started
    if on_progress is not None:
        on_progress(tally.progress(elapsed))
    faults = FaultCounts()
    for duty in duties:
        faults.add(duty.dice.counts)
    junk = sum(duty.terminal.junk_answered for duty in duties)
    return Summary.of(
        settings.terminals,
        [outcome for duty in duties for outcome in duty.outcomes.values()],
        round(elapsed, 3),
        fleet.seed,
        sent_ids=tally.sent_ids,
        retries=tally.retries,
        faults={**faults.to_json(), "junk_answered": junk},
        tasks={
            "received": sum(duty.tasks_received for duty in duties),
            "answered": sum(duty.tasks_answered for duty in duties),
        },
    )


@dataclass(slots=True)
class _Fleet:
    """What the terminals of one run share."""

    settings: FleetSettings
    seed: int
    codes: list[ClassCode]
    roads: list[Road]
    kit: MediaKit
    tally: Tally
    window: asyncio.Semaphore  # chunks in flight, fleet-wide
    blobs: BlobStore
    queue_dir: Path


async def _tick(
    tally: Tally, on_progress: ProgressCallback, settings: FleetSettings, started: float
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(settings.progress_interval_s)
        on_progress(tally.progress(loop.time() - started))


def _duty(fleet: _Fleet, index: int) -> Duty:
    """One terminal, wired up: its link, protocol, queue, patrol and dice."""
    settings, tally = fleet.settings, fleet.tally
    device_id = settings.device_id(index)
    # Seeded per device, so a terminal's content does not depend on scheduling order.
    rng = random.Random(f"{fleet.seed}/{device_id}")
    road = fleet.roads[index % len(fleet.roads)]  # each inspector has a beat
    speed = CYCLING_MPS if rng.random() < settings.cycling_share else WALKING_MPS
    dice = FaultDice(settings.faults, random.Random(f"{fleet.seed}/{device_id}/faults"))
    birth = wire.Status(
        online=True,
        battery_pct=rng.randint(35, 100),
        firmware=FIRMWARE,
        signal_dbm=rng.randint(-105, -55),
    )
    terminal_ref: list[Terminal] = []  # the link is built first; the terminal needs it

    def deliver(topic: str, payload: bytes) -> None:
        terminal_ref[0].on_downlink(topic, payload)

    link = MqttLink(
        device_id,
        settings.link_settings(device_id),
        subscriptions=wire.downlink_subscriptions(device_id),
        on_message=deliver,
        birth=wire.status_message(device_id, birth),
        will=wire.status_message(device_id, wire.Status(online=False)),
        on_state=tally.link_state,
        shared_window=fleet.window,
    )
    loop = asyncio.get_running_loop()
    terminal = Terminal(
        device_id, link, settings.terminal_settings(), tally, loop.time, faults=dice
    )
    terminal_ref.append(terminal)
    return Duty(
        device_id=device_id,
        inspector_id=f"INS-{index + 1:04d}",
        settings=settings.duty_settings(),
        link=link,
        terminal=terminal,
        queue=ReportQueue(fleet.queue_dir, device_id, fleet.blobs),
        planner=ReportPlanner(
            fleet.codes, rng, roads=fleet.roads, voice_share=settings.voice_share
        ),
        kit=fleet.kit,
        walk=Walk(road, speed),
        dice=dice,
        tally=tally,
        rng=rng,
        clock=loop.time,
    )


async def _live(duty: Duty) -> None:
    try:
        await duty.run()
    finally:
        await duty.link.close(
            farewell=wire.status_message(duty.device_id, wire.Status(online=False))
        )
