"""The pipeline: ready reports from the inbox, through assembly and normalization, out
through the outbox's deliveries to the sinks.

Each `step()` does one round of every stage in batches and returns how much work it
did; `run()` repeats it and naps when idle. Every stage is restartable: its progress
lives in the outbox, and every sink is idempotent by report id, so a crash at any point
redoes at most the batch in hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from structlog.typing import FilteringBoundLogger

from gateway.errors import REASON_TEXT, PermanentSinkError, Reason, RetryableSinkError
from gateway.media.assembly import Mismatch, assemble
from gateway.normalize.acceptance import AcceptanceWindow
from gateway.normalize.codes import CodeProfile
from gateway.normalize.report import Arrival, normalize, with_case_no
from gateway.object_keys import report_key
from gateway.protocols import terminal
from gateway.protocols.payloads import ReasonBody, ReportEnvelope, WireLimits
from gateway.sinks.ports import NewCase, ObjectStore, Publisher, Registry
from gateway.store.inbox import Inbox, ReadyReport
from gateway.store.outbox import Backoff, Due, Outbox, Processed

READY_CURSOR = "ready"
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


class Pipeline:
    def __init__(
        self,
        inbox: Inbox,
        outbox: Outbox,
        spool: Path,
        registry: Registry,
        objects: ObjectStore,
        publisher: Publisher,
        profile: CodeProfile,
        window: AcceptanceWindow,
        settings: PipelineSettings,
        log: FilteringBoundLogger,
    ) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.spool = spool
        self.registry = registry
        self.objects = objects
        self.publisher = publisher
        self.profile = profile
        self.window = window
        self.settings = settings
        self.log = log
        self._next_housekeeping = 0.0
        self._sinks: dict[str, Callable[[list[Due]], None]] = {
            "registry": self._deliver_registry,
            "objects": self._deliver_objects,
            "bus": self._deliver_bus,
            "ack": self._deliver_acks,
        }

    # ---- driving ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.step() == 0:
                stop.wait(self.settings.idle_poll_s)

    def step(self) -> int:
        work = self._take_ready()
        for sink, deliver in self._sinks.items():
            due = self.outbox.due(sink, self.settings.batch)
            if due:
                self._attempt(sink, due, deliver)
                work += len(due)
        self._housekeeping()
        return work

    def _attempt(self, sink: str, due: list[Due], deliver: Callable[[list[Due]], None]) -> None:
        ids = [item.report_id for item in due]  # those already done are left alone
        try:
            deliver(due)
        except RetryableSinkError as error:
            self.log.warning("sink.retry", sink=sink, reports=len(ids), error=str(error))
            self.outbox.retry(sink, ids, str(error), self.settings.backoff)
        except PermanentSinkError as error:
            self.log.error("sink.dead_letter", sink=sink, reports=len(ids), error=str(error))
            self.outbox.dead(sink, ids, str(error))

    # ---- ready reports: assemble, normalize, record ------------------------------------------

    def _take_ready(self) -> int:
        cursor = self.outbox.cursor(READY_CURSOR)
        ready = self.inbox.ready_after(cursor, self.settings.batch)
        if not ready:
            return 0
        verdicts = [verdict for report in ready if (verdict := self._process(report)) is not None]
        self.outbox.record(READY_CURSOR, ready[-1].seq, verdicts)
        return len(ready)

    def _process(self, report: ReadyReport) -> Processed | None:
        """The verdict on one ready report, or None when its upload must start over."""
        envelope = ReportEnvelope.model_validate_json(
            report.payload, strict=True, context={"limits": _NO_LIMITS}
        )
        if self.outbox.state_of(report.report_id) is not None:
            return None  # decided before a restart; its deliveries carry on by themselves
        if envelope.media and not self._assemble(report, envelope):
            return None
        entry = self.profile.lookup(envelope.kind, envelope.class_code)
        if entry is None:  # the profile changed since the intake accepted it
            return self._reject(report, Reason.CLASS_UNKNOWN, f"{envelope.class_code} left the profile")
        arrival = Arrival(report.device_id, datetime.fromisoformat(report.received_at))
        document = normalize(envelope, arrival, entry, self.profile.name, self.window)
        return Processed(report.report_id, report.device_id, normalized=orjson.dumps(document))

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
        return self.spool / device_id / media_id

    # ---- sinks --------------------------------------------------------------------------

    def _deliver_registry(self, due: list[Due]) -> None:
        documents = [_document(item) for item in due]
        cases = [
            NewCase(
                report_id=item.report_id,
                kind=document["class"]["type"],
                class_code=document["class"]["code"],
                received_at=document["received_at"],
                report=document,
            )
            for item, document in zip(due, documents, strict=True)
        ]
        numbers = self.registry.register(cases)
        self.outbox.registered(
            [
                (item.report_id, case_no, orjson.dumps(with_case_no(document, case_no)))
                for item, document, case_no in zip(due, documents, numbers, strict=True)
            ]
        )
        now = time.time()
        for item, document, case_no in zip(due, documents, numbers, strict=True):
            received = datetime.fromisoformat(document["received_at"]).timestamp()
            self.log.info(
                "report.registered",
                device_id=item.device_id,
                report_id=item.report_id,
                case_no=case_no,
                latency_ms=round((now - received) * 1000, 1),
            )

    def _deliver_objects(self, due: list[Due]) -> None:
        done: list[str] = []
        try:
            for item in due:
                if item.state == "registered":
                    self._store_objects(item)
                done.append(item.report_id)
        finally:
            if done:
                self.outbox.done("objects", done)
                for item in due[: len(done)]:
                    self._clear_spool(item)

    def _store_objects(self, item: Due) -> None:
        document = _document(item)
        for media in document["media"]:
            original = media["original"]
            path = self.spool_path(item.device_id, media["media_id"])
            if not path.exists():
                raise PermanentSinkError(f"spool file of media {media['media_id']} is gone")
            self.objects.put_file(
                original["key"], path, sha256=original["sha256"], content_type=media["mime"]
            )
        assert item.normalized is not None
        self.objects.put_bytes(
            report_key(item.report_id), item.normalized, content_type="application/json"
        )

    def _clear_spool(self, item: Due) -> None:
        for media in _document(item)["media"] if item.normalized else []:
            self.spool_path(item.device_id, media["media_id"]).unlink(missing_ok=True)

    def _deliver_bus(self, due: list[Due]) -> None:
        messages = []
        for item in due:
            document = _document(item)
            topic = terminal.normalized_topic(document["class"]["type"], document["class"]["code"])
            assert item.normalized is not None
            messages.append((topic, item.normalized))
        self._publish("bus", due, messages)

    def _deliver_acks(self, due: list[Due]) -> None:
        messages = []
        for item in due:
            if item.case_no is not None:
                payload = terminal.encode_accepted(item.report_id, item.case_no)
            else:
                reason = ReasonBody(code=item.reason_code or "", message=item.reason_message or "")
                payload = terminal.encode_rejected(item.report_id, reason)
            messages.append((terminal.ack_topic(item.device_id), payload))
        self._publish("ack", due, messages)

    def _publish(self, sink: str, due: Sequence[Due], messages: list[tuple[str, bytes]]) -> None:
        confirmed = self.publisher.publish_many(messages, self.settings.publish_timeout_s)
        sent = [item.report_id for item, ok in zip(due, confirmed, strict=True) if ok]
        if sent:
            self.outbox.done(sink, sent)
        if len(sent) < len(due):
            raise RetryableSinkError(f"{len(due) - len(sent)} {sink} messages unconfirmed")

    # ---- housekeeping ----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.time()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + self.settings.housekeeping_s
        expired, orphans = self.inbox.expire(
            now, self.settings.upload_ttl_s, self.settings.orphan_ttl_s
        )
        for report_id in expired:
            self.log.warning("upload.expired", report_id=report_id)
        if orphans:
            self.log.info("chunks.orphans_expired", chunks=orphans)


def _document(item: Due) -> dict[str, Any]:
    assert item.normalized is not None
    document: dict[str, Any] = orjson.loads(item.normalized)
    return document
