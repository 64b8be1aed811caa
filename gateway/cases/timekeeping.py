"""The city's time for the case lifecycle: its time-limit table and working calendar put
together as the `Timekeeper` the state machine asks (`gateway.cases.workflow`).

Limits travel as text ("1 working day") in the registry and in events, so a case keeps
the limit it was dispatched with even after the table changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from gateway.cases.deadlines import Light, LimitTable, TimeLimit, WorkCalendar
from gateway.cases.settings import CasesSettings
from gateway.cases.workflow import CaseLife


@lru_cache(maxsize=64)
def _limit(text: str) -> TimeLimit:
    return TimeLimit.parse(text)


@dataclass(frozen=True)
class CityTimekeeper:
    table: LimitTable
    calendar: WorkCalendar
    yellow_at: float
    verify_limit: TimeLimit

    def limit_for(self, kind: str, class_code: str, condition: str | None) -> str:
        return str(self.table.limit_for(kind, class_code, condition))

    def conditions(self, kind: str, class_code: str) -> list[str]:
        return self.table.conditions(kind, class_code)

    def deadline(self, start: datetime, limit: str) -> datetime:
        return self.calendar.add(start, _limit(limit))

    def shifted(
        self, deadline: datetime, paused: datetime, resumed: datetime, limit: str
    ) -> datetime:
        return self.calendar.postpone(deadline, paused, resumed, _limit(limit))

    def verify_deadline(self, handled_at: datetime) -> datetime:
        """When an inspector's on-site check of a handled case falls due (核查时限)."""
        return self.calendar.add(handled_at, self.verify_limit)

    def light(self, life: CaseLife, now: datetime) -> Light | None:
        """green / yellow / red on the limit's own clock while a deadline runs; a suspended
        case's light stands still at its suspension."""
        at = life.measured_at(now)
        if at is None or not (life.started_at and life.deadline_at and life.time_limit):
            return None
        return self.calendar.light(
            life.started_at, life.deadline_at, at, _limit(life.time_limit), self.yellow_at
        )


def timekeeper(settings: CasesSettings, zone: ZoneInfo) -> CityTimekeeper:
    """The city's Timekeeper from `[cases]` (the table file is read and checked here)."""
    return CityTimekeeper(
        table=LimitTable.from_settings(settings),
        calendar=WorkCalendar.from_settings(settings, zone),
        yellow_at=settings.yellow_at,
        verify_limit=TimeLimit.parse(settings.verify_limit),
    )
