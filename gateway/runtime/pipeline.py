"""The pipeline: ready reports from the inbox, through assembly and normalization, out
through the outbox's deliveries to the sinks.

One thread owns the inbox and outbox: it turns ready reports into verdicts, hands each
sink its next batch of due deliveries, and records what comes back. Each sink works on
its own thread, one batch at a time, so a slow sink (a disk that fsyncs, a distant S3)
holds back nobody but itself, and the outbox has a single writer. `step()` does one round
of all of it on the calling thread, for tests. Every stage is restartable: progress lives
in the outbox and every sink is idempotent by report id, so a crash at any point redoes
at most the batches in hand.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from gateway import metrics
from gateway.errors import Reason, SinkError
from gateway.geo.report_location import Geo, build_location, from_envelope, nmea_fix
from gateway.lifecycle import STEPS, Accepted, DeadLetter, Rejected, Retry, Step, Verdict
from gateway.media.assembly import Mismatch, assemble
from gateway.media.pool import MediaRunner
from gateway.media.stage_settings import PhotoSettings, VoiceSettings
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import ClassEntry, CodeProfile
from gateway.normalize.report import Arrival, normalize
from gateway.paths import PathEscape
from gateway.protocols.gnss import GnssFix
from gateway.protocols.payloads import ReportEnvelope, WireLimits
from gateway.runtime.deliveries import Deliveries, StepOutcome
from gateway.runtime.rejections import report_rejected
from gateway.sinks.ports import ObjectStore, Publisher, Registry
from gateway.store.db import is_conflict, transaction
from gateway.store.inbox import Inbox, ReadyReport
from gateway.store.outbox import READY_CURSOR, Backoff, Outbox
from gateway.store.spool import Spool

# Reports in the inbox were checked against the limits of their day; re-reading them
# must not refuse what was accepted then, whatever the limits are now.
_NO_LIMITS = WireLimits(
    envelope_bytes=2**62, photo_bytes=2**62, voice_bytes=2**62, chunk_bytes=2**62,
    media_per_report=2**30, chunks_per_media=2**62, nmea_sentences=2**30, track_fixes=2**30,
)  # fmt: skip


# An idle pipeline on a shared store polls it less and less often, up to this: each
# poll is a claim and five lease queries on PostgreSQL (measured on one idle instance at
# 5 ms: 1,026 transactions a second, 0.086 of a core and 0.044 of PostgreSQL's).
SHARED_IDLE_MAX_S = 0.05


def idle_wait(last: float, base: float, shared: bool, worked: bool) -> float:
    """How long to wait before the next round when it finds nothing: the base poll after
    work; on a shared store, twice the last wait while idle, up to `SHARED_IDLE_MAX_S`."""
    if worked or not shared:
        return base
    return min(max(base, SHARED_IDLE_MAX_S), last * 2)


@dataclass(frozen=True, slots=True)
class _Placing:
    """A ready report whose verdict waits for its place: its previous position is read
    for the whole batch at once."""

    report: ReadyReport
    envelope: ReportEnvelope
    entry: ClassEntry
    terminal: GnssFix | None
    nmea: GnssFix | str | None  # or the reason code why its NMEA gives none
    lead_time: datetime | None  # the time of the fix that leads, if it has one


@dataclass(frozen=True, slots=True)
class PipelineTuning:
    """How the pipeline runs: batch sizes, polling, retries, upload lifetimes, and what the
    media stages make (from `[pipeline]`, `[store]` and `[media]`)."""

    batch: int
    idle_poll_s: float
    publish_timeout_s: float
    media_max_failures: int
    backoff: Backoff
    housekeeping_s: float
    upload_ttl_s: float
    orphan_ttl_s: float
    media_batch: int = 8  # reports whose media are in the worker pool at once
    photo: PhotoSettings = field(default_factory=PhotoSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)


class Pipeline:
    """Over an inbox and outbox on this machine (SQLite) or a cluster's (PostgreSQL, where
    the two share this thread's connection, so a round is one transaction)."""

    def __init__(
        self,
        inbox: Inbox,
        outbox: Outbox,
        spool: Spool,
        media: MediaRunner,
        registry: Registry,
        objects: ObjectStore,
        publisher: Publisher,
        profile: CodeProfile,
        window: AcceptanceWindow,
        geo: Geo,
        settings: PipelineTuning,
        log: FilteringBoundLogger,
    ) -> None:
        self.spool = spool
        self.profile = profile
        self.window = window
        self.geo = geo
        self.settings = settings
        self.log = log
        self.inbox = inbox
        self.outbox = outbox
        self._next_housekeeping = 0.0
        self._failing: set[str] = set()  # sinks whose last batch failed
        self.deliveries = Deliveries(
            spool,
            media,
            (settings.photo, settings.voice),
            registry,
            objects,
            publisher,
            settings.publish_timeout_s,
            log,
        )

    # ---- driving ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: verdicts here, each sink's batches on its own thread."""
        workers = {step: ThreadPoolExecutor(1, thread_name_prefix=f"sink-{step}") for step in STEPS}
        in_flight: dict[Step, Future[StepOutcome]] = {}
        wake = threading.Event()
        # A shared outbox may be out of reach at start: its leases are given back in the
        # first round that reaches it, like any other work.
        leases_held = self.outbox.shared
        idle = self.settings.idle_poll_s
        while not stop.is_set():
            wake.clear()
            try:
                if leases_held:
                    self._release_leases()
                    leases_held = False
                work = self._round(in_flight, workers, wake)
            except Exception as error:
                if is_conflict(error):  # a shared store rolled this round back: again now
                    self.log.info("pipeline.round_conflict", error=str(error))
                    continue
                # A broken store or a bug: say so loudly and try again; the outbox keeps
                # the work, so nothing is lost by waiting.
                self.log.exception("pipeline.step_failed")
                work = 0
                stop.wait(1.0)
            idle = idle_wait(idle, self.settings.idle_poll_s, self.outbox.shared, bool(work))
            if not work:
                wake.wait(idle)
        for step, future in in_flight.items():
            self._unspool(self._record(future.result()))
            workers[step].shutdown()
        self.deliveries.close()

    def _release_leases(self) -> None:
        released = self.outbox.release()
        if released:
            self.log.info("deliveries.leases_released", deliveries=released)

    def _round(
        self,
        in_flight: dict[Step, Future[StepOutcome]],
        workers: dict[Step, ThreadPoolExecutor],
        wake: threading.Event,
    ) -> int:
        """New verdicts and finished batches, recorded in one commit; then the next batches."""
        spooled: list[Path] = []
        finished = [step for step, future in in_flight.items() if future.done()]
        with transaction(self.outbox.conn):
            work = self._ready_stage()
            for step in finished:
                spooled += self._record(in_flight[step].result())
                work += 1
        # Only once committed: a round rolled back records the same outcomes next time.
        for step in finished:
            del in_flight[step]
        self._unspool(spooled)
        for step in STEPS:
            due = [] if step in in_flight else self.outbox.due(step, self._batch(step))
            if due:
                in_flight[step] = workers[step].submit(self.deliveries.deliver, step, due)
                in_flight[step].add_done_callback(lambda _: wake.set())
                work += 1
        return work

    def step(self) -> int:
        """One round of everything, in flow order, on the calling thread."""
        work = self._ready_stage()
        for step in STEPS:
            due = self.outbox.due(step, self._batch(step))
            if due:
                self._unspool(self._record(self.deliveries.deliver(step, due)))
                work += len(due)
        return work

    def _batch(self, step: Step) -> int:
        return self.settings.media_batch if step is Step.MEDIA else self.settings.batch

    def _record(self, outcome: StepOutcome) -> list[Path]:
        """Record a batch's outcome; returns spool files to delete once that is committed."""
        step = outcome.step
        self.outbox.apply(step, outcome.results, self.settings.backoff)
        self._say(outcome)
        if outcome.error is not None:
            self._failing.add(step)
        elif step in self._failing and outcome.results:
            # It works again: what waits in backoff goes now.
            self._failing.discard(step)
            expedited = self.outbox.expedite(step)
            self.log.info("sink.recovered", sink=step, expedited=expedited)
        return outcome.spooled

    def _say(self, outcome: StepOutcome) -> None:
        """Count and log what failed: retried, or dead letters."""
        step = outcome.step
        retried = [result for result in outcome.results if isinstance(result, Retry)]
        dead = [result for result in outcome.results if isinstance(result, DeadLetter)]
        if retried:
            metrics.SINK_FAILURES.labels(step, "retry").inc(len(retried))
            self.log.warning("sink.retry", sink=step, reports=len(retried), error=retried[0].error)
        if dead:
            metrics.SINK_FAILURES.labels(step, "dead").inc(len(dead))
        for letter in dead:
            self.log.error(
                "sink.dead_letter", sink=step, report_id=letter.report_id, error=letter.error
            )

    def _unspool(self, paths: list[Path]) -> None:
        try:
            self.spool.discard(paths)
        except Exception:  # a leftover in the shared spool costs space, never a report
            self.log.exception("spool.discard_failed", files=len(paths))

    # ---- ready reports: assemble, normalize, record ------------------------------------------

    def _ready_stage(self) -> int:
        self._housekeeping()
        with transaction(self.outbox.conn):
            return self._verdicts()

    def _verdicts(self) -> int:
        """Verdicts on the next ready reports. On this machine the pipeline reads the ready
        queue by its cursor; in a cluster it claims them off the shared queue, in the same
        transaction that records their verdicts."""
        shared = self.inbox.shared
        ready = (
            self.inbox.claim_ready(self.settings.batch)
            if shared
            else self.inbox.ready_after(self.outbox.cursor(READY_CURSOR), self.settings.batch)
        )
        if not ready:
            return 0
        started = time.monotonic()
        # Decided before a restart: their deliveries carry on by themselves.
        decided = self.outbox.decided([report.report_id for report in ready])
        prepared = [
            outcome
            for report in ready
            if report.report_id not in decided and (outcome := self._prepare(report)) is not None
        ]
        # Each report's previous position, for the jump check: one query for the batch.
        asks = [
            (p.report.device_id, p.lead_time)
            for p in prepared
            if isinstance(p, _Placing) and p.lead_time is not None
        ]
        previous = iter(self.inbox.previous_fixes(asks))
        verdicts = [
            self._accept(p, next(previous) if p.lead_time is not None else None)
            if isinstance(p, _Placing)
            else p
            for p in prepared
        ]
        self.outbox.record(READY_CURSOR, None if shared else ready[-1].seq, verdicts)
        metrics.stage_done(
            "verdict",
            [datetime.fromisoformat(report.received_at).timestamp() for report in ready],
            time.monotonic() - started,
        )
        return len(ready)

    def _prepare(self, report: ReadyReport) -> _Placing | Verdict | None:
        """A ready report up to its placing (or already its verdict), or None when its
        upload must start over (or, in a cluster, its media cannot be kept in S3 yet: it
        goes back on the queue)."""
        envelope = ReportEnvelope.model_validate_json(
            report.payload, strict=True, context={"limits": _NO_LIMITS}
        )
        try:
            if envelope.media and not self._assemble(report, envelope):
                return None
        except PathEscape as error:  # an id past the wire grammar: a bug, refused not crashed
            return self._reject(report, Reason.FIELD_INVALID, str(error))
        except SinkError as error:  # the shared spool is out of reach: the others go on
            self.log.warning("spool.unavailable", report_id=report.report_id, error=str(error))
            self.inbox.requeue(report.report_id)
            return None
        entry = self.profile.lookup(envelope.kind, envelope.class_code)
        if entry is None:  # the profile changed since the intake accepted it
            return self._reject(
                report, Reason.CLASS_UNKNOWN, f"{envelope.class_code} left the profile"
            )
        terminal = from_envelope(envelope.fix)
        nmea = nmea_fix(envelope.nmea) if envelope.nmea else None
        lead = terminal or (nmea if isinstance(nmea, GnssFix) else None)
        return _Placing(report, envelope, entry, terminal, nmea, lead.time if lead else None)

    def _accept(self, placing: _Placing, previous: GnssFix | None) -> Accepted:
        report, envelope = placing.report, placing.envelope
        location = build_location(
            placing.terminal,
            placing.nmea,
            envelope.created_at,
            previous,
            self.geo.locator,
            self.geo.rules,
        )
        arrival = Arrival(report.device_id, datetime.fromisoformat(report.received_at))
        normalized = normalize(
            envelope, arrival, placing.entry, self.profile.name, self.window, location
        )
        return Accepted(report.report_id, report.device_id, normalized, bool(envelope.media))

    def _assemble(self, report: ReadyReport, envelope: ReportEnvelope) -> bool:
        """Assemble every upload of a report into the spool. False when one must restart."""
        assembled: list[tuple[str, str]] = []
        for manifest in envelope.media:
            media_id = manifest.media_id.lower()
            target = self.spool.path(report.device_id, media_id)
            if target.exists() and target.stat().st_size == manifest.bytes:
                continue  # assembled before a restart
            result = assemble(
                self.inbox.chunks(report.device_id, media_id),
                manifest.chunk_count,
                manifest.bytes,
                manifest.sha256,
                target,
            )
            if isinstance(result, Mismatch):
                self._upload_failed(report, media_id, result.detail)
                return False
            self.spool.keep([target])
            assembled.append((report.device_id, media_id))
            metrics.MEDIA_BYTES_IN.labels(manifest.kind).inc(manifest.bytes)
        # The files are durable; their chunks can go before the verdict is recorded, since a
        # restart finds the files and skips assembly (in a cluster both are one commit).
        self.inbox.drop_chunks(assembled)
        return True

    def _upload_failed(self, report: ReadyReport, media_id: str, detail: str) -> None:
        failures = self.outbox.media_failure(report.device_id, media_id, report.report_id)
        self.log.warning(
            "media.mismatch",
            device_id=report.device_id,
            report_id=report.report_id,
            media_id=media_id,
            detail=detail,
            failures=failures,
        )
        if failures >= self.settings.media_max_failures:
            verdict = self._reject(report, Reason.MEDIA_CHECKSUM, detail)
            cursor = None if self.outbox.shared else self.outbox.cursor(READY_CURSOR)
            self.outbox.record(READY_CURSOR, cursor, [verdict])
        else:
            self.inbox.restart_upload(report.device_id, media_id)

    def _reject(self, report: ReadyReport, reason: Reason, detail: str) -> Rejected:
        return report_rejected(
            self.log,
            step="verdict",
            report_id=report.report_id,
            device_id=report.device_id,
            reason=reason,
            detail=detail,
        )

    # ---- housekeeping ----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.time()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + self.settings.housekeeping_s
        expired, orphans = self.inbox.expire(
            now, self.settings.upload_ttl_s, self.settings.orphan_ttl_s
        )
        for device_id, report_id in expired:
            self.log.warning("upload.expired", device_id=device_id, report_id=report_id)
        if orphans:
            self.log.info("chunks.orphans_expired", chunks=orphans)
