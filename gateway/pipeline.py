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
from typing import Any

import orjson
from structlog.typing import FilteringBoundLogger

from gateway import metrics
from gateway.deliveries import Deliveries, Outcome
from gateway.errors import REASON_TEXT, PermanentSinkError, Reason, SinkError
from gateway.geo.location import Geo, build_location, from_envelope
from gateway.media.assembly import Mismatch, assemble
from gateway.media.photo import PhotoSettings
from gateway.media.pool import MediaRunner
from gateway.media.voice import VoiceSettings
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import CodeProfile
from gateway.normalize.report import Arrival, normalize
from gateway.paths import PathEscape, child
from gateway.protocols.gnss import GnssFix
from gateway.protocols.payloads import ReportEnvelope, WireLimits
from gateway.sinks.ports import ObjectStore, Publisher, Registry
from gateway.store.db import transaction
from gateway.store.inbox import Inbox, ReadyReport
from gateway.store.outbox import READY_CURSOR, STEPS, Backoff, Outbox, Processed

# Reports in the inbox were checked against the limits of their day; re-reading them
# must not refuse what was accepted then, whatever the limits are now.
_NO_LIMITS = WireLimits(
    envelope_bytes=2**62, photo_bytes=2**62, voice_bytes=2**62, chunk_bytes=2**62,
    media_per_report=2**30, chunks_per_media=2**62, nmea_sentences=2**30, track_fixes=2**30,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PipelineSettings:
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
    def __init__(
        self,
        inbox_path: Path,
        outbox_path: Path,
        spool: Path,
        media: MediaRunner,
        registry: Registry,
        objects: ObjectStore,
        publisher: Publisher,
        profile: CodeProfile,
        window: AcceptanceWindow,
        geo: Geo,
        settings: PipelineSettings,
        log: FilteringBoundLogger,
    ) -> None:
        self.inbox_path = inbox_path
        self.outbox_path = outbox_path
        self.spool = spool
        self.profile = profile
        self.window = window
        self.geo = geo
        self.settings = settings
        self.log = log
        self.inbox = Inbox(inbox_path)
        self.outbox = Outbox(outbox_path)
        self._next_housekeeping = 0.0
        self._failing: set[str] = set()  # sinks whose last batch failed
        self.deliveries = Deliveries(
            self.spool_path,
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
        workers = {sink: ThreadPoolExecutor(1, thread_name_prefix=f"sink-{sink}") for sink in STEPS}
        in_flight: dict[str, Future[Outcome]] = {}
        wake = threading.Event()
        while not stop.is_set():
            wake.clear()
            try:
                work = self._round(in_flight, workers, wake)
            except Exception:
                # A broken store or a bug: say so loudly and try again; the outbox keeps
                # the work, so nothing is lost by waiting.
                self.log.exception("pipeline.step_failed")
                work = 0
                stop.wait(1.0)
            if not work:
                wake.wait(self.settings.idle_poll_s)
        for sink, future in in_flight.items():
            self._unspool(self._record(future.result()))
            workers[sink].shutdown()
        self.deliveries.close()

    def _round(
        self,
        in_flight: dict[str, Future[Outcome]],
        workers: dict[str, ThreadPoolExecutor],
        wake: threading.Event,
    ) -> int:
        """New verdicts and finished batches, recorded in one commit; then the next batches."""
        spooled: list[Path] = []
        with transaction(self.outbox.conn):
            work = self._ready_stage()
            for sink, future in list(in_flight.items()):
                if future.done():
                    del in_flight[sink]
                    spooled += self._record(future.result())
                    work += 1
        self._unspool(spooled)
        for sink in STEPS:
            due = [] if sink in in_flight else self.outbox.due(sink, self._batch(sink))
            if due:
                in_flight[sink] = workers[sink].submit(self.deliveries.deliver, sink, due)
                in_flight[sink].add_done_callback(lambda _: wake.set())
                work += 1
        return work

    def step(self) -> int:
        """One round of everything, in flow order, on the calling thread."""
        work = self._ready_stage()
        for sink in STEPS:
            due = self.outbox.due(sink, self._batch(sink))
            if due:
                self._unspool(self._record(self.deliveries.deliver(sink, due)))
                work += len(due)
        return work

    def _batch(self, step: str) -> int:
        return self.settings.media_batch if step == "media" else self.settings.batch

    def _record(self, outcome: Outcome) -> list[Path]:
        """Record a batch's outcome; returns spool files to delete once that is committed."""
        sink = outcome.sink
        if outcome.registered:
            self.outbox.registered(outcome.registered)
        if outcome.derived:
            self.outbox.derived(outcome.derived)
        if outcome.refused:
            self.outbox.refused(sink, outcome.refused)
        if outcome.done:
            self.outbox.done(sink, outcome.done)
            if sink in self._failing:  # it works again: what waits in backoff goes now
                self._failing.discard(sink)
                expedited = self.outbox.expedite(sink)
                self.log.info("sink.recovered", sink=sink, expedited=expedited)
        error = outcome.error
        if error is not None and outcome.undelivered:
            self._failed(outcome, error)
        for report_id, message in outcome.dead:
            metrics.SINK_FAILURES.labels(sink, "dead").inc()
            self.log.error("sink.dead_letter", sink=sink, report_id=report_id, error=message)
            self.outbox.dead(sink, [report_id], message)
        return outcome.spooled

    @staticmethod
    def _unspool(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    def _failed(self, outcome: Outcome, error: SinkError) -> None:
        sink = outcome.sink
        self._failing.add(sink)
        count = len(outcome.undelivered)
        if isinstance(error, PermanentSinkError):
            metrics.SINK_FAILURES.labels(sink, "dead").inc(count)
            self.log.error("sink.dead_letter", sink=sink, reports=count, error=str(error))
            self.outbox.dead(sink, outcome.undelivered, str(error))
        else:
            metrics.SINK_FAILURES.labels(sink, "retry").inc(count)
            self.log.warning("sink.retry", sink=sink, reports=count, error=str(error))
            self.outbox.retry(sink, outcome.undelivered, str(error), self.settings.backoff)

    # ---- ready reports: assemble, normalize, record ------------------------------------------

    def _ready_stage(self) -> int:
        self._housekeeping()
        cursor = self.outbox.cursor(READY_CURSOR)
        ready = self.inbox.ready_after(cursor, self.settings.batch)
        if not ready:
            return 0
        started = time.monotonic()
        # Decided before a restart: their deliveries carry on by themselves.
        decided = self.outbox.decided([report.report_id for report in ready])
        verdicts = [
            verdict
            for report in ready
            if report.report_id not in decided and (verdict := self._process(report)) is not None
        ]
        self.outbox.record(READY_CURSOR, ready[-1].seq, verdicts)
        metrics.stage_done(
            "verdict",
            [datetime.fromisoformat(report.received_at).timestamp() for report in ready],
            time.monotonic() - started,
        )
        return len(ready)

    def _process(self, report: ReadyReport) -> Processed | None:
        """The verdict on one ready report, or None when its upload must start over."""
        envelope = ReportEnvelope.model_validate_json(
            report.payload, strict=True, context={"limits": _NO_LIMITS}
        )
        try:
            if envelope.media and not self._assemble(report, envelope):
                return None
        except PathEscape as error:  # an id past the wire grammar: a bug, refused not crashed
            return self._reject(report, Reason.FIELD_INVALID, str(error))
        entry = self.profile.lookup(envelope.kind, envelope.class_code)
        if entry is None:  # the profile changed since the intake accepted it
            return self._reject(
                report, Reason.CLASS_UNKNOWN, f"{envelope.class_code} left the profile"
            )
        arrival = Arrival(report.device_id, datetime.fromisoformat(report.received_at))
        location = self._locate(report.device_id, envelope)
        document = normalize(envelope, arrival, entry, self.profile.name, self.window, location)
        return Processed(
            report.report_id,
            report.device_id,
            normalized=orjson.dumps(document),
            needs_media=bool(envelope.media),
        )

    def _locate(self, device_id: str, envelope: ReportEnvelope) -> dict[str, Any]:
        terminal = from_envelope(envelope.fix)
        nmea = self.geo.nmea(envelope.nmea) if envelope.nmea else None
        lead = terminal or (nmea if isinstance(nmea, GnssFix) else None)
        previous = None
        if lead is not None and lead.time is not None:
            previous = self.inbox.previous_fix(device_id, lead.time)
        return build_location(
            terminal, nmea, envelope.created_at, previous, self.geo.locator, self.geo.rules
        )

    def _assemble(self, report: ReadyReport, envelope: ReportEnvelope) -> bool:
        """Assemble every upload of a report into the spool. False when one must restart."""
        assembled: list[tuple[str, str]] = []
        for manifest in envelope.media:
            media_id = manifest.media_id.lower()
            target = self.spool_path(report.device_id, media_id)
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
            assembled.append((report.device_id, media_id))
            metrics.MEDIA_BYTES_IN.labels(manifest.kind).inc(manifest.bytes)
        # The files are durable; their chunks can go before the verdict is recorded, since a
        # restart finds the files and skips assembly.
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
            self.outbox.record(READY_CURSOR, self.outbox.cursor(READY_CURSOR), [verdict])
        else:
            self.inbox.restart_upload(report.device_id, media_id)

    def _reject(self, report: ReadyReport, reason: Reason, detail: str) -> Processed:
        metrics.REJECTED.labels(reason.value).inc()
        self.log.warning(
            "report.rejected",
            device_id=report.device_id,
            report_id=report.report_id,
            reason=reason.value,
            detail=detail,
        )
        return Processed(
            report.report_id,
            report.device_id,
            reason_code=reason.value,
            reason_message=f"{REASON_TEXT[reason]}: {detail}",
        )

    def spool_path(self, device_id: str, media_id: str) -> Path:
        return child(self.spool, device_id, media_id)  # PathEscape past the wire grammar

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
