"""The durable outbox: the pipeline's verdict on each report, and one delivery row per
report and step.

What a report goes through, and which steps each state calls for, is
`gateway.lifecycle`'s table; this module carries it out in SQLite. A verdict moves a
ready report into the outbox (`record`), a step's results move it on and settle its
delivery rows (`apply`), each step retried on its own with backoff, so a failing sink
never blocks or re-sends another. A delivery that can never succeed becomes a dead
letter until an operator replays it (`revive`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import PermanentSinkError
from gateway.lifecycle import (
    STEPS,
    WORKS_ON,
    Accepted,
    DeadLetter,
    DeliveryState,
    Derived,
    Moved,
    Registered,
    Rejected,
    ReportState,
    Retry,
    Step,
    StepResult,
    Verdict,
    check_result,
    delivery_after,
    transition,
)
from gateway.normalize.model import NormalizedReport
from gateway.store.db import Database, connect, is_shared, transaction
from gateway.store.settings import LEASE_S

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
    # Names that a cluster's single schema can hold beside the inbox's `reports`, and the
    # instance holding a delivery's lease (gateway/store/postgres.py).
    """
    ALTER TABLE reports RENAME TO outcomes;
    ALTER TABLE deliveries ADD COLUMN claimed_by TEXT
    """,
)

# The same tables in a cluster's PostgreSQL (schema `cgt`, gateway/store/postgres.py).
POSTGRES_MIGRATIONS = (
    """
    CREATE TABLE cursors (
        name  text PRIMARY KEY,
        value bigint NOT NULL
    );
    CREATE TABLE outcomes (
        report_id      text PRIMARY KEY,
        device_id      text NOT NULL,
        state          text NOT NULL
                       CHECK (state IN ('deriving', 'normalized', 'registered', 'rejected')),
        case_no        text,
        reason_code    text,
        reason_message text,
        normalized     bytea,
        updated_at     double precision NOT NULL
    );
    CREATE TABLE media_files (
        device_id text NOT NULL,
        media_id  text NOT NULL,
        report_id text NOT NULL,
        path      text,
        failures  integer NOT NULL DEFAULT 0,
        PRIMARY KEY (device_id, media_id)
    );
    CREATE INDEX media_files_report ON media_files (report_id);
    CREATE TABLE deliveries (
        report_id  text NOT NULL,
        sink       text NOT NULL,
        state      text NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
        attempts   integer NOT NULL DEFAULT 0,
        next_at    double precision NOT NULL,
        last_error text,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        claimed_by text,
        PRIMARY KEY (report_id, sink)
    );
    CREATE INDEX deliveries_due ON deliveries (sink, next_at) WHERE state = 'pending';
    CREATE INDEX deliveries_dead ON deliveries (sink) WHERE state = 'dead';
    CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL
    """,
)


class StoredReports:
    """Normalized reports as the outbox stores them (their JSON), remembered for a while.

    The steps read each report back soon after it is written (the registry the verdict's,
    objects and bus the registered one), and reading it against the model costs about
    three times reading plain JSON. A report is found by its bytes, so a hit is always the
    report those bytes say, whatever was rolled back meanwhile; a miss (a report written
    before a restart) is read and checked as ever."""

    def __init__(self, most: int) -> None:
        self._most = most
        # Oldest first (a dict keeps its order). A lookup or an insertion is atomic under
        # the GIL, so only the trimming, which two threads could race, takes the lock (a
        # report remembered meanwhile in the dict being replaced is merely read again).
        self._by_json: dict[bytes, NormalizedReport] = {}
        self._trimming = threading.Lock()

    def encode(self, report: NormalizedReport) -> bytes:
        data = report.to_json()
        self._remember(data, report)
        return data

    def decode(self, data: bytes) -> NormalizedReport:
        report = self._by_json.get(data)
        if report is None:
            report = NormalizedReport.from_json(data)
            self._remember(data, report)
        return report

    def _remember(self, data: bytes, report: NormalizedReport) -> None:
        self._by_json[data] = report
        if len(self._by_json) > self._most:
            # The older half goes at once: popping the oldest one at a time would make each
            # pop walk past the holes the ones before it left at the front of the dict.
            with self._trimming:
                if len(self._by_json) > self._most:
                    newer = list(self._by_json.items())[len(self._by_json) // 2 :]
                    self._by_json = dict(newer)


# A few batches of every step: about 10 KB a report in memory.
STORED_REPORTS = StoredReports(most=2048)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a report stands, as the intake tells a terminal that sends it again."""

    state: ReportState
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

    def report(self) -> NormalizedReport:
        """Its normalized report; only registered reports (and those being derived or
        registered) have one."""
        if self.normalized is None:
            raise PermanentSinkError(f"report {self.report_id} has no normalized report")
        return STORED_REPORTS.decode(self.normalized)


_DUE = (
    "SELECT d.report_id, r.device_id, d.attempts, r.state, r.case_no, r.reason_code,"
    " r.reason_message, r.normalized, d.created_at"
    " FROM deliveries d JOIN outcomes r USING (report_id)"
)


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
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


# Rows in one multi-row INSERT: far below SQLite's 32,766 and PostgreSQL's 65,535
# parameters, and a batch of the pipeline in one or two statements.
_ROWS_A_STATEMENT = 500


def marks(count: int) -> str:
    """`?, ?, ?` for an IN list of `count` values."""
    return ", ".join("?" * count)


class Outbox:
    """On this machine's SQLite file (a `Path`), or on a cluster's PostgreSQL connection,
    where several instances take deliveries: each takes a batch with a lease (`due`), and
    a batch whose instance died is taken again once its lease has run out."""

    def __init__(
        self, store: Path | Database, owner: str = "local", lease_s: float = LEASE_S
    ) -> None:
        self.path = store if isinstance(store, Path) else None
        self.conn: Database = connect(store, MIGRATIONS) if isinstance(store, Path) else store
        self.shared = is_shared(self.conn)
        self.owner = owner  # this instance's id: whose leases these are
        self.lease_s = lease_s

    def close(self) -> None:
        self.conn.close()

    # ---- pipeline input --------------------------------------------------------------

    def cursor(self, name: str) -> int:
        row = self.conn.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def record(self, cursor_name: str, cursor: int | None, verdicts: Sequence[Verdict]) -> None:
        """Store verdicts on ready reports and move the cursor past them, in one transaction
        (a shared outbox has no cursor: its ready reports are claimed off the queue).

        A verdict for a report already recorded (a report reprocessed after a restart, or
        re-made ready by a corrupt upload) leaves the earlier record as it is."""
        now = time.time()
        rows, schedules = [], {}
        for verdict in verdicts:
            moved = transition(ReportState.READY, verdict.event)
            if isinstance(verdict, Accepted):
                reason, message, report = None, None, STORED_REPORTS.encode(verdict.report)
            else:
                reason, message, report = verdict.reason, verdict.message, None
            rows.append(
                (verdict.report_id, verdict.device_id, moved.to, reason, message, report, now)
            )
            schedules[verdict.report_id] = moved.schedules
        with transaction(self.conn):
            # One statement a batch, not one a report: on PostgreSQL each is a round trip.
            inserted: list[str] = []
            for start in range(0, len(rows), _ROWS_A_STATEMENT):
                part = rows[start : start + _ROWS_A_STATEMENT]
                inserted += [
                    report_id
                    for (report_id,) in self.conn.execute(
                        "INSERT INTO outcomes (report_id, device_id, state, reason_code,"  # noqa: S608 - only ?s
                        " reason_message, normalized, updated_at) VALUES"
                        f" {', '.join(['(?, ?, ?, ?, ?, ?, ?)'] * len(part))}"
                        " ON CONFLICT DO NOTHING RETURNING report_id",
                        [value for row in part for value in row],
                    )
                ]
            self._schedule([(rid, sink) for rid in inserted for sink in schedules[rid]], now)
            if cursor is None:
                return
            self.conn.execute(
                "INSERT INTO cursors (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (cursor_name, cursor),
            )

    def _schedule(self, deliveries: Sequence[tuple[str, str]], now: float) -> None:
        """New delivery rows, each (report id, step), due now."""
        self.conn.executemany(
            "INSERT INTO deliveries (report_id, sink, state, next_at, created_at,"
            " updated_at) VALUES (?, ?, 'pending', ?, ?, ?) ON CONFLICT DO NOTHING",
            [(report_id, sink, now, now, now) for report_id, sink in deliveries],
        )

    # ---- deliveries --------------------------------------------------------------------

    def due(self, sink: str, limit: int, now: float | None = None) -> list[Due]:
        """The sink's next batch. A shared outbox leases it to this instance: it is due
        for nobody else until `lease_s` has passed, or until `apply` settles it."""
        now = time.time() if now is None else now
        if not self.shared:  # one pipeline: what it has in hand, it knows
            rows = self.conn.execute(
                _DUE + " WHERE d.sink = ? AND d.state = 'pending' AND d.next_at <= ?"
                " ORDER BY d.next_at LIMIT ?",
                (sink, now, limit),
            ).fetchall()
            return [Due(*row) for row in rows]
        with transaction(self.conn):
            claimed = [
                report_id
                for (report_id,) in self.conn.execute(
                    "UPDATE deliveries SET next_at = ?, claimed_by = ? WHERE sink = ?"
                    " AND report_id IN (SELECT report_id FROM deliveries WHERE sink = ?"
                    " AND state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?"
                    " FOR UPDATE SKIP LOCKED) RETURNING report_id",
                    (now + self.lease_s, self.owner, sink, sink, now, limit),
                )
            ]
            if not claimed:
                return []
            rows = self.conn.execute(
                _DUE + f" WHERE d.sink = ? AND d.report_id IN ({marks(len(claimed))})"
                " ORDER BY d.created_at",
                (sink, *claimed),
            ).fetchall()
        return [Due(*row) for row in rows]

    def release(self) -> int:
        """Give back the leases this instance held when it last stopped (or died): its
        restart takes them again at once instead of waiting for them to run out."""
        now = time.time()
        with transaction(self.conn):
            return self.conn.execute(
                "UPDATE deliveries SET next_at = ?, claimed_by = NULL"
                " WHERE claimed_by = ? AND state = 'pending'",
                (now, self.owner),
            ).rowcount

    def apply(self, step: Step, results: Sequence[StepResult], backoff: Backoff) -> None:
        """A step's results, in one transaction: each delivery row still pending is done,
        put back by its backoff, or dead; and where it is done with a report that moved
        on, the report takes its transition (and the steps that schedules). A result for
        a row that is no longer pending (done, or dead meanwhile) changes nothing."""
        now = time.time()
        for result in results:
            check_result(step, result)
        with transaction(self.conn):
            attempts = self._pending(step, [result.report_id for result in results])
            done = [
                r
                for r in results
                if r.report_id in attempts and delivery_after(r) is DeliveryState.DONE
            ]
            self.conn.executemany(
                "UPDATE deliveries SET state = 'done', attempts = attempts + 1,"
                " last_error = NULL, claimed_by = NULL, updated_at = ?"
                " WHERE report_id = ? AND sink = ?",
                [(now, result.report_id, step) for result in done],
            )
            self._move(step, [result for result in done if isinstance(result, Moved)], now)
            again = [
                result
                for result in results
                if result.report_id in attempts and isinstance(result, Retry | DeadLetter)
            ]
            self.conn.executemany(
                "UPDATE deliveries SET state = ?, attempts = ?, next_at = ?, last_error = ?,"
                " claimed_by = NULL, updated_at = ? WHERE report_id = ? AND sink = ?",
                [
                    (
                        delivery_after(result).value,  # pending again (later), or dead
                        attempts[result.report_id] + 1,
                        now + backoff.delay(attempts[result.report_id])
                        if isinstance(result, Retry)
                        else now,
                        result.error[:1000],
                        now,
                        result.report_id,
                        step,
                    )
                    for result in again
                ],
            )

    def _pending(self, step: Step, report_ids: Sequence[str]) -> dict[str, int]:
        """Those of the step's rows for `report_ids` still pending, with their attempts."""
        if not report_ids:
            return {}
        query = (
            "SELECT report_id, attempts FROM deliveries WHERE sink = ? AND state = 'pending'"  # noqa: S608 - only ?s
            f" AND report_id IN ({marks(len(report_ids))})"
        )
        if not self.shared:
            return dict(self.conn.execute(query, (step.value, *report_ids)).fetchall())
        # Only what this instance still holds: a batch whose lease ran out while it was slow
        # belongs to whoever took it over, and their results will be the ones recorded.
        rows = self.conn.execute(
            query + " AND claimed_by = ?", (step.value, *report_ids, self.owner)
        )
        return dict(rows.fetchall())

    def _move(self, step: Step, results: Sequence[Moved], now: float) -> None:
        """Each report takes its result's event, if it is still where the step found it.

        Only the instance holding a step's delivery moves a report out of the state that
        step works on, so the reports found there now are still there at the update."""
        if not results:
            return
        current = WORKS_ON[step]
        still = {
            report_id
            for (report_id,) in self.conn.execute(
                f"SELECT report_id FROM outcomes WHERE state = ? AND report_id IN"  # noqa: S608 - only ?s
                f" ({marks(len(results))})",
                (current, *[result.report_id for result in results]),
            )
        }
        updates, schedules = [], []
        for result in results:
            if result.report_id not in still:
                continue
            moved = transition(current, result.event)
            case_no = result.case_no if isinstance(result, Registered) else None
            report = (
                STORED_REPORTS.encode(result.report)
                if isinstance(result, Derived | Registered)
                else None
            )
            reason = (
                (result.reason, result.message) if isinstance(result, Rejected) else (None, None)
            )
            updates.append((moved.to, case_no, report, *reason, now, result.report_id, current))
            schedules += [(result.report_id, sink) for sink in moved.schedules]
        self.conn.executemany(
            "UPDATE outcomes SET state = ?, case_no = coalesce(?, case_no),"
            " normalized = coalesce(?, normalized), reason_code = coalesce(?, reason_code),"
            " reason_message = coalesce(?, reason_message), updated_at = ?"
            " WHERE report_id = ? AND state = ?",
            updates,
        )
        self._schedule(schedules, now)

    def expedite(self, sink: str) -> int:
        """Make every pending delivery of a sink due now (the sink has recovered, so the
        backoff that kept them waiting has done its job); returns how many."""
        now = time.time()
        with transaction(self.conn):
            return self.conn.execute(
                "UPDATE deliveries SET next_at = ? WHERE sink = ? AND state = 'pending'"
                " AND next_at > ? AND claimed_by IS NULL",
                (now, sink, now),
            ).rowcount

    def dead_letters(self, sink: str | None = None) -> list[DeadLetterRow]:
        query = "SELECT report_id, sink, attempts, last_error, updated_at FROM deliveries"
        if sink is None:
            rows = self.conn.execute(f"{query} WHERE state = 'dead' ORDER BY updated_at")
        else:
            rows = self.conn.execute(
                f"{query} WHERE state = 'dead' AND sink = ? ORDER BY updated_at", (sink,)
            )
        return [DeadLetterRow(*row) for row in rows]

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
                " DO UPDATE SET failures = media_files.failures + 1 RETURNING failures",
                (device_id, media_id, report_id),
            ).fetchone()
        return int(failures)

    # ---- reads for the intake and for operators -------------------------------------------

    def state_of(self, report_id: str) -> Standing | None:
        row = self.conn.execute(
            "SELECT state, case_no, reason_code, reason_message FROM outcomes WHERE report_id = ?",
            (report_id,),
        ).fetchone()
        if row is None:
            return None
        state, *rest = row
        return Standing(ReportState(state), *rest)

    def decided(self, report_ids: Sequence[str]) -> set[str]:
        """Those of `report_ids` that already have a verdict."""
        if not report_ids:
            return set()
        rows = self.conn.execute(
            f"SELECT report_id FROM outcomes WHERE report_id IN ({marks(len(report_ids))})",  # noqa: S608 - only ?s
            list(report_ids),
        )
        return {report_id for (report_id,) in rows}

    def depths(self, now: float | None = None) -> dict[str, tuple[int, float, int]]:
        return depths(self.conn, now)


def depths(conn: Database, now: float | None = None) -> dict[str, tuple[int, float, int]]:
    """Per sink: (pending deliveries, age in seconds of the oldest, dead letters)."""
    now = time.time() if now is None else now
    found = {step.value: (0, 0.0, 0) for step in STEPS}
    rows = conn.execute(
        "SELECT sink, sum(CASE WHEN state = 'pending' THEN 1 ELSE 0 END),"
        " min(CASE WHEN state = 'pending' THEN created_at END),"
        " sum(CASE WHEN state = 'dead' THEN 1 ELSE 0 END)"
        " FROM deliveries WHERE state != 'done' GROUP BY sink"
    )
    for sink, pending, oldest, dead in rows:
        found[sink] = (int(pending), now - oldest if oldest else 0.0, int(dead))
    return found
