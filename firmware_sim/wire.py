"""The terminal's side of wire-v1, sans I/O: uplinks built, downlinks parsed.

Written from `docs/wire-v1.md` like real firmware would be, not from the gateway's
code, so the golden vectors cross-check two independent implementations.

Builders raise `WireError` when *we* are about to break the contract (a bad device id
or media id): that is a bug in the simulator. `parse_downlink` never raises for what a
peer sends: anything it cannot read comes back as `Malformed` with a stable code.
Unknown fields in a downlink are ignored, since the contract may add optional ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

PREFIX = "cgt/v1"
ENVELOPE_VERSION = 1
# `normalized` is the first level of the backend tree; no device may take that name.
RESERVED_DEVICE_IDS = frozenset({"normalized"})

_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

ENVELOPE_MAX_BYTES = 64 * 1024  # wire-v1: an envelope is at most 64 KiB
CHUNK_MAX_BYTES = 256 * 1024  # wire-v1: a chunk is at most 256 KiB

MediaKind = Literal["photo", "voice"]
ReportKind = Literal["component", "event"]
AckStatus = Literal["accepted", "incomplete", "rejected"]
DOWNLINK_MESSAGES = ("ack", "error", "task", "config")


class WireError(ValueError):
    """We were about to send something wire-v1 forbids (a simulator bug, not a peer's)."""


# ---- uplink payloads ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fix:
    """A WGS-84 position; times are RFC 3339 strings, kept as the receiver gave them."""

    lat: float
    lon: float
    accuracy_m: float | None = None
    time: str | None = None
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    hdop: float | None = None
    satellites: int | None = None
    mode: int | None = None

    def to_json(self) -> dict[str, Any]:
        return _without_none(
            {
                "lat": self.lat,
                "lon": self.lon,
                "accuracy_m": self.accuracy_m,
                "time": self.time,
                "alt_m": self.alt_m,
                "speed_mps": self.speed_mps,
                "course_deg": self.course_deg,
                "hdop": self.hdop,
                "satellites": self.satellites,
                "mode": self.mode,
            }
        )

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Fix:
        return cls(
            lat=body["lat"], lon=body["lon"], accuracy_m=body.get("accuracy_m"),
            time=body.get("time"), alt_m=body.get("alt_m"), speed_mps=body.get("speed_mps"),
            course_deg=body.get("course_deg"), hdop=body.get("hdop"),
            satellites=body.get("satellites"), mode=body.get("mode"),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MediaEntry:
    """One media file in a report's manifest. `size` is the wire's `bytes` field."""

    media_id: str
    kind: MediaKind
    mime: str
    size: int
    sha256: str
    chunk_bytes: int

    @property
    def chunk_count(self) -> int:
        return -(-self.size // self.chunk_bytes)

    def to_json(self) -> dict[str, Any]:
        return {
            "media_id": self.media_id,
            "kind": self.kind,
            "mime": self.mime,
            "bytes": self.size,
            "sha256": self.sha256,
            "chunk_bytes": self.chunk_bytes,
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> MediaEntry:
        return cls(
            body["media_id"], body["kind"], body["mime"], body["bytes"], body["sha256"],
            body["chunk_bytes"],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReportEnvelope:
    report_id: str
    created_at: str
    kind: ReportKind
    class_code: str
    description: str
    inspector_id: str
    fix: Fix | None = None
    nmea: tuple[str, ...] | None = None
    media: tuple[MediaEntry, ...] = ()
    object_code: str | None = None
    device_id: str | None = None
    task_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": ENVELOPE_VERSION,
            "report_id": self.report_id,
            "created_at": self.created_at,
            "kind": self.kind,
            "class_code": self.class_code,
            "object_code": self.object_code,
            "description": self.description,
            "inspector_id": self.inspector_id,
            "device_id": self.device_id,
            "task_id": self.task_id,
            "fix": self.fix.to_json() if self.fix is not None else None,
            "nmea": list(self.nmea) if self.nmea is not None else None,
            # An empty manifest is left out: the field is optional and means "no media".
            "media": [entry.to_json() for entry in self.media] or None,
        }
        return _without_none(body)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ReportEnvelope:
        """Read back what `to_json` wrote (a terminal's own queue, a capture)."""
        if body.get("v") != ENVELOPE_VERSION:
            raise WireError(f"envelope version {body.get('v')!r} is not {ENVELOPE_VERSION}")
        fix, nmea = body.get("fix"), body.get("nmea")
        return cls(
            report_id=body["report_id"],
            created_at=body["created_at"],
            kind=body["kind"],
            class_code=body["class_code"],
            description=body["description"],
            inspector_id=body["inspector_id"],
            fix=Fix.from_json(fix) if fix is not None else None,
            nmea=tuple(nmea) if nmea is not None else None,
            media=tuple(MediaEntry.from_json(entry) for entry in body.get("media", ())),
            object_code=body.get("object_code"),
            device_id=body.get("device_id"),
            task_id=body.get("task_id"),
        )


@dataclass(frozen=True, slots=True)
class Status:
    online: bool
    battery_pct: float | None = None
    firmware: str | None = None
    signal_dbm: int | None = None

    def to_json(self) -> dict[str, Any]:
        return _without_none(
            {
                "online": self.online,
                "battery_pct": self.battery_pct,
                "firmware": self.firmware,
                "signal_dbm": self.signal_dbm,
            }
        )


@dataclass(frozen=True, slots=True)
class Uplink:
    """One MQTT message to publish (always QoS 1, per wire-v1)."""

    topic: str
    payload: bytes
    retain: bool = False


# ---- uplink topics and messages --------------------------------------------------------------


def is_device_id(text: str) -> bool:
    return _DEVICE_ID.fullmatch(text) is not None and text not in RESERVED_DEVICE_IDS


def check_device_id(device_id: str) -> str:
    if not is_device_id(device_id):
        raise WireError(f"device id {device_id!r} is not 1-64 of A-Z a-z 0-9 _ -")
    return device_id


def report_topic(device_id: str) -> str:
    return f"{PREFIX}/{check_device_id(device_id)}/report"


def media_topic(device_id: str, media_id: str, seq: int) -> str:
    if not _UUID.fullmatch(media_id):
        raise WireError(f"media id {media_id!r} is not a UUID")
    if seq < 0:
        raise WireError(f"chunk number {seq} is negative")
    return f"{PREFIX}/{check_device_id(device_id)}/media/{media_id}/{seq}"


def status_topic(device_id: str) -> str:
    return f"{PREFIX}/{check_device_id(device_id)}/status"


def track_topic(device_id: str) -> str:
    return f"{PREFIX}/{check_device_id(device_id)}/track"


def downlink_topic(device_id: str, message: str) -> str:
    if message not in DOWNLINK_MESSAGES:
        raise WireError(f"{message!r} is not a downlink message")
    return f"{PREFIX}/{check_device_id(device_id)}/{message}"


def downlink_subscriptions(device_id: str) -> list[str]:
    """Every topic a terminal listens on: its own ack, error, task and config."""
    return [downlink_topic(device_id, message) for message in DOWNLINK_MESSAGES]


def encode_json(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON (no spaces, no \\u escapes): the envelope limit counts bytes."""
    return orjson.dumps(body)


def report_message(device_id: str, envelope: ReportEnvelope) -> Uplink:
    payload = encode_json(envelope.to_json())
    if len(payload) > ENVELOPE_MAX_BYTES:
        raise WireError(f"an envelope of {len(payload)} bytes exceeds {ENVELOPE_MAX_BYTES}")
    return Uplink(report_topic(device_id), payload)


def chunk_message(device_id: str, media_id: str, seq: int, data: bytes) -> Uplink:
    if not 0 < len(data) <= CHUNK_MAX_BYTES:
        raise WireError(f"a chunk has 1-{CHUNK_MAX_BYTES} bytes, not {len(data)}")
    return Uplink(media_topic(device_id, media_id, seq), bytes(data))


def status_message(device_id: str, status: Status) -> Uplink:
    """Retained, so whoever subscribes later sees the terminal's presence at once."""
    return Uplink(status_topic(device_id), encode_json(status.to_json()), retain=True)


def track_message(device_id: str, fixes: Sequence[Fix]) -> Uplink:
    if not fixes:
        raise WireError("a track carries at least one fix")
    body = {"fixes": [fix.to_json() for fix in fixes]}
    return Uplink(track_topic(device_id), encode_json(body))


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}
