"""`[cases]`: what the case lifecycle needs from the config: the handling time-limit table,
the working calendar's hours, when a deadline light turns yellow, and the units' score."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from gateway.settings import Section

Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]

_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


def parse_work_hours(spans: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """("08:00-12:00", ...) → ((480, 720), ...): minutes of the local day, checked in order.

    Here rather than beside the calendar so that the config refuses a bad span at start-up
    and the calendar reads the same spans the same way.
    """
    if not spans:
        raise ValueError("name at least one span of working hours, e.g. 08:00-12:00")
    minutes: list[tuple[int, int]] = []
    for span in spans:
        match = _SPAN.match(span)
        if match is None:
            raise ValueError(f"{span!r} is not HH:MM-HH:MM (24-hour local time, e.g. 08:00-12:00)")
        start = int(match[1]) * 60 + int(match[2])
        end = int(match[3]) * 60 + int(match[4])
        if end > 24 * 60:
            raise ValueError(f"{span!r} ends after 24:00")
        if end <= start:
            raise ValueError(f"{span!r} ends before it starts (a span cannot cross midnight)")
        if minutes and start < minutes[-1][1]:
            raise ValueError(
                f"{span!r} starts before the span ahead of it ends: list them in order"
            )
        minutes.append((start, end))
    return tuple(minutes)


class ScoreSettings(Section):
    """A unit's composite score (0–100) and its grade; the weights must add up to 1."""

    # 立案数分值: the unit's filed cases against the unit with the most, as a fraction.
    filed: Fraction = 0.10
    closing_rate: Fraction = 0.30  # 结案率
    on_time_handling_rate: Fraction = 0.30  # 按期处置率
    no_rework: Fraction = 0.30  # 1 − 返工率
    # The lowest score of grades A, B, C and D; below the last is E.
    grades: tuple[float, float, float, float] = (90.0, 80.0, 70.0, 60.0)

    @model_validator(mode="after")
    def _adds_up(self) -> ScoreSettings:
        total = self.filed + self.closing_rate + self.on_time_handling_rate + self.no_rework
        if abs(total - 1.0) > 1e-9:
            raise ValueError(
                "the score's weights (filed, closing_rate, on_time_handling_rate, no_rework)"
                f" must add up to 1, not {total:g}"
            )
        if list(self.grades) != sorted(self.grades, reverse=True):
            raise ValueError("grades: the lowest scores of A, B, C, D, from high to low")
        return self


class CasesSettings(Section):
    # Class × filing condition → handling time limit; None: the shipped config/time_limits.toml.
    time_limits: Path | None = None
    # The working hours of a working day, local time ([acceptance] timezone), in order;
    # the lunch break between them does not count towards a limit in working time.
    work_hours: tuple[str, ...] = ("08:00-12:00", "14:00-18:00")
    # A case's light turns yellow at this fraction of its time limit, red past it.
    yellow_at: Fraction = 0.8
    # How long an inspector has for the on-site check (核查) once the units report a case
    # handled: its verification task's deadline.
    verify_limit: str = "4 working hours"
    score: ScoreSettings = ScoreSettings()

    @field_validator("work_hours")
    @classmethod
    def _spans(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_work_hours(value)
        return value
