"""Deliveries: what each step does with a batch of due outbox rows.

`media` makes the derivatives of a report's photos and voice notes (in the worker pool)
and completes its document; `registry` assigns case numbers (its result fans the report
out to the other three; a verification report gets its task's case number, or is
refused with `task.unknown`); `objects` stores originals, derivatives and the normalized JSON;
`bus` publishes the normalized report; `ack` answers the terminal. Each function runs on
its step's own worker thread, touches nothing but its sink, and returns an `Outcome`
that the pipeline records in the outbox, so the outbox keeps a single writer and a slow
sink holds back only itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from structlog.typing import FilteringBoundLogger

from gateway import metrics
from gateway.errors import REASON_TEXT, PermanentSinkError, Reason, RetryableSinkError, SinkError
from gateway.media.jobs import DERIVATIVE_NAMES, Derived, MediaJob, Refused, derivative_path
from gateway.media.photo import PhotoSettings
from gateway.media.pool import MediaRunner
from gateway.media.voice import VoiceSettings
from gateway.normalize.report import with_case_no, with_derivatives
from gateway.object_keys import report_key
from gateway.protocols import terminal
from gateway.protocols.payloads import ReasonBody
from gateway.sinks.ports import NewCase, ObjectStore, Publisher, Registry, TaskUnknown
from gateway.store.outbox import Due

# Object stores reward parallel writes (S3 requests overlap, local syscalls release the
# GIL); this many objects of one batch are in flight at once.
OBJECT_WRITERS = 4


@dataclass
class Outcome:
    """What became of one batch: delivered ids, and the error that stopped the rest."""

    sink: str
    done: list[str] = field(default_factory=list)
    registered: list[tuple[str, str, bytes]] = field(default_factory=list)
    derived: list[tuple[str, bytes]] = field(default_factory=list)  # the completed documents
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # id, reason, message
    undelivered: list[str] = field(default_factory=list)
    error: SinkError | None = None
    # Items that failed for good on their own (one missing spool file, one refused key)
    # while the rest of the batch went through: report id, the error's message.
    dead: list[tuple[str, str]] = field(default_factory=list)
    # Spooled media to delete once `done` is committed (never before: a crash in between
    # would redeliver and find them gone).
    spooled: list[Path] = field(default_factory=list)

    def finished(self) -> set[str]:
        """The reports this batch is done with, whatever became of them."""
        return (
            set(self.done)
            | {report_id for report_id, _, _ in self.registered}
            | {report_id for report_id, _ in self.derived}
            | {report_id for report_id, _, _ in self.refused}
        )


class Deliveries:
    def __init__(
        self,
        spool_path: Callable[[str, str], Path],
        media: MediaRunner,
        media_settings: tuple[PhotoSettings, VoiceSettings],
        registry: Registry,
        objects: ObjectStore,
        publisher: Publisher,
        publish_timeout_s: float,
        log: FilteringBoundLogger,
    ) -> None:
        self.spool_path = spool_path
        self.media = media
        self.photo_settings, self.voice_settings = media_settings
        self.registry = registry
        self.objects = objects
        self.publisher = publisher
        self.publish_timeout_s = publish_timeout_s
        self.log = log
        self._writers = ThreadPoolExecutor(OBJECT_WRITERS, thread_name_prefix="objects")
        self.by_sink: dict[str, Callable[[list[Due]], Outcome]] = {
            "media": self.media_batch,
            "registry": self.registry_batch,
            "objects": self.objects_batch,
            "bus": self.bus_batch,
            "ack": self.ack_batch,
        }

    def deliver(self, sink: str, due: list[Due]) -> Outcome:
        """Run one batch; sink errors become part of the outcome, never an exception."""
        started = time.monotonic()
        outcome = self._deliver(sink, due)
        finished = outcome.finished()
        metrics.stage_done(
            sink,
            [item.due_since for item in due if item.report_id in finished],
            time.monotonic() - started,
        )
        return outcome

    def _deliver(self, sink: str, due: list[Due]) -> Outcome:
        try:
            return self.by_sink[sink](due)
        except SinkError as error:
            return Outcome(sink, undelivered=[item.report_id for item in due], error=error)
        except Exception as error:
            # A bug, not the sink's fault: keep the work (it is retried) and say so loudly.
            self.log.exception("sink.unexpected_error", sink=sink)
            failure = RetryableSinkError(f"unexpected {type(error).__name__}: {error}")
            return Outcome(sink, undelivered=[item.report_id for item in due], error=failure)

    def close(self) -> None:
        self._writers.shutdown()
        self.media.close()

    def media_batch(self, due: list[Due]) -> Outcome:
        documents = {item.report_id: _document(item) for item in due}
        batch = [
            MediaJob(
                media_id=media["media_id"],
                kind=media["kind"],
                mime=media["mime"],
                source=self.spool_path(item.device_id, media["media_id"]),
                photo=self.photo_settings,
                voice=self.voice_settings,
            )
            for item in due
            for media in documents[item.report_id]["media"]
        ]
        results = {result.media_id: result for result in self.media.run(batch)}
        outcome = Outcome("media")
        for item in due:
            document = documents[item.report_id]
            mine = [results[media["media_id"]] for media in document["media"]]
            refusals = [result for result in mine if isinstance(result, Refused)]
            if refusals:
                first = refusals[0]
                text = REASON_TEXT[Reason(first.reason)]
                message = f"media {first.media_id}: {text}: {first.message}"
                outcome.refused.append((item.report_id, first.reason, message[:500]))
                metrics.REJECTED.labels(first.reason).inc()
                outcome.spooled.extend(self._spooled(item, document))
                self.log.warning(
                    "report.rejected",
                    device_id=item.device_id,
                    report_id=item.report_id,
                    reason=first.reason,
                    media_id=first.media_id,
                    detail=first.message,
                )
                continue
            derived = {
                result.media_id: (result.derivatives, result.metadata)
                for result in mine
                if isinstance(result, Derived)
            }
            for media in document["media"]:
                made = derived[media["media_id"]][0]
                metrics.MEDIA_BYTES_OUT.labels(media["kind"]).inc(sum(d["bytes"] for d in made))
            outcome.derived.append(
                (item.report_id, orjson.dumps(with_derivatives(document, derived)))
            )
        return outcome

    def _spooled(self, item: Due, document: dict[str, Any]) -> list[Path]:
        """Every spool file of a report: originals and whatever derivatives exist."""
        paths = []
        for media in document["media"]:
            original = self.spool_path(item.device_id, media["media_id"])
            paths.append(original)
            paths.extend(derivative_path(original, name) for name in DERIVATIVE_NAMES)
        return paths

    def registry_batch(self, due: list[Due]) -> Outcome:
        documents = [_document(item) for item in due]
        cases = [
            NewCase(
                report_id=item.report_id,
                kind=document["class"]["type"],
                class_code=document["class"]["code"],
                received_at=document["received_at"],
                report=document,
                device_id=item.device_id,
                task_id=document.get("task_id"),
            )
            for item, document in zip(due, documents, strict=True)
        ]
        answers = self.registry.register(cases)
        now = time.time()
        outcome = Outcome("registry")
        for item, document, answer in zip(due, documents, answers, strict=True):
            if isinstance(answer, TaskUnknown):
                self._task_unknown(outcome, item, document, answer)
                continue
            stamped = orjson.dumps(with_case_no(document, answer))
            outcome.registered.append((item.report_id, answer, stamped))
            received = datetime.fromisoformat(document["received_at"]).timestamp()
            task_id = document.get("task_id")
            log = self.log.bind(task_id=task_id) if task_id else self.log
            log.info(
                "verification.registered" if task_id else "report.registered",
                device_id=item.device_id,
                report_id=item.report_id,
                case_no=answer,
                latency_ms=round((now - received) * 1000, 1),
            )
        metrics.REPORTS_ACCEPTED.inc(len(outcome.registered))
        return outcome

    def _task_unknown(
        self, outcome: Outcome, item: Due, document: dict[str, Any], answer: TaskUnknown
    ) -> None:
        """A verification of no task of this device: rejected, its media let go."""
        reason = Reason.TASK_UNKNOWN
        message = f"{REASON_TEXT[reason]}: {answer.task_id}"
        outcome.refused.append((item.report_id, reason.value, message))
        outcome.spooled.extend(self._spooled(item, document))
        metrics.REJECTED.labels(reason.value).inc()
        self.log.warning(
            "task.unknown",
            device_id=item.device_id,
            report_id=item.report_id,
            task_id=answer.task_id,
            reason=reason.value,
        )

    def objects_batch(self, due: list[Due]) -> Outcome:
        futures = [self._writers.submit(self._store, item) for item in due]
        outcome = Outcome("objects")
        for item, future in zip(due, futures, strict=True):
            error = future.exception()
            if error is None:
                outcome.done.append(item.report_id)
                outcome.spooled.extend(future.result())
            elif isinstance(error, PermanentSinkError):
                outcome.dead.append((item.report_id, str(error)))
            elif isinstance(error, SinkError):
                outcome.undelivered.append(item.report_id)
                outcome.error = outcome.error or error
            else:
                raise error
        if outcome.done:
            self.objects.flush()
        return outcome

    def _store(self, item: Due) -> list[Path]:
        """Store one report's objects; returns its spool files, now safe to delete."""
        if item.state != "registered":  # a rejected report has nothing to keep
            return []
        document = _document(item)
        spooled = []
        for media in document["media"]:
            original = media["original"]
            path = self.spool_path(item.device_id, media["media_id"])
            files = [(original["key"], path, original["sha256"], media["mime"])] + [
                (d["key"], derivative_path(path, d["name"]), d["sha256"], d["mime"])
                for d in media["derivatives"]
            ]
            for key, file, sha256, mime in files:
                if not file.exists():
                    raise PermanentSinkError(f"spool file {file.name} is gone")
                self.objects.put_file(key, file, sha256=sha256, content_type=mime)
                spooled.append(file)
        self.objects.put_bytes(
            report_key(item.report_id), _normalized(item), content_type="application/json"
        )
        return spooled

    def bus_batch(self, due: list[Due]) -> Outcome:
        messages = []
        for item in due:
            document = _document(item)
            topic = terminal.normalized_topic(document["class"]["type"], document["class"]["code"])
            messages.append((topic, _normalized(item)))
        return self._publish("bus", due, messages)

    def ack_batch(self, due: list[Due]) -> Outcome:
        messages = []
        for item in due:
            if item.case_no is not None:
                payload = terminal.encode_accepted(item.report_id, item.case_no)
            else:
                reason = ReasonBody(code=item.reason_code or "", message=item.reason_message or "")
                payload = terminal.encode_rejected(item.report_id, reason)
            messages.append((terminal.ack_topic(item.device_id), payload))
        return self._publish("ack", due, messages)

    def _publish(self, sink: str, due: Sequence[Due], messages: list[tuple[str, bytes]]) -> Outcome:
        confirmed = self.publisher.publish_many(messages, self.publish_timeout_s)
        outcome = Outcome(sink)
        for item, ok in zip(due, confirmed, strict=True):
            (outcome.done if ok else outcome.undelivered).append(item.report_id)
        if outcome.undelivered:
            outcome.error = RetryableSinkError(
                f"{len(outcome.undelivered)} {sink} messages unconfirmed"
            )
        return outcome


def _normalized(item: Due) -> bytes:
    if item.normalized is None:  # only registered reports reach these sinks
        raise PermanentSinkError(f"report {item.report_id} has no normalized document")
    return item.normalized


def _document(item: Due) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(_normalized(item))
    return document
