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
        with transaction(self.conn):
            marks = ",".join("?" * len(cases))
            known = dict(
                self.conn.execute(
                    f"SELECT report_id, case_no FROM cases WHERE report_id IN ({marks})",  # noqa: S608 - only ?s
                    [case.report_id for case in cases],
                ).fetchall()
            )
            new = [case for case in cases if case.report_id not in known]
            if new:
                # Reserve one serial per new case in a single step.
                (last,) = self.conn.execute(
                    "UPDATE case_serial SET value = value + ? RETURNING value", (len(new),)
                ).fetchone()
                rows = []
                for serial, case in enumerate(new, start=last - len(new) + 1):
                    case_no = case_number(
                        case.kind, case.class_code, case.received_at, serial, self.tz
                    )
                    known[case.report_id] = case_no
                    report = orjson.dumps(with_case_no(case.report, case_no)).decode()
                    row = (case_no, case.report_id, case.kind, case.class_code, case.received_at)
                    rows.append((*row, report))
                self.conn.executemany(
                    "INSERT INTO cases (case_no, report_id, kind, class_code, received_at, report)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        return [known[case.report_id] for case in cases]

    def close(self) -> None:
        self.conn.close()
