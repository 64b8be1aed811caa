"""The terminal wire protocol, sans I/O: topics and payloads in, typed events out.

`decode_uplink(topic, payload)` turns one MQTT message into exactly one event:
`ReportReceived`, `ChunkReceived`, `StatusReceived`, `TrackReceived`, or
`UplinkRejected` with a stable reason code. It never raises for anything a peer can
send. The `encode_*` functions build the downlink messages. Nothing here logs,
touches a socket or reads a clock: the transport decides what to do with events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from gateway.errors import REASON_TEXT, Reason
from gateway.protocols.payloads import (
    Ack,
    ErrorNotice,
    ReasonBody,
    ReportEnvelope,
    Status,
    Task,
    TerminalConfig,
    Track,
    WireLimits,
)

PREFIX = "cgt/v1"
# `normalized` is the backend tree's first level; a device of that name would alias it.
# Subtrees of cgt/v1 that are not a terminal's: the normalized stream and casework.
RESERVED_DEVICE_IDS = frozenset({"normalized", "cases"})
UPLINK_SUBSCRIPTIONS = (
    f"{PREFIX}/+/report",
    f"{PREFIX}/+/media/+/+",
    f"{PREFIX}/+/status",
    f"{PREFIX}/+/track",
)

_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MEDIA_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_SEQ = re.compile(r"0|[1-9][0-9]{0,8}")
# Longest valid uplink topic: prefix, a 64-char device id, "media", a UUID, a seq.
_MAX_TOPIC = len(PREFIX) + 1 + 64 + 1 + 5 + 1 + 36 + 1 + 9


# ---- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportReceived:
    device_id: str
    report_id: str
    envelope: ReportEnvelope
    payload: bytes


@dataclass(frozen=True, slots=True)
class ChunkReceived:
    device_id: str
    media_id: str
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StatusReceived:
    device_id: str
    status: Status


@dataclass(frozen=True, slots=True)
class TrackReceived:
    device_id: str
    track: Track


@dataclass(frozen=True, slots=True)
class UplinkRejected:
    """A message refused with a reason. `device_id` is None when the topic names no valid
    device (there is nobody to answer); `report_id` is set when the envelope named one."""

    topic: str
    reason: Reason
    message: str
    device_id: str | None = None
    report_id: str | None = None
    field: str | None = None
    media_id: str | None = None
    seq: int | None = None

    def body(self) -> ReasonBody:
        return ReasonBody(code=self.reason.value, message=self.message, field=self.field)


UplinkEvent = ReportReceived | ChunkReceived | StatusReceived | TrackReceived | UplinkRejected


# ---- topics ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UplinkTopic:
    device_id: str
    message: str  # "report", "media", "status" or "track"
    media_id: str | None = None
    seq: int | None = None


def parse_topic(topic: str, limits: WireLimits) -> UplinkTopic | UplinkRejected:
    """Check an uplink topic against the grammar of wire-v1."""
    if len(topic) > _MAX_TOPIC:
        return UplinkRejected(topic[:_MAX_TOPIC], Reason.TOPIC_MALFORMED, "topic too long")
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        return UplinkRejected(topic, Reason.TOPIC_MALFORMED, REASON_TEXT[Reason.TOPIC_MALFORMED])
    device_id = parts[2]
    if not _DEVICE_ID.fullmatch(device_id) or device_id in RESERVED_DEVICE_IDS:
        return UplinkRejected(topic, Reason.TOPIC_DEVICE_ID, REASON_TEXT[Reason.TOPIC_DEVICE_ID])
    rest = parts[3:]
    if rest in (["report"], ["status"], ["track"]):
        return UplinkTopic(device_id, rest[0])
    if len(rest) == 3 and rest[0] == "media":
        if not _MEDIA_ID.fullmatch(rest[1]):
            return UplinkRejected(
                topic, Reason.TOPIC_MEDIA_ID, REASON_TEXT[Reason.TOPIC_MEDIA_ID], device_id
            )
        media_id = rest[1].lower()
        if not _SEQ.fullmatch(rest[2]) or int(rest[2]) >= limits.chunks_per_media:
            return UplinkRejected(
                topic, Reason.TOPIC_SEQ, REASON_TEXT[Reason.TOPIC_SEQ], device_id, media_id=media_id
            )
        return UplinkTopic(device_id, "media", media_id, int(rest[2]))
    return UplinkRejected(topic, Reason.TOPIC_MALFORMED, "unknown message type", device_id)


def report_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/report"


def media_topic(device_id: str, media_id: str, seq: int) -> str:
    return f"{PREFIX}/{device_id}/media/{media_id}/{seq}"


def ack_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/ack"


def task_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/task"


def config_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/config"


def error_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/error"


def normalized_topic(kind: str, class_code: str) -> str:
    return f"{PREFIX}/normalized/{kind}/{class_code}"


# ---- uplink ---------------------------------------------------------------------------


def decode_uplink(topic: str, payload: bytes, limits: WireLimits | None = None) -> UplinkEvent:
    """Decode one uplink message. Returns an event; never raises for peer input."""
    limits = limits or WireLimits()
    parsed = parse_topic(topic, limits)
    if isinstance(parsed, UplinkRejected):
        return parsed
    device_id = parsed.device_id
    if parsed.media_id is not None and parsed.seq is not None:  # a media chunk
        return _decode_chunk(topic, device_id, parsed.media_id, parsed.seq, payload, limits)
    if parsed.message == "report":
        return _decode_report(topic, device_id, payload, limits)
    if parsed.message == "status":
        status = _validate(Status, topic, device_id, payload, limits.status_bytes, limits)
        return status if isinstance(status, UplinkRejected) else StatusReceived(device_id, status)
    track = _validate(Track, topic, device_id, payload, limits.track_bytes, limits)
    return track if isinstance(track, UplinkRejected) else TrackReceived(device_id, track)


def _decode_chunk(
    topic: str, device_id: str, media_id: str, seq: int, payload: bytes, limits: WireLimits
) -> ChunkReceived | UplinkRejected:
    def refuse(reason: Reason, message: str) -> UplinkRejected:
        return UplinkRejected(topic, reason, message, device_id, media_id=media_id, seq=seq)

    if not payload:
        return refuse(Reason.CHUNK_EMPTY, REASON_TEXT[Reason.CHUNK_EMPTY])
    if len(payload) > limits.chunk_bytes:
        return refuse(Reason.CHUNK_TOO_LARGE, f"{len(payload)} bytes > {limits.chunk_bytes}")
    return ChunkReceived(device_id, media_id, seq, bytes(payload))


def _decode_report(
    topic: str, device_id: str, payload: bytes, limits: WireLimits
) -> ReportReceived | UplinkRejected:
    if len(payload) > limits.envelope_bytes:
        return UplinkRejected(
            topic,
            Reason.PAYLOAD_TOO_LARGE,
            f"{len(payload)} bytes > {limits.envelope_bytes}",
            device_id,
        )
    # A first, cheap look: the version decides how to read the rest, and a report id found
    # here lets even a malformed envelope be answered on the ack topic.
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return UplinkRejected(
            topic, Reason.PAYLOAD_NOT_JSON, REASON_TEXT[Reason.PAYLOAD_NOT_JSON], device_id
        )
    if not isinstance(raw, dict):
        return UplinkRejected(
            topic, Reason.PAYLOAD_NOT_OBJECT, REASON_TEXT[Reason.PAYLOAD_NOT_OBJECT], device_id
        )
    report_id = raw.get("report_id")
    known_id = report_id.lower() if isinstance(report_id, str) and _is_uuid(report_id) else None
    if "v" in raw and raw["v"] != 1:
        return UplinkRejected(
            topic,
            Reason.ENVELOPE_VERSION,
            f"version {raw['v']!r} is not 1",
            device_id,
            known_id,
            "v",
        )
    envelope = _validate(ReportEnvelope, topic, device_id, payload, limits.envelope_bytes, limits)
    if isinstance(envelope, UplinkRejected):
        return _with_report_id(envelope, known_id)
    if envelope.device_id is not None and envelope.device_id != device_id:
        return UplinkRejected(
            topic,
            Reason.ENVELOPE_DEVICE_MISMATCH,
            f"payload claims device {envelope.device_id!r}",
            device_id,
            known_id,
            "device_id",
        )
    return ReportReceived(device_id, envelope.report_id.lower(), envelope, bytes(payload))


def _is_uuid(value: str) -> bool:
    return _MEDIA_ID.fullmatch(value) is not None


def _with_report_id(rejected: UplinkRejected, report_id: str | None) -> UplinkRejected:
    return UplinkRejected(
        rejected.topic,
        rejected.reason,
        rejected.message,
        rejected.device_id,
        report_id,
        rejected.field,
    )


M = TypeVar("M", bound=BaseModel)


def _validate(
    model: type[M], topic: str, device_id: str, payload: bytes, max_bytes: int, limits: WireLimits
) -> M | UplinkRejected:
    if len(payload) > max_bytes:
        return UplinkRejected(
            topic, Reason.PAYLOAD_TOO_LARGE, f"{len(payload)} bytes > {max_bytes}", device_id
        )
    try:
        return model.model_validate_json(payload, strict=True, context={"limits": limits})
    except ValidationError as error:
        reason, message, field = explain(error)
        return UplinkRejected(topic, reason, message, device_id, field=field)


_PYDANTIC_REASONS = {
    "missing": Reason.FIELD_MISSING,
    "extra_forbidden": Reason.FIELD_UNKNOWN,
    "json_invalid": Reason.PAYLOAD_NOT_JSON,
    "json_type": Reason.PAYLOAD_NOT_JSON,
}
_OUR_REASONS = {reason.value: reason for reason in Reason}


def explain(error: ValidationError) -> tuple[Reason, str, str | None]:
    """Turn pydantic's first error into (reason code, message, field path)."""
    first = error.errors(include_url=False, include_input=False)[0]
    location = _field_path(first["loc"])
    kind = first["type"]
    if kind in _OUR_REASONS:
        reason = _OUR_REASONS[kind]
    elif not first["loc"] and kind in ("model_type", "model_attributes_type", "dict_type"):
        reason = Reason.PAYLOAD_NOT_OBJECT
    else:
        reason = _PYDANTIC_REASONS.get(kind, Reason.FIELD_INVALID)
    where = f"{location}: " if location else ""
    return reason, f"{where}{first['msg']}"[:200], location


def _field_path(location: tuple[int | str, ...]) -> str | None:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None


# ---- downlink -------------------------------------------------------------------------


def _dump(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="json", exclude_none=True))


def encode_accepted(report_id: str, case_no: str) -> bytes:
    return _dump(Ack(report_id=report_id, status="accepted", case_no=case_no))


def encode_incomplete(report_id: str, missing: dict[str, list[int]]) -> bytes:
    return _dump(Ack(report_id=report_id, status="incomplete", missing=missing))


def encode_rejected(report_id: str, reason: ReasonBody) -> bytes:
    return _dump(Ack(report_id=report_id, status="rejected", reason=reason))


def encode_error(rejected: UplinkRejected) -> bytes:
    notice = ErrorNotice(
        topic=rejected.topic, reason=rejected.body(), media_id=rejected.media_id, seq=rejected.seq
    )
    return _dump(notice)


def encode_task(task: Task) -> bytes:
    return _dump(task)


def encode_config(config: TerminalConfig) -> bytes:
    return _dump(config)


def reply_to(rejected: UplinkRejected) -> tuple[str, bytes] | None:
    """The downlink that answers a rejection: an ack when a report id is known, an error
    notice when only the device is, nothing when the topic named no valid device."""
    if rejected.device_id is None:
        return None
    if rejected.report_id is not None:
        return ack_topic(rejected.device_id), encode_rejected(rejected.report_id, rejected.body())
    return error_topic(rejected.device_id), encode_error(rejected)
