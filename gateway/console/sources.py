"""What the console's pages read, and the two things they change: a dead letter's retry,
and a case's lifecycle (a transition, under the registry's rules and lock).

Every store is opened on connections of the console's own, never the intake's or the
pipeline's: in the embedded mode the data directory's SQLite files (WAL, so reading
never blocks the gateway's writers), in a cluster the shared PostgreSQL. Each store is
used by one web request at a time (a lock each), since a SQLite or psycopg connection is
not for several threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from gateway.cases.evaluation import Evaluation
from gateway.cases.settings import ScoreSettings
from gateway.cases.workflow import CaseEvent, CaseLife, Command, Refusal, Timekeeper
from gateway.devices.device_registry import Device, DeviceRegistry
from gateway.sinks import case_stats
from gateway.sinks.case_ledger import LIFE_COLUMNS, Applied, Overdue, life_of
from gateway.sinks.case_search import CaseQuery, CaseRow, Facets
from gateway.sinks.ports import ObjectReader, TaskRecord
from gateway.store.db import Database
from gateway.store.outbox import DeadLetterRow, Outbox

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

FACETS_TTL_S = 60.0
S = TypeVar("S")
T = TypeVar("T")


class CaseSearch(Protocol):
    """What both case registries answer (gateway/sinks/case_search.py)."""

    def find_cases(self, query: CaseQuery) -> list[CaseRow]: ...

    def get_case(self, case_no: str) -> CaseRow | None: ...

    def facets(self) -> Facets: ...

    # The lifecycle (gateway/sinks/ports.py's CaseBook) and the case's tasks (TaskBook).
    def act(self, command: Command, clock: Timekeeper) -> Applied | Refusal: ...

    def life(self, case_no: str) -> CaseLife | None: ...

    def history(self, case_no: str) -> list[CaseEvent]: ...

    def overdue(self, now: datetime, limit: int) -> list[Overdue]: ...

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]: ...

    def stamp(self, moment: datetime) -> object: ...

    def tasks(
        self, *, unsent_only: bool = False, case_no: str | None = None, limit: int = 200
    ) -> list[TaskRecord]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One terminal as the fleet page shows it."""

    device_id: str
    inspector_id: str | None
    unit: str | None
    status: str  # active, suspended, revoked; "unregistered" in open mode
    online: bool | None  # None: it never said
    status_at: str | None  # when it last said (its status or its will)
    last_seen_at: str | None
    battery_pct: float | None
    firmware: str | None
    signal_dbm: int | None
    uploading: int  # reports whose media are still arriving
    rejected: int  # reports of it the pipeline rejected
    last_reason: str | None  # the latest one's reason code
    refused: int  # its uplinks refused at this instance's door since it started
    last_refusal: str | None  # the latest one's reason code
    last_fix: tuple[float, float, str | None] | None  # lat, lon, time


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """What the running gateway says of itself, for the pipeline page."""

    instance: str  # its MQTT client id
    broker: str
    broker_connected: bool
    pipeline_alive: bool
    media_workers: int
    spool_bytes: int
    outbox_reports: int
    free_bytes: int
    refusing: str | None  # why new reports or media are refused, when they are
    door: dict[str, tuple[int, str, float]]  # per device: uplinks refused, the last reason


class Guarded(Generic[S]):
    """A store used by one thread at a time."""

    def __init__(self, store: S) -> None:
        self.store = store
        self.lock = threading.Lock()

    def __call__(self, use: Callable[[S], T]) -> T:
        with self.lock:
            return use(self.store)


class Sources:
    def __init__(
        self,
        cases: CaseSearch,
        objects: ObjectReader,
        inbox: Database,
        outbox: Outbox,
        devices: DeviceRegistry | None,
        tz: ZoneInfo,
    ) -> None:
        self.cases = Guarded(cases)
        self.objects = objects  # each read is a request of its own (S3) or a file read
        self.inbox = Guarded(inbox)
        self.outbox = Guarded(outbox)
        self.devices = Guarded(devices)
        self.tz = tz
        self._facets: tuple[float, Facets] | None = None
        self._closers = [cases.close, inbox.close, outbox.close]
        if devices is not None:
            self._closers.append(devices.close)

    def close(self) -> None:
        for close in self._closers:
            close()

    # ---- reports ---------------------------------------------------------------------------

    def find_cases(self, query: CaseQuery) -> list[CaseRow]:
        return self.cases(lambda cases: cases.find_cases(query))

    def get_case(self, case_no: str) -> CaseRow | None:
        return self.cases(lambda cases: cases.get_case(case_no))

    def facets(self) -> Facets:
        """The filters' choices, read again at most once a FACETS_TTL_S: they change
        slowly, and reading them scans indexes of every case."""
        now = monotonic()
        if self._facets is None or now - self._facets[0] > FACETS_TTL_S:
            self._facets = (now, self.cases(lambda cases: cases.facets()))
        return self._facets[1]

    # ---- a case's lifecycle ----------------------------------------------------------------

    def lives(self, rows: Sequence[CaseRow]) -> dict[str, CaseLife]:
        """The lifecycle of each listed case, in one read (not one a row)."""
        if not rows:
            return {}
        marks = ", ".join("?" * len(rows))
        sql = f"SELECT case_no, kind, class_code, {LIFE_COLUMNS} FROM cases WHERE id IN ({marks})"  # noqa: S608 - only ?s
        found = self.cases(lambda cases: cases.query(sql, [row.id for row in rows]))
        return {
            str(case_no): life_of(str(case_no), str(kind), str(code), life)
            for case_no, kind, code, *life in found
        }

    def life(self, case_no: str) -> CaseLife | None:
        return self.cases(lambda cases: cases.life(case_no))

    def history(self, case_no: str) -> list[CaseEvent]:
        return self.cases(lambda cases: cases.history(case_no))

    def tasks(self, case_no: str) -> list[TaskRecord]:
        return self.cases(lambda cases: cases.tasks(case_no=case_no, limit=50))

    def evaluate(
        self,
        start: date,
        end: date,
        by: str,
        as_of: datetime,
        score: ScoreSettings,
        labels: Mapping[str, str] | None = None,
    ) -> Evaluation:
        """`gateway stats`' figures (gateway/sinks/case_stats.py), on the console's registry."""
        return self.cases(
            lambda cases: case_stats.evaluate(cases, start, end, by, as_of, score, labels)
        )

    def act(self, command: Command, clock: Timekeeper) -> Applied | Refusal:
        """One transition, applied by the registry under the case's lock (its rules:
        `gateway.cases.workflow.decide`)."""
        return self.cases(lambda cases: cases.act(command, clock))

    # ---- the fleet -------------------------------------------------------------------------

    def fleet(self, door: dict[str, tuple[int, str, float]] | None = None) -> list[DeviceView]:
        """Every device registered or heard from; `door`: refusals at the door, per device."""
        door = door or {}
        registered: list[Device] = self.devices(
            lambda devices: devices.devices() if devices is not None else []
        )
        status = self.inbox(_status_rows)
        rejections = self.outbox(lambda outbox: _rejection_rows(outbox.conn))
        ids = sorted(
            {device.device_id for device in registered} | set(status) | set(rejections) | set(door)
        )
        by_id = {device.device_id: device for device in registered}
        views = []
        for device_id in ids:
            device = by_id.get(device_id)
            said = status.get(device_id, {})
            rejected, last_reason = rejections.get(device_id, (0, None))
            refused, last_refusal, _ = door.get(device_id, (0, None, 0.0))
            views.append(
                DeviceView(
                    device_id=device_id,
                    inspector_id=device.inspector_id if device else None,
                    unit=device.unit if device else None,
                    status=device.status if device else "unregistered",
                    online=said.get("online"),
                    status_at=said.get("updated_at"),
                    last_seen_at=device.last_seen_at if device else None,
                    battery_pct=said.get("battery_pct"),
                    firmware=said.get("firmware"),
                    signal_dbm=said.get("signal_dbm"),
                    uploading=int(said.get("uploading") or 0),
                    rejected=rejected,
                    last_reason=last_reason,
                    refused=refused,
                    last_refusal=last_refusal,
                    last_fix=said.get("last_fix"),
                )
            )
        return views

    def track(self, device_id: str, day: datetime | None = None) -> list[tuple[float, float]]:
        """The device's fixes of `day` (today, in the city's time zone), in order."""
        start = datetime.combine((day or datetime.now(self.tz)).date(), time(), self.tz)
        since, until = (moment.astimezone(UTC).isoformat() for moment in
                        (start, start + timedelta(days=1)))  # fmt: skip
        rows = self.inbox(
            lambda inbox: inbox.execute(
                "SELECT lat, lon FROM track WHERE device_id = ? AND time >= ? AND time < ?"
                " ORDER BY time",
                (device_id, since, until),
            ).fetchall()
        )
        return [(float(lat), float(lon)) for lat, lon in rows]

    # ---- the pipeline ----------------------------------------------------------------------

    def depths(self) -> dict[str, tuple[int, float, int]]:
        return self.outbox(lambda outbox: outbox.depths())

    def dead_letters(self) -> list[DeadLetterRow]:
        return self.outbox(lambda outbox: outbox.dead_letters())

    def retry(self, report_id: str, sink: str) -> int:
        """Make one dead letter pending again; how many were (0 or 1)."""
        return self.outbox(lambda outbox: outbox.revive(sink, [report_id]))


def _status_rows(inbox: Database) -> dict[str, dict[str, Any]]:
    """Per device: what its status messages said, uploads in progress, its last fix."""
    found: dict[str, dict[str, Any]] = {}
    for device_id, online, battery, firmware, signal, updated_at in inbox.execute(
        "SELECT device_id, online, battery_pct, firmware, signal_dbm, updated_at FROM device_status"
    ):
        found[device_id] = {
            "online": bool(online),
            "battery_pct": battery,
            "firmware": firmware,
            "signal_dbm": signal,
            "updated_at": updated_at,
        }
    for device_id, uploading in inbox.execute(
        "SELECT device_id, count(*) FROM reports WHERE missing > 0 GROUP BY device_id"
    ):
        found.setdefault(device_id, {})["uploading"] = uploading
    # Each device's newest fix: the track's newest time, one index probe per device.
    for device_id, lat, lon, at in inbox.execute(
        "SELECT t.device_id, t.lat, t.lon, t.time FROM track AS t"
        " JOIN (SELECT device_id, max(time) AS newest FROM track GROUP BY device_id) AS n"
        " ON t.device_id = n.device_id AND t.time = n.newest"
    ):
        found.setdefault(device_id, {})["last_fix"] = (float(lat), float(lon), at)
    return found


def _rejection_rows(outbox: Database) -> dict[str, tuple[int, str | None]]:
    """Per device: how many of its reports were rejected, and the latest one's reason."""
    rows = outbox.execute(
        "SELECT device_id, count(*), (SELECT latest.reason_code FROM outcomes AS latest"
        " WHERE latest.device_id = rejected.device_id AND latest.state = 'rejected'"
        " ORDER BY latest.updated_at DESC LIMIT 1)"
        " FROM outcomes AS rejected WHERE state = 'rejected' GROUP BY device_id"
    )  # one statement, not one more per device
    return {device_id: (int(count), reason) for device_id, count, reason in rows}


@contextmanager
def open_sources(config: GatewayConfig) -> Iterator[Sources]:
    """The console's own connections to everything the config names."""
    from gateway import logs  # noqa: PLC0415 - keeps gateway.console.sources light to import
    from gateway.runtime import wiring  # noqa: PLC0415
    from gateway.store.db import connect  # noqa: PLC0415
    from gateway.store.inbox import MIGRATIONS  # noqa: PLC0415

    log = logs.get("console")
    cases: Any = wiring.open_registry(config, log)
    objects: Any = wiring.open_objects(config)
    if config.cluster.url is not None:
        inbox: Database = wiring.shared_connection(config, "console-inbox")
        outbox = Outbox(wiring.shared_connection(config, "console-outbox"))
        devices: DeviceRegistry | None = DeviceRegistry(
            wiring.shared_connection(config, "console-devices")
        )
    else:
        inbox = connect(config.inbox_path, MIGRATIONS)
        outbox = Outbox(config.outbox_path)
        devices = (
            DeviceRegistry.in_data_dir(config.data_dir)
            if (config.data_dir / "devices.db").exists()
            else None
        )
    sources = Sources(cases, objects, inbox, outbox, devices, config.timezone)
    try:
        yield sources
    finally:
        sources.close()
        objects.close()
