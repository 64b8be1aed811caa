"""Tasks and verification reports in each registry: SQLite, PostgreSQL (a real server)
and the in-memory fake, held to one contract."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import psycopg
import pytest
from structlog.testing import capture_logs

from gateway import logs
from gateway.normalize.model import NormalizedReport
from gateway.protocols.payloads import Task, TaskLocation
from gateway.sinks.case_registry_postgres import PostgresRegistry
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.memory import MemoryRegistry
from gateway.sinks.ports import Registry, TaskBook, TaskUnknown
from gateway.sinks.settings import PostgresSettings
from tests.factories import normalized

TZ = ZoneInfo("Asia/Shanghai")
DEVICE = "tz-0001"
UNREADABLE = "00000000-0000-4000-8000-000000000001"


class Tasked(Registry, TaskBook, Protocol):
    """What these tests ask of a registry (the in-memory one keeps no lifecycle)."""


@dataclass
class Rig:
    registry: Tasked
    count: Callable[[str], int]  # rows of `cases` or `verifications`
    # (report_id, task_id, case_no, the stored report's case_no) of every verification
    verifications: Callable[[], list[tuple[str, str, str, str]]]


def sqlite_rig(path: Path) -> Rig:
    def query(sql: str) -> list[Any]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return Rig(
        SqliteRegistry(path, TZ),
        lambda table: int(query(f"SELECT count(*) FROM {table}")[0][0]),  # noqa: S608 - a constant
        lambda: [
            (r, t, c, json.loads(report)["case_no"])
            for r, t, c, report in query(
                "SELECT report_id, task_id, case_no, report FROM verifications ORDER BY id"
            )
        ],
    )


def postgres_rig(dsn: str) -> Rig:
    def query(sql: str) -> list[Any]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            cursor = conn.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []

    settings = PostgresSettings(pool_max=2, connect_timeout_s=1)
    return Rig(
        PostgresRegistry(dsn, settings, TZ, logs.get("test")),
        lambda table: int(query(f"SELECT count(*) FROM {table}")[0][0]),  # noqa: S608 - a constant
        lambda: [
            tuple(row)
            for row in query(
                "SELECT report_id, task_id::text, case_no, report->>'case_no' FROM verifications"
                " ORDER BY id"
            )
        ],
    )


def memory_rig() -> Rig:
    registry = MemoryRegistry(TZ)

    return Rig(
        registry,
        lambda table: len(registry.cases if table == "cases" else registry.verifications),
        lambda: [
            (report_id, (case.task_id or "").lower(), case_no, case_no)
            for report_id, (case_no, case) in registry.verifications.items()
        ],
    )


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "sqlite":
        made = sqlite_rig(tmp_path / "registry.db")
    elif request.param == "postgres":
        made = postgres_rig(request.getfixturevalue("postgres_dsn"))
    else:
        made = memory_rig()
    yield made
    made.registry.close()


def report(task_id: str | None = None, device_id: str = DEVICE) -> NormalizedReport:
    return normalized(str(uuid.uuid4()), device_id, task_id=task_id)


def issue(rig: Rig, case_no: str, device_id: str = DEVICE, **fields: Any) -> Task:
    task = Task(task_id=str(uuid.uuid4()), case_no=case_no, kind="verify", **fields)
    rig.registry.add_task(device_id, task)
    return task


def test_a_verification_is_filed_under_its_tasks_case(rig: Rig) -> None:
    original = report()
    [case_no] = rig.registry.register([original])
    assert isinstance(case_no, str)
    task = issue(rig, case_no)

    answer = report(task.task_id)
    assert rig.registry.register([answer]) == [case_no]

    assert rig.count("cases") == 1  # no new case
    assert rig.verifications() == [(answer.report_id, task.task_id, case_no, case_no)]
    [listed] = rig.registry.tasks()
    assert (listed.task, listed.device_id, listed.verifications) == (task, DEVICE, 1)


def test_registering_a_verification_again_changes_nothing(rig: Rig) -> None:
    [case_no] = rig.registry.register([report()])
    assert isinstance(case_no, str)
    task = issue(rig, case_no)
    answer = report(task.task_id)
    first = rig.registry.register([answer])

    other = report()  # a new case in the same batch as the repeated verification
    again = rig.registry.register([answer, other])

    assert again[0] == first[0] == case_no
    assert isinstance(again[1], str)
    assert again[1] != case_no
    assert rig.count("cases") == 2
    assert rig.count("verifications") == 1


def test_a_second_verification_of_one_task_is_another_verification_of_the_case(
    rig: Rig,
) -> None:
    [case_no] = rig.registry.register([report()])
    assert isinstance(case_no, str)
    task = issue(rig, case_no)
    # (a terminal may write the task id in any hex case: the normalized report carries it
    # in lower case, tests/unit/test_pipeline.py shows it)
    first, second = report(task.task_id), report(task.task_id)

    assert rig.registry.register([first, second]) == [case_no, case_no]
    assert [row[0] for row in rig.verifications()] == [first.report_id, second.report_id]
    assert rig.count("cases") == 1
    assert rig.registry.tasks()[0].verifications == 2


def test_an_unknown_task_or_another_devices_task_is_refused(rig: Rig) -> None:
    [case_no] = rig.registry.register([report()])
    assert isinstance(case_no, str)
    theirs = issue(rig, case_no, device_id="tz-0002")
    nobody = str(uuid.uuid4())

    answers = rig.registry.register([report(nobody), report(theirs.task_id), report()])

    assert answers[:2] == [TaskUnknown(nobody), TaskUnknown(theirs.task_id)]
    assert isinstance(answers[2], str)  # the rest of the batch is registered
    assert rig.count("verifications") == 0
    assert rig.count("cases") == 2


def test_tasks_wait_to_be_sent_until_marked(rig: Rig) -> None:
    [case_no] = rig.registry.register([report()])
    assert isinstance(case_no, str)
    assert rig.registry.case_exists(case_no)
    assert not rig.registry.case_exists("E010220261128999999")
    where = TaskLocation(lat=32.03, lon=120.865, address="崇川路 12 号")
    task = issue(
        rig,
        case_no,
        location=where,
        note="核查井盖",
        deadline=datetime.fromisoformat("2026-12-01T18:00:00+08:00"),
    )

    [due] = rig.registry.unsent_tasks(10)
    assert (due.task, due.device_id, due.sent_at) == (task, DEVICE, None)
    rig.registry.mark_sent([task.task_id])

    assert rig.registry.unsent_tasks(10) == []
    assert rig.registry.tasks(unsent_only=True) == []
    [sent] = rig.registry.tasks(case_no=case_no)
    assert sent.sent_at is not None
    assert rig.registry.tasks(case_no="E010220261128999999") == []


def test_a_held_task_is_left_alone_until_its_hold_ends(rig: Rig) -> None:
    [case_no] = rig.registry.register([report()])
    assert isinstance(case_no, str)
    task = Task(task_id=str(uuid.uuid4()), case_no=case_no, kind="verify")
    rig.registry.add_task(DEVICE, task, hold_s=0.5)
    assert rig.registry.unsent_tasks(10) == []
    time.sleep(0.6)
    assert [due.task for due in rig.registry.unsent_tasks(10)] == [task]


def test_a_backends_unreadable_task_is_skipped_and_logged(tmp_path: Path) -> None:
    # SQLite takes any text; PostgreSQL's types and checks refuse what makes no task.
    rig = sqlite_rig(tmp_path / "registry.db")
    [case_no] = rig.registry.register([report()])
    assert isinstance(case_no, str)
    good = issue(rig, case_no)
    with sqlite3.connect(tmp_path / "registry.db") as conn:  # a deadline with no offset
        conn.execute(
            "INSERT INTO tasks (task_id, case_no, device_id, deadline) VALUES (?, ?, ?, ?)",
            (UNREADABLE, case_no, DEVICE, "2026-12-01T18:00:00"),
        )
    with capture_logs() as logged:
        due = rig.registry.unsent_tasks(10)
    assert [record.task for record in due] == [good]
    [warning] = [line for line in logged if line["event"] == "task.unreadable"]
    assert warning["task_id"] == UNREADABLE
    rig.registry.close()
