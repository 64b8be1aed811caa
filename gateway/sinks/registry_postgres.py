"""The case registry in PostgreSQL (psycopg 3, a connection pool): what a city runs.

Same table as SQLite's: `cases` with unique `report_id` and `case_no`, `kind`,
`class_code`, `received_at`, and the normalized report as `jsonb`. Case serials come from
a database sequence, so any number of gateways can register at once without colliding,
and registering is idempotent by report id (`ON CONFLICT (report_id) DO NOTHING`, then
the existing case number is read back), so a redelivered report is one case.

Migrations are numbered and recorded in `schema_migrations`; each gateway applies the
missing ones at start-up under an advisory lock, so two starting together do not race.
If the server is down at start-up, the first registration applies them instead: the
gateway keeps taking reports meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson
import psycopg
import psycopg.errors
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout
from structlog.typing import FilteringBoundLogger

from gateway.errors import PermanentSinkError, RetryableSinkError, SinkError
from gateway.normalize.case_no import case_number
from gateway.normalize.report import with_case_no
from gateway.sinks.ports import NewCase

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from gateway.config import PostgresSettings

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
)
Connection = psycopg.Connection[TupleRow]

# Any fixed number: the advisory lock that serializes migrations across gateways.
_MIGRATION_LOCK = 0x63677430  # "cgt0"

# Failures that pass by themselves: the connection or server went away, a failover, a
# serialization conflict. Everything else (no such table, permission denied) needs a person.
_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.TransactionRollback,
    psycopg.errors.ReadOnlySqlTransaction,
    psycopg.errors.CannotConnectNow,
    PoolTimeout,
)


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

    def register(self, cases: Sequence[NewCase]) -> list[str]:
        self._ensure_schema()
        try:
            with self.pool.connection() as conn, conn.transaction():
                known = self._known(conn, [case.report_id for case in cases])
                new = [case for case in cases if case.report_id not in known]
                if new:
                    known |= self._insert(conn, new)
        except (psycopg.Error, PoolTimeout) as error:
            raise sink_error(error, "registering cases") from error
        return [known[case.report_id] for case in cases]

    @staticmethod
    def _known(conn: Connection, report_ids: list[str]) -> dict[str, str]:
        rows = conn.execute(
            "SELECT report_id, case_no FROM cases WHERE report_id = ANY(%s)", (report_ids,)
        )
        return {str(report_id): str(case_no) for report_id, case_no in rows}

    def _insert(self, conn: Connection, new: list[NewCase]) -> dict[str, str]:
        serials = [
            int(row[0])
            for row in conn.execute(
                "SELECT nextval('case_serial') FROM generate_series(1, %s)", (len(new),)
            )
        ]
        columns: list[list[str]] = [[], [], [], [], [], []]
        for serial, case in zip(serials, new, strict=True):
            case_no = case_number(case.kind, case.class_code, case.received_at, serial, self.tz)
            report = orjson.dumps(with_case_no(case.report, case_no)).decode()
            row = (case_no, case.report_id, case.kind, case.class_code, case.received_at, report)
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        inserted = {
            str(report_id): str(case_no)
            for report_id, case_no in conn.execute(
                "INSERT INTO cases (case_no, report_id, kind, class_code, received_at, report)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
                " %s::timestamptz[], %s::jsonb[])"
                " ON CONFLICT (report_id) DO NOTHING RETURNING report_id, case_no",
                columns,
            )
        }
        # Another gateway registered some of them between our look and our insert.
        raced = [case.report_id for case in new if case.report_id not in inserted]
        return inserted | (self._known(conn, raced) if raced else {})

    def close(self) -> None:
        self.pool.close()
