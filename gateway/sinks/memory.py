"""In-memory sinks for unit tests of the pipeline (pure code only; integration tests use
the real ones). Each can be told to fail, to exercise retries and dead letters."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.errors import SinkError
from gateway.normalize.case_no import case_number
from gateway.normalize.model import NormalizedReport
from gateway.protocols.payloads import Task
from gateway.sinks.ports import TaskRecord, TaskUnknown

SHANGHAI = ZoneInfo("Asia/Shanghai")


class MemoryRegistry:
    """Cases, verifications and tasks in dicts; the `Registry` and `TaskBook` ports."""

    def __init__(self, tz: ZoneInfo = SHANGHAI) -> None:
        self.cases: dict[str, tuple[str, NormalizedReport]] = {}
        self.verifications: dict[str, tuple[str, NormalizedReport]] = {}  # by report id
        self.issued: dict[str, TaskRecord] = {}  # by task id, in creation order
        self.held: dict[str, float] = {}  # task id: until when (time.monotonic)
        self.tz = tz
        self.failure: SinkError | None = None

    def register(self, cases: Sequence[NormalizedReport]) -> list[str | TaskUnknown]:
        if self.failure is not None:
            raise self.failure
        return [self._register(case) for case in cases]

    def _register(self, case: NormalizedReport) -> str | TaskUnknown:
        known = self.cases.get(case.report_id) or self.verifications.get(case.report_id)
        if known is not None:
            return known[0]
        if case.task_id is not None:
            record = self.issued.get(case.task_id.lower())
            if record is None or record.device_id != case.reporter.device_id:
                return TaskUnknown(case.task_id.lower())
            self.verifications[case.report_id] = (record.task.case_no, case)
            return record.task.case_no
        serial = len(self.cases) + 1
        number = case_number(case.class_.type, case.class_.code, case.received_at, serial, self.tz)
        self.cases[case.report_id] = (number, case)
        return number

    def case_exists(self, case_no: str) -> bool:
        return any(number == case_no for number, _ in self.cases.values())

    def add_task(self, device_id: str, task: Task, *, hold_s: float = 0.0) -> TaskRecord:
        if self.failure is not None:
            raise self.failure
        record = TaskRecord(device_id, task, _now(), None, 0)
        self.issued[task.task_id.lower()] = record
        self.held[task.task_id.lower()] = time.monotonic() + hold_s
        return record

    def unsent_tasks(self, limit: int) -> list[TaskRecord]:
        if self.failure is not None:
            raise self.failure
        now = time.monotonic()
        due = [
            self._counted(record)
            for task_id, record in self.issued.items()
            if record.sent_at is None and self.held[task_id] <= now
        ]
        return due[:limit]

    def claim_unsent(self, limit: int, lease_s: float) -> list[TaskRecord]:
        return self.unsent_tasks(limit)

    def mark_sent(self, task_ids: Sequence[str]) -> None:
        for task_id in task_ids:
            record = self.issued[task_id.lower()]
            if record.sent_at is None:
                self.issued[task_id.lower()] = replace(record, sent_at=_now())

    def tasks(
        self, *, unsent_only: bool = False, case_no: str | None = None, limit: int = 200
    ) -> list[TaskRecord]:
        chosen = [
            self._counted(record)
            for record in reversed(self.issued.values())
            if not (unsent_only and record.sent_at is not None)
            and case_no in (None, record.task.case_no)
        ]
        return chosen[:limit]

    def _counted(self, record: TaskRecord) -> TaskRecord:
        task_id = record.task.task_id.lower()
        answers = sum(
            1 for _, case in self.verifications.values() if (case.task_id or "").lower() == task_id
        )
        return replace(record, verifications=answers)

    def close(self) -> None:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class MemoryObjectStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.failure: SinkError | None = None

    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> None:
        self.put_bytes(key, path.read_bytes(), content_type=content_type)

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        if self.failure is not None:
            raise self.failure
        self.objects[key] = data

    def read(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class MemoryPublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.failure: SinkError | None = None

    def publish_many(self, messages: Sequence[tuple[str, bytes]], timeout_s: float) -> list[bool]:
        if self.failure is not None:
            raise self.failure
        self.messages.extend(messages)
        return [True] * len(messages)
