"""Parsing what the gateway sends a terminal (wire-v1 downlinks), sans I/O.

`parse_downlink(topic, payload)` returns exactly one of `Ack`, `ErrorNotice`, `Task`,
`TerminalConfig` or `Malformed`, and never raises for any topic or payload: firmware
must survive whatever arrives. Fields the contract may add later are ignored.

    Malformed.code:  topic.malformed   not cgt/v1/{device_id}/{ack|error|task|config}
                     payload.not_json  not UTF-8 JSON
                     payload.not_object
                     field.missing     a required field is absent (`field` names it)
                     field.invalid     a field has the wrong type or value
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from firmware_sim.wire import DOWNLINK_MESSAGES, PREFIX, AckStatus, is_device_id

_ACK_STATUSES: tuple[AckStatus, ...] = ("accepted", "incomplete", "rejected")


# Not verdicts: the gateway is full, or the device is over one of its budgets; a terminal
# keeps the report (or chunk) and sends it again later.
RETRY_LATER_CODES = frozenset(
    {
        "server.retry_later",
        "limit.reports_per_minute",
        "limit.media_bytes_per_hour",
        "limit.spool_bytes",
    }
)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def retry_later(self) -> bool:
        return self.code in RETRY_LATER_CODES


@dataclass(frozen=True, slots=True)
class Ack:
    device_id: str
    report_id: str
    status: AckStatus
    case_no: str | None = None
    reason: Reason | None = None
    # media id (lower case) -> chunk numbers the gateway still lacks
    missing: Mapping[str, tuple[int, ...]] | None = None


@dataclass(frozen=True, slots=True)
class ErrorNotice:
    """An uplink the gateway refused without being able to tie it to a report."""

    device_id: str
    topic: str
    reason: Reason
    media_id: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class TaskLocation:
    lat: float
    lon: float
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    device_id: str
    task_id: str
    case_no: str
    kind: str
    location: TaskLocation | None = None
    deadline: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    device_id: str
    chunk_bytes: int
    photo_max_px: int
    upload_windows: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Malformed:
    topic: str
    code: str
    detail: str
    device_id: str | None = None
    field: str | None = None


Downlink = Ack | ErrorNotice | Task | TerminalConfig | Malformed


class _Bad(Exception):
    """Internal: a field is wrong; becomes a `Malformed`."""

    def __init__(self, code: str, field: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.field = field
        self.detail = detail


def parse_downlink(topic: str, payload: bytes) -> Downlink:
    """Parse one downlink message. Never raises for peer input."""
    parts = topic.split("/")
    if (
        len(parts) != 4
        or f"{parts[0]}/{parts[1]}" != PREFIX
        or not is_device_id(parts[2])
        or parts[3] not in DOWNLINK_MESSAGES
    ):
        return Malformed(topic, "topic.malformed", "not cgt/v1/{device_id}/{ack|error|task|config}")
    device_id, message = parts[2], parts[3]
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return Malformed(topic, "payload.not_json", "the payload is not UTF-8 JSON", device_id)
    if not isinstance(body, dict):
        return Malformed(topic, "payload.not_object", "the payload is not a JSON object", device_id)
    try:
        return _READERS[message](device_id, body)
    except _Bad as bad:
        return Malformed(topic, bad.code, bad.detail, device_id, bad.field)


# ---- readers, one per message ------------------------------------------------------------


def _ack(device_id: str, body: dict[str, Any]) -> Ack:
    status = _string(body, "status")
    if status not in _ACK_STATUSES:
        raise _Bad("field.invalid", "status", f"status {status!r} is not one of {_ACK_STATUSES}")
    return Ack(
        device_id,
        _string(body, "report_id"),
        status,
        case_no=_string(body, "case_no")
        if status == "accepted"
        else _optional_string(body, "case_no"),
        reason=_reason(body, required=status == "rejected"),
        missing=_missing(body, required=status == "incomplete"),
    )


def _error(device_id: str, body: dict[str, Any]) -> ErrorNotice:
    reason = _reason(body, required=True)
    if reason is None:  # unreachable: required=True raises instead; keeps mypy exact
        raise _Bad("field.missing", "reason", "reason is missing")
    return ErrorNotice(
        device_id,
        _string(body, "topic"),
        reason,
        media_id=_optional_string(body, "media_id"),
        seq=_optional_int(body, "seq"),
    )


def _task(device_id: str, body: dict[str, Any]) -> Task:
    location = None
    raw = body.get("location")
    if raw is not None:
        if not isinstance(raw, dict):
            raise _Bad("field.invalid", "location", "location is not an object")
        location = TaskLocation(
            _number(raw, "lat", "location.lat"),
            _number(raw, "lon", "location.lon"),
            _optional_string(raw, "address", "location.address"),
        )
    return Task(
        device_id,
        _string(body, "task_id"),
        _string(body, "case_no"),
        _string(body, "kind"),
        location=location,
        deadline=_optional_string(body, "deadline"),
        note=_optional_string(body, "note"),
    )


def _config(device_id: str, body: dict[str, Any]) -> TerminalConfig:
    windows = body.get("upload_windows", [])
    if not isinstance(windows, list) or not all(isinstance(w, str) for w in windows):
        raise _Bad("field.invalid", "upload_windows", "upload_windows is not a list of strings")
    chunk_bytes = _int(body, "chunk_bytes")
    photo_max_px = _int(body, "photo_max_px")
    if chunk_bytes < 1 or photo_max_px < 1:
        raise _Bad("field.invalid", "chunk_bytes", "sizes must be positive")
    return TerminalConfig(device_id, chunk_bytes, photo_max_px, tuple(windows))


_READERS: dict[str, Callable[[str, dict[str, Any]], Downlink]] = {
    "ack": _ack,
    "error": _error,
    "task": _task,
    "config": _config,
}


# ---- field helpers (`name` is the field's dotted path, for the Malformed report) -------------


def _string(body: dict[str, Any], key: str, name: str | None = None) -> str:
    value = _optional_string(body, key, name)
    if value is None:
        raise _Bad("field.missing", name or key, f"{name or key} is missing")
    return value


def _optional_string(body: dict[str, Any], key: str, name: str | None = None) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _Bad("field.invalid", name or key, f"{name or key} is not a string")
    return value


def _int(body: dict[str, Any], key: str) -> int:
    value = _optional_int(body, key)
    if value is None:
        raise _Bad("field.missing", key, f"{key} is missing")
    return value


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    # bool is an int in Python, never in JSON's sense.
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise _Bad("field.invalid", key, f"{key} is not an integer")
    return value


def _number(body: dict[str, Any], key: str, name: str) -> float:
    value = body.get(key)
    if value is None:
        raise _Bad("field.missing", name, f"{name} is missing")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _Bad("field.invalid", name, f"{name} is not a number")
    return float(value)


def _reason(body: dict[str, Any], *, required: bool) -> Reason | None:
    raw = body.get("reason")
    if raw is None:
        if required:
            raise _Bad("field.missing", "reason", "reason is missing")
        return None
    if not isinstance(raw, dict):
        raise _Bad("field.invalid", "reason", "reason is not an object")
    return Reason(
        _string(raw, "code", "reason.code"),
        _string(raw, "message", "reason.message"),
        _optional_string(raw, "field", "reason.field"),
    )


def _missing(body: dict[str, Any], *, required: bool) -> dict[str, tuple[int, ...]] | None:
    raw = body.get("missing")
    if raw is None:
        if required:
            raise _Bad("field.missing", "missing", "missing is absent from an incomplete ack")
        return None
    if not isinstance(raw, dict):
        raise _Bad("field.invalid", "missing", "missing is not an object")
    result: dict[str, tuple[int, ...]] = {}
    for media_id, seqs in raw.items():
        if not isinstance(seqs, list) or not all(
            isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 for seq in seqs
        ):
            raise _Bad(
                "field.invalid", f"missing.{media_id}", "chunk numbers must be integers >= 0"
            )
        result[media_id.lower()] = tuple(seqs)
    return result
