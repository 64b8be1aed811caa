"""The sink ports, and the registry's task book. Implementations raise
`RetryableSinkError` for what may pass (timeouts, a server restarting) and
`PermanentSinkError` for what never will."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from gateway.cases.workflow import CaseEvent, CaseLife, Command, Refusal, Timekeeper
from gateway.normalize.model import NormalizedReport
from gateway.protocols.payloads import Task
from gateway.sinks.case_ledger import Applied, Overdue


@dataclass(frozen=True, slots=True)
class TaskUnknown:
    """The registry's answer to a verification report whose task it does not know, or
    knows as issued to another device: no case is made or touched."""

    task_id: str


class Registry(Protocol):
    def register(self, reports: Sequence[NormalizedReport]) -> list[str | TaskUnknown]:
        """Register reports as cases, idempotent by report id; returns their case numbers
        in order. Each is stored with its case number filled in.

        A report with a `task_id` is a verification: stored against the task's case, whose
        number it returns, or refused with `TaskUnknown`."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task as the registry keeps it: the wire message, whom it is for, where it stands."""

    device_id: str
    task: Task
    created_at: str  # RFC 3339
    sent_at: str | None  # None until the broker acknowledged its publication
    verifications: int  # reports received in answer


class TaskBook(Protocol):
    """Tasks for terminals, kept in the registry beside the cases they are about."""

    def case_exists(self, case_no: str) -> bool: ...

    def add_task(self, device_id: str, task: Task, *, hold_s: float = 0.0) -> TaskRecord:
        """Record a new task, unsent. The dispatcher leaves it alone for `hold_s` seconds
        (the caller publishes it itself meanwhile)."""
        ...

    def unsent_tasks(self, limit: int) -> list[TaskRecord]:
        """Tasks not yet published (and not held), oldest first."""
        ...

    def claim_unsent(self, limit: int, lease_s: float) -> list[TaskRecord]:
        """Unsent tasks, held back from other gateways sharing the registry for `lease_s`."""
        ...

    def mark_sent(self, task_ids: Sequence[str]) -> None: ...

    def tasks(
        self, *, unsent_only: bool = False, case_no: str | None = None, limit: int = 200
    ) -> list[TaskRecord]:
        """Tasks for operators, newest first."""
        ...

    def close(self) -> None: ...


class CaseBook(Protocol):
    """Each case's lifecycle after acceptance (`gateway/sinks/case_ledger.py`)."""

    def act(self, command: Command, clock: Timekeeper) -> Applied | Refusal:
        """Apply one step to a case under its lock, recording the event; a refusal changes
        nothing. A command sent again (same `command_id`) gets its first event back."""
        ...

    def life(self, case_no: str) -> CaseLife | None: ...

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """A read of the registry's tables (`?` placeholders: the SQL both engines share)."""
        ...

    def stamp(self, moment: datetime) -> object:
        """An instant as the registry stores it, for `query`'s parameters."""
        ...

    def history(self, case_no: str) -> list[CaseEvent]: ...

    def overdue(self, now: datetime, limit: int) -> list[Overdue]: ...

    def unpublished_events(self, limit: int) -> list[tuple[int, CaseEvent]]: ...

    def mark_events_published(self, event_ids: Sequence[int]) -> None: ...


class CaseRegistry(Registry, TaskBook, CaseBook, Protocol):
    """What both registries are (SQLite and PostgreSQL): the pipeline's `Registry`, the
    tasks' `TaskBook` and the lifecycle's `CaseBook`."""


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path, *, sha256: str, content_type: str) -> None:
        """Store a file under `key`; a content-addressed key already present is skipped."""
        ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None: ...

    def flush(self) -> None:
        """Make every object put so far durable; called before deliveries are marked done."""
        ...

    def close(self) -> None: ...


class ObjectReader(Protocol):
    """What the console reads of the objects: photos, voice notes, originals."""

    def read(self, key: str) -> bytes | None:
        """An object's bytes; None if there is no such key."""
        ...


class Publisher(Protocol):
    def publish_many(self, messages: Sequence[tuple[str, bytes]], timeout_s: float) -> list[bool]:
        """Publish at QoS 1; True for each message the broker acknowledged in time."""
        ...
