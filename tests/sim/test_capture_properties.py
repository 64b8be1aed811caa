"""Property tests of the capture format: read(write(x)) == x; the reader raises only
`CaptureError`, whatever the file holds; fresh ids rename consistently."""

from __future__ import annotations

import io
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.capture import (
    CaptureError,
    CaptureReader,
    CaptureRecord,
    CaptureWriter,
    fresh_ids,
)
from tests.strategies import orjson_values

HEADER = b'{"format":"cgt-capture","version":1,"started_at":"2026-11-28T09:15:02Z","source":"x"}'

device_ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True).filter(
    lambda d: d != "normalized"
)
media_ids = st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper())
topics = st.one_of(
    st.builds(
        lambda device, kind: f"cgt/v1/{device}/{kind}",
        device_ids,
        st.sampled_from(["report", "status", "track"]),
    ),
    st.builds(
        lambda device, media, seq: f"cgt/v1/{device}/media/{media}/{seq}",
        device_ids,
        media_ids,
        st.integers(0, 10**9 - 1),
    ),
)
messages = st.lists(
    st.tuples(
        st.floats(0, 3600, allow_nan=False),  # seconds since the previous message
        topics,
        st.binary(max_size=64),
        st.booleans(),
    ),
    max_size=12,
)


class SteppingClock:
    def __init__(self, steps: list[float]) -> None:
        self.now = 1000.0
        self.steps = iter([0.0, *steps])  # the first reading is the writer's start

    def __call__(self) -> float:
        self.now += next(self.steps)
        return self.now


@given(messages)
def test_read_gives_back_what_was_written(sent: list[tuple[float, str, bytes, bool]]) -> None:
    out = io.BytesIO()
    writer = CaptureWriter(out, source="test", clock=SteppingClock([step for step, *_ in sent]))
    written = [writer.write(topic, payload, retain) for _, topic, payload, retain in sent]

    reader = CaptureReader(io.BytesIO(out.getvalue()))
    assert reader.header == writer.header
    assert list(reader) == written
    assert [(r.topic, r.payload, r.retain) for r in written] == [m[1:] for m in sent]


def read_or_refusal(data: bytes) -> list[CaptureRecord] | CaptureError:
    """The records, or the refusal; any other exception fails the test."""
    try:
        return list(CaptureReader(io.BytesIO(data)))
    except CaptureError as error:
        return error


@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_read_or_refused_with_a_capture_error(data: bytes) -> None:
    result = read_or_refusal(data)
    if isinstance(result, CaptureError):
        assert str(result)
    else:
        assert all(isinstance(record, CaptureRecord) for record in result)


json_values = orjson_values(max_size=3, key_size=6, max_leaves=8)
# Lines shaped like records, each field sometimes right, sometimes anything.
record_like = st.fixed_dictionaries(
    {},
    optional={
        "t": st.floats(-1, 10, allow_nan=False) | json_values,
        "topic": topics | st.text(max_size=80) | json_values,
        "payload_b64": st.sampled_from(["", "e30=", "e30", "====", "é"]) | st.text() | json_values,
        "retain": st.booleans() | json_values,
        "extra": json_values,
    },
)
lines = st.lists(record_like.map(orjson.dumps) | st.binary(max_size=40) | st.just(b""), max_size=6)


@given(lines)
def test_arbitrary_lines_after_a_header_are_read_or_refused_with_a_capture_error(
    body: list[bytes],
) -> None:
    data = b"\n".join([HEADER, *body])
    result = read_or_refusal(data)
    if isinstance(result, CaptureError):
        assert str(result).startswith("line ")
    else:
        assert all(isinstance(record, CaptureRecord) for record in result)


def envelope(report_id: str, media: list[str]) -> bytes:
    return orjson.dumps({"v": 1, "report_id": report_id, "media": [{"media_id": m} for m in media]})


traffic = st.lists(
    st.one_of(
        st.builds(
            lambda report, media: ("report", report, media),
            st.sampled_from(["6f1c2d2e-4b8e-4a53-9a8e-2f7d0b5c1a90", "R-not-a-uuid"]),
            st.lists(media_ids, max_size=2),
        ),
        st.builds(lambda media, seq: ("chunk", media, seq), media_ids, st.integers(0, 5)),
    ),
    max_size=10,
)


def ids_of(record: CaptureRecord) -> list[str]:
    """The ids a record carries, in a fixed order, lower case."""
    if record.uplink.kind == "media":
        return [str(record.uplink.media_id).lower()]
    body: dict[str, Any] = orjson.loads(record.payload)
    return [body["report_id"].lower(), *(m["media_id"].lower() for m in body["media"])]


@given(traffic)
def test_fresh_ids_map_each_old_uuid_to_one_new_uuid(plan: list[tuple[str, Any, Any]]) -> None:
    records = [
        CaptureRecord(float(i), "cgt/v1/tz-1/report", envelope(a, b))
        if kind == "report"
        else CaptureRecord(float(i), f"cgt/v1/tz-1/media/{a}/{b}", b"x")
        for i, (kind, a, b) in enumerate(plan)
    ]
    renamed = list(fresh_ids(records))

    pairs = {
        (old, new)
        for before, after in zip(records, renamed, strict=True)
        for old, new in zip(ids_of(before), ids_of(after), strict=True)
    }
    old_to_new = dict(pairs)
    assert len(old_to_new) == len(pairs), "one old id got two new ones"
    assert len(set(old_to_new.values())) == len(old_to_new), "two old ids got one new one"
    for old, new in pairs:
        assert (new == old) == (old == "r-not-a-uuid")
    assert [(r.t, r.retain, r.uplink.kind) for r in renamed] == [
        (r.t, r.retain, r.uplink.kind) for r in records
    ]
