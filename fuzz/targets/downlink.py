"""What the gateway sends a terminal, as the simulator's firmware parses it: the input's
first line is the topic, the rest the payload. A downlink, or Malformed with one of the
codes `firmware_sim.downlink` documents."""

from __future__ import annotations

from firmware_sim import downlink
from fuzz.invariant import require

_CODES = frozenset(
    {"topic.malformed", "payload.not_json", "payload.not_object", "field.missing", "field.invalid"}
)
_RESULTS = (
    downlink.Ack,
    downlink.ErrorNotice,
    downlink.Task,
    downlink.TerminalConfig,
    downlink.Malformed,
)


def one_input(data: bytes) -> None:
    topic, _, payload = data.partition(b"\n")
    parsed = downlink.parse_downlink(topic.decode("utf-8", "replace"), payload)
    require(isinstance(parsed, _RESULTS), f"parse_downlink returned {type(parsed).__name__}")
    if isinstance(parsed, downlink.Malformed):
        require(parsed.code in _CODES, f"code {parsed.code!r}")
