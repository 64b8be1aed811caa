"""A report envelope of any bytes through `decode_uplink`; an accepted one must carry the
report id the intake files it under, in the lower case it is stored in."""

from __future__ import annotations

from fuzz.invariant import require
from fuzz.targets._uplink import DEVICE, LIMITS, check_event
from gateway.protocols import terminal

TOPIC = f"cgt/v1/{DEVICE}/report"


def one_input(data: bytes) -> None:
    event = terminal.decode_uplink(TOPIC, data, LIMITS)
    check_event(event)
    if isinstance(event, terminal.ReportReceived):
        require(event.report_id == event.report_id.lower(), "report id not lower-cased")
        require(event.device_id == DEVICE, f"device {event.device_id!r}")
