"""A month (or a year) of a city's cases with their whole lifecycle, fast, for the
statistics, the bulletin and the console to be measured and tried on.

    python -m bench.case_month --month 2026-11 --reports 30000 --data-dir var/month
    python -m bench.case_month --month 2026-11 --months 12 --reports 30000 \\
        --registry postgresql://…/cgt --seed 7

What is made, per month (`--reports` cases each; `--months 12` makes the twelve months
ending with `--month`):

- **When**: reports spread over the month's days by the working calendar (a working day
  counts 1, a weekend day 0.55, a public holiday 0.4; an adjusted working weekend is a
  working day) and over the hours of a day as inspectors patrol (peaks 09–11 and 14–16,
  little at night).
- **Where**: on the seed's 33 responsibility segments, each position placed by the
  project's locator (`gateway.geo.places`), so district, grid cell, segment and
  responsible units are the ones a gateway would give. 60 inspectors, each with a device
  and a beat of one or two segments (a few spare devices borrowed now and then), some
  busier than others.
- **What**: the code profile's classes (gbt30428), events three to one against
  components, the common ones weighted up (exposed garbage, hawkers, small ads, parking,
  manhole covers, street lights, litter bins…).
- **The lifecycle**: every step is `gateway.cases.workflow.decide` on the case's
  `CaseLife` (so every history is legal by construction) with the city's `Timekeeper`
  (`gateway.cases.timekeeping`: its limit table and working calendar): desk work
  (accepting, filing, dispatching, closing) in working time; about 3% refused, 4%
  declined, 8% self-handled by the inspector; the rest dispatched to the segment's
  responsible units (the first leads); feedback drawn relative to the time limit (most
  on time, about 10% late); about 4% reworked, 3% extended, 2% returned and dispatched
  again, 2% suspended and resumed, 1% cancelled; a `verify` task for each feedback with
  its deadline, most answered by a verification report before it. Nothing happens after
  the end of the last month: what was still running then stays open.

Writing: cases go in through the registry's own `register` (large batches: the case
number, the report and its facts as a gateway keeps them), then their lifecycle columns,
`case_events` (published: `published_at` set, so a gateway started on the data does not
flood the bus), tasks and verification reports in bulk: `executemany` on SQLite, COPY on
PostgreSQL, using the ledger's column lists. Deterministic with `--seed` on an empty
registry.
"""

from __future__ import annotations

import argparse
import calendar as monthcal
import csv
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

import orjson

from firmware_sim.routes import Road, load_roads, scatter
from gateway import logs
from gateway.cases.deadlines import TimeLimit, WorkCalendar
from gateway.cases.settings import CasesSettings
from gateway.cases.timekeeping import CityTimekeeper, timekeeper
from gateway.cases.workflow import Action, CaseEvent, CaseLife, Command, Refusal, decide
from gateway.geo.places import Locator, load_locator
from gateway.geo.settings import GeoSettings
from gateway.normalize.codes import ClassEntry, load_profile
from gateway.normalize.model import (
    Acceptance,
    Clock,
    CodeName,
    Location,
    NormalizedReport,
    ReportClass,
    Reporter,
)
from gateway.normalize.settings import AcceptanceSettings, CodesSettings
from gateway.settings import default_config_dir
from gateway.sinks.case_ledger import EVENT_COLUMNS, LIFE_COLUMNS, LIFE_FIELDS, event_params
from gateway.sinks.case_ledger import life_params as ledger_life_params
from gateway.sinks.case_registry_postgres import PostgresRegistry
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.case_search import utc_text
from gateway.sinks.settings import PostgresSettings
from gateway.store.db import transaction

TZ: Final = ZoneInfo("Asia/Shanghai")
BATCH: Final = 5_000
INSPECTORS: Final = 60
SPARE_DEVICES: Final = 6
PLACES_PER_SEGMENT: Final = 150
EVENT_SHARE: Final = 0.75


# Of all reports (`Shares`): the outcomes at the desk, then what happens in handling.
@dataclass(frozen=True, slots=True)
class Shares:
    refused: float = 0.03
    declined: float = 0.04
    self_handled: float = 0.08
    reworked: float = 0.04
    extended: float = 0.03
    returned: float = 0.02
    suspended: float = 0.02
    cancelled: float = 0.01
    late: float = 0.10  # of feedbacks
    urgent: float = 0.06  # filed under the class's other (urgent) condition, where it has one
    verify_on_time: float = 0.92  # verification reports before the task's deadline
    verify_late: float = 0.05  # after it; the rest unanswered (the desk verifies by phone)


SHARES: Final = Shares()

# A day's reports by local hour: patrols 07–19, peaks mid-morning and mid-afternoon.
HOURLY: Final = (
    0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 1.0, 4.0, 8.0, 11.0, 11.0, 8.0,
    4.0, 5.0, 9.0, 10.0, 9.0, 6.0, 3.0, 2.0, 1.5, 1.0, 0.6, 0.3,
)  # fmt: skip
WEEKEND: Final = 0.55
HOLIDAY: Final = 0.4

# The common classes, weighted up against 1 for every other class of their kind.
EVENT_WEIGHTS: Final = {
    "0102": 30, "0501": 22, "0201": 18, "0505": 16, "0506": 14, "0504": 14, "0507": 10,
    "0104": 10, "0103": 6, "0203": 6, "0202": 5, "0204": 4, "0510": 4, "0511": 4, "0106": 4,
    "0303": 3, "0304": 3, "0101": 3, "0112": 3, "0406": 2, "0404": 2,
}  # fmt: skip
COMPONENT_WEIGHTS: Final = {
    "0102": 8, "0103": 8, "0101": 6, "0104": 6, "0105": 4, "0118": 12, "0305": 10,
    "0211": 6, "0402": 6, "0209": 4, "0213": 3, "0212": 3, "0407": 3, "0203": 3, "0307": 3,
}  # fmt: skip

SPOTS: Final = (
    "东侧人行道", "西侧人行道", "南侧非机动车道", "北侧绿化带", "交叉口东北角", "公交站台旁",
    "小区出入口", "桥下", "菜场门口", "学校门口附近", "沿河步道",
)  # fmt: skip
PROBLEMS: Final = ("破损", "缺失", "松动", "倾斜", "污损", "被占压", "移位")
TAILS: Final = (
    "",
    "，请尽快处理",
    "，影响行人通行",
    "，已拍照",
    "，周边居民反映",
    "，存在安全隐患",
)
DESKS: Final = tuple(f"坐席{n:02d}" for n in range(1, 7))
DISPATCHERS: Final = ("派遣员01", "派遣员02", "派遣员03")
LEADERS: Final = ("值班长01", "值班长02")


# ---- the city: classes, places, inspectors ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spot:
    """A placed position on a segment: the report's location, validated once."""

    segment_id: str
    road_zh: str
    location: Location
    units: tuple[str, ...]
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Inspector:
    inspector_id: str
    device_id: str
    beat: tuple[str, ...]  # segment ids
    activity: float


@dataclass
class City:
    """What the generator draws from; made once per run from the project's config."""

    classes: list[tuple[ReportClass, str]]  # with the minor class's Chinese name
    class_weights: list[float]
    spots: dict[str, list[Spot]]
    inspectors: list[Inspector]
    spare_devices: tuple[str, ...]
    units: tuple[str, ...]  # every responsible unit of the segments

    @classmethod
    def load(cls, rng: random.Random) -> City:
        geo = GeoSettings()
        locator = load_locator(geo)
        codes = CodesSettings()
        profile = load_profile(codes.dir or default_config_dir() / "codes", codes.profile)
        classes, weights = _classes(list(profile.entries.values()), codes.profile)
        spots = _spots(locator, load_roads(geo.file("segments")), rng)
        segments = sorted(spots)
        inspectors = []
        for n in range(INSPECTORS):
            beat = [segments[n % len(segments)]]
            if rng.random() < 0.6:
                beat.append(rng.choice(segments))
            inspectors.append(
                Inspector(
                    f"INS-{n + 1:04d}",
                    f"nt-{n + 1:04d}",
                    tuple(dict.fromkeys(beat)),
                    rng.lognormvariate(0, 0.45),
                )
            )
        with geo.file("segment_table").open(encoding="utf-8", newline="") as handle:
            units = tuple(dict.fromkeys(row["unit_zh"] for row in csv.DictReader(handle)))
        spares = tuple(f"nt-spare-{n + 1:02d}" for n in range(SPARE_DEVICES))
        return cls(classes, weights, spots, inspectors, spares, units)


def _classes(
    entries: list[ClassEntry], profile: str
) -> tuple[list[tuple[ReportClass, str]], list[float]]:
    classes: list[tuple[ReportClass, str]] = []
    weights: list[float] = []
    for kind, share, table in (
        ("event", EVENT_SHARE, EVENT_WEIGHTS),
        ("component", 1 - EVENT_SHARE, COMPONENT_WEIGHTS),
    ):
        mine = sorted((e for e in entries if e.kind == kind), key=lambda e: e.code)
        total = sum(table.get(e.code, 1) for e in mine)
        for entry in mine:
            classes.append((
                ReportClass(
                    type=entry.kind,
                    code=entry.code,
                    major=CodeName(code=entry.major_code, name=entry.major_name),
                    minor=CodeName(code=entry.minor_code, name=entry.minor_name),
                    name_en=entry.name_en,
                    profile=profile,
                ),
                entry.minor_name,
            ))  # fmt: skip
            weights.append(share * table.get(entry.code, 1) / total)
    return classes, weights


def _spots(locator: Locator, roads: list[Road], rng: random.Random) -> dict[str, list[Spot]]:
    """`PLACES_PER_SEGMENT` positions along each segment, placed by the locator; only
    those it matches to that segment are kept."""
    by_segment: dict[str, list[Road]] = {}
    for road in roads:
        by_segment.setdefault(road.segment_id, []).append(road)
    spots: dict[str, list[Spot]] = {}
    for segment_id, parts in sorted(by_segment.items()):
        found: list[Spot] = []
        for _ in range(PLACES_PER_SEGMENT * 3):
            if len(found) == PLACES_PER_SEGMENT:
                break
            road = rng.choice(parts)
            lat, lon = scatter(road.at(rng.uniform(0, road.length_m)), 4.0, rng)
            lat, lon = round(lat, 6), round(lon, 6)
            place = locator.place_fields(lat, lon)
            segment = place["segment"]
            if segment is None or segment["segment_id"] != segment_id:
                continue
            location = Location.model_validate({
                **place,
                "source": "fix",
                "wgs84": {"lat": lat, "lon": lon, "accuracy_m": round(rng.uniform(3, 12), 1),
                          "time": None, "alt_m": None, "hdop": None, "satellites": None},
                "flags": (),
            })  # fmt: skip
            units = tuple(dict.fromkeys(unit.unit_zh for unit in location.responsible_units))
            found.append(Spot(segment_id, road.road_zh, location, units, lat, lon))
        if found:
            spots[segment_id] = found
    return spots


# ---- when: the months and the arrivals ----------------------------------------------------


def month_starts(last: str, months: int) -> list[date]:
    """The first days of the `months` months ending with `last` ("YYYY-MM")."""
    year, month = (int(part) for part in last.split("-"))
    firsts = []
    for back in range(months - 1, -1, -1):
        index = year * 12 + (month - 1) - back
        firsts.append(date(index // 12, index % 12 + 1, 1))
    return firsts


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TZ)


def month_end(first: date) -> date:
    return first + timedelta(days=monthcal.monthrange(first.year, first.month)[1])


def arrivals(rng: random.Random, first: date, count: int, work: WorkCalendar) -> list[datetime]:
    """`count` arrival instants (UTC) in the month of `first`, oldest first."""
    days = [first + timedelta(days=n) for n in range((month_end(first) - first).days)]
    weights = [
        1.0 if work.is_workday(day) else WEEKEND if day.weekday() >= 5 else HOLIDAY for day in days
    ]
    picked_days = rng.choices(days, weights, k=count)
    hours = rng.choices(range(24), HOURLY, k=count)
    moments = [
        local_midnight(day) + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
        for day, hour in zip(picked_days, hours, strict=True)
    ]
    return sorted(moment.astimezone(UTC) for moment in moments)


# ---- the reports ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drawn:
    """A report and what its lifecycle needs of it."""

    report: NormalizedReport
    spot: Spot
    inspector: Inspector
    device_id: str


class ReportMaker:
    def __init__(self, city: City, rng: random.Random) -> None:
        self.city = city
        self.rng = rng
        window = AcceptanceSettings().window()
        self.window = window
        self.acceptance = {
            inside: Acceptance(
                inside_window=inside, window=window.label(), timezone="Asia/Shanghai"
            )
            for inside in (True, False)
        }
        self.clock = Clock(skew_s=0.0, flags=())
        self.reporters: dict[tuple[str, str], Reporter] = {}
        self.activity = [inspector.activity for inspector in city.inspectors]

    def make(self, received: datetime) -> Drawn:
        rng, city = self.rng, self.city
        klass, name = rng.choices(city.classes, city.class_weights)[0]
        inspector = rng.choices(city.inspectors, self.activity)[0]
        device = rng.choice(city.spare_devices) if rng.random() < 0.03 else inspector.device_id
        segment = (
            rng.choice(inspector.beat) if rng.random() < 0.9 else rng.choice(sorted(city.spots))
        )
        spot = rng.choice(city.spots.get(segment) or city.spots[sorted(city.spots)[0]])
        problem = rng.choice(PROBLEMS) if klass.type == "component" else ""
        reporter = self.reporters.get((device, inspector.inspector_id))
        if reporter is None:
            reporter = Reporter(device_id=device, inspector_id=inspector.inspector_id, unit=None)
            self.reporters[device, inspector.inspector_id] = reporter
        created = received - timedelta(seconds=rng.uniform(1, 40))
        report = NormalizedReport.model_validate({
            "report_id": _uuid(rng),
            "case_no": None,
            "class": klass,
            "object_code": None,
            "description": f"{spot.road_zh}{rng.choice(SPOTS)}{name}{problem}{rng.choice(TAILS)}",
            "location": spot.location,
            "reporter": reporter,
            "reported_at": created,
            "received_at": received,
            "acceptance": self.acceptance[self.window.contains(received)],
            "clock": self.clock,
            "task_id": None,
            "media": (),
        })  # fmt: skip
        return Drawn(report, spot, inspector, device)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# ---- the lifecycle --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskRow:
    task_id: str
    case_no: str
    device_id: str
    lat: float
    lon: float
    deadline: datetime
    created_at: datetime
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class VerificationRow:
    report_id: str
    task_id: str
    case_no: str
    received_at: datetime
    report: str


@dataclass
class Story:
    """One case's lifecycle, stepped with `decide`; steps after the horizon do not happen."""

    life: CaseLife
    clock: CityTimekeeper
    horizon: datetime
    last: datetime
    events: list[CaseEvent] = field(default_factory=list)
    stopped: bool = False

    def do(
        self,
        action: Action,
        at: datetime,
        via: str,
        by: str | None = None,
        units: tuple[str, ...] = (),
        note: str | None = None,
        condition: str | None = None,
    ) -> bool:
        at = max(at, self.last)
        if self.stopped or at >= self.horizon:
            self.stopped = True
            return False
        command = Command(self.life.case_no, action, at, via, by, units, note, condition)
        decided = decide(self.life, command, self.clock)
        if isinstance(decided, Refusal):
            raise RuntimeError(f"generator bug: {decided.code}: {decided.detail}")  # noqa: TRY004
        self.life, event = decided
        self.events.append(event)
        self.last = at
        return True


class Lifecycles:
    """Draws each case's steps; the rules are `decide`'s, the pace this class's."""

    def __init__(
        self, rng: random.Random, clock: CityTimekeeper, city: City, shares: Shares = SHARES
    ) -> None:
        self.rng = rng
        self.clock = clock
        self.city = city
        self.shares = shares
        handled = 1 - shares.refused - shares.declined - shares.self_handled
        # The handling shares are of all reports; these are of the dispatched ones.
        self.p = {
            name: getattr(shares, name) / handled
            for name in ("reworked", "extended", "returned", "suspended", "cancelled")
        }
        self.tasks: list[TaskRow] = []
        self.verifications: list[VerificationRow] = []

    def office(self, at: datetime, median_min: float) -> datetime:
        """A desk's step: `median_min` minutes (lognormal) of working time after `at`."""
        minutes = min(self.rng.lognormvariate(math.log(median_min), 0.6), median_min * 8)
        return self.clock.calendar.add(at, TimeLimit(minutes / 60, "working_hours"))

    def natural(self, at: datetime, low_h: float, high_h: float) -> datetime:
        return at + timedelta(hours=self.rng.uniform(low_h, high_h))

    def run(self, case_no: str, drawn: Drawn, horizon: datetime) -> Story:  # noqa: PLR0912 - a step a branch, in order
        rng, p, report = self.rng, self.p, drawn.report
        life = CaseLife(case_no, report.class_.type, report.class_.code)
        story = Story(life, self.clock, horizon, report.received_at)
        device = f"mqtt:{drawn.device_id}"
        inspector = drawn.inspector.inspector_id
        desk = f"console:{rng.choice(DESKS)}"
        draw = rng.random()
        shares = self.shares
        if draw < shares.self_handled:
            story.do(
                Action.SELF_HANDLED, self.natural(report.received_at, 0.05, 0.5), device,
                inspector, note="现场自行处置",
            )  # fmt: skip
            return story
        draw -= shares.self_handled
        accepted_at = self.office(report.received_at, 12)
        if draw < shares.refused:
            story.do(Action.REFUSE, accepted_at, desk, desk[8:], note="非城管职责范围")
            return story
        draw -= shares.refused
        if not story.do(Action.ACCEPT, accepted_at, desk, desk[8:]):
            return story
        filed_at = self.office(accepted_at, 15)
        if draw < shares.declined:
            story.do(Action.DECLINE, filed_at, desk, desk[8:], note="不符合立案条件")
            return story
        conditions = self.clock.conditions(life.kind, life.class_code)
        condition = conditions[-1] if len(conditions) > 1 and rng.random() < shares.urgent else None
        if not story.do(Action.FILE, filed_at, desk, desk[8:], condition=condition):
            return story
        dispatcher = rng.choice(DISPATCHERS)
        units = drawn.spot.units[:2] if rng.random() < 0.2 else drawn.spot.units[:1]
        if not self._dispatch(story, self.office(filed_at, 20), dispatcher, units):
            return story
        if rng.random() < p["returned"] and not self._returned(story, dispatcher):
            return story
        if rng.random() < p["cancelled"]:
            at = self._within(story, 0.1, 0.6)
            story.do(Action.CANCEL, at, f"console:{rng.choice(LEADERS)}", note="重复上报，作废")
            return story
        if rng.random() < p["suspended"] and not self._suspended(story, dispatcher):
            return story
        if rng.random() < p["extended"]:
            lead = story.life.units[0]
            at = self._within(story, 0.5, 0.9)
            if not story.do(Action.EXTEND, at, f"console:{dispatcher}", lead, (lead,),
                            note="处置难度大，申请延期"):  # fmt: skip
                return story
        reworks = 1 if rng.random() < p["reworked"] else 0
        for round_ in range(reworks + 1):
            verified = self._handle_and_verify(story, drawn, fail=round_ < reworks)
            if verified is None:
                return story
        leader = f"console:{rng.choice(LEADERS)}"
        story.do(Action.CLOSE, self.office(story.last, 20), leader, leader[8:])
        return story

    def _dispatch(
        self, story: Story, at: datetime, dispatcher: str, units: tuple[str, ...]
    ) -> bool:
        return story.do(Action.DISPATCH, at, f"console:{dispatcher}", dispatcher, units)

    def _within(self, story: Story, low: float, high: float) -> datetime:
        """A moment `low`..`high` of the way from the last step to the deadline."""
        life = story.life
        deadline = life.deadline_at or story.last + timedelta(days=1)
        span = max(deadline - story.last, timedelta(minutes=30))
        return story.last + span * self.rng.uniform(low, high)

    def _returned(self, story: Story, dispatcher: str) -> bool:
        lead = story.life.units[0]
        at = self._within(story, 0.05, 0.3)
        if not story.do(Action.RETURN, at, "console:unit", lead, (lead,), note="非本单位职责"):
            return False
        others = [unit for unit in self.city.units if unit not in story.life.units and unit != lead]
        to = (self.rng.choice(others),) if others else (lead,)
        return self._dispatch(story, self.office(story.last, 20), dispatcher, to)

    def _suspended(self, story: Story, dispatcher: str) -> bool:
        at = self._within(story, 0.1, 0.5)
        if not story.do(Action.SUSPEND, at, f"console:{dispatcher}", dispatcher,
                        note="待条件具备后处置"):  # fmt: skip
            return False
        return story.do(
            Action.RESUME, self.natural(story.last, 24, 24 * 6), f"console:{dispatcher}",
            dispatcher,
        )  # fmt: skip

    def _handle_and_verify(self, story: Story, drawn: Drawn, *, fail: bool) -> bool | None:
        """Feedback, its verify task, the check; None when the horizon came first."""
        rng, life = self.rng, story.life
        lead = life.units[0]
        deadline = life.deadline_at or story.last + timedelta(days=1)
        if rng.random() < self.shares.late:
            late = timedelta(hours=rng.expovariate(1 / 10)) + timedelta(minutes=5)
            at = max(deadline, story.last) + late
        else:
            span = max(deadline - story.last, timedelta(minutes=10))
            at = story.last + span * min(rng.betavariate(2, 3) * 1.1, 0.98)
        if not story.do(Action.FEEDBACK, at, "console:unit", lead, (lead,), note="已处置完毕"):
            return None
        handled = story.last
        created = handled + timedelta(minutes=rng.uniform(1, 10))
        if created >= story.horizon:
            return None
        task_deadline = self.clock.verify_deadline(handled)
        device = drawn.device_id
        task = TaskRow(
            _uuid(rng), life.case_no, device, drawn.spot.lat, drawn.spot.lon, task_deadline,
            created, created + timedelta(seconds=rng.uniform(0.2, 5)),
        )  # fmt: skip
        self.tasks.append(task)
        answer = rng.random()
        desk = rng.choice(DESKS)
        if answer < self.shares.verify_on_time + self.shares.verify_late:
            if answer < self.shares.verify_on_time:
                checked = created + (task_deadline - created) * rng.uniform(0.1, 0.95)
            else:
                checked = task_deadline + timedelta(hours=rng.uniform(0.3, 6))
            if checked >= story.horizon:
                return None
            self.verifications.append(self._verification(drawn, task, checked, fail=fail))
            decided = checked + timedelta(minutes=rng.uniform(1, 20))
        else:
            decided = self.office(task_deadline, 60)  # no answer: the desk checks by phone
        action, note = (Action.FAIL, "现场核查未处置到位，返工") if fail else (Action.PASS, None)
        return story.do(action, decided, f"console:{desk}", desk, note=note)

    def _verification(
        self, drawn: Drawn, task: TaskRow, at: datetime, *, fail: bool
    ) -> VerificationRow:
        report_id = _uuid(self.rng)
        report = drawn.report.model_copy(
            update={
                "report_id": report_id,
                "case_no": task.case_no,
                "task_id": task.task_id,
                "reported_at": at - timedelta(seconds=self.rng.uniform(1, 30)),
                "received_at": at,
                "description": "核查：问题仍在，未处置到位" if fail else "核查：已处置完毕",
            }
        )
        return VerificationRow(report_id, task.task_id, task.case_no, at, report.to_json().decode())


# ---- writing --------------------------------------------------------------------------------


@dataclass
class Batch:
    lives: list[tuple[int, CaseLife]] = field(default_factory=list)
    events: list[tuple[int, CaseEvent]] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    verifications: list[VerificationRow] = field(default_factory=list)


class Writer(Protocol):
    def register(self, reports: Sequence[NormalizedReport]) -> list[tuple[int, str]]: ...

    def write(self, batch: Batch) -> None: ...

    def finish(self) -> None: ...


_TASK_COLUMNS: Final = "task_id, case_no, device_id, kind, lat, lon, deadline, created_at, sent_at"
_VERIFICATION_COLUMNS: Final = "report_id, task_id, case_no, received_at, report"


def _life_row(life: CaseLife, stamp: Callable[[datetime], Any]) -> list[Any]:
    return [*ledger_life_params(life, stamp), life.units[0] if life.units else None]


class SqliteWriter:
    def __init__(self, registry: SqliteRegistry) -> None:
        self.registry = registry
        self.conn = registry.conn

    def register(self, reports: Sequence[NormalizedReport]) -> list[tuple[int, str]]:
        numbers = [str(n) for n in self.registry.register(reports)]
        marks = ",".join("?" * len(numbers))
        ids = dict(
            self.conn.execute(
                f"SELECT case_no, id FROM cases WHERE case_no IN ({marks})",  # noqa: S608 - only ?s
                numbers,
            ).fetchall()
        )
        return [(int(ids[number]), number) for number in numbers]

    def write(self, batch: Batch) -> None:
        stamp = utc_text
        sets = ", ".join(f"{name} = ?" for name in LIFE_FIELDS)
        with transaction(self.conn):
            self.conn.executemany(
                f"UPDATE cases SET {sets}, lead_unit = ? WHERE id = ?",  # noqa: S608 - constants
                [[*_life_row(life, stamp), case_id] for case_id, life in batch.lives],
            )
            self.conn.executemany(
                f"INSERT INTO case_events (case_id, {EVENT_COLUMNS}, published_at)"  # noqa: S608 - constants
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [case_id, *event_params(event, stamp), stamp(event.at)]
                    for case_id, event in batch.events
                ],
            )
            self.conn.executemany(
                f"INSERT INTO tasks ({_TASK_COLUMNS})"  # noqa: S608 - constants
                " VALUES (?, ?, ?, 'verify', ?, ?, ?, ?, ?)",
                [
                    (t.task_id, t.case_no, t.device_id, t.lat, t.lon, t.deadline.isoformat(),
                     stamp(t.created_at), stamp(t.sent_at))
                    for t in batch.tasks
                ],
            )  # fmt: skip
            self.conn.executemany(
                f"INSERT INTO verifications ({_VERIFICATION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608 - constants
                [
                    (v.report_id, v.task_id, v.case_no, v.received_at.isoformat(), v.report)
                    for v in batch.verifications
                ],
            )

    def finish(self) -> None:
        self.conn.execute("ANALYZE")


class PostgresWriter:
    def __init__(self, registry: PostgresRegistry) -> None:
        self.registry = registry

    def register(self, reports: Sequence[NormalizedReport]) -> list[tuple[int, str]]:
        numbers = [str(n) for n in self.registry.register(reports)]
        with self.registry.pool.connection() as conn:
            ids: dict[str, int] = dict(
                conn.execute(
                    "SELECT case_no, id FROM cases WHERE case_no = ANY(%s)", (numbers,)
                ).fetchall()
            )
        return [(int(ids[number]), number) for number in numbers]

    def write(self, batch: Batch) -> None:
        def stamp(moment: datetime) -> datetime:
            return moment

        sets = ", ".join(f"{name} = t.{name}" for name in (*LIFE_FIELDS, "lead_unit"))
        with self.registry.pool.connection() as conn, conn.transaction():
            conn.execute(
                f"CREATE TEMP TABLE life_rows ON COMMIT DROP AS SELECT id, {LIFE_COLUMNS},"  # noqa: S608 - constants
                " lead_unit FROM cases WITH NO DATA"
            )
            with conn.cursor().copy(
                f"COPY life_rows (id, {LIFE_COLUMNS}, lead_unit) FROM STDIN"
            ) as copy:
                for case_id, life in batch.lives:
                    copy.write_row([case_id, *_life_row(life, stamp)])
            conn.execute(f"UPDATE cases c SET {sets} FROM life_rows t WHERE c.id = t.id")  # noqa: S608 - constants
            with conn.cursor().copy(
                f"COPY case_events (case_id, {EVENT_COLUMNS}, published_at) FROM STDIN"
            ) as copy:
                for case_id, event in batch.events:
                    copy.write_row([case_id, *event_params(event, stamp), event.at])
            with conn.cursor().copy(f"COPY tasks ({_TASK_COLUMNS}) FROM STDIN") as copy:
                for t in batch.tasks:
                    copy.write_row((t.task_id, t.case_no, t.device_id, "verify", t.lat, t.lon,
                                    t.deadline, t.created_at, t.sent_at))  # fmt: skip
            with conn.cursor().copy(
                f"COPY verifications ({_VERIFICATION_COLUMNS}) FROM STDIN"
            ) as copy:
                for v in batch.verifications:
                    copy.write_row((v.report_id, v.task_id, v.case_no, v.received_at, v.report))

    def finish(self) -> None:
        with self.registry.pool.connection() as conn:
            conn.execute("ANALYZE")


def writer_for(registry: SqliteRegistry | PostgresRegistry) -> Writer:
    if isinstance(registry, SqliteRegistry):
        return SqliteWriter(registry)
    return PostgresWriter(registry)


# ---- the whole run ----------------------------------------------------------------------------


@dataclass
class Made:
    cases: int = 0
    events: int = 0
    tasks: int = 0
    verifications: int = 0
    states: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    late_feedbacks: int = 0
    feedbacks: int = 0
    seconds: float = 0.0
    start: datetime | None = None
    end: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "events": self.events,
            "tasks": self.tasks,
            "verifications": self.verifications,
            "states": dict(sorted(self.states.items())),
            "actions": dict(sorted(self.actions.items())),
            "late_feedback_share": self.late_feedbacks / self.feedbacks if self.feedbacks else 0,
            "seconds": self.seconds,
            "cases_per_s": self.cases / self.seconds if self.seconds else None,
            "start": self.start and self.start.isoformat(),
            "end": self.end and self.end.isoformat(),
        }


def generate(
    registry: SqliteRegistry | PostgresRegistry,
    month: str,
    reports: int,
    *,
    months: int = 1,
    seed: int = 16,
    progress: Callable[[str], None] | None = None,
) -> Made:
    """`reports` cases in each of the `months` months ending with `month`, with their
    lifecycles up to the end of that month, written into `registry`."""
    began = time.perf_counter()
    rng = random.Random(seed)
    clock = timekeeper(CasesSettings(), TZ)
    city = City.load(rng)
    maker = ReportMaker(city, rng)
    lives = Lifecycles(rng, clock, city)
    writer = writer_for(registry)
    firsts = month_starts(month, months)
    horizon = local_midnight(month_end(firsts[-1])).astimezone(UTC)
    made = Made(start=local_midnight(firsts[0]).astimezone(UTC), end=horizon)
    for first in firsts:
        moments = arrivals(rng, first, reports, clock.calendar)
        for chunk in _chunks(moments, BATCH):
            drawn = [maker.make(moment) for moment in chunk]
            numbered = writer.register([d.report for d in drawn])
            batch = Batch()
            for (case_id, case_no), one in zip(numbered, drawn, strict=True):
                story = lives.run(case_no, one, horizon)
                batch.lives.append((case_id, story.life))
                batch.events += [(case_id, event) for event in story.events]
                made.states[story.life.state.value] += 1
                for event in story.events:
                    made.actions[event.action.value] += 1
                    if event.action is Action.FEEDBACK:
                        made.feedbacks += 1
                        made.late_feedbacks += event.deadline_at is not None and (
                            event.at > event.deadline_at
                        )
            batch.tasks, lives.tasks = lives.tasks, []
            batch.verifications, lives.verifications = lives.verifications, []
            writer.write(batch)
            made.cases += len(drawn)
            made.events += len(batch.events)
            made.tasks += len(batch.tasks)
            made.verifications += len(batch.verifications)
        if progress:
            progress(f"{first:%Y-%m}: {made.cases} cases, {time.perf_counter() - began:.1f} s")
    writer.finish()
    made.seconds = time.perf_counter() - began
    return made


def _chunks(items: list[datetime], size: int) -> Iterator[list[datetime]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def open_registry(data_dir: Path | None, url: str | None) -> SqliteRegistry | PostgresRegistry:
    if url:
        return PostgresRegistry(url, PostgresSettings(pool_max=2), TZ, logs.get("case_month"))
    assert data_dir is not None
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteRegistry(data_dir / "registry.db", TZ)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.case_month",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--month", required=True, help="YYYY-MM: the (last) month made")
    parser.add_argument("--reports", type=int, default=30_000, help="cases a month")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path, help="a gateway data directory (registry.db)")
    where.add_argument("--registry", help="a PostgreSQL registry's URL")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--months", type=int, default=1, help="months ending with --month")
    args = parser.parse_args(argv)
    registry = open_registry(args.data_dir, args.registry)
    try:
        made = generate(registry, args.month, args.reports, months=args.months, seed=args.seed,
                        progress=print)  # fmt: skip
    finally:
        registry.close()
    summary = made.as_dict()
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    print(f"{made.cases} cases, {made.events} events, {made.tasks} tasks,"
          f" {made.verifications} verifications in {made.seconds:.1f} s"
          f" ({made.cases / made.seconds:,.0f} cases/s)")  # fmt: skip


if __name__ == "__main__":
    main()
