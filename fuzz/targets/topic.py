"""Uplink topics: `parse_topic` on any text, then `decode_uplink` with an empty payload
(whatever the topic parsed to, the empty payload is that message's first edge case)."""

from __future__ import annotations

from fuzz.invariant import require
from fuzz.targets._uplink import LIMITS, check_rejected, decode
from gateway.protocols import terminal

_MESSAGES = ("report", "media", "status", "track")


def one_input(data: bytes) -> None:
    # paho hands topics over as str decoded strictly; "replace" keeps every input usable.
    topic = data.decode("utf-8", "replace")
    parsed = terminal.parse_topic(topic, LIMITS)
    if isinstance(parsed, terminal.UplinkRejected):
        check_rejected(parsed)
    else:
        require(parsed.message in _MESSAGES, f"message {parsed.message!r}")
        require(
            (parsed.message == "media") == (parsed.media_id is not None and parsed.seq is not None),
            f"media fields of a {parsed.message} topic",
        )
    decode(topic, b"")
