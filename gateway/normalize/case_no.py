"""Case numbers: `C|E` + class code + local date + serial, e.g. `E010220261128000042`.

The form is the one many cities use (component `C` or event `E`, the class code, the
day the report arrived in the city's time zone, then a serial). The serial comes from
the registry's own sequence, never from a gateway, so several gateways never collide.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

SERIAL_DIGITS = 6


def case_number(
    kind: str, class_code: str, received_at: datetime, serial: int, tz: ZoneInfo
) -> str:
    day = received_at.astimezone(tz)
    prefix = "C" if kind == "component" else "E"
    return f"{prefix}{class_code}{day:%Y%m%d}{serial:0{SERIAL_DIGITS}d}"
