"""The durable outbox: what the pipeline made of each report, and one delivery row per sink.

A report is `deriving` (its photos and voice notes are being processed), `normalized`
(waiting for its case number), `registered` (has one) or `rejected`. Deliveries fan out
from there: `registry` first, because the case number it returns is part of what the
others send; then `objects`, `bus` and `ack`, each retried
on its own with backoff, so a failing sink never blocks or re-sends another. A delivery
that can never succeed becomes a dead letter until an operator replays it.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.store.db import connect, transaction

SINKS = ("registry", "objects", "bus", "ack")
AFTER_REGISTRY = ("objects", "bus", "ack")
# Deriving media is not a sink, but it is bookkept the same way: a row per report, retried.
STEPS = ("media", *SINKS)
# The pipeline's place in the inbox's ready queue.
READY_CURSOR = "ready"

MIGRATIONS = (
    """
    CREATE TABLE cursors (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE TABLE reports (
        report_id      TEXT PRIMARY KEY,
        device_id      TEXT NOT NULL,
        state          TEXT NOT NULL
                       CHECK (state IN ('deriving', 'normalized', 'registered', 'rejected')),
        case_no        TEXT,
        reason_code    TEXT,
        reason_message TEXT,
        normalized     BLOB,
        updated_at     REAL NOT NULL
    );
    CREATE TABLE media_files (
        device_id TEXT NOT NULL,
        media_id  TEXT NOT NULL,
        report_id TEXT NOT NULL,
        path      TEXT,
        failures  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (device_id, media_id)
    );
    CREATE INDEX media_files_report ON media_files(report_id);
    CREATE TABLE deliveries (
        report_id  TEXT NOT NULL,
        sink       TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
        attempts   INTEGER NOT NULL DEFAULT 0,
        next_at    REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (report_id, sink)
    );
    CREATE INDEX deliveries_due ON deliveries(sink, next_at) WHERE state = 'pending';
    CREATE INDEX deliveries_dead ON deliveries(sink) WHERE state = 'dead'
    """,
)


@dataclass(frozen=True, slots=True)
class ReportState:
    state: str
    case_no: str | None
    reason_code: str | None
    reason_message: str | None


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery whose time has come, with what the sink needs to send it."""

    report_id: str
    device_id: str
    attempts: int
    state: str
    case_no: str | None
    reason_code: str | None
    reason_message: str | None
    normalized: bytes | None
    due_since: float = 0.0  # when this delivery was first due (epoch seconds)


@dataclass(frozen=True, slots=True)
class Processed:
    """The pipeline's verdict on one ready report."""

    report_id: str
    device_id: str
    normalized: bytes | None = None  # set when accepted
    reason_code: str | None = None  # set when rejected
    reason_message: str | None = None
    needs_media: bool = False  # its media must be derived before registration


@dataclass(frozen=True, slots=True)
class DeadLetter:
    report_id: str
    sink: str
    attempts: int
    last_error: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter, so a recovering sink is not hit by a thundering herd."""

    first_s: float = 1.0
    max_s: float = 300.0

    def delay(self, attempts: int) -> float:
        ceiling = min(self.max_s, self.first_s * 2 ** min(attempts, 30))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path, MIGRATIONS)

    def close(self) -> None:
        self.conn.close()

    # ---- pipeline input --------------------------------------------------------------

    def cursor(self, name: str) -> int:
        row = self.conn.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def record(self, cursor_name: str, cursor: int, verdicts: Sequence[Processed]) -> None:
        """Store verdicts and move the cursor past them, in one transaction.

        A verdict for a report already recorded (a report reprocessed after a restart, or
        re-made ready by a corrupt upload) leaves the earlier record as it is."""
        now = time.time()
        with transaction(self.conn):
            for verdict in verdicts:
                accepted = verdict.normalized is not None
                state, first = "rejected", "ack"
                if accepted:
                    state, first = (
                        ("deriving", "media") if verdict.needs_media else ("normalized", "registry")
                    )
                inserted = self.conn.execute(
                    "INSERT OR IGNORE INTO reports (report_id, device_id, state, reason_code,"
                    " reason_message, normalized, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        verdict.report_id,
                        verdict.device_id,
                        state,
                        verdict.reason_code,
                        verdict.reason_message,
                        verdict.normalized,
                        now,
                    ),
                ).rowcount
                if inserted:
                    self._schedule(verdict.report_id, (first,), now)
            self.conn.execute(
                "INSERT INTO cursors (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (cursor_name, cursor),
            )

    def _schedule(self, report_id: str, sinks: Sequence[str], now: float) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO deliveries (report_id, sink, state, next_at, created_at,"
            " updated_at) VALUES (?, ?, 'pending', ?, ?, ?)",
            [(report_id, sink, now, now, now) for sink in sinks],
        )

    # ---- deliveries --------------------------------------------------------------------

    def due(self, sink: str, limit: int, now: float | None = None) -> list[Due]:
        rows = self.conn.execute(
            "SELECT d.report_id, r.device_id, d.attempts, r.state, r.case_no, r.reason_code,"
            " r.reason_message, r.normalized, d.created_at"
            " FROM deliveries d JOIN reports r USING (report_id)"
            " WHERE d.sink = ? AND d.state = 'pending' AND d.next_at <= ?"
            " ORDER BY d.next_at LIMIT ?",
            (sink, time.time() if now is None else now, limit),
        ).fetchall()
        return [Due(*row) for row in rows]

    def registered(self, results: Sequence[tuple[str, str, bytes]]) -> None:
        """Case numbers are known: store them and fan out to the other sinks."""
        now = time.time()
        with transaction(self.conn):
            for report_id, case_no, normalized in results:
                self.conn.execute(
                    "UPDATE reports SET state = 'registered', case_no = ?, normalized = ?,"
                    " updated_at = ? WHERE report_id = ?",
                    (case_no, normalized, now, report_id),
                )
                self._schedule(report_id, AFTER_REGISTRY, now)
            self._finish("registry", [report_id for report_id, _, _ in results], now)

    def derived(self, documents: Sequence[tuple[str, bytes]]) -> None:
        """Media are done: on to registration with the completed document."""
        now = time.time()
        with transaction(self.conn):
            for report_id, normalized in documents:
                self.conn.execute(
                    "UPDATE reports SET state = 'normalized', normalized = ?, updated_at = ?"
                    " WHERE report_id = ?",
                    (normalized, now, report_id),
                )
                self._schedule(report_id, ("registry",), now)
            self._finish("media", [report_id for report_id, _ in documents], now)

    def refused(self, step: str, refused: Sequence[tuple[str, str, str]]) -> None:
        """A step refused these reports (report id, reason code, message): rejected, and
        the terminal is told why. Media refuse what cannot be decoded, the registry a
        verification of a task it does not know."""
        now = time.time()
        with transaction(self.conn):
            for report_id, code, message in refused:
                self.conn.execute(
                    "UPDATE reports SET state = 'rejected', reason_code = ?, reason_message = ?,"
                    " updated_at = ? WHERE report_id = ?",
                    (code, message, now, report_id),
                )
                self._schedule(report_id, ("ack",), now)
            self._finish(step, [report_id for report_id, _, _ in refused], now)

    def done(self, sink: str, report_ids: Sequence[str]) -> None:
        with transaction(self.conn):
            self._finish(sink, report_ids, time.time())

    def _finish(self, sink: str, report_ids: Sequence[str], now: float) -> None:
        self.conn.executemany(
            "UPDATE deliveries SET state = 'done', attempts = attempts + 1, last_error = NULL,"
            " updated_at = ? WHERE report_id = ? AND sink = ?",
            [(now, report_id, sink) for report_id in report_ids],
        )

    def retry(self, sink: str, report_ids: Sequence[str], error: str, backoff: Backoff) -> None:
        """Push pending deliveries back by their backoff; those already done stay done."""
        now = time.time()
        with transaction(self.conn):
            for report_id in report_ids:
                row = self.conn.execute(
                    "SELECT attempts FROM deliveries WHERE report_id = ? AND sink = ?"
                    " AND state = 'pending'",
                    (report_id, sink),
                ).fetchone()
                if row is None:
                    continue
                self.conn.execute(
                    "UPDATE deliveries SET attempts = ?, next_at = ?, last_error = ?,"
                    " updated_at = ? WHERE report_id = ? AND sink = ?",
                    (row[0] + 1, now + backoff.delay(row[0]), error[:1000], now, report_id, sink),
                )

    def expedite(self, sink: str) -> int:
        """Make every pending delivery of a sink due now (the sink has recovered, so the
        backoff that kept them waiting has done its job); returns how many."""
        now = time.time()
        with transaction(self.conn):
            return self.conn.execute(
                "UPDATE deliveries SET next_at = ? WHERE sink = ? AND state = 'pending'"
                " AND next_at > ?",
                (now, sink, now),
            ).rowcount

    def dead(self, sink: str, report_ids: Sequence[str], error: str) -> None:
        now = time.time()
        with transaction(self.conn):
            self.conn.executemany(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?,"
                " updated_at = ? WHERE report_id = ? AND sink = ? AND state = 'pending'",
                [(error[:1000], now, report_id, sink) for report_id in report_ids],
            )

    def dead_letters(self, sink: str | None = None) -> list[DeadLetter]:
        rows = self.conn.execute(
            "SELECT report_id, sink, attempts, last_error, updated_at FROM deliveries"
            " WHERE state = 'dead' AND (? IS NULL OR sink = ?) ORDER BY updated_at",
            (sink, sink),
        ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def revive(self, sink: str | None = None, report_ids: Sequence[str] | None = None) -> int:
        """Make dead letters pending again (an operator fixed the cause)."""
        now = time.time()
        with transaction(self.conn):
            letters = [
                (letter.report_id, letter.sink)
                for letter in self.dead_letters(sink)
                if report_ids is None or letter.report_id in report_ids
            ]
            self.conn.executemany(
                "UPDATE deliveries SET state = 'pending', next_at = ?, updated_at = ?"
                " WHERE report_id = ? AND sink = ?",
                [(now, now, report_id, letter_sink) for report_id, letter_sink in letters],
            )
        return len(letters)

    # ---- media files of the spool ---------------------------------------------------------

    def media_failure(self, device_id: str, media_id: str, report_id: str) -> int:
        """Count one failed assembly of an upload; returns how many it has had."""
        with transaction(self.conn):
            (failures,) = self.conn.execute(
                "INSERT INTO media_files (device_id, media_id, report_id, failures)"
                " VALUES (?, ?, ?, 1) ON CONFLICT (device_id, media_id)"
                " DO UPDATE SET failures = failures + 1 RETURNING failures",
                (device_id, media_id, report_id),
            ).fetchone()
        return int(failures)

    # ---- reads for the intake and for operators -------------------------------------------

    def state_of(self, report_id: str) -> ReportState | None:
        row = self.conn.execute(
            "SELECT state, case_no, reason_code, reason_message FROM reports WHERE report_id = ?",
            (report_id,),
        ).fetchone()
        return ReportState(*row) if row else None

    def decided(self, report_ids: Sequence[str]) -> set[str]:
        """Those of `report_ids` that already have a verdict."""
        marks = ",".join("?" * len(report_ids))
        rows = self.conn.execute(
            f"SELECT report_id FROM reports WHERE report_id IN ({marks})",  # noqa: S608 - only ?s
            list(report_ids),
        )
        return {report_id for (report_id,) in rows}

    def depths(self, now: float | None = None) -> dict[str, tuple[int, float, int]]:
        return depths(self.conn, now)


def depths(conn: sqlite3.Connection, now: float | None = None) -> dict[str, tuple[int, float, int]]:
    """Per sink: (pending deliveries, age in seconds of the oldest, dead letters)."""
    now = time.time() if now is None else now
    found = dict.fromkeys(STEPS, (0, 0.0, 0))
    rows = conn.execute(
        "SELECT sink, sum(state = 'pending'), min(CASE WHEN state = 'pending' THEN created_at"
        " END), sum(state = 'dead') FROM deliveries WHERE state != 'done' GROUP BY sink"
    )
    for sink, pending, oldest, dead in rows:
        found[sink] = (int(pending), now - oldest if oldest else 0.0, int(dead))
    return found
