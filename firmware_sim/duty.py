"""One terminal's working day: patrol, report, store and forward, answer tasks, misbehave.

Concurrent parts of one terminal, all on the fleet's event loop:

    producer   makes reports: K back to back (`reports_per_terminal`), or, on patrol
               (`duration_s`), at random moments at `reports_per_hour`, where the
               inspector stands; every report goes to the disk queue first
    sender     sends the queue's reports one at a time, oldest due first; a report leaves
               the queue only on `accepted` or `rejected`; a try that ends without a final
               answer is retried with backoff
    tracker    on patrol: a GNSS fix every second, sent as a `track` every
               `track_interval_s` (best effort: a batch that cannot go out is dropped, as
               handsets do with stale tracks)
    dropper    with the `link_drops_per_hour` fault: kills the link now and then
    tasks      a `task` downlink becomes a verification report at the task's place, sent
               once the inspector could have walked there

The run ends when the producer is done and the queue is empty, or when no terminal of the
fleet has had a final answer for `drain_s` after the producer finished; what is still
queued stays on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from firmware_sim import wire
from firmware_sim.downlink import Reason, Task
from firmware_sim.faults import FaultDice
from firmware_sim.gps import course
from firmware_sim.link import LinkError, MqttLink
from firmware_sim.outcomes import FINAL, Outcome, Tally
from firmware_sim.queue import QueuedReport, ReportQueue
from firmware_sim.reports import CHINA_TIME, MediaKit, ReportPlanner, compose
from firmware_sim.routes import Walk, metres, scatter
from firmware_sim.terminal import Terminal


@dataclass(frozen=True, slots=True)
class DutySettings:
    reports_per_terminal: int | None  # None: no limit but the duration
    duration_s: float | None  # None: no patrol; the K reports back to back
    reports_per_hour: float
    report_interval_s: float
    drain_s: float
    track_interval_s: float
    retry_min_s: float
    retry_max_s: float
    task_travel_max_s: float
    connect_timeout_s: float


@dataclass
class Duty:
    """Everything one terminal needs; `run()` is its life."""

    device_id: str
    inspector_id: str
    settings: DutySettings
    link: MqttLink
    terminal: Terminal
    queue: ReportQueue
    planner: ReportPlanner
    kit: MediaKit
    walk: Walk
    dice: FaultDice
    tally: Tally
    rng: random.Random
    clock: Callable[[], float] = time.monotonic
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # report id -> latest
    tasks_received: int = 0
    tasks_answered: int = 0
    _pending: list[QueuedReport] = field(default_factory=list)
    _retry_at: dict[str, float] = field(default_factory=dict)
    _backoff: dict[str, float] = field(default_factory=dict)
    _answered_tasks: set[str] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)  # the sender's wake-up
    _answered: asyncio.Event = field(default_factory=asyncio.Event)  # the watcher's
    _last_progress: float = 0.0
    _started: float = 0.0

    async def run(self) -> None:
        self._started = self._last_progress = self.clock()
        self.terminal.on_task = self._on_task
        for entry in self.queue.load():  # what a previous run left: sent first
            self._enqueue(entry)
            if entry.report.envelope.task_id:
                self._answered_tasks.add(entry.report.envelope.task_id)
        self.link.start()
        connected = await self.link.wait_connected(self.settings.connect_timeout_s)
        if not connected and self.settings.duration_s is None:
            self._unreachable()
            return
        helpers = [
            asyncio.create_task(self._track(), name=f"track:{self.device_id}"),
            asyncio.create_task(self._drop_links(), name=f"drops:{self.device_id}"),
        ]
        sender = asyncio.create_task(self._send(), name=f"send:{self.device_id}")
        sender.add_done_callback(lambda _: self._answered.set())  # a crash ends the watch
        try:
            await self._produce()
            self._last_progress = self.clock()
            await self._watch(sender)
        finally:
            for task in (*helpers, sender):
                task.cancel()
            for task in (*helpers, sender):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for entry in self._pending:  # still on disk: the next run sends them
            last = self.outcomes.get(entry.report_id)
            self.outcomes[entry.report_id] = _queued(entry, self.device_id, last)

    # ---- producing ----------------------------------------------------------------------

    async def _produce(self) -> None:
        settings = self.settings
        limit = settings.reports_per_terminal
        end = None if settings.duration_s is None else self._started + settings.duration_s
        made = 0
        while limit is None or made < limit:
            if end is None:  # back to back
                if made and settings.report_interval_s:
                    await asyncio.sleep(settings.report_interval_s)
            else:
                pause = self.rng.expovariate(max(settings.reports_per_hour, 1e-9) / 3600)
                if self.clock() + pause >= end:
                    await asyncio.sleep(max(end - self.clock(), 0))
                    return
                await asyncio.sleep(pause)
            self._make_report()
            made += 1

    def _make_report(self) -> None:
        here, _ = self.walk.at(self.clock() - self._started)
        plan = self.planner.next(
            self._device_now(),
            road=self.walk.road,
            at=here,
            clock_skew_s=self.dice.clock_skew_s,
            fix_fault=self.dice.fix_fault(),
        )
        report = compose(plan, self.kit, self.inspector_id, self.terminal.chunk_bytes, self.rng)
        self._enqueue(self.queue.put(report))

    def _enqueue(self, entry: QueuedReport) -> None:
        self._pending.append(entry)
        self.tally.planned_one()
        self._changed.set()

    def _device_now(self) -> datetime:
        return datetime.now(CHINA_TIME)

    def _unreachable(self) -> None:
        """No broker at all within the connect timeout: K reports that were never made."""
        reason = Reason("link.unreachable", self.link.last_error or "no connection in time")
        for _ in range(self.settings.reports_per_terminal or 0):
            plan = self.planner.next(self._device_now())
            self.outcomes[plan.report_id] = Outcome(
                plan.report_id, self.device_id, "failed", reason=reason
            )
            self.tally.planned_one()

    # ---- sending ------------------------------------------------------------------------

    async def _send(self) -> None:
        while True:
            entry = await self._next_due()
            outcome = await self.terminal.submit(
                entry.report, resume=entry.uploaded, on_uploaded=partial(self._uploaded, entry)
            )
            self.outcomes[entry.report_id] = outcome
            if outcome.status in FINAL:
                self._pending = [e for e in self._pending if e.seq != entry.seq]
                self.queue.finish(entry, outcome.to_json())
                self._last_progress = self.tally.last_answer_at = self.clock()
                self._retry_at.pop(entry.report_id, None)
                self._backoff.pop(entry.report_id, None)
                self._answered.set()
            else:
                delay = self._backoff.get(entry.report_id, self.settings.retry_min_s)
                self._backoff[entry.report_id] = min(delay * 2, self.settings.retry_max_s)
                self._retry_at[entry.report_id] = self.clock() + delay * self.rng.uniform(0.5, 1)

    def _uploaded(self, entry: QueuedReport) -> None:
        marked = self.queue.mark_uploaded(entry)
        self._pending = [marked if e.seq == entry.seq else e for e in self._pending]

    async def _next_due(self) -> QueuedReport:
        while True:
            self._changed.clear()
            now, wall = self.clock(), time.time()
            waits = []
            for entry in self._pending:
                wait = max(self._retry_at.get(entry.report_id, 0.0) - now, entry.not_before - wall)
                if wait <= 0:
                    return entry
                waits.append(wait)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(waits, default=None)):
                    await self._changed.wait()

    async def _watch(self, sender: asyncio.Task[None]) -> None:
        """Until the queue is empty, or no terminal was answered for `drain_s`."""
        while not sender.done():
            if not self._pending:
                return
            idle = self.clock() - max(self._last_progress, self.tally.last_answer_at)
            if idle > self.settings.drain_s:
                return
            self._answered.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.drain_s - idle + 0.01):
                    await self._answered.wait()
        sender.result()  # a bug in the sender: say so

    # ---- patrol, link faults, tasks -------------------------------------------------------

    async def _track(self) -> None:
        if self.settings.duration_s is None:
            return
        interval = self.settings.track_interval_s
        last = 0
        # Terminals switched on together must not all send their tracks at one instant.
        await asyncio.sleep(self.rng.uniform(0, interval))
        while True:
            now = int(self.clock() - self._started)
            fixes = [self._fix(second) for second in range(last, now)]
            last = now
            if fixes:
                with contextlib.suppress(LinkError, TimeoutError):
                    async with asyncio.timeout(interval):
                        await self.link.publish(wire.track_message(self.device_id, fixes))
            await asyncio.sleep(interval)

    def _fix(self, second: int) -> wire.Fix:
        here, ahead = self.walk.at(second)
        lat, lon = scatter(here, 3.0, self.rng)
        taken = datetime.fromtimestamp(time.time() - (self.clock() - self._started) + second, UTC)
        return wire.Fix(
            lat=round(lat, 6),
            lon=round(lon, 6),
            accuracy_m=round(self.rng.uniform(3.0, 12.0), 1),
            time=taken.strftime("%Y-%m-%dT%H:%M:%SZ"),
            speed_mps=self.walk.speed_mps,
            course_deg=round(course(here, ahead), 1) if ahead != here else None,
        )

    async def _drop_links(self) -> None:
        while (pause := self.dice.next_drop_in_s()) is not None:
            await asyncio.sleep(pause)
            if self.link.drop(self.dice.offline_s()):
                self.dice.counts.link_drops += 1

    def _on_task(self, task: Task) -> None:
        self.tasks_received += 1
        if task.task_id in self._answered_tasks:
            return  # delivered twice (QoS 1): answered once
        self._answered_tasks.add(task.task_id)
        self._answer(task)

    def _answer(self, task: Task) -> None:
        """Queue the verification report now; it goes once the inspector is there."""
        here, _ = self.walk.at(self.clock() - self._started)
        there = (task.location.lat, task.location.lon) if task.location else here
        travel = min(metres(here, there) / self.walk.speed_mps, self.settings.task_travel_max_s)
        plan = self.planner.verification(
            self._device_now(), task.case_no, task.task_id, there,
            clock_skew_s=self.dice.clock_skew_s,
        )  # fmt: skip
        report = compose(plan, self.kit, self.inspector_id, self.terminal.chunk_bytes, self.rng)
        self._enqueue(self.queue.put(report, not_before=time.time() + travel))
        self.tasks_answered += 1


def _queued(entry: QueuedReport, device_id: str, last: Outcome | None) -> Outcome:
    envelope = entry.report.envelope
    return Outcome(
        envelope.report_id,
        device_id,
        "queued",
        reason=last.reason if last else None,
        published=last.published if last else 0,
        resends=last.resends if last else 0,
        media=envelope.media,
        task_id=envelope.task_id,
    )
