"""The gateway's decoder and encoders against the golden vectors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import Reason
from gateway.protocols import terminal
from gateway.protocols.payloads import Ack, ErrorNotice, ReasonBody, Task, TerminalConfig
from gateway.protocols.terminal import (
    ChunkReceived,
    ReportReceived,
    StatusReceived,
    TrackReceived,
    UplinkRejected,
    decode_uplink,
)
from tests.vectors import DOWNLINK, UPLINK, payload_of

EVENTS = {
    "report": ReportReceived,
    "chunk": ChunkReceived,
    "status": StatusReceived,
    "track": TrackReceived,
}


@pytest.mark.parametrize("vector", UPLINK)
def test_uplink_vector(vector: dict[str, Any]) -> None:
    event = decode_uplink(vector["topic"], payload_of(vector))
    expect = vector["expect"]
    if "event" in expect:
        assert isinstance(event, EVENTS[expect["event"]]), event
        return
    assert isinstance(event, UplinkRejected), event
    assert event.reason.value == expect["reject"]
    if "field" in expect:
        assert event.field == expect["field"]
    reply = terminal.reply_to(event)
    answer = "none" if reply is None else reply[0].rsplit("/", 1)[1]
    assert answer == expect["answer"]
    if reply is not None:
        body = json.loads(reply[1])
        code = body["reason"]["code"]
        assert code == expect["reject"]


@pytest.mark.parametrize("vector", UPLINK)
def test_uplink_vector_decoded_content(vector: dict[str, Any]) -> None:
    """Valid vectors decode to exactly what they say: ids, sizes, fields."""
    event = decode_uplink(vector["topic"], payload_of(vector))
    if isinstance(event, ReportReceived):
        assert event.report_id == vector["json"]["report_id"].lower()
        assert event.payload == payload_of(vector)
        assert [m.media_id for m in event.envelope.media] == [
            m["media_id"] for m in vector["json"].get("media", [])
        ]
    elif isinstance(event, ChunkReceived):
        media_id, seq = vector["topic"].split("/")[-2:]
        assert (event.media_id, event.seq, event.data) == (
            media_id.lower(),
            int(seq),
            payload_of(vector),
        )
    elif isinstance(event, StatusReceived):
        assert event.status.online == vector["json"]["online"]
    elif isinstance(event, TrackReceived):
        assert len(event.track.fixes) == len(vector["json"]["fixes"])


def _encode(kind: str, body: dict[str, Any]) -> bytes:
    if kind == "ack":
        ack = Ack.model_validate(body)
        if ack.status == "accepted":
            assert ack.case_no is not None
            return terminal.encode_accepted(ack.report_id, ack.case_no)
        if ack.status == "incomplete":
            assert ack.missing is not None
            return terminal.encode_incomplete(ack.report_id, ack.missing)
        assert ack.reason is not None
        return terminal.encode_rejected(ack.report_id, ack.reason)
    if kind == "error":
        notice = ErrorNotice.model_validate(body)
        device_id = notice.topic.split("/")[2]
        rejected = UplinkRejected(
            notice.topic,
            Reason(notice.reason.code),
            notice.reason.message,
            device_id,
            media_id=notice.media_id,
            seq=notice.seq,
        )
        return terminal.encode_error(rejected)
    if kind == "task":
        return terminal.encode_task(Task.model_validate_json(json.dumps(body)))
    return terminal.encode_config(TerminalConfig.model_validate(body))


@pytest.mark.parametrize("vector", DOWNLINK)
def test_downlink_vector(vector: dict[str, Any]) -> None:
    payload = _encode(vector["kind"], vector["json"])
    assert json.loads(payload) == vector["json"]
    device_id = vector["topic"].split("/")[2]
    builder = {
        "ack": terminal.ack_topic,
        "error": terminal.error_topic,
        "task": terminal.task_topic,
        "config": terminal.config_topic,
    }[vector["kind"]]
    assert builder(device_id) == vector["topic"]


def test_reason_body_round_trip() -> None:
    body = ReasonBody(code="class.unknown", message="m")
    assert json.loads(terminal.encode_rejected("r", body))["reason"] == {
        "code": "class.unknown",
        "message": "m",
    }
