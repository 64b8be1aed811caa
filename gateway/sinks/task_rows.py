"""Rows of the registry's `tasks` table, as both registries (SQLite and PostgreSQL) read
them: one SELECT list, one conversion into the wire `Task`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from structlog.typing import FilteringBoundLogger

from gateway.protocols.payloads import Task, TaskLocation
from gateway.sinks.ports import TaskRecord

# Portable SQL: the same columns in the same order in both dialects.
TASK_SELECT = (
    "SELECT t.device_id, t.task_id, t.case_no, t.kind, t.lat, t.lon, t.address, t.deadline,"
    " t.note, t.created_at, t.sent_at,"
    " (SELECT count(*) FROM verifications v WHERE v.task_id = t.task_id)"
    " FROM tasks t"
)


class UnreadableTask(ValueError):
    """A row (inserted by a backend) that does not make a valid task message."""

    def __init__(self, task_id: str, detail: str) -> None:
        super().__init__(f"task {task_id}: {detail}")
        self.task_id = task_id


def task_record(row: Sequence[Any]) -> TaskRecord:
    """One row of TASK_SELECT as a record; raises UnreadableTask for a malformed one."""
    device_id, task_id, case_no, kind, lat, lon, address, deadline, note = row[:9]
    created_at, sent_at, verifications = row[9:]
    try:
        location = None
        if lat is not None and lon is not None:
            location = TaskLocation(lat=float(lat), lon=float(lon), address=address)
        task = Task(
            task_id=str(task_id),
            case_no=case_no,
            kind=kind,
            location=location,
            deadline=_datetime(deadline),
            note=note,
        )
    except (ValidationError, ValueError, TypeError) as error:
        raise UnreadableTask(str(task_id), str(error).replace("\n", " ")) from None
    return TaskRecord(
        device_id=device_id,
        task=task,
        created_at=_text(created_at),
        sent_at=None if sent_at is None else _text(sent_at),
        verifications=int(verifications),
    )


def readable(rows: Sequence[Sequence[Any]], log: FilteringBoundLogger) -> list[TaskRecord]:
    """The rows that make valid tasks; each one that does not is logged and skipped, so a
    backend's bad row never holds back the others."""
    records = []
    for row in rows:
        try:
            records.append(task_record(row))
        except UnreadableTask as error:
            log.warning("task.unreadable", task_id=error.task_id, error=str(error))
    return records


def _datetime(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _text(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value
