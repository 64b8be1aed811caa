"""The case registry in SQLite: the embedded default, same schema as PostgreSQL's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from structlog.typing import FilteringBoundLogger

from gateway import logs
from gateway.cases.workflow import CaseEvent, CaseLife, Command, Refusal, Timekeeper
from gateway.normalize.case_no import case_number
from gateway.normalize.model import NormalizedReport
from gateway.protocols.payloads import Task
from gateway.sinks import case_ledger
from gateway.sinks.case_ledger import Applied, Overdue, local_day
from gateway.sinks.case_search import (
    CASE_SELECT,
    FACET_QUERIES,
    FACT_COLUMNS,
    SQLITE_MIGRATION,
    UNITS_INSERT,
    CaseFacts,
    CaseQuery,
    CaseRow,
    Facets,
    case_rows,
    utc_text,
)
from gateway.sinks.ports import TaskRecord, TaskUnknown
from gateway.sinks.task_rows import TASK_SELECT, readable, task_record
from gateway.store.db import connect, transaction

_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

MIGRATIONS = (
    """
    CREATE TABLE cases (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        case_no     TEXT NOT NULL UNIQUE,
        report_id   TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL,
        class_code  TEXT NOT NULL,
        received_at TEXT NOT NULL,
        report      TEXT NOT NULL,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE TABLE case_serial (
        one   INTEGER PRIMARY KEY CHECK (one = 1),
        value INTEGER NOT NULL
    );
    INSERT INTO case_serial (one, value) VALUES (1, 0)
    """,
    # Tasks for terminals and the verification reports answering them (docs/operations.md).
    """
    CREATE TABLE tasks (
        task_id       TEXT PRIMARY KEY CHECK (task_id = lower(task_id)),
        case_no       TEXT NOT NULL REFERENCES cases (case_no),
        device_id     TEXT NOT NULL,
        kind          TEXT NOT NULL DEFAULT 'verify' CHECK (kind IN ('verify', 'inspect')),
        lat           REAL CHECK (lat BETWEEN -90 AND 90),
        lon           REAL CHECK (lon BETWEEN -180 AND 180),
        address       TEXT,
        deadline      TEXT,
        note          TEXT CHECK (length(note) <= 500),
        created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        publish_after TEXT,
        sent_at       TEXT,
        CHECK ((lat IS NULL) = (lon IS NULL)),
        CHECK (address IS NULL OR lat IS NOT NULL)
    );
    CREATE INDEX tasks_unsent ON tasks (created_at) WHERE sent_at IS NULL;
    CREATE INDEX tasks_case_no ON tasks (case_no);
    CREATE TABLE verifications (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        report_id   TEXT NOT NULL UNIQUE,
        task_id     TEXT NOT NULL REFERENCES tasks (task_id),
        case_no     TEXT NOT NULL REFERENCES cases (case_no),
        received_at TEXT NOT NULL,
        report      TEXT NOT NULL,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX verifications_task_id ON verifications (task_id);
    CREATE INDEX verifications_case_no ON verifications (case_no)
    """,
    # What the console filters and pages on, beside each case (gateway/sinks/case_search.py).
    SQLITE_MIGRATION,
    # Each case's lifecycle after acceptance (gateway/sinks/case_ledger.py).
    case_ledger.SQLITE_MIGRATION,
)


class SqliteRegistry:
    def __init__(self, path: Path, tz: ZoneInfo, log: FilteringBoundLogger | None = None) -> None:
        self.conn = connect(path, MIGRATIONS)
        self.tz = tz
        self.log = log or logs.get("registry")
        # Only after the migration that added `received_day`: a read first, so that an
        # ordinary open (the console, `gateway stats`) takes no write lock.
        if self._execute("SELECT 1 FROM cases WHERE received_day IS NULL LIMIT 1"):
            with transaction(self.conn):
                case_ledger.fill_received_days(self._execute, tz)

    def register(self, cases: Sequence[NormalizedReport]) -> list[str | TaskUnknown]:
        with transaction(self.conn):
            answers: dict[str, str | TaskUnknown] = {}
            answers |= self._known([case.report_id for case in cases])
            new = [case for case in cases if case.report_id not in answers]
            fresh = [case for case in new if case.task_id is None]
            if fresh:
                answers |= self._insert_cases(fresh)
            answering = [case for case in new if case.task_id is not None]
            if answering:
                answers |= self._insert_verifications(answering)
        return [answers[case.report_id] for case in cases]

    def _known(self, report_ids: list[str]) -> dict[str, str]:
        """Reports registered before: as cases, or as verifications of one."""
        marks = ",".join("?" * len(report_ids))
        rows = self.conn.execute(
            f"SELECT report_id, case_no FROM cases WHERE report_id IN ({marks}) UNION ALL"  # noqa: S608 - only ?s
            f" SELECT report_id, case_no FROM verifications WHERE report_id IN ({marks})",
            report_ids * 2,
        )
        return dict(rows.fetchall())

    def _insert_cases(self, new: list[NormalizedReport]) -> dict[str, str]:
        # Reserve one serial per new case in a single step.
        (last,) = self.conn.execute(
            "UPDATE case_serial SET value = value + ? RETURNING value", (len(new),)
        ).fetchone()
        numbers = {}
        rows = []
        units = []
        for serial, case in enumerate(new, start=last - len(new) + 1):
            case_no = case_number(
                case.class_.type, case.class_.code, case.received_at, serial, self.tz
            )
            numbers[case.report_id] = case_no
            report = case.with_case_no(case_no).to_json().decode()
            facts = CaseFacts.of(case)
            rows.append(
                (case_no, case.report_id, case.class_.type, case.class_.code, _when(case),
                 local_day(case.received_at, self.tz), report, *facts.columns())
            )  # fmt: skip
            units += [(unit, case_no) for unit in facts.units]
        self.conn.executemany(
            "INSERT INTO cases (case_no, report_id, kind, class_code, received_at, received_day,"  # noqa: S608 - constants
            f" report, {FACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self.conn.executemany(UNITS_INSERT, units)
        return numbers

    def _insert_verifications(
        self, answering: list[NormalizedReport]
    ) -> dict[str, str | TaskUnknown]:
        task_ids = sorted({(case.task_id or "").lower() for case in answering})
        marks = ",".join("?" * len(task_ids))
        issued = {
            task_id: (case_no, device_id)
            for task_id, case_no, device_id in self.conn.execute(
                f"SELECT task_id, case_no, device_id FROM tasks WHERE task_id IN ({marks})",  # noqa: S608 - only ?s
                task_ids,
            )
        }
        answers: dict[str, str | TaskUnknown] = {}
        rows = []
        for case in answering:
            task_id = (case.task_id or "").lower()
            case_no, device_id = issued.get(task_id, (None, None))
            if case_no is None or device_id != case.reporter.device_id:
                answers[case.report_id] = TaskUnknown(task_id)
                continue
            answers[case.report_id] = case_no
            report = case.with_case_no(case_no).to_json().decode()
            rows.append((case.report_id, task_id, case_no, _when(case), report))
        self.conn.executemany(
            "INSERT INTO verifications (report_id, task_id, case_no, received_at, report)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        return answers

    # ---- finding cases (the console) -------------------------------------------------------

    def find_cases(self, query: CaseQuery) -> list[CaseRow]:
        where, args = query.where(self.tz, utc_text)
        rows = self.conn.execute(
            f"{CASE_SELECT}{where} ORDER BY id DESC LIMIT ?", [*args, query.page_size()]
        ).fetchall()
        return case_rows(rows)

    def get_case(self, case_no: str) -> CaseRow | None:
        rows = self.conn.execute(f"{CASE_SELECT} WHERE case_no = ?", (case_no,)).fetchall()
        return next(iter(case_rows(rows)), None)

    def facets(self) -> Facets:
        return Facets(**{
            name: [row[0] for row in self.conn.execute(sql)]
            for name, sql in FACET_QUERIES.items()
        })  # fmt: skip

    # ---- the lifecycle (gateway/sinks/case_ledger.py) -------------------------------------

    def _execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """A read of the registry's tables (`?` placeholders) for statistics and reports."""
        return self._execute(sql, params)

    @staticmethod
    def stamp(moment: datetime) -> object:
        """An instant as this registry stores it (for `query`'s parameters)."""
        return utc_text(moment)

    def act(self, command: Command, clock: Timekeeper) -> Applied | Refusal:
        with transaction(self.conn):
            return case_ledger.apply(self._execute, command, clock, utc_text)

    def life(self, case_no: str) -> CaseLife | None:
        found = case_ledger.read_life(self._execute, case_no)
        return None if found is None else found[1]

    def history(self, case_no: str) -> list[CaseEvent]:
        return case_ledger.history(self._execute, case_no)

    def overdue(self, now: datetime, limit: int) -> list[Overdue]:
        return case_ledger.overdue(self._execute, now, utc_text, limit)

    def unpublished_events(self, limit: int) -> list[tuple[int, CaseEvent]]:
        return case_ledger.unpublished(self._execute, limit)

    def mark_events_published(self, event_ids: Sequence[int]) -> None:
        with transaction(self.conn):
            self.conn.executemany(
                f"UPDATE case_events SET published_at = {_NOW} WHERE id = ?",  # noqa: S608 - a constant
                [(event_id,) for event_id in event_ids],
            )

    # ---- tasks ---------------------------------------------------------------------------

    def case_exists(self, case_no: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM cases WHERE case_no = ?", (case_no,)).fetchone()
        return row is not None

    def add_task(self, device_id: str, task: Task, *, hold_s: float = 0.0) -> TaskRecord:
        where = task.location
        lat, lon, address = (where.lat, where.lon, where.address) if where else (None, None, None)
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO tasks (task_id, case_no, device_id, kind, lat, lon, address,"
                " deadline, note, publish_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('%+.3f seconds', ?)))",
                (
                    task.task_id.lower(),
                    task.case_no,
                    device_id,
                    task.kind,
                    lat,
                    lon,
                    address,
                    task.deadline and task.deadline.isoformat(),
                    task.note,
                    hold_s,
                ),
            )
            row = self.conn.execute(
                f"{TASK_SELECT} WHERE t.task_id = ?", (task.task_id.lower(),)
            ).fetchone()
        return task_record(row)

    def unsent_tasks(self, limit: int) -> list[TaskRecord]:
        rows = self.conn.execute(
            f"{TASK_SELECT} WHERE t.sent_at IS NULL"
            f" AND (t.publish_after IS NULL OR t.publish_after <= {_NOW})"
            " ORDER BY t.created_at LIMIT ?",
            (limit,),
        ).fetchall()
        return readable(rows, self.log)

    def claim_unsent(self, limit: int, lease_s: float) -> list[TaskRecord]:
        """One gateway on this registry: its unsent tasks are its own."""
        return self.unsent_tasks(limit)

    def mark_sent(self, task_ids: Sequence[str]) -> None:
        with transaction(self.conn):
            self.conn.executemany(
                f"UPDATE tasks SET sent_at = {_NOW} WHERE task_id = ? AND sent_at IS NULL",  # noqa: S608 - a constant
                [(task_id.lower(),) for task_id in task_ids],
            )

    def tasks(
        self, *, unsent_only: bool = False, case_no: str | None = None, limit: int = 200
    ) -> list[TaskRecord]:
        rows = self.conn.execute(
            f"{TASK_SELECT} WHERE (? = 0 OR t.sent_at IS NULL) AND (? IS NULL OR t.case_no = ?)"
            " ORDER BY t.created_at DESC LIMIT ?",
            (int(unsent_only), case_no, case_no, limit),
        ).fetchall()
        return readable(rows, self.log)

    def close(self) -> None:
        self.conn.close()


def _when(case: NormalizedReport) -> str:
    """The registry's `received_at` column: RFC 3339, as the report carries it."""
    return case.received_at.isoformat()
