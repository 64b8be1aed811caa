"""`[codes]` and `[acceptance]`: the classification profile and the command center's window."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from gateway.normalize.acceptance import AcceptanceWindow
from gateway.settings import DAY, MINUTE, PositiveFloat, Section


class CodesSettings(Section):
    profile: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "gbt30428"
    dir: Path | None = None


class AcceptanceSettings(Section):
    timezone: str = "Asia/Shanghai"
    opens: time = time(8, 0)
    closes: time = time(18, 0)
    # How far a report's created_at (the terminal's clock) may lie after, or before, the
    # gateway's received_at before the report is flagged `clock.ahead` / `clock.behind`.
    # Behind allows for store and forward: a terminal may hold a report for days.
    created_at_max_ahead_s: PositiveFloat = 5.0 * MINUTE
    created_at_max_behind_s: PositiveFloat = 7.0 * DAY

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        # OSError: a directory such as "Asia", or a name too long for the file system
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def window(self) -> AcceptanceWindow:
        return AcceptanceWindow(
            self.zone,
            self.opens,
            self.closes,
            max_ahead_s=self.created_at_max_ahead_s,
            max_behind_s=self.created_at_max_behind_s,
        )
