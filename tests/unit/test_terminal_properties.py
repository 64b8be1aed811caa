"""Property tests of the terminal protocol: any input is decoded or rejected with a reason,
nothing else is ever raised."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import Reason
from gateway.protocols import terminal
from gateway.protocols.payloads import WireLimits
from gateway.protocols.terminal import ReportReceived, UplinkRejected, decode_uplink, parse_topic
from tests.factories import encode, envelope, random_upload

DEVICE = "tz-0001"
KINDS = ["report", "status", "track", "media/0b7e4c1a-2d3f-4e5a-8b9c-0d1e2f3a4b5c/0"]
LIMITS = WireLimits()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
topics = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda device, rest: f"cgt/v1/{device}/{rest}",
        st.text(max_size=70),
        st.sampled_from(KINDS) | st.text(max_size=60),
    ),
)


def assert_event_or_reason(event: object) -> None:
    assert isinstance(
        event,
        terminal.ReportReceived
        | terminal.ChunkReceived
        | terminal.StatusReceived
        | terminal.TrackReceived
        | UplinkRejected,
    )
    if isinstance(event, UplinkRejected):
        assert isinstance(event.reason, Reason)
        assert event.message
        reply = terminal.reply_to(event)
        if reply is not None:
            assert json.loads(reply[1])["reason"]["code"] == event.reason.value


@given(topic=topics, payload=st.binary(max_size=2048))
def test_any_topic_and_bytes(topic: str, payload: bytes) -> None:
    assert_event_or_reason(decode_uplink(topic, payload))


@given(kind=st.sampled_from(["report", "status", "track"]), value=json_values)
def test_any_json_value(kind: str, value: Any) -> None:
    payload = json.dumps(value).encode()
    assert_event_or_reason(decode_uplink(f"cgt/v1/{DEVICE}/{kind}", payload))


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    base = envelope([random_upload(3000, 1024)], nmea=["$GPRMC,1*00"])
    keys = sorted(base)
    return st.one_of(
        st.builds(lambda k: {x: v for x, v in base.items() if x != k}, st.sampled_from(keys)),
        st.builds(lambda k, v: base | {k: v}, st.sampled_from([*keys, "extra"]), json_values),
        st.builds(
            lambda k, v: base | {"media": [base["media"][0] | {k: v}]},
            st.sampled_from(sorted(base["media"][0])),
            json_values,
        ),
        st.builds(
            lambda k, v: base | {"fix": base["fix"] | {k: v}}, st.text(max_size=12), json_values
        ),
    )


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(body=_mutations())
def test_mutated_envelopes(body: dict[str, Any]) -> None:
    event = decode_uplink(f"cgt/v1/{DEVICE}/report", encode(body))
    assert_event_or_reason(event)


def test_every_strict_prefix_of_an_envelope_is_refused_as_not_json() -> None:
    payload = encode(envelope([random_upload(3000, 1024)]))
    for end in range(len(payload)):
        event = decode_uplink(f"cgt/v1/{DEVICE}/report", payload[:end])
        assert isinstance(event, UplinkRejected), end
        assert event.reason is Reason.PAYLOAD_NOT_JSON, (end, event)
    assert isinstance(decode_uplink(f"cgt/v1/{DEVICE}/report", payload), ReportReceived)


@given(device=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_every_valid_device_id_is_accepted(device: Any) -> None:
    parsed = parse_topic(f"cgt/v1/{device}/report", LIMITS)
    if device == "normalized":
        assert isinstance(parsed, UplinkRejected)
    else:
        assert not isinstance(parsed, UplinkRejected)
        assert parsed.device_id == device


@given(seq=st.integers(min_value=0, max_value=LIMITS.chunks_per_media - 1))
def test_every_seq_in_range_round_trips(seq: int) -> None:
    media_id = "0b7e4c1a-2d3f-4e5a-8b9c-0d1e2f3a4b5c"
    parsed = parse_topic(terminal.media_topic(DEVICE, media_id, seq), LIMITS)
    assert not isinstance(parsed, UplinkRejected)
    assert (parsed.media_id, parsed.seq) == (media_id, seq)


def test_oversized_messages_are_refused_by_size() -> None:
    big = encode(envelope(nmea=["$" + "A" * 100] * 64, description="x" * 500)) + b" " * 70_000
    event = decode_uplink(f"cgt/v1/{DEVICE}/report", big)
    assert isinstance(event, UplinkRejected)
    assert event.reason is Reason.PAYLOAD_TOO_LARGE
    chunk = decode_uplink(
        terminal.media_topic(DEVICE, "0b7e4c1a-2d3f-4e5a-8b9c-0d1e2f3a4b5c", 0),
        b"x" * (256 * 1024 + 1),
    )
    assert isinstance(chunk, UplinkRejected)
    assert chunk.reason is Reason.CHUNK_TOO_LARGE


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    payload = b"[" * 100_000 + b"]" * 100_000
    for kind in ("report", "status", "track"):
        event = decode_uplink(f"cgt/v1/{DEVICE}/{kind}", payload[:60_000])
        assert isinstance(event, UplinkRejected)
