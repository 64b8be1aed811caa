"""gpsd's JSON protocol, sans I/O (the socket is `gateway.transports.gpsd_client`).

    WATCH                  the command that starts gpsd's stream of JSON reports
    decode_report(line) -> Version | Devices | Watching | Fixed | Unfixed | Sky
                         | GpsdError | Ignored | GpsdRejected(reason)   never an exception
    GpsdDecoder            receive_data(bytes) -> events; lines split, SKY joined to TPV

Our own decoder, not gpsd-py3 (last release 2017, a module-global socket and state) nor
gpsdclient (a blocking iterator over the socket: no reconnect, a malformed line raises,
no types); docs/decisions.md has the measurements. gpsd's TPV becomes a GnssFix with
source "gpsd"; the decoder never logs: the client logs what it rejects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from gateway.protocols.gnss import GnssFix

WATCH = b'?WATCH={"enable":true,"json":true}\n'
# The longest report in the gpsd captures of the test logs is a 3.3 KB SKY; 64 KiB is
# room for every constellation's sky and bounds what a broken peer makes us hold.
MAX_REPORT_BYTES = 64 * 1024


class GpsdReason(StrEnum):
    NOT_JSON = "gpsd.not_json"
    NOT_OBJECT = "gpsd.not_object"  # JSON, but not an object with a "class" string
    MALFORMED = "gpsd.malformed"  # a report we read with a field of the wrong type or range
    TOO_LONG = "gpsd.too_long"


@dataclass(frozen=True, slots=True)
class Version:
    release: str
    proto_major: int
    proto_minor: int


@dataclass(frozen=True, slots=True)
class Devices:
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Watching:
    enabled: bool


@dataclass(frozen=True, slots=True)
class Fixed:
    """A TPV with a 2D or 3D fix."""

    device: str | None
    fix: GnssFix


@dataclass(frozen=True, slots=True)
class Unfixed:
    """A TPV without a fix (mode 0 or 1)."""

    device: str | None
    mode: int


@dataclass(frozen=True, slots=True)
class Sky:
    device: str | None
    satellites_used: int | None
    hdop: float | None


@dataclass(frozen=True, slots=True)
class GpsdError:
    """gpsd's own ERROR report: it did not understand a command."""

    message: str


@dataclass(frozen=True, slots=True)
class Ignored:
    kind: str  # the report class: DEVICE, PPS, TOFF, GST, ATT ...


@dataclass(frozen=True, slots=True)
class GpsdRejected:
    reason: GpsdReason
    detail: str
    text: str  # the start of the offending line


GpsdEvent = (
    Version | Devices | Watching | Fixed | Unfixed | Sky | GpsdError | Ignored | GpsdRejected
)


class _Malformed(ValueError):
    """A field of the wrong type or range; becomes GpsdRejected(MALFORMED)."""


def decode_report(line: bytes | str) -> GpsdEvent:
    """One line of gpsd's output."""
    shown = (line.decode("utf-8", "replace") if isinstance(line, bytes) else line)[:120]
    try:
        report = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return GpsdRejected(GpsdReason.NOT_JSON, str(error)[:80], shown)
    if not isinstance(report, dict) or not isinstance(report.get("class"), str):
        return GpsdRejected(GpsdReason.NOT_OBJECT, 'no "class"', shown)
    kind: str = report["class"]
    decode = _DECODERS.get(kind)
    if decode is None:
        return Ignored(kind)
    try:
        return decode(report)
    except _Malformed as error:
        return GpsdRejected(GpsdReason.MALFORMED, f"{kind}: {error}", shown)


def _version(report: dict[str, Any]) -> Version:
    return Version(
        _text(report, "release") or "",
        _integer(report, "proto_major") or 0,
        _integer(report, "proto_minor") or 0,
    )


def _devices(report: dict[str, Any]) -> Devices:
    devices = report.get("devices", [])
    if not isinstance(devices, list) or not all(isinstance(each, dict) for each in devices):
        raise _Malformed("devices is not a list of objects")
    return Devices(tuple(path for each in devices if (path := _text(each, "path"))))


def _watch(report: dict[str, Any]) -> Watching:
    enabled = report.get("enable", False)
    if not isinstance(enabled, bool):
        raise _Malformed("enable is not true or false")
    return Watching(enabled)


def _tpv(report: dict[str, Any]) -> Fixed | Unfixed:
    device = _text(report, "device")
    mode = _integer(report, "mode") or 0
    if mode not in (0, 1, 2, 3):
        raise _Malformed(f"mode {mode}")
    if mode < 2:
        return Unfixed(device, mode)
    lat, lon = _number(report, "lat"), _number(report, "lon")
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        raise _Malformed("a fix without a position in range")
    speed, track, eph = _number(report, "speed"), _number(report, "track"), _number(report, "eph")
    if (speed is not None and speed < 0) or (track is not None and not 0 <= track <= 360):
        raise _Malformed("speed or track out of range")
    alt = _number(report, "altMSL")
    fix = GnssFix(
        lat,
        lon,
        _time(report),
        mode,
        alt_m=alt if alt is not None else _number(report, "alt"),
        speed_mps=speed,
        track_deg=track,
        accuracy_m=eph if eph is not None and eph >= 0 else None,
        source="gpsd",
    )
    return Fixed(device, fix)


def _sky(report: dict[str, Any]) -> Sky:
    used = _integer(report, "uSat")
    satellites = report.get("satellites")
    if used is None and isinstance(satellites, list):  # gpsd before 3.22 sent no uSat
        used = sum(1 for each in satellites if isinstance(each, dict) and each.get("used") is True)
    hdop = _number(report, "hdop")
    return Sky(_text(report, "device"), used, hdop if hdop is None or hdop >= 0 else None)


def _error(report: dict[str, Any]) -> GpsdError:
    return GpsdError(_text(report, "message") or "")


_DECODERS: dict[str, Callable[[dict[str, Any]], GpsdEvent]] = {
    "VERSION": _version,
    "DEVICES": _devices,
    "WATCH": _watch,
    "TPV": _tpv,
    "SKY": _sky,
    "ERROR": _error,
}


def _text(report: dict[str, Any], key: str) -> str | None:
    value = report.get(key)
    if value is not None and not isinstance(value, str):
        raise _Malformed(f"{key} is not a string")
    return value


def _integer(report: dict[str, Any], key: str) -> int | None:
    value = report.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Malformed(f"{key} is not an integer")
    return value


def _number(report: dict[str, Any], key: str) -> float | None:
    value = report.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Malformed(f"{key} is not a number")
    return float(value)


def _time(report: dict[str, Any]) -> datetime | None:
    text = _text(report, "time")
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _Malformed(f"time {text[:40]!r}") from None
    if when.tzinfo is None:
        raise _Malformed("time without a zone")
    return when.astimezone(UTC)


class GpsdDecoder:
    """gpsd's byte stream to events. gpsd sends an epoch's SKY after its TPV, so a fix
    carries the satellites and HDOP of the device's previous SKY (one epoch old)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._sky: dict[str | None, Sky] = {}

    def receive_data(self, data: bytes) -> list[GpsdEvent]:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        events: list[GpsdEvent] = []
        for line in lines:
            if len(line) > MAX_REPORT_BYTES:
                events.append(GpsdRejected(GpsdReason.TOO_LONG, f"{len(line)} bytes", ""))
            elif line.strip():
                events.append(self._joined(decode_report(line)))
        if len(self._buffer) > MAX_REPORT_BYTES:
            events.append(GpsdRejected(GpsdReason.TOO_LONG, "no line end", ""))
            self._buffer = b""
        return events

    def _joined(self, event: GpsdEvent) -> GpsdEvent:
        if isinstance(event, Sky):
            self._sky[event.device] = event
        elif isinstance(event, Fixed) and (sky := self._sky.get(event.device)):
            fix = replace(event.fix, satellites=sky.satellites_used, hdop=sky.hdop)
            return Fixed(event.device, fix)
        return event
