"""The command center's acceptance window (reports are taken in 08:00–18:00 every day) and
how far a terminal's clock may be believed.

Only the gateway's clock is trusted: `received_at` (when the intake took the message off
the broker) decides the window, the case number's day and the registry's `received_at`.
The terminal's `created_at` is kept as `reported_at`, and checked against `received_at`:
past a bound it is flagged, never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from gateway.normalize.model import Clock

MINUTE_S = 60.0
DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class AcceptanceWindow:
    timezone: ZoneInfo
    opens: time
    closes: time
    # created_at may lie this far after received_at (a fast clock) or before it (a slow
    # clock, or a report held by store and forward) before it is flagged.
    max_ahead_s: float = 5 * MINUTE_S
    max_behind_s: float = 7 * DAY_S

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(self.timezone).time()
        if self.opens <= self.closes:
            return self.opens <= local < self.closes
        return local >= self.opens or local < self.closes  # a window across midnight

    def label(self) -> str:
        # Plain formatting: strftime costs 15 µs a call, once per report.
        opens, closes = self.opens, self.closes
        return f"{opens.hour:02d}:{opens.minute:02d}-{closes.hour:02d}:{closes.minute:02d}"

    def clock(self, created_at: datetime, received_at: datetime) -> Clock:
        """The normalized report's `clock` block: the terminal's skew against the gateway,
        and `clock.ahead` / `clock.behind` when it is past the bounds. Both times aware."""
        skew_s = (created_at - received_at).total_seconds()
        flags: tuple[Literal["clock.ahead", "clock.behind"], ...] = ()
        if skew_s > self.max_ahead_s:
            flags = ("clock.ahead",)
        elif -skew_s > self.max_behind_s:
            flags = ("clock.behind",)
        return Clock(skew_s=round(skew_s, 3), flags=flags)
