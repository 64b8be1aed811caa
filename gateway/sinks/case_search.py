"""Finding cases: the facts the console filters and pages on, kept beside each case.

A case's normalized report is a JSON document; filtering 100,000 of them on a field
inside it would read every one. So each registry keeps the facts the console filters
on as columns of `cases` (district, unit grid, inspector, device, segment, inside the
acceptance window, inside the coverage, the WGS-84 position) and the responsible units
in `case_units`, each with an index, filled when the case is registered
(`CaseFacts.of`) and, for cases registered before, by the migration that added them.
The SQL here is the common subset of SQLite and PostgreSQL, with `?` placeholders (the
PostgreSQL registry turns them into psycopg's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.normalize.model import NormalizedReport
from gateway.sinks.case_ledger import PAST_DEADLINE

PAGE_MAX = 200

# SQLite's migration: the columns, the units, their indexes, and the facts of the cases
# registered before it (read out of each report).
SQLITE_MIGRATION = """
    ALTER TABLE cases ADD COLUMN district TEXT;
    ALTER TABLE cases ADD COLUMN grid_code TEXT;
    ALTER TABLE cases ADD COLUMN inspector_id TEXT;
    ALTER TABLE cases ADD COLUMN device_id TEXT;
    ALTER TABLE cases ADD COLUMN segment_id TEXT;
    ALTER TABLE cases ADD COLUMN inside_window INTEGER;
    ALTER TABLE cases ADD COLUMN inside_coverage INTEGER;
    ALTER TABLE cases ADD COLUMN lat REAL;
    ALTER TABLE cases ADD COLUMN lon REAL;
    UPDATE cases SET
        district = json_extract(report, '$.location.coverage.district_zh'),
        grid_code = json_extract(report, '$.location.grid_code'),
        inspector_id = json_extract(report, '$.reporter.inspector_id'),
        device_id = json_extract(report, '$.reporter.device_id'),
        segment_id = json_extract(report, '$.location.segment.segment_id'),
        inside_window = json_extract(report, '$.acceptance.inside_window'),
        inside_coverage = json_extract(report, '$.location.coverage.inside'),
        lat = json_extract(report, '$.location.wgs84.lat'),
        lon = json_extract(report, '$.location.wgs84.lon');
    CREATE TABLE case_units (
        case_id INTEGER NOT NULL REFERENCES cases (id),
        unit    TEXT NOT NULL,
        PRIMARY KEY (unit, case_id)
    );
    INSERT OR IGNORE INTO case_units (case_id, unit)
        SELECT cases.id, json_extract(unit.value, '$.unit_zh')
        FROM cases, json_each(cases.report, '$.location.responsible_units') AS unit;
    CREATE INDEX cases_district ON cases (district, id);
    CREATE INDEX cases_inspector ON cases (inspector_id, id);
    CREATE INDEX cases_class ON cases (class_code, id);
    CREATE INDEX cases_window ON cases (inside_window, id);
    CREATE INDEX cases_coverage ON cases (inside_coverage, id)
    """

POSTGRES_MIGRATION = """
    ALTER TABLE cases ADD COLUMN district text;
    ALTER TABLE cases ADD COLUMN grid_code text;
    ALTER TABLE cases ADD COLUMN inspector_id text;
    ALTER TABLE cases ADD COLUMN device_id text;
    ALTER TABLE cases ADD COLUMN segment_id text;
    ALTER TABLE cases ADD COLUMN inside_window integer;
    ALTER TABLE cases ADD COLUMN inside_coverage integer;
    ALTER TABLE cases ADD COLUMN lat double precision;
    ALTER TABLE cases ADD COLUMN lon double precision;
    UPDATE cases SET
        district = report #>> '{location,coverage,district_zh}',
        grid_code = report #>> '{location,grid_code}',
        inspector_id = report #>> '{reporter,inspector_id}',
        device_id = report #>> '{reporter,device_id}',
        segment_id = report #>> '{location,segment,segment_id}',
        inside_window = (report #>> '{acceptance,inside_window}')::boolean::integer,
        inside_coverage = (report #>> '{location,coverage,inside}')::boolean::integer,
        lat = (report #>> '{location,wgs84,lat}')::double precision,
        lon = (report #>> '{location,wgs84,lon}')::double precision;
    CREATE TABLE case_units (
        case_id bigint NOT NULL REFERENCES cases (id),
        unit    text NOT NULL,
        PRIMARY KEY (unit, case_id)
    );
    INSERT INTO case_units (case_id, unit)
        SELECT cases.id, unit ->> 'unit_zh'
        FROM cases, jsonb_array_elements(cases.report #> '{location,responsible_units}') AS unit
        ON CONFLICT DO NOTHING;
    CREATE INDEX cases_district ON cases (district, id);
    CREATE INDEX cases_inspector ON cases (inspector_id, id);
    CREATE INDEX cases_class ON cases (class_code, id);
    CREATE INDEX cases_window ON cases (inside_window, id);
    CREATE INDEX cases_coverage ON cases (inside_coverage, id)
    """

FACT_COLUMNS = (
    "district, grid_code, inspector_id, device_id, segment_id, inside_window,"
    " inside_coverage, lat, lon"
)


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the console filters on, as the registry stores it beside the report."""

    district: str | None
    grid_code: str | None
    inspector_id: str
    device_id: str
    segment_id: str | None
    inside_window: int
    inside_coverage: int | None
    lat: float | None
    lon: float | None
    units: tuple[str, ...]

    @classmethod
    def of(cls, report: NormalizedReport) -> CaseFacts:
        where = report.location
        coverage = where.coverage
        return cls(
            district=coverage.district_zh if coverage else None,
            grid_code=where.grid_code,
            inspector_id=report.reporter.inspector_id,
            device_id=report.reporter.device_id,
            segment_id=where.segment.segment_id if where.segment else None,
            inside_window=int(report.acceptance.inside_window),
            inside_coverage=None if coverage is None else int(coverage.inside),
            lat=where.wgs84.lat if where.wgs84 else None,
            lon=where.wgs84.lon if where.wgs84 else None,
            units=tuple(dict.fromkeys(unit.unit_zh for unit in where.responsible_units)),
        )

    def columns(self) -> tuple[Any, ...]:
        """In the order of `FACT_COLUMNS`."""
        return (
            self.district,
            self.grid_code,
            self.inspector_id,
            self.device_id,
            self.segment_id,
            self.inside_window,
            self.inside_coverage,
            self.lat,
            self.lon,
        )


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """A page of cases, newest first, matching every filter that is set."""

    day: date | None = None  # the registry's local day of receipt
    district: str | None = None
    unit: str | None = None
    class_code: str | None = None
    inspector_id: str | None = None
    inside_window: bool | None = None
    inside_coverage: bool | None = None
    state: str | None = None  # a lifecycle state (gateway.cases.workflow.State's value)
    # Overdue only: in handling with its deadline before this instant (the `cases_running`
    # index; a suspended case's clock stands still, so it is not counted).
    overdue_at: datetime | None = None
    before_id: int | None = None  # keyset paging: cases older than this one
    after_id: int | None = None  # live updates: cases newer than this one
    limit: int = 50  # the console asks for at most PAGE_MAX a page (its map for more)

    def where(
        self, tz: ZoneInfo, stamp: Callable[[datetime], Any] = lambda moment: moment
    ) -> tuple[str, list[Any]]:
        """The WHERE clause and its arguments; `stamp` gives an instant as the registry
        stores `received_at` and `deadline_at` (PostgreSQL: the datetime; SQLite: `utc_text`)."""
        clauses: list[str] = []
        args: list[Any] = []
        if self.day is not None:
            start = datetime.combine(self.day, time(), tz)
            clauses.append("received_at >= ? AND received_at < ?")
            args += [stamp(start), stamp(start + timedelta(days=1))]
        for column, value in (
            ("district", self.district),
            ("class_code", self.class_code),
            ("inspector_id", self.inspector_id),
        ):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        for column, flag in (
            ("inside_window", self.inside_window),
            ("inside_coverage", self.inside_coverage),
        ):
            if flag is not None:
                clauses.append(f"{column} = ?")
                args.append(int(flag))
        if self.state:
            clauses.append("state = ?")
            args.append(self.state)
        if self.overdue_at is not None:
            clauses.append(PAST_DEADLINE)
            args.append(stamp(self.overdue_at))
        if self.unit:
            clauses.append("id IN (SELECT case_id FROM case_units WHERE unit = ?)")
            args.append(self.unit)
        if self.before_id is not None:
            clauses.append("id < ?")
            args.append(self.before_id)
        if self.after_id is not None:
            clauses.append("id > ?")
            args.append(self.after_id)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def page_size(self) -> int:
        return max(1, self.limit)


def utc_text(moment: datetime) -> str:
    """An instant as SQLite's registry stores `received_at`: RFC 3339 in UTC, which sorts
    as text."""
    return moment.astimezone(UTC).isoformat()


# What a page of cases selects: the list's columns and the report itself (for its class
# names, description, road and units, which the list shows but never filters on).
CASE_SELECT = f"SELECT id, case_no, received_at, {FACT_COLUMNS}, report FROM cases"  # noqa: S608 - constants
# A new case's responsible units (arguments: unit, case_no).
UNITS_INSERT = (
    "INSERT INTO case_units (case_id, unit) SELECT id, ? FROM cases WHERE case_no = ?"
    " ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One case as the console lists and shows it."""

    id: int
    case_no: str
    report: NormalizedReport


@dataclass(frozen=True, slots=True)
class Facets:
    """The values each filter can take, for the console's choices."""

    districts: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    inspectors: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)


FACET_QUERIES = {
    "districts": "SELECT DISTINCT district FROM cases WHERE district IS NOT NULL ORDER BY 1",
    "units": "SELECT DISTINCT unit FROM case_units ORDER BY 1",
    "inspectors": "SELECT DISTINCT inspector_id FROM cases ORDER BY 1",
    "classes": "SELECT DISTINCT class_code FROM cases ORDER BY 1",
}


def case_rows(rows: Sequence[Sequence[Any]]) -> list[CaseRow]:
    """Rows of `CASE_SELECT` as cases (the report is the last column: text or JSON)."""
    found = []
    for row in rows:
        report = row[-1]
        parsed = (
            NormalizedReport.model_validate(report)
            if isinstance(report, dict)
            else NormalizedReport.from_json(report)
        )
        found.append(CaseRow(int(row[0]), str(row[1]), parsed))
    return found
