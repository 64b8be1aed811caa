"""The case registry in SQLite: the embedded default, same schema as PostgreSQL's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from gateway.normalize.case_no import case_number
from gateway.normalize.report import with_case_no
from gateway.sinks.ports import NewCase
from gateway.store.db import connect, transaction

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
)


class SqliteRegistry:
    def __init__(self, path: Path, tz: ZoneInfo) -> None:
        self.conn = connect(path, MIGRATIONS)
        self.tz = tz

    def register(self, cases: Sequence[NewCase]) -> list[str]:
        numbers: list[str] = []
        with transaction(self.conn):
            for case in cases:
                row = self.conn.execute(
                    "SELECT case_no FROM cases WHERE report_id = ?", (case.report_id,)
                ).fetchone()
                if row is not None:
                    numbers.append(row[0])
                    continue
                (serial,) = self.conn.execute(
                    "UPDATE case_serial SET value = value + 1 RETURNING value"
                ).fetchone()
                case_no = case_number(case.kind, case.class_code, case.received_at, serial, self.tz)
                self.conn.execute(
                    "INSERT INTO cases (case_no, report_id, kind, class_code, received_at, report)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        case_no,
                        case.report_id,
                        case.kind,
                        case.class_code,
                        case.received_at,
                        orjson.dumps(with_case_no(case.report, case_no)).decode(),
                    ),
                )
                numbers.append(case_no)
        return numbers

    def close(self) -> None:
        self.conn.close()
