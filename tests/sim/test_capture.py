"""The capture format: what the writer writes, what the reader refuses, fresh ids."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from firmware_sim.capture import (
    CaptureError,
    CaptureReader,
    CaptureRecord,
    CaptureWriter,
    UplinkTopic,
    fresh_ids,
    parse_uplink_topic,
)

REPORT_ID = "6f1c2d2e-4b8e-4a53-9a8e-2f7d0b5c1a90"
PHOTO_ID = "0b7e5a1c-1111-4a53-9a8e-2f7d0b5c1a90"
VOICE_ID = "9a41aa00-2222-4a53-9a8e-2f7d0b5c1a90"
HEADER = (
    b'{"format":"cgt-capture","version":1,"started_at":"2026-11-28T09:15:02+08:00","source":"t"}'
)
STATUS = b'{"t":0.5,"topic":"cgt/v1/tz-1/status","payload_b64":"e30=","retain":true}'


def envelope(report_id: str = REPORT_ID, *media_ids: str) -> bytes:
    media = [{"media_id": media_id, "kind": "photo", "bytes": 3} for media_id in media_ids]
    return orjson.dumps({"v": 1, "report_id": report_id, "class_code": "0102", "media": media})


def read(data: bytes) -> list[CaptureRecord]:
    return list(CaptureReader(io.BytesIO(data)))


class Clock:
    def __init__(self, *times: float) -> None:
        self.times = iter(times)

    def __call__(self) -> float:
        return next(self.times)


def test_the_writer_writes_a_header_then_a_line_per_message() -> None:
    out = io.BytesIO()
    china = timezone(timedelta(hours=8))
    writer = CaptureWriter(
        out,
        source="firmware-sim record mqtt://127.0.0.1:1883",
        clock=Clock(100.0, 100.0, 101.23456),
        now=lambda: datetime(2026, 11, 28, 9, 15, 2, 120000, tzinfo=china),
    )
    writer.write("cgt/v1/tz-1/status", b'{"online":true}', retain=True)
    writer.write(f"cgt/v1/tz-1/media/{PHOTO_ID}/0", b"\xff\xd8")

    header, first, second = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert header == {
        "format": "cgt-capture",
        "version": 1,
        "started_at": "2026-11-28T09:15:02.120+08:00",
        "source": "firmware-sim record mqtt://127.0.0.1:1883",
    }
    assert first == {
        "t": 0.0,
        "topic": "cgt/v1/tz-1/status",
        "payload_b64": base64.b64encode(b'{"online":true}').decode(),
        "retain": True,
    }
    assert (second["t"], second["retain"]) == (1.235, False)
    assert base64.b64decode(second["payload_b64"]) == b"\xff\xd8"


def test_the_writer_refuses_a_topic_no_terminal_may_publish_and_writes_nothing() -> None:
    out = io.BytesIO()
    writer = CaptureWriter(out, source="t", clock=Clock(0.0, 1.0))
    size = len(out.getvalue())
    with pytest.raises(CaptureError, match="not a wire-v1 uplink"):
        writer.write("cgt/v1/tz-1/ack", b"{}")
    assert len(out.getvalue()) == size


def test_the_reader_gives_the_header_and_typed_records() -> None:
    reader = CaptureReader(io.BytesIO(HEADER + b"\n" + STATUS + b"\n\n"))
    assert reader.header.started_at == "2026-11-28T09:15:02+08:00"
    (record,) = list(reader)
    assert record == CaptureRecord(0.5, "cgt/v1/tz-1/status", b"{}", retain=True)
    assert record.uplink == UplinkTopic("tz-1", "status")


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        pytest.param("cgt/v1/tz-1/report", UplinkTopic("tz-1", "report"), id="report"),
        pytest.param("cgt/v1/a_B-9/track", UplinkTopic("a_B-9", "track"), id="track"),
        pytest.param(
            f"cgt/v1/tz-1/media/{PHOTO_ID.upper()}/12",
            UplinkTopic("tz-1", "media", PHOTO_ID.upper(), 12),
            id="chunk, upper-case id",
        ),
        pytest.param("cgt/v1/tz-1/ack", None, id="a downlink"),
        pytest.param("cgt/v1/normalized/report", None, id="the reserved device id"),
        pytest.param("cgt/v1/tz.1/report", None, id="a dot in the device id"),
        pytest.param(f"cgt/v1/{'d' * 65}/report", None, id="device id of 65"),
        pytest.param(f"cgt/v1/tz-1/media/{PHOTO_ID}/01", None, id="seq with a leading zero"),
        pytest.param(f"cgt/v1/tz-1/media/{PHOTO_ID}/-1", None, id="negative seq"),
        pytest.param(f"cgt/v1/tz-1/media/{PHOTO_ID}/1234567890", None, id="seq of 10 digits"),
        pytest.param("cgt/v1/tz-1/media/not-a-uuid/0", None, id="media id no UUID"),
        pytest.param(f"cgt/v1/tz-1/media/{PHOTO_ID}", None, id="chunk without seq"),
        pytest.param("cgt/v2/tz-1/report", None, id="another version"),
        pytest.param("cgt/v1/tz-1/report/", None, id="trailing slash"),
    ],
)
def test_uplink_topics(topic: str, expected: UplinkTopic | None) -> None:
    assert parse_uplink_topic(topic) == expected


def line(**fields: object) -> bytes:
    body: dict[str, object] = {
        "t": 1.0,
        "topic": "cgt/v1/tz-1/report",
        "payload_b64": "e30=",
        "retain": False,
    }
    body.update(fields)
    return orjson.dumps({key: value for key, value in body.items() if value is not DROP})


DROP = object()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "empty file", id="empty file"),
        pytest.param(b"\n  \n", "empty file", id="only blank lines"),
        pytest.param(b"{not json\n", "line 1: not JSON", id="header: bad JSON"),
        pytest.param(b"[1]\n", "line 1: not a JSON object", id="header: an array"),
        pytest.param(STATUS + b"\n", "line 1: not a cgt-capture file", id="no header"),
        pytest.param(
            HEADER.replace(b'"version":1', b'"version":2'),
            "line 1: capture version 2 is not 1",
            id="header: version 2",
        ),
        pytest.param(
            HEADER.replace(b'"version":1', b'"version":true'),
            "line 1: capture version True",
            id="header: version true",
        ),
        pytest.param(
            HEADER.replace(b',"source":"t"', b""), "line 1: missing source", id="header: no source"
        ),
        pytest.param(
            HEADER.replace(b"}", b',"note":1}'),
            "line 1: unknown field note",
            id="header: unknown field",
        ),
        pytest.param(
            HEADER.replace(b"2026-11-28T09:15:02+08:00", b"2026-11-28T09:15:02"),
            "line 1: started_at",
            id="header: time without offset",
        ),
        pytest.param(
            HEADER.replace(b"2026-11-28", b"2026-13-28"),
            "line 1: started_at",
            id="header: month 13",
        ),
        pytest.param(HEADER + b"\n" + b"{", "line 2: not JSON", id="record: bad JSON"),
        pytest.param(HEADER + b"\n\xff\xfe\n", "line 2: not JSON", id="record: not UTF-8"),
        pytest.param(HEADER + b"\n" + b'"x"', "line 2: not a JSON object", id="record: a string"),
        pytest.param(HEADER + b"\n" + line(t=DROP), "line 2: missing t", id="record: no t"),
        pytest.param(
            HEADER + b"\n" + line(retain=DROP), "line 2: missing retain", id="record: no retain"
        ),
        pytest.param(
            HEADER + b"\n" + line(qos=1), "line 2: unknown field qos", id="record: unknown field"
        ),
        pytest.param(HEADER + b"\n" + line(t="1"), "line 2: t '1'", id="record: t a string"),
        pytest.param(HEADER + b"\n" + line(t=True), "line 2: t True", id="record: t a bool"),
        pytest.param(HEADER + b"\n" + line(t=-0.5), "line 2: t -0.5", id="record: t negative"),
        pytest.param(
            HEADER + b"\n" + line(t=2.0) + b"\n" + line(t=1.5),
            "line 3: t 1.5 goes back in time",
            id="record: t not monotonic",
        ),
        pytest.param(
            HEADER + b"\n\n" + line(topic="cgt/v1/tz-1/ack"),
            "line 3: topic 'cgt/v1/tz-1/ack' is not a wire-v1 uplink",
            id="record: a downlink topic, after a blank line",
        ),
        pytest.param(
            HEADER + b"\n" + line(topic="cgt/v1/tz-1/media/x/0"),
            "line 2: topic",
            id="record: chunk topic without a UUID",
        ),
        pytest.param(
            HEADER + b"\n" + line(topic=7), "line 2: topic 7", id="record: topic a number"
        ),
        pytest.param(
            HEADER + b"\n" + line(payload_b64="e30"),
            "line 2: payload_b64 is not valid base64",
            id="record: base64 padding",
        ),
        pytest.param(
            HEADER + b"\n" + line(payload_b64="e3 0="),
            "line 2: payload_b64 is not valid base64",
            id="record: base64 with a space",
        ),
        pytest.param(
            HEADER + b"\n" + line(payload_b64="é30="),
            "line 2: payload_b64 is not valid base64",
            id="record: base64 not ASCII",
        ),
        pytest.param(
            HEADER + b"\n" + line(payload_b64=None),
            "line 2: payload_b64 is not a string",
            id="record: payload null",
        ),
        pytest.param(HEADER + b"\n" + line(retain=1), "line 2: retain 1", id="record: retain 1"),
    ],
)
def test_the_reader_refuses_a_bad_capture_naming_the_line(data: bytes, message: str) -> None:
    with pytest.raises(CaptureError) as caught:
        read(data)
    assert str(caught.value).startswith(message)


def test_equal_times_are_in_order() -> None:
    data = HEADER + b"\n" + line(t=1) + b"\n" + line(t=1.0) + b"\n"
    assert [record.t for record in read(data)] == [1.0, 1.0]


# ---- fresh ids -----------------------------------------------------------------------------


def chunk(media_id: str, seq: int, t: float = 1.0) -> CaptureRecord:
    return CaptureRecord(t, f"cgt/v1/tz-1/media/{media_id}/{seq}", b"\x01\x02")


def report(payload: bytes, t: float = 0.0) -> CaptureRecord:
    return CaptureRecord(t, "cgt/v1/tz-1/report", payload)


def new_ids() -> tuple[list[str], Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(str(uuid.UUID(int=len(made) + 1)))
        return made[-1]

    return made, make


def test_fresh_ids_renames_reports_and_media_consistently() -> None:
    made, make = new_ids()
    records = [
        chunk(PHOTO_ID, 1, 0.0),  # a chunk before its report, as wire-v1 allows
        report(envelope(REPORT_ID, PHOTO_ID, VOICE_ID)),
        chunk(PHOTO_ID, 0),
        chunk(VOICE_ID.upper(), 0),  # the same media, in upper case
        report(envelope(REPORT_ID, PHOTO_ID, VOICE_ID), t=5.0),  # a re-sent envelope
        CaptureRecord(6.0, "cgt/v1/tz-1/status", b'{"online":false}', retain=True),
    ]
    renamed = list(fresh_ids(records, make))

    photo, new_report, voice = made
    assert renamed[0].topic == f"cgt/v1/tz-1/media/{photo}/1"
    assert orjson.loads(renamed[1].payload) == orjson.loads(envelope(new_report, photo, voice))
    assert renamed[2].topic == f"cgt/v1/tz-1/media/{photo}/0"
    assert renamed[3].topic == f"cgt/v1/tz-1/media/{voice}/0"
    assert renamed[4].payload == renamed[1].payload
    assert renamed[5] == records[5]
    assert [(r.t, r.retain) for r in renamed] == [(r.t, r.retain) for r in records]


def test_fresh_ids_keeps_what_is_no_uuid_so_the_fault_replays() -> None:
    made, make = new_ids()
    not_json = report(b"{oops")
    bad_id = report(b'{ "report_id": "R-1", "media": [{"media_id": 5}] }')
    renamed = list(fresh_ids([not_json, bad_id], make))
    assert renamed == [not_json, bad_id]  # the very bytes
    assert made == []


def test_fresh_ids_by_default_are_new_uuid4s() -> None:
    (renamed,) = fresh_ids([report(envelope())])
    new_id = orjson.loads(renamed.payload)["report_id"]
    assert new_id != REPORT_ID
    assert uuid.UUID(new_id).version == 4
