"""The contract of `gateway.protocols.terminal.decode_uplink`, shared by the uplink targets:
one event, and a rejection carries one of `gateway.errors.Reason` and a message, and can
be answered (the transport sends `reply_to`'s downlink for every rejection it can)."""

from __future__ import annotations

from fuzz.invariant import require
from gateway.errors import Reason
from gateway.protocols import terminal
from gateway.protocols.payloads import WireLimits

LIMITS = WireLimits()
DEVICE = "tz-0042"
_ACCEPTED = (
    terminal.ReportReceived,
    terminal.ChunkReceived,
    terminal.StatusReceived,
    terminal.TrackReceived,
)


def check_event(event: terminal.UplinkEvent) -> None:
    if isinstance(event, terminal.UplinkRejected):
        check_rejected(event)
        return
    require(isinstance(event, _ACCEPTED), f"decode_uplink returned {type(event).__name__}")


def check_rejected(rejected: terminal.UplinkRejected) -> None:
    require(isinstance(rejected.reason, Reason), f"reason {rejected.reason!r} is not a Reason")
    require(bool(rejected.message), f"{rejected.reason} without a message")
    reply = terminal.reply_to(rejected)  # builds the pydantic downlink: must not raise
    if rejected.device_id is None:
        require(reply is None, "a rejection naming no device was answered")
    else:
        require(reply is not None, f"{rejected.reason} for {rejected.device_id} unanswered")


def decode(topic: str, payload: bytes) -> None:
    check_event(terminal.decode_uplink(topic, payload, LIMITS))
