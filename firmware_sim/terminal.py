"""One simulated 城管通 terminal: uploads a report, then follows the gateway's answers.

Per report: every chunk of every media file first, then the envelope, then wait.
  accepted     done; latency runs from the first publish to this ack
  incomplete   re-send exactly the chunks listed in `missing`, keep waiting
  rejected     done, with the gateway's reason; but `server.retry_later` (the gateway
               is full) or a `limit.*` code (this device is over a budget) means not
               now: `failed`, so the report stays queued
  silence      re-publish the same envelope (the gateway answers where it stands),
               up to `max_attempts` publications, then give up as `failed`
An error notice about the envelope ends the report (re-sending it cannot help); one
about a chunk is noted and the wait goes on (the gateway will list what is missing),
unless it says "not now" (as above): then the report is `failed` and stays queued.
`failed` is not the end of a report: its queue (queue.py) sends it again later.

With `FaultDice`, the first upload goes out as the dice say (chunks lost, garbled,
doubled, shuffled; the envelope doubled; a junk envelope beside it). What the gateway
asks for again always goes out clean, as real firmware re-reads its file.

The terminal knows nothing of MQTT: it publishes through `Uplinks` and is fed
downlinks through `on_downlink`, so tests drive it with a fake link.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from firmware_sim import wire
from firmware_sim.downlink import (
    Ack,
    ErrorNotice,
    Malformed,
    Reason,
    Task,
    TerminalConfig,
    parse_downlink,
)
from firmware_sim.faults import FaultDice
from firmware_sim.link import LinkError, Uplinks, UplinkSource
from firmware_sim.media import MediaFile
from firmware_sim.outcomes import Outcome, OutcomeStatus, Tally
from firmware_sim.reports import ComposedReport


@dataclass(frozen=True, slots=True)
class TerminalSettings:
    chunk_bytes: int = 64 * 1024  # the factory default; a `config` downlink overrides it
    ack_timeout_s: float = 30.0  # silence after the envelope before publishing it again
    max_attempts: int = 3  # envelope publications before giving up
    max_resends: int = 5  # rounds of missing chunks re-sent before giving up


_Answer = Ack | ErrorNotice


class Terminal:
    def __init__(
        self,
        device_id: str,
        uplinks: Uplinks,
        settings: TerminalSettings | None = None,
        tally: Tally | None = None,
        clock: Callable[[], float] = time.monotonic,
        faults: FaultDice | None = None,
        on_task: Callable[[Task], None] | None = None,
    ) -> None:
        self.device_id = wire.check_device_id(device_id)
        self.uplinks = uplinks
        self.settings = settings or TerminalSettings()
        self.tally = tally
        self.clock = clock
        self.faults = faults
        self.on_task = on_task
        self._waiting: dict[str, asyncio.Queue[_Answer]] = {}  # report id -> its answers
        self._owner: dict[str, str] = {}  # media id -> report id, for error notices
        self.config: TerminalConfig | None = None
        self.tasks: list[Task] = []
        self.notices: list[ErrorNotice] = []  # error notices about no report of ours
        self.malformed: list[Malformed] = []
        self.strays = 0  # acks for reports no longer (or never) waited for
        self.junk_pending = 0  # junk envelopes sent on purpose, not yet answered
        self.junk_answered = 0

    @property
    def chunk_bytes(self) -> int:
        """Chunk size for the next report: the gateway's config wins over the default."""
        if self.config is not None and 0 < self.config.chunk_bytes <= wire.CHUNK_MAX_BYTES:
            return self.config.chunk_bytes
        return self.settings.chunk_bytes

    # ---- downlinks ----------------------------------------------------------------------

    def on_downlink(self, topic: str, payload: bytes) -> None:
        message = parse_downlink(topic, payload)
        if isinstance(message, Malformed):
            self.malformed.append(message)
        elif isinstance(message, Ack):
            queue = self._waiting.get(message.report_id.lower())
            if queue is None:
                self.strays += 1
            else:
                queue.put_nowait(message)
        elif isinstance(message, ErrorNotice):
            self._route_notice(message)
        elif isinstance(message, Task):
            self.tasks.append(message)
            if self.on_task is not None:
                self.on_task(message)
        else:
            self.config = message

    def _route_notice(self, notice: ErrorNotice) -> None:
        if notice.media_id is not None and notice.media_id.lower() in self._owner:
            targets = [self._owner[notice.media_id.lower()]]
        elif notice.topic == wire.report_topic(self.device_id) and self.junk_pending:
            # The answer to junk we sent on purpose (it is published before the real
            # envelope, so its notice comes first).
            self.junk_pending -= 1
            self.junk_answered += 1
            return
        elif notice.topic == wire.report_topic(self.device_id):
            # An envelope the gateway could not tie to a report id: it is one of ours in
            # flight, and with one report at a time, the one.
            targets = list(self._waiting)
        else:
            targets = []
        for report_id in targets:
            self._waiting[report_id].put_nowait(notice)
        if not targets:
            self.notices.append(notice)

    # ---- one report ---------------------------------------------------------------------

    async def submit(
        self,
        report: ComposedReport,
        *,
        resume: bool = False,
        on_uploaded: Callable[[], None] | None = None,
    ) -> Outcome:
        """Upload one report and follow it to its outcome. `resume`: every chunk went out
        before (a previous run); send the envelope and then only what the gateway lacks.
        `on_uploaded` is called once every chunk has gone out."""
        report_id = report.envelope.report_id.lower()
        answers: asyncio.Queue[_Answer] = asyncio.Queue()
        self._waiting[report_id] = answers
        for entry in report.envelope.media:
            self._owner[entry.media_id.lower()] = report_id
        if self.tally:
            self.tally.started()
        run = _Run(self, report, answers, uploaded=resume, on_uploaded=on_uploaded)
        try:
            outcome = await run.follow()
        except asyncio.CancelledError:  # the run ended under it: the report stays queued
            if self.tally:
                self.tally.in_flight -= 1
            raise
        finally:
            del self._waiting[report_id]
            for entry in report.envelope.media:
                self._owner.pop(entry.media_id.lower(), None)
        if self.tally:
            self.tally.finished(outcome)
        return outcome

    def chunks(
        self, report: ComposedReport, only: Mapping[str, tuple[int, ...]] | None = None
    ) -> Iterator[UplinkSource]:
        """Every chunk of every media file, or just the `only` ones, built lazily."""
        for entry in report.envelope.media:
            file = report.files[entry.media_id]
            wanted = (
                range(entry.chunk_count) if only is None else only.get(entry.media_id.lower(), ())
            )
            for seq in wanted:
                if 0 <= seq < entry.chunk_count:  # the gateway's list, checked: never trust blindly
                    yield _chunk_source(self.device_id, entry, file, seq)

    def first_upload(self, report: ComposedReport) -> Iterator[UplinkSource]:
        """A report's first upload: every chunk, or as the fault dice have it."""
        if self.faults is None:
            yield from self.chunks(report)
            return
        entries = {entry.media_id: entry for entry in report.envelope.media}
        for send in self.faults.first_upload(report.envelope.media):
            entry, file = entries[send.media_id], report.files[send.media_id]
            source = _chunk_source(self.device_id, entry, file, send.seq)
            if send.garbled:
                source = _garbled(source, self.faults)
            for _ in range(send.copies):
                yield source


def _chunk_source(
    device_id: str, entry: wire.MediaEntry, file: MediaFile, seq: int
) -> UplinkSource:
    return lambda: wire.chunk_message(
        device_id, entry.media_id, seq, file.chunk(seq, entry.chunk_bytes)
    )


def _garbled(source: UplinkSource, dice: FaultDice) -> UplinkSource:
    def build() -> wire.Uplink:
        clean = source()
        return wire.Uplink(clean.topic, dice.garble(clean.payload), clean.retain)

    return build


class _Run:
    """The state of one report's upload, from first chunk to outcome."""

    def __init__(
        self,
        terminal: Terminal,
        report: ComposedReport,
        answers: asyncio.Queue[_Answer],
        *,
        uploaded: bool = False,
        on_uploaded: Callable[[], None] | None = None,
    ) -> None:
        self.terminal = terminal
        self.uploaded = uploaded
        self.on_uploaded = on_uploaded
        self.report = report
        self.answers = answers
        self.settings = terminal.settings
        self.envelope = wire.report_message(terminal.device_id, report.envelope)
        self.started = terminal.clock()
        self.attempts = 0  # tries to publish the envelope, confirmed or not
        self.published = 0  # of which the broker confirmed
        self.resends = 0
        self.problem: Reason | None = None

    async def follow(self) -> Outcome:
        terminal = self.terminal
        while self.attempts < self.settings.max_attempts:
            self.attempts += 1
            try:
                if not self.uploaded:
                    await terminal.uplinks.publish_all(terminal.first_upload(self.report))
                    self.uploaded = True
                    if self.on_uploaded is not None:
                        self.on_uploaded()
                await self._publish_envelope()
            except LinkError as error:
                self.problem = Reason("link.down", str(error))
                continue
            self.published += 1
            if self.published == 1 and terminal.tally:
                terminal.tally.first_sent(self.report.envelope.report_id)
            outcome = await self._await_answer()
            if outcome is not None:
                return outcome
        return self._end("failed", reason=self.problem)

    async def _publish_envelope(self) -> None:
        terminal, dice = self.terminal, self.terminal.faults
        if dice is None:
            await terminal.uplinks.publish(self.envelope)
            return
        junk = dice.junk_envelope(self.report.envelope.report_id)
        if junk is not None:
            terminal.junk_pending += 1
            await terminal.uplinks.publish(wire.Uplink(self.envelope.topic, junk))
        for _ in range(dice.envelope_copies()):
            await terminal.uplinks.publish(self.envelope)

    async def _await_answer(self) -> Outcome | None:
        """Wait for a final answer; None means silence, so publish the envelope again."""
        timeout = self.settings.ack_timeout_s
        deadline = self.terminal.clock() + timeout
        while True:
            try:
                async with asyncio.timeout(max(deadline - self.terminal.clock(), 0)):
                    answer = await self.answers.get()
            except TimeoutError:
                self.problem = Reason("ack.timeout", f"no answer within {timeout:g} s")
                return None
            if isinstance(answer, ErrorNotice):
                self.problem = answer.reason
                if answer.media_id is None or answer.reason.retry_later:
                    return self._end("failed", reason=answer.reason)
                continue
            if answer.status == "accepted":
                latency_ms = round((self.terminal.clock() - self.started) * 1000, 1)
                return self._end("accepted", case_no=answer.case_no, latency_ms=latency_ms)
            if answer.status == "rejected":
                if answer.reason is not None and answer.reason.retry_later:
                    return self._end("failed", reason=answer.reason)
                return self._end("rejected", reason=answer.reason)
            if not answer.missing:  # incomplete, nothing missing: in hand, `accepted` follows
                deadline = self.terminal.clock() + timeout
                continue
            self.resends += 1
            if self.resends > self.settings.max_resends:
                return self._end(
                    "failed",
                    reason=Reason(
                        "upload.stuck", f"still incomplete after {self.resends - 1} re-sends"
                    ),
                )
            try:
                await self.terminal.uplinks.publish_all(
                    self.terminal.chunks(self.report, answer.missing or {})
                )
            except LinkError as error:
                self.problem = Reason("link.down", str(error))
                return None
            deadline = self.terminal.clock() + timeout  # progress: the wait starts afresh

    def _end(
        self,
        status: OutcomeStatus,
        *,
        case_no: str | None = None,
        latency_ms: float | None = None,
        reason: Reason | None = None,
    ) -> Outcome:
        return Outcome(
            report_id=self.report.envelope.report_id,
            device_id=self.terminal.device_id,
            status=status,
            case_no=case_no,
            latency_ms=latency_ms,
            reason=reason,
            published=self.published,
            resends=self.resends,
            media=self.report.envelope.media,
            task_id=self.report.envelope.task_id,
        )
