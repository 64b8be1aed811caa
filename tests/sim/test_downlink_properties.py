"""Property tests of the downlink parser: whatever arrives, parse or say `Malformed`."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.downlink import Ack, ErrorNotice, Malformed, Task, TerminalConfig, parse_downlink
from tests.strategies import orjson_values

MALFORMED_CODES = {
    "topic.malformed",
    "payload.not_json",
    "payload.not_object",
    "field.missing",
    "field.invalid",
}
TOPICS = [f"cgt/v1/tz-0042/{message}" for message in ("ack", "error", "task", "config")]

json_values = orjson_values(max_size=4, key_size=8, max_leaves=12)
seqs = st.lists(st.integers(min_value=-5, max_value=2**40), max_size=5)
# Objects shaped like real downlinks, each field sometimes right, sometimes anything.
downlink_like = st.fixed_dictionaries(
    {},
    optional={
        "report_id": st.text(max_size=40) | json_values,
        "status": st.sampled_from(["accepted", "incomplete", "rejected"]) | json_values,
        "case_no": st.text(max_size=20) | json_values,
        "reason": st.fixed_dictionaries(
            {},
            optional={"code": st.text() | json_values, "message": st.text(), "field": json_values},
        )
        | json_values,
        "missing": st.dictionaries(st.text(max_size=36), seqs | json_values, max_size=3)
        | json_values,
        "topic": st.text() | json_values,
        "media_id": st.text() | json_values,
        "seq": st.integers(min_value=0, max_value=4096) | json_values,
        "task_id": st.text() | json_values,
        "kind": st.sampled_from(["verify", "inspect"]) | json_values,
        "location": st.fixed_dictionaries({"lat": json_values, "lon": json_values}) | json_values,
        "deadline": st.text() | json_values,
        "chunk_bytes": st.integers(min_value=-10, max_value=2**20) | json_values,
        "photo_max_px": st.integers(min_value=-10, max_value=10_000) | json_values,
        "upload_windows": st.lists(st.text(max_size=11), max_size=3) | json_values,
    },
)


def check(result: object) -> None:
    """The parser's promise: a well-formed message of its kind, or Malformed with a code."""
    if isinstance(result, Malformed):
        assert result.code in MALFORMED_CODES
        return
    assert isinstance(result, Ack | ErrorNotice | Task | TerminalConfig)
    if isinstance(result, Ack):
        assert result.status in ("accepted", "incomplete", "rejected")
        assert isinstance(result.report_id, str)
        if result.status == "accepted":
            assert isinstance(result.case_no, str)
        if result.status == "rejected":
            assert result.reason is not None
        if result.status == "incomplete":
            assert result.missing is not None
            assert all(seq >= 0 for seqs in result.missing.values() for seq in seqs)


@given(topic=st.sampled_from(TOPICS) | st.text(max_size=80), payload=st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(topic: str, payload: bytes) -> None:
    check(parse_downlink(topic, payload))


@given(topic=st.sampled_from(TOPICS), body=downlink_like)
def test_downlink_shaped_objects_parse_or_are_malformed(topic: str, body: dict[str, Any]) -> None:
    check(parse_downlink(topic, orjson.dumps(body)))


@given(topic=st.sampled_from(TOPICS), body=json_values)
def test_any_json_value_parses_or_is_malformed(topic: str, body: object) -> None:
    check(parse_downlink(topic, orjson.dumps(body)))


@given(body=downlink_like, cut=st.integers(min_value=0, max_value=200))
def test_every_truncation_is_malformed_not_an_error(body: dict[str, Any], cut: int) -> None:
    """A strict prefix of a JSON object is never JSON: it must say so, not raise."""
    payload = orjson.dumps(body)
    result = parse_downlink(TOPICS[0], payload[: min(cut, len(payload) - 1)])
    assert isinstance(result, Malformed)
    assert result.code == "payload.not_json"
