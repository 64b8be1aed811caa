"""The simulator's encoder and decoder against the golden vectors of `tests/vectors/`.

The simulator implements wire-v1 on its own (it never imports `gateway.protocols`), so
these tests and the gateway's own vector tests together cross-check the two sides.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
import pytest

from firmware_sim import wire
from firmware_sim.downlink import (
    Ack,
    Downlink,
    ErrorNotice,
    Malformed,
    Reason,
    Task,
    TaskLocation,
    TerminalConfig,
    parse_downlink,
)
from firmware_sim.wire import Fix, MediaEntry, ReportEnvelope, Status, Uplink, WireError
from tests.vectors import DOWNLINK, UPLINK, payload_of

VALID_UPLINK = [v for v in UPLINK if "event" in v.values[0]["expect"]]


def envelope_of(body: dict[str, Any]) -> ReportEnvelope:
    """The simulator's envelope built field by field from a vector's JSON body."""
    return ReportEnvelope(
        report_id=body["report_id"],
        created_at=body["created_at"],
        kind=body["kind"],
        class_code=body["class_code"],
        description=body["description"],
        inspector_id=body["inspector_id"],
        fix=Fix(**body["fix"]) if "fix" in body else None,
        nmea=tuple(body["nmea"]) if "nmea" in body else None,
        media=tuple(
            MediaEntry(
                m["media_id"], m["kind"], m["mime"], m["bytes"], m["sha256"], m["chunk_bytes"]
            )
            for m in body.get("media", [])
        ),
        object_code=body.get("object_code"),
        device_id=body.get("device_id"),
        task_id=body.get("task_id"),
    )


def rebuild(vector: dict[str, Any]) -> Uplink:
    """Encode a valid uplink vector again from its topic's parts and its content."""
    parts = vector["topic"].split("/")
    device_id, message = parts[2], parts[3]
    event = vector["expect"]["event"]
    if event == "report":
        return wire.report_message(device_id, envelope_of(vector["json"]))
    if event == "chunk":
        return wire.chunk_message(device_id, parts[4], int(parts[5]), bytes.fromhex(vector["hex"]))
    if event == "status":
        return wire.status_message(device_id, Status(**vector["json"]))
    if event == "track":
        return wire.track_message(device_id, [Fix(**fix) for fix in vector["json"]["fixes"]])
    raise AssertionError(f"no encoder for {event} ({message})")


@pytest.mark.parametrize("vector", VALID_UPLINK)
def test_encoder_rebuilds_every_valid_uplink(vector: dict[str, Any]) -> None:
    uplink = rebuild(vector)
    assert uplink.topic == vector["topic"]
    if "json" in vector:
        assert orjson.loads(uplink.payload) == vector["json"]
        # Compact and UTF-8, as wire-v1 counts the envelope limit in bytes.
        assert len(uplink.payload) == len(payload_of(vector))
    else:
        assert uplink.payload == payload_of(vector)


def test_every_valid_uplink_kind_is_covered() -> None:
    kinds = {v.values[0]["expect"]["event"] for v in VALID_UPLINK}
    assert kinds == {"report", "chunk", "status", "track"}


def test_status_is_retained_and_nothing_else_is() -> None:
    assert wire.status_message("tz-0042", Status(online=False)).retain
    assert not wire.report_message("tz-0042", envelope_of(VALID_UPLINK[0].values[0]["json"])).retain


# The builders refuse what the gateway would reject in the topic: a simulator bug must
# fail loudly here, not as a silent "nobody answers" at the gateway.
REFUSED = [
    v
    for v in UPLINK
    if v.values[0]["expect"].get("reject") in ("topic.device_id", "topic.media_id", "chunk.empty")
    or v.values[0]["topic"].endswith("/-1")
]


@pytest.mark.parametrize("vector", REFUSED)
def test_builders_refuse_what_the_gateway_rejects(vector: dict[str, Any]) -> None:
    parts = vector["topic"].split("/")
    envelope = envelope_of(VALID_UPLINK[0].values[0]["json"])
    build: Callable[[], Uplink] = (
        partial(wire.chunk_message, parts[2], parts[4], int(parts[5]), payload_of(vector))
        if len(parts) == 6
        else partial(wire.report_message, parts[2], envelope)
    )
    with pytest.raises(WireError):
        build()


def test_refused_vectors_cover_each_kind() -> None:
    reasons = {v.values[0]["expect"]["reject"] for v in REFUSED}
    assert reasons == {"topic.device_id", "topic.media_id", "topic.seq", "chunk.empty"}


# ---- downlinks ------------------------------------------------------------------------


def expected(vector: dict[str, Any]) -> Downlink:
    """What each downlink vector must parse into, written out from its JSON."""
    device_id = vector["topic"].split("/")[2]
    body = vector["json"]
    reason = Reason(**body["reason"]) if "reason" in body else None
    if vector["kind"] == "ack":
        missing = body.get("missing")
        return Ack(
            device_id,
            body["report_id"],
            body["status"],
            case_no=body.get("case_no"),
            reason=reason,
            missing={k.lower(): tuple(v) for k, v in missing.items()} if missing else None,
        )
    if vector["kind"] == "error":
        assert reason is not None
        return ErrorNotice(device_id, body["topic"], reason, body.get("media_id"), body.get("seq"))
    if vector["kind"] == "task":
        return Task(
            device_id,
            body["task_id"],
            body["case_no"],
            body["kind"],
            location=TaskLocation(**body["location"]),
            deadline=body.get("deadline"),
            note=body.get("note"),
        )
    if vector["kind"] == "config":
        return TerminalConfig(
            device_id, body["chunk_bytes"], body["photo_max_px"], tuple(body["upload_windows"])
        )
    raise AssertionError(f"unknown downlink kind {vector['kind']}")


@pytest.mark.parametrize("vector", DOWNLINK)
def test_decoder_parses_every_downlink(vector: dict[str, Any]) -> None:
    assert parse_downlink(vector["topic"], payload_of(vector)) == expected(vector)


def test_downlink_vectors_cover_each_message() -> None:
    assert {v.values[0]["kind"] for v in DOWNLINK} == {"ack", "error", "task", "config"}


def test_unknown_fields_are_ignored() -> None:
    """wire-v1 may add optional fields; old firmware must keep working."""
    body = {"report_id": "r", "status": "accepted", "case_no": "E1", "eta_s": 3}
    assert parse_downlink("cgt/v1/tz-0042/ack", orjson.dumps(body)) == Ack(
        "tz-0042", "r", "accepted", case_no="E1"
    )


ACK = "cgt/v1/tz-0042/ack"
MALFORMED = [
    pytest.param("cgt/v1/tz-0042/report", b"{}", "topic.malformed", None, id="uplink topic"),
    pytest.param("cgt/v2/tz-0042/ack", b"{}", "topic.malformed", None, id="wrong version"),
    pytest.param("cgt/v1/tz.0042/ack", b"{}", "topic.malformed", None, id="bad device id"),
    pytest.param("cgt/v1/tz-0042/ack/x", b"{}", "topic.malformed", None, id="extra level"),
    pytest.param(ACK, b"", "payload.not_json", None, id="empty"),
    pytest.param(ACK, b"\xff\xfe{}", "payload.not_json", None, id="not utf-8"),
    pytest.param(ACK, b"[1]", "payload.not_object", None, id="array"),
    pytest.param(ACK, b'{"status":"accepted"}', "field.missing", "report_id", id="no report id"),
    pytest.param(
        ACK, b'{"report_id":"r","status":"accepted"}', "field.missing", "case_no", id="no case no"
    ),
    pytest.param(
        ACK, b'{"report_id":"r","status":"maybe"}', "field.invalid", "status", id="unknown status"
    ),
    pytest.param(
        ACK, b'{"report_id":"r","status":"rejected"}', "field.missing", "reason", id="no reason"
    ),
    pytest.param(
        ACK,
        b'{"report_id":"r","status":"rejected","reason":{"code":"x"}}',
        "field.missing",
        "reason.message",
        id="reason without message",
    ),
    pytest.param(
        ACK,
        b'{"report_id":"r","status":"incomplete","missing":{"m":[1,-2]}}',
        "field.invalid",
        "missing.m",
        id="negative seq",
    ),
    pytest.param(
        ACK,
        b'{"report_id":"r","status":"incomplete","missing":{"m":[true]}}',
        "field.invalid",
        "missing.m",
        id="bool seq",
    ),
    pytest.param(
        "cgt/v1/tz-0042/config",
        b'{"chunk_bytes":"64k","photo_max_px":4000}',
        "field.invalid",
        "chunk_bytes",
        id="config: size as a string",
    ),
    pytest.param(
        "cgt/v1/tz-0042/task",
        b'{"task_id":"t","case_no":"c","kind":"verify","location":{"lat":"32"}}',
        "field.invalid",
        "location.lat",
        id="task: latitude as a string",
    ),
]


@pytest.mark.parametrize(("topic", "payload", "code", "field"), MALFORMED)
def test_malformed_downlinks(topic: str, payload: bytes, code: str, field: str | None) -> None:
    result = parse_downlink(topic, payload)
    assert isinstance(result, Malformed), result
    assert (result.code, result.field) == (code, field)


def test_builders_enforce_the_byte_limits() -> None:
    body = VALID_UPLINK[0].values[0]["json"]
    media_id = "0b7e4c1a-2d3f-4e5a-8b9c-0d1e2f3a4b5c"
    wire.chunk_message("tz-0042", media_id, 0, b"x" * wire.CHUNK_MAX_BYTES)
    with pytest.raises(WireError):
        wire.chunk_message("tz-0042", media_id, 0, b"x" * (wire.CHUNK_MAX_BYTES + 1))
    huge = envelope_of({**body, "nmea": ["$GPGGA," + "0" * 100] * 700})
    with pytest.raises(WireError):
        wire.report_message("tz-0042", huge)
