"""Deliveries: what each step does with a batch of due outbox rows.

`media` makes the derivatives of a report's photos and voice notes (in the worker pool)
and completes its report; `registry` assigns case numbers (a verification report gets
its task's case number, or is rejected with `task.unknown`); `objects` stores originals,
derivatives and the normalized JSON; `bus` publishes the normalized report; `ack` answers
the terminal. Each runs on its step's own worker thread, touches nothing but its sink,
and returns a `StepOutcome`: one `gateway.lifecycle` result per report, which the
pipeline records in the outbox, so the outbox keeps a single writer and a slow sink holds
back only itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from gateway import metrics
from gateway.errors import PermanentSinkError, Reason, RetryableSinkError, SinkError
from gateway.lifecycle import (
    DeadLetter,
    Delivered,
    Derived,
    Registered,
    Rejected,
    Retry,
    Step,
    StepResult,
)
from gateway.media.jobs import DERIVATIVE_NAMES, MediaDerived, MediaJob, derivative_path
from gateway.media.pool import MediaRunner
from gateway.media.stage_settings import PhotoSettings, VoiceSettings
from gateway.normalize.model import NormalizedReport
from gateway.normalize.report import with_derivatives
from gateway.object_keys import report_key
from gateway.protocols import terminal
from gateway.protocols.payloads import ReasonBody
from gateway.runtime.rejections import report_rejected
from gateway.sinks.ports import ObjectStore, Publisher, Registry, TaskUnknown
from gateway.store.outbox import Due
from gateway.store.spool import Spool

# Object stores reward parallel writes (S3 requests overlap, local syscalls release the
# GIL); this many objects of one batch are in flight at once.
OBJECT_WRITERS = 4


@dataclass
class StepOutcome:
    """What became of one batch: a result per report, and what the log should know."""

    step: Step
    results: list[StepResult] = field(default_factory=list)
    # What stopped the batch (or part of it), for the log and the sink's health.
    error: SinkError | None = None
    # Spooled media to delete once the results are committed (never before: a crash in
    # between would redeliver and find them gone).
    spooled: list[Path] = field(default_factory=list)

    def finished(self) -> set[str]:
        """The reports this batch is done with, whatever became of them."""
        return {result.report_id for result in self.results if not isinstance(result, Retry)}

    def failed(self, error: SinkError, report_ids: Sequence[str]) -> StepOutcome:
        """The rest of the batch failed with `error`: again later, or never."""
        self.error = self.error or error
        make = DeadLetter if isinstance(error, PermanentSinkError) else Retry
        self.results.extend(make(report_id, str(error)) for report_id in report_ids)
        return self


class Deliveries:
    def __init__(
        self,
        spool: Spool,
        media: MediaRunner,
        media_settings: tuple[PhotoSettings, VoiceSettings],
        registry: Registry,
        objects: ObjectStore,
        publisher: Publisher,
        publish_timeout_s: float,
        log: FilteringBoundLogger,
    ) -> None:
        self.spool = spool
        self.media = media
        self.photo_settings, self.voice_settings = media_settings
        self.registry = registry
        self.objects = objects
        self.publisher = publisher
        self.publish_timeout_s = publish_timeout_s
        self.log = log
        self._writers = ThreadPoolExecutor(OBJECT_WRITERS, thread_name_prefix="objects")
        self.by_step: dict[Step, Callable[[list[Due]], StepOutcome]] = {
            Step.MEDIA: self.media_batch,
            Step.REGISTRY: self.registry_batch,
            Step.OBJECTS: self.objects_batch,
            Step.BUS: self.bus_batch,
            Step.ACK: self.ack_batch,
        }

    def deliver(self, step: Step, due: list[Due]) -> StepOutcome:
        """Run one batch; sink errors become part of the outcome, never an exception."""
        started = time.monotonic()
        outcome = self._deliver(step, due)
        finished = outcome.finished()
        metrics.stage_done(
            step,
            [item.due_since for item in due if item.report_id in finished],
            time.monotonic() - started,
        )
        return outcome

    def _deliver(self, step: Step, due: list[Due]) -> StepOutcome:
        ids = [item.report_id for item in due]
        try:
            return self.by_step[step](due)
        except SinkError as error:
            return StepOutcome(step).failed(error, ids)
        except Exception as error:
            # A bug, not the sink's fault: keep the work (it is retried) and say so loudly.
            self.log.exception("sink.unexpected_error", sink=step)
            failure = RetryableSinkError(f"unexpected {type(error).__name__}: {error}")
            return StepOutcome(step).failed(failure, ids)

    def close(self) -> None:
        self._writers.shutdown()
        self.media.close()

    # ---- media ---------------------------------------------------------------------------

    def media_batch(self, due: list[Due]) -> StepOutcome:
        reports = {item.report_id: item.report() for item in due}
        batch = [
            MediaJob(
                media_id=media.media_id,
                kind=media.kind,
                mime=media.mime,
                source=self.spool.path(item.device_id, media.media_id),
                photo=self.photo_settings,
                voice=self.voice_settings,
            )
            for item in due
            for media in reports[item.report_id].media
        ]
        self.spool.fetch([job.source for job in batch])  # assembled by another instance?
        results = {result.media_id: result for result in self.media.run(batch)}
        outcome = StepOutcome(Step.MEDIA)
        for item in due:
            report = reports[item.report_id]
            derived: dict[str, MediaDerived] = {}
            for media in report.media:
                result = results[media.media_id]
                if not isinstance(result, MediaDerived):
                    outcome.results.append(
                        report_rejected(
                            self.log,
                            step=Step.MEDIA,
                            report_id=item.report_id,
                            device_id=item.device_id,
                            reason=Reason(result.reason),
                            detail=f"media {result.media_id}: {result.message}",
                            media_id=result.media_id,
                        )
                    )
                    outcome.spooled.extend(self._spooled(item, report))
                    break
                derived[media.media_id] = result
                made = sum(file.bytes for file in result.files)
                metrics.MEDIA_BYTES_OUT.labels(media.kind).inc(made)
            else:
                self.spool.keep(
                    [
                        derivative_path(self.spool.path(item.device_id, media_id), file.name)
                        for media_id, result in derived.items()
                        for file in result.files
                    ]
                )
                outcome.results.append(Derived(item.report_id, with_derivatives(report, derived)))
        return outcome

    def _spooled(self, item: Due, report: NormalizedReport) -> list[Path]:
        """Every spool file of a report: originals and whatever derivatives exist."""
        paths = []
        for media in report.media:
            original = self.spool.path(item.device_id, media.media_id)
            paths.append(original)
            paths.extend(derivative_path(original, name) for name in DERIVATIVE_NAMES)
        return paths

    # ---- registry ------------------------------------------------------------------------

    def registry_batch(self, due: list[Due]) -> StepOutcome:
        reports = [item.report() for item in due]
        answers = self.registry.register(reports)
        now = time.time()
        outcome = StepOutcome(Step.REGISTRY)
        for item, report, answer in zip(due, reports, answers, strict=True):
            if isinstance(answer, TaskUnknown):
                outcome.results.append(self._task_unknown(item, answer))
                outcome.spooled.extend(self._spooled(item, report))
                continue
            outcome.results.append(Registered(item.report_id, answer, report.with_case_no(answer)))
            log = self.log.bind(task_id=report.task_id) if report.task_id else self.log
            log.info(
                "verification.registered" if report.task_id else "report.registered",
                device_id=item.device_id,
                report_id=item.report_id,
                case_no=answer,
                latency_ms=round((now - report.received_at.timestamp()) * 1000, 1),
            )
        metrics.REPORTS_ACCEPTED.inc(
            sum(isinstance(result, Registered) for result in outcome.results)
        )
        return outcome

    def _task_unknown(self, item: Due, answer: TaskUnknown) -> Rejected:
        """A verification of no task of this device: rejected, its media let go."""
        return report_rejected(
            self.log,
            step=Step.REGISTRY,
            report_id=item.report_id,
            device_id=item.device_id,
            reason=Reason.TASK_UNKNOWN,
            detail=answer.task_id,
            task_id=answer.task_id,
        )

    # ---- objects, bus, ack -----------------------------------------------------------------

    def objects_batch(self, due: list[Due]) -> StepOutcome:
        futures = [self._writers.submit(self._store, item) for item in due]
        outcome = StepOutcome(Step.OBJECTS)
        for item, future in zip(due, futures, strict=True):
            error = future.exception()
            if error is None:
                outcome.results.append(Delivered(item.report_id))
                outcome.spooled.extend(future.result())
            elif isinstance(error, PermanentSinkError):
                outcome.results.append(DeadLetter(item.report_id, str(error)))
            elif isinstance(error, SinkError):
                outcome.failed(error, [item.report_id])
            else:
                raise error
        if any(isinstance(result, Delivered) for result in outcome.results):
            self.objects.flush()
        return outcome

    def _store(self, item: Due) -> list[Path]:
        """Store one report's objects; returns its spool files, now safe to delete."""
        if item.case_no is None:  # a rejected report has nothing to keep
            return []
        report = item.report()
        spooled = []
        for media in report.media:
            path = self.spool.path(item.device_id, media.media_id)
            files = [(media.original.key, path, media.original.sha256, media.mime)] + [
                (d.key, derivative_path(path, d.name), d.sha256, d.mime) for d in media.derivatives
            ]
            self.spool.fetch([file for _, file, _, _ in files])
            for key, file, sha256, mime in files:
                if not file.exists():
                    raise PermanentSinkError(f"spool file {file.name} is gone")
                self.objects.put_file(key, file, sha256=sha256, content_type=mime)
                spooled.append(file)
        assert item.normalized is not None  # noqa: S101 - item.report() above has read it
        self.objects.put_bytes(
            report_key(item.report_id), item.normalized, content_type="application/json"
        )
        return spooled

    def bus_batch(self, due: list[Due]) -> StepOutcome:
        messages = []
        for item in due:
            report = item.report()
            topic = terminal.normalized_topic(report.class_.type, report.class_.code)
            messages.append((topic, item.normalized or b""))
        return self._publish(Step.BUS, due, messages)

    def ack_batch(self, due: list[Due]) -> StepOutcome:
        messages = []
        for item in due:
            if item.case_no is not None:
                payload = terminal.encode_accepted(item.report_id, item.case_no)
            else:
                reason = ReasonBody(code=item.reason_code or "", message=item.reason_message or "")
                payload = terminal.encode_rejected(item.report_id, reason)
            messages.append((terminal.ack_topic(item.device_id), payload))
        return self._publish(Step.ACK, due, messages)

    def _publish(
        self, step: Step, due: Sequence[Due], messages: list[tuple[str, bytes]]
    ) -> StepOutcome:
        confirmed = self.publisher.publish_many(messages, self.publish_timeout_s)
        outcome = StepOutcome(step)
        unconfirmed = [item.report_id for item, ok in zip(due, confirmed, strict=True) if not ok]
        outcome.results.extend(
            Delivered(item.report_id) for item, ok in zip(due, confirmed, strict=True) if ok
        )
        if unconfirmed:
            error = RetryableSinkError(f"{len(unconfirmed)} {step} messages unconfirmed")
            outcome.failed(error, unconfirmed)
        return outcome
