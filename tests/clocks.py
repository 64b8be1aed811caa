"""A Timekeeper in natural hours only, for tests of the lifecycle's rules (pure code):
every class gets `hours` of handling time; `gateway/cases/timekeeping.py` is the real one
(working calendar and the city's table), tested on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class NaturalHours:
    hours: float = 24.0
    conditions: tuple[str, ...] = ("一般", "紧急")

    def limit_for(self, kind: str, class_code: str, condition: str | None) -> str:
        hours = self.hours / 12 if condition == "紧急" else self.hours
        return f"{hours:g} hours"

    def known_condition(self, kind: str, class_code: str, condition: str) -> bool:
        return condition in self.conditions

    def deadline(self, start: datetime, limit: str) -> datetime:
        return start + timedelta(hours=float(limit.split(maxsplit=1)[0]))

    def verify_deadline(self, handled_at: datetime) -> datetime:
        return handled_at + timedelta(hours=4)

    def shifted(
        self, deadline: datetime, paused: datetime, resumed: datetime, limit: str
    ) -> datetime:
        return deadline + (resumed - paused)
