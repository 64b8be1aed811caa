"""What an inspector reports: a class from the code profile, a description, a fix, media.

`ReportPlanner` draws the form (kind, class code, description, fix, time) from its own
seeded generator, so a seed reproduces a run's content. Ids are always fresh UUID4s:
a re-run must not collide with the reports of the last one. `compose` then turns a
plan into the envelope and the media files to upload.
"""

from __future__ import annotations

import csv
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from firmware_sim.faults import FixFault
from firmware_sim.media import MediaFile
from firmware_sim.nmea import epoch
from firmware_sim.photo import Capture, PhotoPool
from firmware_sim.routes import Road, load_roads, scatter
from firmware_sim.shipped import config_path
from firmware_sim.voice import VoiceBank
from firmware_sim.wire import Fix, MediaEntry, ReportEnvelope, ReportKind

CHINA_TIME = timezone(timedelta(hours=8), "CST")
SPOTS = (
    "东侧人行道", "西侧人行道", "南侧非机动车道", "北侧绿化带", "交叉口东北角", "公交站台旁",
    "小区出入口", "桥下", "菜场门口", "学校门口附近", "沿河步道",
)  # fmt: skip
COMPONENT_PROBLEMS = ("破损", "缺失", "松动", "倾斜", "污损", "被占压", "移位")
_CASE_NO = re.compile(r"(?P<kind>[CE])(?P<code>[0-9]{4,5})[0-9]{8}[0-9]{6,}")
TAILS = ("", "，请尽快处理", "，影响行人通行", "，已拍照", "，周边居民反映", "，存在安全隐患")


@dataclass(frozen=True, slots=True)
class ClassCode:
    kind: ReportKind
    code: str
    name: str  # minor class name, Chinese


def default_codes_dir() -> Path:
    """The project's `config/codes`, in a checkout or in the wheel."""
    return config_path("codes", "codes_dir")


def load_codes(codes_dir: Path | None = None, profile: str = "gbt30428") -> list[ClassCode]:
    directory = codes_dir or default_codes_dir()
    files: dict[ReportKind, Path] = {
        "component": directory / f"{profile}_components.csv",
        "event": directory / f"{profile}_events.csv",
    }
    codes: list[ClassCode] = []
    for kind, path in files.items():
        with path.open(encoding="utf-8", newline="") as handle:
            codes.extend(
                ClassCode(kind, row["code"], row["minor_name_zh"]) for row in csv.DictReader(handle)
            )
    if not codes:
        raise ValueError(f"code profile {profile} in {directory} is empty")
    return codes


@dataclass(frozen=True, slots=True)
class PlannedReport:
    report_id: str
    kind: ReportKind
    class_code: str
    description: str
    created_at: datetime  # aware, China time
    fix: Fix | None  # None: the receiver had no fix, only its void sentences
    fix_taken_at: datetime
    at: tuple[float, float]  # where the inspector truly stood
    nmea: tuple[str, ...] | None
    orientation: int
    photo_index: int
    photos: int  # one to three, as inspectors take them
    voice: bool
    task_id: str | None = None  # a verification report answers this task


@dataclass
class ReportPlanner:
    codes: list[ClassCode]
    rng: random.Random
    roads: list[Road] = field(default_factory=load_roads)
    voice_share: float = 0.85  # most inspectors add a voice note, not all
    events_share: float = 0.7  # events outnumber component faults in the field
    nmea_share: float = 0.3  # terminals that also pass on their receiver's sentences
    gnss_sigma_m: float = 4.0  # a phone's receiver in a street, open sky
    _by_kind: dict[str, list[ClassCode]] = field(init=False)

    def __post_init__(self) -> None:
        self._by_kind = {
            kind: [c for c in self.codes if c.kind == kind] for kind in ("event", "component")
        }

    def next(
        self,
        now: datetime,
        *,
        road: Road | None = None,
        at: tuple[float, float] | None = None,
        clock_skew_s: float = 0.0,
        fix_fault: FixFault | None = None,
    ) -> PlannedReport:
        """A new problem report. `road` and `at` (the truth) place it where the inspector
        stands; otherwise somewhere on a random road. The terminal's clock, and so the
        report's `created_at`, is `clock_skew_s` off; the receiver's time never is."""
        rng = self.rng
        kind = "event" if rng.random() < self.events_share else "component"
        pool = self._by_kind[kind] or self.codes
        code = rng.choice(pool)
        road = road or rng.choice(self.roads)
        return self._plan(
            kind=code.kind,
            class_code=code.code,
            description=self._describe(code, road.road_zh),
            now=now,
            road=road,
            at=at,
            clock_skew_s=clock_skew_s,
            fix_fault=fix_fault,
        )

    def verification(
        self,
        now: datetime,
        case_no: str,
        task_id: str,
        at: tuple[float, float],
        *,
        clock_skew_s: float = 0.0,
    ) -> PlannedReport:
        """The photo of a handled problem, answering a verification task on the spot."""
        kind, class_code = class_of_case(case_no) or (self.codes[0].kind, self.codes[0].code)
        description = f"核查：案件{case_no}已处置完毕，现场已恢复{self.rng.choice(TAILS)}"
        return self._plan(
            kind=kind,
            class_code=class_code,
            description=description,
            now=now,
            at=at,
            clock_skew_s=clock_skew_s,
            task_id=task_id,
            voice=False,
        )

    def _plan(
        self,
        *,
        kind: ReportKind,
        class_code: str,
        description: str,
        now: datetime,
        road: Road | None = None,
        at: tuple[float, float] | None = None,
        clock_skew_s: float = 0.0,
        fix_fault: FixFault | None = None,
        task_id: str | None = None,
        voice: bool | None = None,
    ) -> PlannedReport:
        rng = self.rng
        true_now = now.astimezone(CHINA_TIME).replace(microsecond=0)
        created_at = true_now + timedelta(seconds=round(clock_skew_s))
        fix_taken_at = true_now - timedelta(seconds=rng.randint(2, 40))
        if at is None:
            road = road or rng.choice(self.roads)
            at = road.at(rng.uniform(0, road.length_m))
        fix: Fix | None = self._fix(at, fix_taken_at, wild=fix_fault == "wild")
        nmea = None
        if fix_fault == "void":  # no position: the receiver's sentences say so, nothing else
            fix = None
            nmea = tuple(epoch(fix_taken_at.astimezone(UTC), at[0], at[1], valid=False))
        elif fix is not None and rng.random() < self.nmea_share:
            nmea = tuple(epoch(fix_taken_at.astimezone(UTC), fix.lat, fix.lon, hdop=0.8))
        return PlannedReport(
            report_id=str(uuid.uuid4()),
            kind=kind,
            class_code=class_code,
            description=description,
            created_at=created_at,
            fix=fix,
            fix_taken_at=fix_taken_at,
            at=at,
            nmea=nmea,
            # Mostly held upright in landscape; sometimes portrait or upside down.
            orientation=rng.choices((1, 6, 8, 3), weights=(70, 20, 6, 4))[0],
            photo_index=rng.randrange(1 << 16),
            photos=1 if task_id else rng.choices((1, 2, 3), weights=(55, 30, 15))[0],
            voice=rng.random() < self.voice_share if voice is None else voice,
            task_id=task_id,
        )

    def _describe(self, code: ClassCode, road: str) -> str:
        rng = self.rng
        problem = rng.choice(COMPONENT_PROBLEMS) if code.kind == "component" else ""
        return f"{road}{rng.choice(SPOTS)}{code.name}{problem}{rng.choice(TAILS)}"

    def _fix(self, truth: tuple[float, float], taken_at: datetime, *, wild: bool) -> Fix:
        """The receiver's reading of `truth`; a wild one lands hundreds of km away."""
        rng = self.rng
        lat, lon = scatter(truth, self.gnss_sigma_m, rng)
        if wild:
            lat, lon = scatter(truth, rng.uniform(200_000, 900_000), rng)
        return Fix(
            lat=round(lat, 6),
            lon=round(lon, 6),
            accuracy_m=round(rng.uniform(3.0, 15.0), 1),
            time=taken_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


def class_of_case(case_no: str) -> tuple[ReportKind, str] | None:
    """The kind and class code a case number carries (`E0102` + date + serial), if any."""
    match = _CASE_NO.fullmatch(case_no)
    if match is None:
        return None
    return ("component" if match["kind"] == "C" else "event"), match["code"]


@dataclass(frozen=True, slots=True)
class MediaKit:
    """The shared, pre-encoded material every terminal's media is cut from."""

    photos: PhotoPool
    voices: VoiceBank


@dataclass(frozen=True, slots=True)
class ComposedReport:
    envelope: ReportEnvelope
    files: dict[str, MediaFile]  # media id -> file, for every manifest entry


def compose(
    plan: PlannedReport, kit: MediaKit, inspector_id: str, chunk_bytes: int, rng: random.Random
) -> ComposedReport:
    files: dict[str, MediaFile] = {}
    taken_at = plan.created_at - timedelta(seconds=rng.randint(1, 30))
    for n in range(plan.photos):
        photo_id = str(uuid.uuid4())
        capture = Capture(
            taken_at=taken_at + timedelta(seconds=4 * n),  # a few seconds between shots
            lat=plan.fix.lat if plan.fix else None,
            lon=plan.fix.lon if plan.fix else None,
            unique_id=uuid.UUID(photo_id).hex,
            orientation=plan.orientation if n == 0 else rng.choice((1, 1, 1, 6)),
            alt_m=round(rng.uniform(3.0, 9.0), 1),  # Nantong lies a few metres above sea level
        )
        files[photo_id] = kit.photos.photo(capture, plan.photo_index + n)
    if plan.voice:
        files[str(uuid.uuid4())] = kit.voices.note(rng)
    entries = tuple(
        MediaEntry(media_id, file.kind, file.mime, file.size, file.sha256, chunk_bytes)
        for media_id, file in files.items()
    )
    envelope = ReportEnvelope(
        report_id=plan.report_id,
        created_at=plan.created_at.isoformat(),
        kind=plan.kind,
        class_code=plan.class_code,
        description=plan.description,
        inspector_id=inspector_id,
        fix=plan.fix,
        nmea=plan.nmea,
        media=entries,
        task_id=plan.task_id,
    )
    return ComposedReport(envelope, files)
