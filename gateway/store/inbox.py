"""The durable inbox: reports, media manifests and their chunks, as terminals sent them.

One writer on the hot path (the intake, in batched transactions) and a few rare writes
from the pipeline (dropping assembled chunks, resetting a corrupt upload, expiry).
Reports whose media are all present are appended to `ready`, an ordered queue that the
pipeline reads by cursor, so the two sides never wait on each other's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.errors import Reason
from gateway.lifecycle import Event, ReportState, transition
from gateway.protocols.gnss import GnssFix
from gateway.protocols.payloads import MediaManifest, ReportEnvelope
from gateway.store.db import Database, connect, is_shared, transaction

MIGRATIONS = (
    """
    CREATE TABLE reports (
        report_id   TEXT PRIMARY KEY,
        device_id   TEXT NOT NULL,
        received_at TEXT NOT NULL,
        payload     BLOB NOT NULL,
        missing     INTEGER NOT NULL,
        updated_at  REAL NOT NULL
    );
    CREATE INDEX reports_waiting ON reports(updated_at) WHERE missing > 0;
    CREATE TABLE media (
        device_id   TEXT NOT NULL,
        media_id    TEXT NOT NULL,
        report_id   TEXT NOT NULL REFERENCES reports(report_id) ON DELETE CASCADE,
        chunk_count INTEGER NOT NULL,
        chunk_bytes INTEGER NOT NULL,
        bytes       INTEGER NOT NULL,
        received    INTEGER NOT NULL,
        PRIMARY KEY (device_id, media_id)
    );
    CREATE INDEX media_report ON media(report_id);
    CREATE TABLE chunks (
        device_id   TEXT NOT NULL,
        media_id    TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        data        BLOB NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (device_id, media_id, seq)
    );
    CREATE INDEX chunks_age ON chunks(received_at);
    CREATE TABLE ready (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        report_id TEXT NOT NULL
    );
    CREATE TABLE device_status (
        device_id   TEXT PRIMARY KEY,
        online      INTEGER NOT NULL,
        battery_pct REAL,
        firmware    TEXT,
        signal_dbm  INTEGER,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE track (
        device_id   TEXT NOT NULL,
        time        TEXT,
        lat         REAL NOT NULL,
        lon         REAL NOT NULL,
        accuracy_m  REAL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX track_device ON track(device_id, time)
    """,
    # Chunk bytes each device holds, for its spool budget (gateway/devices/limits.py).
    # Kept by triggers, so every writer (the intake, the pipeline's process dropping
    # assembled chunks, expiry) keeps it exact in its own transaction, and a check costs
    # one key lookup: a SUM over the device's chunks on each chunk would be quadratic.
    """
    CREATE TABLE device_spool (
        device_id TEXT PRIMARY KEY,
        bytes     INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO device_spool (device_id, bytes)
        SELECT device_id, sum(length(data)) FROM chunks GROUP BY device_id;
    CREATE TRIGGER chunks_spooled AFTER INSERT ON chunks BEGIN
        INSERT INTO device_spool (device_id, bytes) VALUES (NEW.device_id, length(NEW.data))
            ON CONFLICT (device_id) DO UPDATE SET bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER chunks_unspooled AFTER DELETE ON chunks BEGIN
        UPDATE device_spool SET bytes = bytes - length(OLD.data)
            WHERE device_id = OLD.device_id;
        DELETE FROM device_spool WHERE device_id = OLD.device_id AND bytes <= 0;
    END
    """,
)

# The same tables in a cluster's PostgreSQL (schema `cgt`, gateway/store/postgres.py).
POSTGRES_MIGRATIONS = (
    """
    CREATE TABLE reports (
        report_id   text PRIMARY KEY,
        device_id   text NOT NULL,
        received_at text NOT NULL,
        payload     bytea NOT NULL,
        missing     integer NOT NULL,
        updated_at  double precision NOT NULL
    );
    CREATE INDEX reports_waiting ON reports (updated_at) WHERE missing > 0;
    CREATE INDEX reports_device_waiting ON reports (device_id) WHERE missing > 0;
    CREATE TABLE media (
        device_id   text NOT NULL,
        media_id    text NOT NULL,
        report_id   text NOT NULL REFERENCES reports (report_id) ON DELETE CASCADE,
        chunk_count integer NOT NULL,
        chunk_bytes integer NOT NULL,
        bytes       bigint NOT NULL,
        received    integer NOT NULL,
        PRIMARY KEY (device_id, media_id)
    );
    CREATE INDEX media_report ON media (report_id);
    CREATE TABLE chunks (
        device_id   text NOT NULL,
        media_id    text NOT NULL,
        seq         integer NOT NULL,
        data        bytea NOT NULL,
        received_at double precision NOT NULL,
        PRIMARY KEY (device_id, media_id, seq)
    );
    CREATE INDEX chunks_age ON chunks (received_at);
    CREATE TABLE ready (
        seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        report_id text NOT NULL
    );
    CREATE TABLE device_status (
        device_id   text PRIMARY KEY,
        online      boolean NOT NULL,
        battery_pct double precision,
        firmware    text,
        signal_dbm  integer,
        updated_at  text NOT NULL
    );
    CREATE TABLE track (
        device_id   text NOT NULL,
        time        text,
        lat         double precision NOT NULL,
        lon         double precision NOT NULL,
        accuracy_m  double precision,
        received_at text NOT NULL
    );
    CREATE INDEX track_device ON track (device_id, time);
    CREATE TABLE device_spool (
        device_id text PRIMARY KEY,
        bytes     bigint NOT NULL
    );
    CREATE FUNCTION chunks_spooled() RETURNS trigger LANGUAGE plpgsql
    SET search_path = cgt AS $$
    BEGIN
        INSERT INTO device_spool (device_id, bytes) VALUES (NEW.device_id, length(NEW.data))
            ON CONFLICT (device_id) DO UPDATE SET bytes = device_spool.bytes + excluded.bytes;
        RETURN NULL;
    END $$;
    CREATE FUNCTION chunks_unspooled() RETURNS trigger LANGUAGE plpgsql
    SET search_path = cgt AS $$
    BEGIN
        UPDATE device_spool SET bytes = bytes - length(OLD.data) WHERE device_id = OLD.device_id;
        DELETE FROM device_spool WHERE device_id = OLD.device_id AND bytes <= 0;
        RETURN NULL;
    END $$;
    CREATE TRIGGER chunks_spooled AFTER INSERT ON chunks
        FOR EACH ROW EXECUTE FUNCTION chunks_spooled();
    CREATE TRIGGER chunks_unspooled AFTER DELETE ON chunks
        FOR EACH ROW EXECUTE FUNCTION chunks_unspooled();
    """,
)


# ---- results of intake operations ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Added:
    """A new report. `missing` lists the chunks still to come, empty when it is ready."""

    missing: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class Known:
    """The report id was seen before (a re-send or a redelivery)."""

    device_id: str
    missing: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class InboxRefusal:
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class ChunkStored:
    """A chunk was new. `completed` names the report it made ready, if any."""

    completed: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkIgnored:
    """A duplicate, or a chunk of a media file that is already whole."""


@dataclass(frozen=True, slots=True)
class ReadyReport:
    seq: int
    report_id: str
    device_id: str
    received_at: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class MediaUpload:
    device_id: str
    media_id: str
    chunk_count: int
    bytes: int


# A track row: device id, time (RFC 3339, UTC, or None), lat, lon, accuracy (m), received at.
TrackPoint = tuple[str, str | None, float, float, float | None, str]

# Asked before a new chunk is stored: None to store it, or why not.
Admit = Callable[[str, int], InboxRefusal | None]
# Asked before a new report of a device is stored: None to store it, or why not.
AdmitReport = Callable[[str], InboxRefusal | None]


class Inbox:
    """On this machine's SQLite file (a `Path`), or on a cluster's PostgreSQL connection
    (`gateway.store.postgres.PgConnection`, schema migrated by `gateway db upgrade`)."""

    def __init__(self, store: Path | Database) -> None:
        self.path = store if isinstance(store, Path) else None
        self.conn: Database = connect(store, MIGRATIONS) if isinstance(store, Path) else store
        # Several instances write a shared inbox at once: see `lock_uploads`.
        self.shared = is_shared(self.conn)

    def close(self) -> None:
        self.conn.close()

    def batch(self) -> AbstractContextManager[Database]:
        """One transaction around a batch of intake operations; commit is the durability point."""
        return transaction(self.conn)

    def lock_uploads(self, uploads: list[tuple[str, str]]) -> None:
        """In a shared inbox, hold the (device, media id) uploads a batch touches until it
        commits. A chunk that reaches one instance while its report reaches another would
        otherwise be stored as an orphan that the manifest never counts. Taken in one
        order by everyone, so two batches never wait on each other in a circle. SQLite has
        one writer: nothing to do."""
        if not self.shared:
            return
        for device_id, media_id in sorted(set(uploads)):
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (f"{device_id}/{media_id}",)
            )

    # ---- intake (call inside `batch()`) -------------------------------------------------

    def knows(self, report_id: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM reports WHERE report_id = ?", (report_id,))
        return row.fetchone() is not None

    def add_report(
        self,
        device_id: str,
        report_id: str,
        envelope: ReportEnvelope,
        payload: bytes,
        received_at: str,
        admit: AdmitReport | None = None,
    ) -> Added | Known | InboxRefusal:
        """Store a report, or say where a re-sent one stands. `admit(device_id)` is asked
        only for a new report whose media ids are free; its refusal stores nothing."""
        now = time.time()
        # Inserted first (a key taken means a re-send, or another instance's arrival in a
        # shared inbox): one statement for the common case, a new report.
        inserted = self.conn.execute(
            "INSERT INTO reports (report_id, device_id, received_at, payload, missing, updated_at)"
            " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (report_id) DO NOTHING",
            (report_id, device_id, received_at, payload, now),
        ).rowcount
        if not inserted:
            (known,) = self.conn.execute(
                "SELECT device_id FROM reports WHERE report_id = ?", (report_id,)
            ).fetchone()
            return Known(known, self.missing_chunks(report_id))
        refused = self._taken_media(device_id, envelope) or (admit(device_id) if admit else None)
        if refused is not None:
            self.conn.execute("DELETE FROM reports WHERE report_id = ?", (report_id,))
            return refused
        missing_total = 0
        for manifest in envelope.media:
            missing_total += self._add_media(device_id, report_id, manifest)
        if self._arrived(report_id, ReportState.RECEIVED, missing_total) is ReportState.READY:
            return Added({})
        self.conn.execute(
            "UPDATE reports SET missing = ? WHERE report_id = ?", (missing_total, report_id)
        )
        return Added(self.missing_chunks(report_id))

    def _taken_media(self, device_id: str, envelope: ReportEnvelope) -> InboxRefusal | None:
        """A refusal if a media id of the report is another report's already."""
        for manifest in envelope.media:
            taken = self.conn.execute(
                "SELECT 1 FROM media WHERE device_id = ? AND media_id = ?",
                (device_id, manifest.media_id.lower()),
            ).fetchone()
            if taken is not None:
                return InboxRefusal(
                    Reason.MEDIA_ID_IN_USE, f"media {manifest.media_id} is in another report"
                )
        return None

    def _arrived(self, report_id: str, state: ReportState, missing: int) -> ReportState:
        """The report's next state by the lifecycle table, now that `missing` chunks are
        still to come; a report that becomes ready joins the pipeline's queue."""
        event = Event.CHUNKS_MISSING if missing else Event.CHUNKS_COMPLETE
        moved = transition(state, event).to
        if moved is ReportState.READY:
            self.conn.execute("INSERT INTO ready (report_id) VALUES (?)", (report_id,))
        return moved

    def _add_media(self, device_id: str, report_id: str, manifest: MediaManifest) -> int:
        """Record one manifest, adopting chunks that came before it. Returns chunks missing."""
        media_id = manifest.media_id.lower()
        early = self.conn.execute(
            "SELECT seq, length(data) FROM chunks WHERE device_id = ? AND media_id = ?",
            (device_id, media_id),
        ).fetchall()
        # Chunks that came first were stored blind; those that do not fit the manifest go.
        misfits = [
            (device_id, media_id, seq)
            for seq, size in early
            if seq >= manifest.chunk_count or size != manifest.expected_chunk_size(seq)
        ]
        self.conn.executemany(
            "DELETE FROM chunks WHERE device_id = ? AND media_id = ? AND seq = ?", misfits
        )
        received = len(early) - len(misfits)
        self.conn.execute(
            "INSERT INTO media (device_id, media_id, report_id, chunk_count, chunk_bytes, bytes,"
            " received) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                device_id,
                media_id,
                report_id,
                manifest.chunk_count,
                manifest.chunk_bytes,
                manifest.bytes,
                received,
            ),
        )
        return manifest.chunk_count - received

    def add_chunk(
        self,
        device_id: str,
        media_id: str,
        seq: int,
        data: bytes,
        admit: Admit | None = None,
    ) -> ChunkStored | ChunkIgnored | InboxRefusal:
        """Store a chunk. `admit(device_id, size)` is asked only for a chunk that would be
        stored (not a duplicate, not one the manifest refuses); its refusal stores nothing."""
        row = self.conn.execute(
            "SELECT report_id, chunk_count, chunk_bytes, bytes, received FROM media"
            " WHERE device_id = ? AND media_id = ?",
            (device_id, media_id),
        ).fetchone()
        now = time.time()
        if row is None:  # before its report: keep it until the manifest comes (or it expires)
            not_stored = self._insert(device_id, media_id, seq, data, now, admit)
            return ChunkStored() if not_stored is None else not_stored
        report_id, chunk_count, chunk_bytes, size, received = row
        if received >= chunk_count:
            return ChunkIgnored()
        if seq >= chunk_count:
            return InboxRefusal(Reason.CHUNK_SEQ_RANGE, f"seq {seq} >= chunk count {chunk_count}")
        expected = chunk_bytes if seq < chunk_count - 1 else size - chunk_bytes * (chunk_count - 1)
        if len(data) != expected:
            return InboxRefusal(
                Reason.CHUNK_SIZE, f"chunk {seq} has {len(data)} bytes, expected {expected}"
            )
        not_stored = self._insert(device_id, media_id, seq, data, now, admit)
        if not_stored is not None:
            return not_stored
        self.conn.execute(
            "UPDATE media SET received = received + 1 WHERE device_id = ? AND media_id = ?",
            (device_id, media_id),
        )
        (missing,) = self.conn.execute(
            "UPDATE reports SET missing = missing - 1, updated_at = ? WHERE report_id = ?"
            " RETURNING missing",
            (now, report_id),
        ).fetchone()
        if missing == 0:
            self._arrived(report_id, ReportState.WAITING_FOR_CHUNKS, missing)
            return ChunkStored(completed=report_id)
        return ChunkStored()

    def _insert(
        self, device_id: str, media_id: str, seq: int, data: bytes, now: float, admit: Admit | None
    ) -> ChunkIgnored | InboxRefusal | None:
        """Store one chunk: None once stored, `ChunkIgnored` for a duplicate (ignored as ever,
        never refused, so never asked about), or `admit`'s refusal."""
        if admit is not None:
            present = self.conn.execute(
                "SELECT 1 FROM chunks WHERE device_id = ? AND media_id = ? AND seq = ?",
                (device_id, media_id, seq),
            ).fetchone()
            if present is not None:
                return ChunkIgnored()
            refused = admit(device_id, len(data))
            if refused is not None:
                return refused
        cursor = self.conn.execute(
            "INSERT INTO chunks (device_id, media_id, seq, data, received_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (device_id, media_id, seq, data, now),
        )
        return None if cursor.rowcount else ChunkIgnored()

    def spool_bytes(self, device_id: str) -> int:
        """Chunk bytes the device has in the inbox (kept by triggers: one key lookup)."""
        row = self.conn.execute(
            "SELECT bytes FROM device_spool WHERE device_id = ?", (device_id,)
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def missing_chunks(self, report_id: str) -> dict[str, list[int]]:
        missing: dict[str, list[int]] = {}
        uploads = self.conn.execute(
            "SELECT device_id, media_id, chunk_count FROM media"
            " WHERE report_id = ? AND received < chunk_count ORDER BY media_id",
            (report_id,),
        ).fetchall()
        for device_id, media_id, chunk_count in uploads:
            present = {
                seq
                for (seq,) in self.conn.execute(
                    "SELECT seq FROM chunks WHERE device_id = ? AND media_id = ?",
                    (device_id, media_id),
                )
            }
            missing[media_id] = [seq for seq in range(chunk_count) if seq not in present]
        return missing

    def waiting_reports(self, device_id: str) -> list[str]:
        """Reports of a device whose media are still incomplete."""
        rows = self.conn.execute(
            "SELECT report_id FROM reports WHERE device_id = ? AND missing > 0", (device_id,)
        )
        return [report_id for (report_id,) in rows]

    def set_status(
        self,
        device_id: str,
        online: bool,
        battery_pct: float | None,
        firmware: str | None,
        signal_dbm: int | None,
        at: str,
    ) -> None:
        self.conn.execute(
            "INSERT INTO device_status (device_id, online, battery_pct, firmware, signal_dbm,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
            " online = excluded.online, battery_pct = excluded.battery_pct,"
            " firmware = excluded.firmware, signal_dbm = excluded.signal_dbm,"
            " updated_at = excluded.updated_at",
            (device_id, online, battery_pct, firmware, signal_dbm, at),
        )

    def add_track(self, points: list[TrackPoint]) -> None:
        """Positions of devices, a batch's worth in one statement."""
        self.conn.executemany(
            "INSERT INTO track (device_id, time, lat, lon, accuracy_m, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            points,
        )

    # ---- pipeline ------------------------------------------------------------------------

    def previous_fixes(self, asks: list[tuple[str, datetime]]) -> list[GnssFix | None]:
        """Each device's last known position before its time (from tracks and reports),
        for (device, before) pairs: one statement for a whole batch."""
        if not asks:
            return []
        # VALUES' columns are column1, column2, ... in SQLite and PostgreSQL alike.
        latest = (
            "(SELECT {} FROM track t WHERE t.device_id = v.column1 AND t.time < v.column2"
            " ORDER BY t.time DESC LIMIT 1)"
        )
        rows = self.conn.execute(
            f"SELECT {latest.format('time')}, {latest.format('lat')}, {latest.format('lon')}"  # noqa: S608 - only ?s
            f" FROM (VALUES {', '.join(['(?, ?, ?)'] * len(asks))}) AS v ORDER BY v.column3",
            [value for index, (device_id, before) in enumerate(asks)
             for value in (device_id, before.astimezone(UTC).isoformat(), index)],
        ).fetchall()  # fmt: skip
        return [
            GnssFix(lat, lon, datetime.fromisoformat(when), source="terminal")
            if when is not None
            else None
            for when, lat, lon in rows
        ]

    def ready_after(self, cursor: int, limit: int) -> list[ReadyReport]:
        rows = self.conn.execute(
            "SELECT ready.seq, reports.report_id, reports.device_id, reports.received_at,"
            " reports.payload FROM ready JOIN reports USING (report_id)"
            " WHERE ready.seq > ? ORDER BY ready.seq LIMIT ?",
            (cursor, limit),
        ).fetchall()
        return [ReadyReport(*row) for row in rows]

    def claim_ready(self, limit: int) -> list[ReadyReport]:
        """A shared inbox's ready reports for this instance alone: taken off the queue in the
        caller's transaction, skipping those another instance holds. Should this instance
        die before it commits, they go back on the queue for the others."""
        if not self.conn.in_transaction:
            raise RuntimeError("claim_ready needs the caller's transaction")
        rows = self.conn.execute(
            "SELECT ready.seq, reports.report_id, reports.device_id, reports.received_at,"
            " reports.payload FROM ready JOIN reports USING (report_id)"
            " ORDER BY ready.seq LIMIT ? FOR UPDATE OF ready SKIP LOCKED",
            (limit,),
        ).fetchall()
        claimed = [ReadyReport(*row) for row in rows]
        self.conn.executemany("DELETE FROM ready WHERE seq = ?", [(r.seq,) for r in claimed])
        return claimed

    def requeue(self, report_id: str) -> None:
        """Put a claimed report back at the end of a shared queue (it could not be done
        now, and its claim is about to be committed)."""
        self.conn.execute("INSERT INTO ready (report_id) VALUES (?)", (report_id,))

    def last_ready_seq(self) -> int:
        (seq,) = self.conn.execute("SELECT coalesce(max(seq), 0) FROM ready").fetchone()
        return int(seq)

    def uploads_of(self, report_id: str) -> list[MediaUpload]:
        rows = self.conn.execute(
            "SELECT device_id, media_id, chunk_count, bytes FROM media WHERE report_id = ?",
            (report_id,),
        ).fetchall()
        return [MediaUpload(*row) for row in rows]

    def chunks(self, device_id: str, media_id: str) -> Iterator[tuple[int, bytes]]:
        """The chunks of one upload in order, one row at a time (never the whole file)."""
        cursor = self.conn.execute(
            "SELECT seq, data FROM chunks WHERE device_id = ? AND media_id = ? ORDER BY seq",
            (device_id, media_id),
        )
        yield from cursor

    def drop_chunks(self, uploads: list[tuple[str, str]]) -> None:
        """Forget the chunks of assembled uploads (their file is durable in the spool)."""
        with transaction(self.conn):
            self.conn.executemany(
                "DELETE FROM chunks WHERE device_id = ? AND media_id = ?", uploads
            )

    def restart_upload(self, device_id: str, media_id: str) -> None:
        """Throw away a corrupt upload so the terminal sends it again from the start."""
        with transaction(self.conn):
            row = self.conn.execute(
                "SELECT report_id, chunk_count FROM media WHERE device_id = ? AND media_id = ?",
                (device_id, media_id),
            ).fetchone()
            if row is None:
                return
            report_id, chunk_count = row
            transition(ReportState.READY, Event.UPLOAD_FAILED)  # back to waiting for chunks
            self.conn.execute(
                "DELETE FROM chunks WHERE device_id = ? AND media_id = ?", (device_id, media_id)
            )
            self.conn.execute(
                "UPDATE media SET received = 0 WHERE device_id = ? AND media_id = ?",
                (device_id, media_id),
            )
            self.conn.execute(
                "UPDATE reports SET missing = missing + ?, updated_at = ? WHERE report_id = ?",
                (chunk_count, time.time(), report_id),
            )

    def expire(
        self, now: float, upload_ttl_s: float, orphan_ttl_s: float
    ) -> tuple[list[tuple[str, str]], int]:
        """Drop uploads abandoned for `upload_ttl_s` and orphan chunks older than
        `orphan_ttl_s`. Returns the expired (device, report) ids and the orphans dropped."""
        with transaction(self.conn):
            expired = self.conn.execute(
                "SELECT device_id, report_id FROM reports WHERE missing > 0 AND updated_at < ?",
                (now - upload_ttl_s,),
            ).fetchall()
            for _, report_id in expired:
                transition(ReportState.WAITING_FOR_CHUNKS, Event.UPLOAD_EXPIRED)  # dropped
                self.conn.execute(
                    "DELETE FROM chunks WHERE (device_id, media_id) IN"
                    " (SELECT device_id, media_id FROM media WHERE report_id = ?)",
                    (report_id,),
                )
                self.conn.execute("DELETE FROM reports WHERE report_id = ?", (report_id,))
            orphans = self.conn.execute(
                "DELETE FROM chunks WHERE received_at < ? AND NOT EXISTS (SELECT 1 FROM media"
                " WHERE media.device_id = chunks.device_id AND media.media_id = chunks.media_id)",
                (now - orphan_ttl_s,),
            ).rowcount
        return expired, orphans

    def counts(self) -> dict[str, int]:
        """Depths for operators: waiting reports, spooled chunks and their bytes."""
        waiting, chunks, spooled = self.conn.execute(
            "SELECT (SELECT count(*) FROM reports WHERE missing > 0), count(*),"
            " coalesce(sum(length(data)), 0) FROM chunks"
        ).fetchone()
        return {"reports_waiting": waiting, "chunks": chunks, "chunk_bytes": spooled}
