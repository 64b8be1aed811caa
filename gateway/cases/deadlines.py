"""Handling deadlines (处置时限): the limit a case is dispatched with, when it falls due, and
its light.

Pure: the only input it reads is the time-limit table's file (`LimitTable.load`), and it never
reads a clock: callers pass `now`. Instants are timezone-aware (UTC out); working hours are
local wall-clock time in the calendar's zone. A limit counts on one of two clocks:

- working time (`working_hours`, `working_days`): only the work hours of working days count;
  a working day is the length of the day's work hours (8 h by default), so "1 working day"
  from Friday 10:00 ends at 10:00 on the next working day;
- natural time (`hours`, `days`): every second counts, nights and holidays too.

Working days are China's official calendar (public holidays and the adjusted working
weekends, 调休上班) from the `holidays` package; docs/deadlines.md says which years it knows.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

from gateway.cases.settings import CasesSettings, parse_work_hours
from gateway.errors import ConfigError
from gateway.settings import default_config_dir

Unit = Literal["working_hours", "working_days", "hours", "days"]
Kind = Literal["component", "event"]  # as ReportClass.type
Light = Literal["green", "yellow", "red"]

UNITS: Final[tuple[Unit, ...]] = get_args(Unit)
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
WORKING_UNITS: Final = frozenset({"working_hours", "working_days"})

# Arithmetic in whole microseconds (a datetime's resolution), so that add_seconds and
# elapsed are exact inverses and no float drift creeps into a deadline.
_US: Final = 1_000_000
_HOUR_US: Final = 3600 * _US
_DAY_US: Final = 24 * _HOUR_US
_ONE_US: Final = timedelta(microseconds=1)

_NUMBER = r"(\d+(?:\.\d+)?)"
_ENGLISH = re.compile(rf"^{_NUMBER}\s+(working\s+)?(hour|day)s?$", re.IGNORECASE)
_CHINESE = re.compile(rf"^{_NUMBER}\s*个?\s*(工作日|工作时|工作小时|小时|天|日)$")
_CHINESE_UNITS: Final[dict[str, Unit]] = {
    "工作日": "working_days",
    "工作时": "working_hours",
    "工作小时": "working_hours",
    "小时": "hours",
    "天": "days",
    "日": "days",
}
_ENGLISH_UNITS: Final[dict[tuple[bool, str], Unit]] = {
    (True, "hour"): "working_hours",
    (True, "day"): "working_days",
    (False, "hour"): "hours",
    (False, "day"): "days",
}
_LABEL_ZH: Final[dict[Unit, str]] = {
    "working_days": "个工作日",
    "working_hours": "个工作时",
    "hours": "小时",
    "days": "天",
}
_LABEL_EN: Final[dict[Unit, str]] = {
    "working_days": "working day",
    "working_hours": "working hour",
    "hours": "hour",
    "days": "day",
}


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """A handling time limit: an amount of working or natural hours or days."""

    amount: float
    unit: Unit

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {self.unit!r}")
        if not math.isfinite(self.amount) or self.amount <= 0:
            raise ValueError(f"a time limit must be a finite amount above 0, not {self.amount!r}")

    @classmethod
    def parse(cls, text: str) -> TimeLimit:
        """ "1 working day", "4 working hours", "2 hours", "3 days", or as published in
        Chinese: "1个工作日", "4个工作时", "2小时", "3天"."""
        stripped = text.strip()
        english = _ENGLISH.match(stripped)
        chinese = _CHINESE.match(stripped)
        if english:
            unit, number = _ENGLISH_UNITS[bool(english[2]), english[3].lower()], english[1]
        elif chinese:
            unit, number = _CHINESE_UNITS[chinese[2]], chinese[1]
        else:
            raise ValueError(
                f"{text!r} is not a time limit: write an amount and a unit, e.g. '1 working day',"
                " '4 working hours', '2 hours', '3 days' (or '1个工作日', '4个工作时', '2小时')"
            )
        amount = float(number)
        if amount <= 0:
            raise ValueError(f"{text!r}: a time limit must be more than 0")
        return cls(amount, unit)

    @property
    def working(self) -> bool:
        """Counted in working time (else in natural time)."""
        return self.unit in WORKING_UNITS

    @property
    def label_zh(self) -> str:
        return f"{self._number}{_LABEL_ZH[self.unit]}"

    def __str__(self) -> str:
        """The English form `parse` reads back: "1 working day", "15 working days"."""
        return f"{self._number} {_LABEL_EN[self.unit]}{'' if self.amount == 1 else 's'}"

    @property
    def _number(self) -> str:
        # Not :g, which writes 1e+06 and rounds to 6 digits: the registry keeps this text.
        amount = float(self.amount)
        return str(int(amount)) if amount.is_integer() else repr(amount)


class WorkCalendar:
    """China's working days and a city's work hours, and deadlines counted on them.

    Which days are working days comes from the `holidays` package, one year at a time, kept
    per date: stepping over a 15-working-day limit is a few dozen dictionary look-ups.
    For a year whose State Council notice the package does not have (`covers(year)` is
    False), it still knows the statutory holidays (fixed by law) and gives a weekday off for
    one on a weekend, but knows no bridging day and no adjusted working weekend: never a
    crash, a calendar a few days off at the long holidays. Callers log `estimated_years`.
    """

    def __init__(
        self, zone: ZoneInfo, work_hours: tuple[str, ...] = ("08:00-12:00", "14:00-18:00")
    ) -> None:
        self.zone = zone
        self.work_hours = work_hours
        self._spans = tuple(
            (start * 60 * _US, end * 60 * _US) for start, end in parse_work_hours(work_hours)
        )
        self._day_us = sum(end - start for start, end in self._spans)
        self._workday: dict[int, bool] = {}  # by date ordinal
        self._covered: dict[int, bool] = {}  # by year

    @classmethod
    def from_settings(cls, settings: CasesSettings, zone: ZoneInfo) -> WorkCalendar:
        return cls(zone, settings.work_hours)

    # ---- the calendar ------------------------------------------------------------------

    @property
    def working_day_s(self) -> float:
        """The length of one working day's work hours, seconds."""
        return self._day_us / _US

    def is_workday(self, day: date) -> bool:
        return self._is_workday(day.toordinal())

    def covers(self, year: int) -> bool:
        """Whether the year's official notice (holidays and adjusted working weekends) is in
        the data; when not, that year is Monday to Friday less the statutory holidays."""
        if year not in self._covered:
            self._load_year(year)
        return self._covered[year]

    @property
    def estimated_years(self) -> frozenset[int]:
        """The years looked up so far that the data does not cover: log them."""
        return frozenset(year for year, covered in self._covered.items() if not covered)

    def _is_workday(self, ordinal: int) -> bool:
        known = self._workday.get(ordinal)
        if known is None:
            self._load_year(date.fromordinal(ordinal).year)
            known = self._workday[ordinal]
        return known

    def _load_year(self, year: int) -> None:
        # Deferred: the package takes ~100 ms to import and build, needed once a calendar counts.
        import holidays  # noqa: PLC0415

        days = holidays.country_holidays("CN", years=year)
        # Every notice since 2001 names working weekends; a year without one is a projection.
        self._covered[year] = any(day.year == year for day in days.weekend_workdays)
        first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
        for ordinal in range(first, last + 1):
            self._workday[ordinal] = days.is_working_day(date.fromordinal(ordinal))

    # ---- deadlines -----------------------------------------------------------------------

    def seconds_of(self, limit: TimeLimit) -> float:
        """The limit's length on its own clock (working or natural), seconds."""
        return self._limit_us(limit) / _US

    def add(self, start: datetime, limit: TimeLimit) -> datetime:
        """The deadline of a limit that starts at `start`: the first instant at which the
        limit's time has passed. Working time starts counting at the next working moment."""
        return self._add_us(start, self._limit_us(limit), limit.working)

    def add_seconds(self, start: datetime, seconds: float, limit: TimeLimit) -> datetime:
        """`start` plus `seconds` on the limit's clock: the inverse of `elapsed`, to push a
        deadline by the time a case was suspended (挂账/缓办)."""
        us = round(seconds * _US)
        if us < 0:
            raise ValueError(f"seconds must not be negative, not {seconds!r}")
        return self._add_us(start, us, limit.working)

    def elapsed(self, start: datetime, end: datetime, limit: TimeLimit) -> float:
        """Seconds of the limit's clock between two instants (negative if `end` is earlier)."""
        _aware(start, end)
        if end < start:
            return -self.elapsed(end, start, limit)
        if limit.working:
            return self._working_us(start, end) / _US
        # In UTC: two instants of one zone subtract as wall-clock times, blind to DST.
        return (end.astimezone(UTC) - start.astimezone(UTC)) // _ONE_US / _US

    def postpone(
        self, deadline: datetime, suspended_at: datetime, resumed_at: datetime, limit: TimeLimit
    ) -> datetime:
        """The deadline pushed by a suspension, measured on the limit's own clock: a pause
        over a weekend moves a deadline in working days by nothing."""
        return self.add_seconds(deadline, self.elapsed(suspended_at, resumed_at, limit), limit)

    def light(
        self,
        start: datetime,
        deadline: datetime,
        now: datetime,
        limit: TimeLimit,
        yellow_at: float = 0.8,
        paused_s: float = 0.0,
    ) -> Light:
        """Green below `yellow_at` of the limit's clock used, yellow up to the deadline, red
        past it. `paused_s`: limit-clock seconds suspended since `start` (the deadline was
        pushed by them), which count as neither used nor allowed."""
        if now > deadline:
            return "red"
        allowed = self.elapsed(start, deadline, limit) - paused_s
        if allowed <= 0:
            return "yellow"
        used = self.elapsed(start, now, limit) - paused_s
        return "yellow" if used / allowed >= yellow_at else "green"

    # ---- the arithmetic, in microseconds of the local day ------------------------------------

    def _limit_us(self, limit: TimeLimit) -> int:
        per_unit = {
            "working_hours": _HOUR_US,
            "working_days": self._day_us,
            "hours": _HOUR_US,
            "days": _DAY_US,
        }[limit.unit]
        return round(limit.amount * per_unit)

    def _add_us(self, start: datetime, us: int, working: bool) -> datetime:
        _aware(start)
        if us == 0:
            return start.astimezone(UTC)
        if not working:  # in UTC, for the same reason as in elapsed
            return start.astimezone(UTC) + timedelta(microseconds=us)
        ordinal, at = self._local(start)
        while True:
            if self._is_workday(ordinal):
                if at == 0 and us > self._day_us:  # a whole working day in one step
                    us -= self._day_us
                else:
                    for opens, closes in self._spans:
                        if at < closes:
                            begin = max(opens, at)
                            if us <= closes - begin:
                                return self._instant(ordinal, begin + us)
                            us -= closes - begin
            ordinal, at = ordinal + 1, 0

    def _working_us(self, start: datetime, end: datetime) -> int:
        first, since = self._local(start)
        last, until = self._local(end)
        if first == last:
            return self._within(first, since, until)
        total = self._within(first, since, _DAY_US) + self._within(last, 0, until)
        for ordinal in range(first + 1, last):
            if self._is_workday(ordinal):
                total += self._day_us
        return total

    def _within(self, ordinal: int, since: int, until: int) -> int:
        """Working microseconds of one local day between two times of that day."""
        if until <= since or not self._is_workday(ordinal):
            return 0
        return sum(max(0, min(end, until) - max(begin, since)) for begin, end in self._spans)

    def _local(self, instant: datetime) -> tuple[int, int]:
        local = instant.astimezone(self.zone)
        seconds = (local.hour * 60 + local.minute) * 60 + local.second
        return local.toordinal(), seconds * _US + local.microsecond

    def _instant(self, ordinal: int, us: int) -> datetime:
        midnight = datetime.combine(date.fromordinal(ordinal), time(), self.zone)
        return (midnight + timedelta(microseconds=us)).astimezone(UTC)


def _aware(*instants: datetime) -> None:
    for instant in instants:
        if instant.utcoffset() is None:
            raise ValueError(f"{instant.isoformat()} has no time zone; pass aware datetimes (UTC)")


# ---- the table ----------------------------------------------------------------------------

_CLASS_KEY = re.compile(r"^(\d{2}|\d{4,5})$")
DEFAULT: Final = "default"  # the key of a kind's default entry


@dataclass(frozen=True)
class LimitTable:
    """Class × filing condition → time limit, from `config/time_limits.toml` or a city's file.

    `entries[kind][key]` maps each filing condition to its limit; a key is a class code
    ("0102"), a major class ("01") or "default", and every entry names the default condition.
    """

    default_condition: str
    entries: Mapping[str, Mapping[str, Mapping[str, TimeLimit]]]

    @classmethod
    def load(cls, path: Path) -> LimitTable:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError([f"time limits: cannot read {path}: {error}"]) from None
        return cls.from_toml(text, str(path))

    @classmethod
    def from_settings(cls, settings: CasesSettings) -> LimitTable:
        """The table `[cases] time_limits` names, else the shipped one."""
        return cls.load(settings.time_limits or default_config_dir() / "time_limits.toml")

    @classmethod
    def from_toml(cls, text: str, where: str = "time limits") -> LimitTable:
        """Read a table; every wrong entry is reported at once, each named with the file."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError([f"{where}: not valid TOML: {error}"]) from None
        problems: list[str] = []
        unknown = set(data) - {"default_condition", *KINDS}
        problems += [
            f"{where}: unknown key {key!r} (expected default_condition, component, event)"
            for key in sorted(unknown)
        ]
        default_condition = data.get("default_condition", "一般")
        if not isinstance(default_condition, str) or not default_condition.strip():
            problems.append(f"{where}: default_condition must be a non-empty label, e.g. '一般'")
            default_condition = "一般"
        entries: dict[str, dict[str, dict[str, TimeLimit]]] = {}
        for kind in KINDS:
            table = data.get(kind)
            if not isinstance(table, dict):
                problems.append(f"{where}: no [{kind}] table (with a default entry)")
                continue
            if DEFAULT not in table:
                problems.append(f"{where}: [{kind}] has no default entry")
            entries[kind] = {}
            for key, value in table.items():
                name = f"{where}: {kind}.{key}"
                if key != DEFAULT and not _CLASS_KEY.match(key):
                    problems.append(
                        f"{name}: not a class code (2 digits for a major class, 4 or 5 for a"
                        " minor class) nor 'default'"
                    )
                    continue
                entry = _entry(name, value, default_condition, problems)
                if entry is not None:
                    entries[kind][key] = entry
        if problems:
            raise ConfigError(problems)
        return cls(default_condition, entries)

    def limit_for(self, kind: str, class_code: str, condition: str | None = None) -> TimeLimit:
        """The limit of a class filed under a condition: the class's own entry, else its
        major class's, else the kind's default; within one, the condition, else the default
        condition."""
        for entry in self._chain(kind, class_code):
            if condition is not None and condition in entry:
                return entry[condition]
            if self.default_condition in entry:
                return entry[self.default_condition]
        raise AssertionError("unreachable: every kind has a default entry naming the default")

    def conditions(self, kind: str, class_code: str) -> list[str]:
        """The filing conditions with a limit of their own for this class (the default
        first), for a form to offer: those of the most specific entry that answers."""
        entry = next(iter(self._chain(kind, class_code)))
        return [self.default_condition, *(c for c in entry if c != self.default_condition)]

    def _chain(self, kind: str, class_code: str) -> list[Mapping[str, TimeLimit]]:
        if kind not in KINDS:
            raise ValueError(f"kind must be 'component' or 'event', not {kind!r}")
        if not re.fullmatch(r"\d{4,5}", class_code):
            raise ValueError(f"a class code has 4 or 5 digits, not {class_code!r}")
        table = self.entries[kind]
        keys = (class_code, class_code[:2], DEFAULT)
        return [table[key] for key in keys if key in table]


def _entry(
    name: str, value: object, default_condition: str, problems: list[str]
) -> dict[str, TimeLimit] | None:
    """One entry: a limit (for the default condition) or a table of condition → limit."""
    if isinstance(value, str):
        value = {default_condition: value}
    if not isinstance(value, dict) or not value:
        problems.append(f"{name}: must be a limit ('1 working day') or a table of conditions")
        return None
    entry: dict[str, TimeLimit] = {}
    for condition, text in value.items():
        if not condition.strip():
            problems.append(f"{name}: a condition needs a label")
        elif not isinstance(text, str):
            problems.append(f"{name}.{condition}: must be text like '1 working day', not {text!r}")
        else:
            try:
                entry[condition] = TimeLimit.parse(text)
            except ValueError as error:
                problems.append(f"{name}.{condition}: {error}")
    if default_condition not in value:
        problems.append(f"{name}: no limit for the default condition {default_condition!r}")
        return None
    return entry if len(entry) == len(value) else None
