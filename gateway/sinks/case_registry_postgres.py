"""The case registry in PostgreSQL (psycopg 3, a connection pool): what a city runs.

Same tables as SQLite's: `cases` with unique `report_id` and `case_no`, `kind`,
`class_code`, `received_at`, and the normalized report as `jsonb`; `tasks` for terminals
(a backend inserts one with `sent_at` NULL and a gateway publishes it) and
`verifications`, the reports answering them, filed under the task's case. Case serials
come from a database sequence, so any number of gateways can register at once without
colliding, and registering is idempotent by report id (`ON CONFLICT (report_id) DO
NOTHING`, then the existing case number is read back), so a redelivered report is one
case, or one verification.

Migrations are numbered and recorded in `schema_migrations`; each gateway applies the
missing ones at start-up under an advisory lock, so two starting together do not race.
If the server is down at start-up, the first registration applies them instead: the
gateway keeps taking reports meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import psycopg.errors
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout
from structlog.typing import FilteringBoundLogger

from gateway.cases.workflow import CaseEvent, CaseLife, Command, Refusal, Timekeeper
from gateway.errors import PermanentSinkError, RetryableSinkError, SinkError
from gateway.normalize.case_no import case_number
from gateway.normalize.model import NormalizedReport
from gateway.protocols.payloads import Task
from gateway.sinks import case_ledger
from gateway.sinks.case_ledger import Applied, Overdue, local_day
from gateway.sinks.case_search import (
    CASE_SELECT,
    FACET_QUERIES,
    FACT_COLUMNS,
    POSTGRES_MIGRATION,
    UNITS_INSERT,
    CaseFacts,
    CaseQuery,
    CaseRow,
    Facets,
    case_rows,
)
from gateway.sinks.ports import TaskRecord, TaskUnknown
from gateway.sinks.task_rows import TASK_SELECT, readable, task_record
from gateway.store.postgres import TRANSIENT, pg_sql

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from gateway.sinks.settings import PostgresSettings

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE SEQUENCE case_serial AS bigint;
    CREATE TABLE cases (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        case_no     text NOT NULL UNIQUE,
        report_id   text NOT NULL UNIQUE,
        kind        text NOT NULL CHECK (kind IN ('component', 'event')),
        class_code  text NOT NULL,
        received_at timestamptz NOT NULL,
        report      jsonb NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX cases_received_at ON cases (received_at);
    CREATE INDEX cases_class_code ON cases (class_code, received_at)
    """,
    # Tasks for terminals and the verification reports answering them (docs/operations.md).
    """
    CREATE TABLE tasks (
        task_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        case_no       text NOT NULL REFERENCES cases (case_no),
        device_id     text NOT NULL CHECK (device_id ~ '^[A-Za-z0-9_-]{1,64}$'),
        kind          text NOT NULL DEFAULT 'verify' CHECK (kind IN ('verify', 'inspect')),
        lat           double precision CHECK (lat BETWEEN -90 AND 90),
        lon           double precision CHECK (lon BETWEEN -180 AND 180),
        address       text,
        deadline      timestamptz,
        note          text CHECK (char_length(note) <= 500),
        created_at    timestamptz NOT NULL DEFAULT now(),
        publish_after timestamptz,
        sent_at       timestamptz,
        CHECK ((lat IS NULL) = (lon IS NULL)),
        CHECK (address IS NULL OR lat IS NOT NULL)
    );
    CREATE INDEX tasks_unsent ON tasks (created_at) WHERE sent_at IS NULL;
    CREATE INDEX tasks_case_no ON tasks (case_no);
    CREATE TABLE verifications (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        report_id   text NOT NULL UNIQUE,
        task_id     uuid NOT NULL REFERENCES tasks (task_id),
        case_no     text NOT NULL REFERENCES cases (case_no),
        received_at timestamptz NOT NULL,
        report      jsonb NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX verifications_task_id ON verifications (task_id);
    CREATE INDEX verifications_case_no ON verifications (case_no)
    """,
    # What the console filters and pages on, beside each case (gateway/sinks/case_search.py).
    POSTGRES_MIGRATION,
    # Each case's lifecycle after acceptance (gateway/sinks/case_ledger.py).
    case_ledger.POSTGRES_MIGRATION,
)
Connection = psycopg.Connection[TupleRow]
T = TypeVar("T")

# Any fixed number: the advisory lock that serializes migrations across gateways.
_MIGRATION_LOCK = 0x63677430  # "cgt0"

# Failures that pass by themselves (the stores' own, gateway/store/postgres.py), and a
# pool that had no connection to give in time. Everything else (no such table, permission
# denied) needs a person.
_TRANSIENT = (*TRANSIENT, PoolTimeout)


def sink_error(error: Exception, doing: str) -> SinkError:
    if isinstance(error, _TRANSIENT):
        return RetryableSinkError(f"{doing}: {type(error).__name__}: {error}")
    return PermanentSinkError(f"{doing}: {type(error).__name__}: {error}")


def migrate(conn: Connection) -> list[int]:
    """Apply the missing migrations in one transaction; returns the versions applied."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, script in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied


class PostgresRegistry:
    def __init__(
        self, url: str, settings: PostgresSettings, tz: ZoneInfo, log: FilteringBoundLogger
    ) -> None:
        self.tz = tz
        self.log = log
        password = settings.password()
        options = f"-c statement_timeout={settings.statement_timeout_ms}"
        self.pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            kwargs={
                "connect_timeout": max(1, round(settings.connect_timeout_s)),
                "options": options,
                "application_name": "cgt-gateway",
                **({"password": password.get_secret_value()} if password else {}),
            },
            # A pooled connection may have died with a server restart: check before use.
            check=ConnectionPool.check_connection,
            timeout=settings.connect_timeout_s,
            open=False,
            name="registry",
        )
        self.pool.open(wait=False)
        self._migrated = False
        try:
            self._ensure_schema()
        except RetryableSinkError as error:
            log.warning("registry.unreachable_at_start", error=str(error))

    def _ensure_schema(self) -> None:
        if self._migrated:
            return
        try:
            with self.pool.connection() as conn:
                applied = migrate(conn)
        except (psycopg.Error, PoolTimeout) as error:
            raise sink_error(error, "migrating the registry") from error
        if applied:
            self.log.info("registry.migrated", versions=applied)
        self._migrated = True
        filled = self._in_transaction(
            "filling the cases' local days",
            lambda execute: case_ledger.fill_received_days(execute, self.tz),
        )
        if filled:
            self.log.info("registry.received_days_filled", cases=filled)

    def register(self, cases: Sequence[NormalizedReport]) -> list[str | TaskUnknown]:
        self._ensure_schema()
        answers: dict[str, str | TaskUnknown] = {}
        try:
            with self.pool.connection() as conn, conn.transaction():
                answers |= self._known(conn, [case.report_id for case in cases])
                new = [case for case in cases if case.report_id not in answers]
                fresh = [case for case in new if case.task_id is None]
                if fresh:
                    answers |= self._insert(conn, fresh)
                answering = [case for case in new if case.task_id is not None]
                if answering:
                    answers |= self._verify(conn, answering)
        except (psycopg.Error, PoolTimeout) as error:
            raise sink_error(error, "registering cases") from error
        return [answers[case.report_id] for case in cases]

    @staticmethod
    def _known(conn: Connection, report_ids: list[str]) -> dict[str, str]:
        """Reports registered before: as cases, or as verifications of one."""
        rows = conn.execute(
            "SELECT report_id, case_no FROM cases WHERE report_id = ANY(%s) UNION ALL"
            " SELECT report_id, case_no FROM verifications WHERE report_id = ANY(%s)",
            (report_ids, report_ids),
        )
        return {str(report_id): str(case_no) for report_id, case_no in rows}

    def _insert(self, conn: Connection, new: list[NormalizedReport]) -> dict[str, str]:
        serials = [
            int(row[0])
            for row in conn.execute(
                "SELECT nextval('case_serial') FROM generate_series(1, %s)", (len(new),)
            )
        ]
        columns: list[list[object]] = [[] for _ in range(16)]
        units: list[tuple[str, str]] = []
        for serial, case in zip(serials, new, strict=True):
            case_no = case_number(
                case.class_.type, case.class_.code, case.received_at, serial, self.tz
            )
            report = case.with_case_no(case_no).to_json().decode()
            facts = CaseFacts.of(case)
            row = (case_no, case.report_id, case.class_.type, case.class_.code, _when(case),
                   local_day(case.received_at, self.tz), report, *facts.columns())  # fmt: skip
            for column, value in zip(columns, row, strict=True):
                column.append(value)
            units += [(unit, case_no) for unit in facts.units]
        inserted = {
            str(report_id): str(case_no)
            for report_id, case_no in conn.execute(
                "INSERT INTO cases (case_no, report_id, kind, class_code, received_at,"  # noqa: S608 - constants
                f" received_day, report, {FACT_COLUMNS}) SELECT * FROM unnest(%s::text[],"
                " %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::jsonb[],"
                " %s::text[], %s::text[],"
                " %s::text[], %s::text[], %s::text[], %s::integer[], %s::integer[],"
                " %s::double precision[], %s::double precision[])"
                " ON CONFLICT (report_id) DO NOTHING RETURNING report_id, case_no",
                columns,
            )
        }
        mine = [(unit, case_no) for unit, case_no in units if case_no in inserted.values()]
        if mine:
            with conn.cursor() as cursor:
                cursor.executemany(pg_sql(UNITS_INSERT), mine)
        # Another gateway registered some of them between our look and our insert.
        raced = [case.report_id for case in new if case.report_id not in inserted]
        return inserted | (self._known(conn, raced) if raced else {})

    def _verify(
        self, conn: Connection, answering: list[NormalizedReport]
    ) -> dict[str, str | TaskUnknown]:
        """File verification reports under their tasks' cases; refuse unknown tasks."""
        task_ids = sorted({(case.task_id or "").lower() for case in answering})
        issued = {
            str(task_id): (str(case_no), str(device_id))
            for task_id, case_no, device_id in conn.execute(
                "SELECT task_id::text, case_no, device_id FROM tasks"
                " WHERE task_id = ANY(%s::uuid[])",
                (task_ids,),
            )
        }
        answers: dict[str, str | TaskUnknown] = {}
        columns: list[list[str]] = [[], [], [], [], []]
        for case in answering:
            task_id = (case.task_id or "").lower()
            case_no, device_id = issued.get(task_id, (None, None))
            if case_no is None or device_id != case.reporter.device_id:
                answers[case.report_id] = TaskUnknown(task_id)
                continue
            report = case.with_case_no(case_no).to_json().decode()
            row = (case.report_id, task_id, case_no, _when(case), report)
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        if not columns[0]:
            return answers
        inserted = {
            str(report_id): str(case_no)
            for report_id, case_no in conn.execute(
                "INSERT INTO verifications (report_id, task_id, case_no, received_at, report)"
                " SELECT * FROM unnest(%s::text[], %s::uuid[], %s::text[], %s::timestamptz[],"
                " %s::jsonb[]) ON CONFLICT (report_id) DO NOTHING RETURNING report_id, case_no",
                columns,
            )
        }
        raced = [report_id for report_id in columns[0] if report_id not in inserted]
        return answers | inserted | (self._known(conn, raced) if raced else {})

    # ---- finding cases (the console) -------------------------------------------------------

    def find_cases(self, query: CaseQuery) -> list[CaseRow]:
        where, args = query.where(self.tz)
        rows = self._query(
            pg_sql(f"{CASE_SELECT}{where} ORDER BY id DESC LIMIT ?"),
            [*args, query.page_size()],
            "finding cases",
        )
        return case_rows(rows)

    def get_case(self, case_no: str) -> CaseRow | None:
        rows = self._query(pg_sql(f"{CASE_SELECT} WHERE case_no = ?"), (case_no,), "reading a case")
        return next(iter(case_rows(rows)), None)

    def facets(self) -> Facets:
        return Facets(**{
            name: [str(row[0]) for row in self._query(sql, (), "reading the filters' values")]
            for name, sql in FACET_QUERIES.items()
        })  # fmt: skip

    # ---- the lifecycle (gateway/sinks/case_ledger.py) -------------------------------------

    def _in_transaction(self, doing: str, work: Callable[[case_ledger.Execute], T]) -> T:
        """`work` given one connection's statements, in one transaction."""
        self._ensure_schema()
        try:
            with self.pool.connection() as conn, conn.transaction():

                def execute(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
                    cursor = conn.execute(pg_sql(sql).encode(), params)
                    return cursor.fetchall() if cursor.description is not None else []

                return work(execute)
        except (psycopg.Error, PoolTimeout) as error:
            raise sink_error(error, doing) from error

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """A read of the registry's tables (`?` placeholders) for statistics and reports."""
        return self._in_transaction("reading the registry", lambda execute: execute(sql, params))

    @staticmethod
    def stamp(moment: datetime) -> object:
        """An instant as this registry stores it (for `query`'s parameters)."""
        return moment

    def act(self, command: Command, clock: Timekeeper) -> Applied | Refusal:
        return self._in_transaction(
            f"{command.action.value} case {command.case_no}",
            lambda execute: case_ledger.apply(
                execute, command, clock, self.stamp, lock=" FOR UPDATE"
            ),
        )

    def life(self, case_no: str) -> CaseLife | None:
        found = self._in_transaction(
            "reading a case's lifecycle", lambda execute: case_ledger.read_life(execute, case_no)
        )
        return None if found is None else found[1]

    def history(self, case_no: str) -> list[CaseEvent]:
        return self._in_transaction(
            "reading a case's history", lambda execute: case_ledger.history(execute, case_no)
        )

    def overdue(self, now: datetime, limit: int) -> list[Overdue]:
        return self._in_transaction(
            "listing overdue cases",
            lambda execute: case_ledger.overdue(execute, now, self.stamp, limit),
        )

    def unpublished_events(self, limit: int) -> list[tuple[int, CaseEvent]]:
        return self._in_transaction(
            "reading unpublished case events",
            lambda execute: case_ledger.unpublished(execute, limit),
        )

    def mark_events_published(self, event_ids: Sequence[int]) -> None:
        self._query(
            "UPDATE case_events SET published_at = now() WHERE id = ANY(%s)",
            (list(event_ids),),
            "marking case events published",
            fetch=False,
        )

    # ---- tasks ---------------------------------------------------------------------------

    def case_exists(self, case_no: str) -> bool:
        rows = self._query("SELECT 1 FROM cases WHERE case_no = %s", (case_no,), "finding a case")
        return bool(rows)

    def add_task(self, device_id: str, task: Task, *, hold_s: float = 0.0) -> TaskRecord:
        where = task.location
        lat, lon, address = (where.lat, where.lon, where.address) if where else (None, None, None)
        self._query(
            "INSERT INTO tasks (task_id, case_no, device_id, kind, lat, lon, address, deadline,"
            " note, publish_after) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " now() + make_interval(secs => %s))",
            (task.task_id, task.case_no, device_id, task.kind, lat, lon, address,
             task.deadline, task.note, hold_s),
            "recording a task",
            fetch=False,
        )  # fmt: skip
        rows = self._query(f"{TASK_SELECT} WHERE t.task_id = %s", (task.task_id,), "reading a task")
        return task_record(rows[0])

    def unsent_tasks(self, limit: int) -> list[TaskRecord]:
        rows = self._query(
            f"{TASK_SELECT} WHERE t.sent_at IS NULL"
            " AND (t.publish_after IS NULL OR t.publish_after <= now())"
            " ORDER BY t.created_at LIMIT %s",
            (limit,),
            "reading unsent tasks",
        )
        return readable(rows, self.log)

    def claim_unsent(self, limit: int, lease_s: float) -> list[TaskRecord]:
        """Unsent tasks for this gateway alone: each is held back from the others for
        `lease_s` (its `publish_after` moved on), so gateways sharing the registry send
        each task once; one that dies before its PUBACK leaves the task to the others
        when the lease runs out."""
        rows = self._query(
            "WITH claimed AS (UPDATE tasks SET publish_after = now() + make_interval(secs => %s)"  # noqa: S608 - constants
            " WHERE task_id IN (SELECT task_id FROM tasks WHERE sent_at IS NULL"
            " AND (publish_after IS NULL OR publish_after <= now()) ORDER BY created_at"
            " LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING task_id)"
            f" {TASK_SELECT} WHERE t.task_id IN (SELECT task_id FROM claimed)"
            " ORDER BY t.created_at",
            (lease_s, limit),
            "claiming unsent tasks",
        )
        return readable(rows, self.log)

    def mark_sent(self, task_ids: Sequence[str]) -> None:
        self._query(
            "UPDATE tasks SET sent_at = now() WHERE task_id = ANY(%s::uuid[]) AND sent_at IS NULL",
            (list(task_ids),),
            "marking tasks sent",
            fetch=False,
        )

    def tasks(
        self, *, unsent_only: bool = False, case_no: str | None = None, limit: int = 200
    ) -> list[TaskRecord]:
        rows = self._query(
            f"{TASK_SELECT} WHERE (NOT %s OR t.sent_at IS NULL)"
            " AND (%s::text IS NULL OR t.case_no = %s) ORDER BY t.created_at DESC LIMIT %s",
            (unsent_only, case_no, case_no, limit),
            "listing tasks",
        )
        return readable(rows, self.log)

    def _query(
        self, sql: str, params: Sequence[object], doing: str, *, fetch: bool = True
    ) -> list[tuple[object, ...]]:
        """One statement in its own transaction, psycopg's errors translated."""
        self._ensure_schema()
        try:
            with self.pool.connection() as conn, conn.transaction():
                cursor = conn.execute(sql.encode(), params)
                return cursor.fetchall() if fetch else []
        except (psycopg.Error, PoolTimeout) as error:
            raise sink_error(error, doing) from error

    def close(self) -> None:
        self.pool.close()


def _when(case: NormalizedReport) -> str:
    """The registry's `received_at` column: RFC 3339, as the report carries it."""
    return case.received_at.isoformat()
