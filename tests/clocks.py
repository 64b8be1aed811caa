"""A Timekeeper in natural hours only, for tests of the lifecycle's rules (pure code):
every class gets `hours` of handling time; `gateway/cases/timekeeping.py` is the real one
(working calendar and the city's table), tested on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.cases.workflow import CaseLife


@dataclass(frozen=True)
class NaturalHours:
    hours: float = 24.0
    known: tuple[str, ...] = ("一般", "紧急")

    def limit_for(self, kind: str, class_code: str, condition: str | None) -> str:
        hours = self.hours / 12 if condition == "紧急" else self.hours
        return f"{hours:g} hours"

    def conditions(self, kind: str, class_code: str) -> list[str]:
        return list(self.known)

    def deadline(self, start: datetime, limit: str) -> datetime:
        return start + timedelta(hours=float(limit.split(maxsplit=1)[0]))

    yellow_at: float = 0.8

    def light(self, life: CaseLife, now: datetime) -> str | None:
        at = life.measured_at(now)
        if at is None or life.started_at is None or life.deadline_at is None:
            return None
        if at > life.deadline_at:
            return "red"
        used = (at - life.started_at) / (life.deadline_at - life.started_at)
        return "yellow" if used >= self.yellow_at else "green"

    def verify_deadline(self, handled_at: datetime) -> datetime:
        return handled_at + timedelta(hours=4)

    def shifted(
        self, deadline: datetime, paused: datetime, resumed: datetime, limit: str
    ) -> datetime:
        return deadline + (resumed - paused)
