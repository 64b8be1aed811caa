"""Captures of terminal traffic (`firmware-sim record` / `replay`), sans I/O.

A capture is JSON Lines: a header, then one line per uplink message, in the order the
broker delivered them:

    {"format": "cgt-capture", "version": 1, "started_at": "2026-11-28T09:15:02.120+08:00",
     "source": "firmware-sim record mqtt://10.0.0.5:1883"}
    {"t": 0.0, "topic": "cgt/v1/tz-0042/status", "payload_b64": "eyJvbmxpbmUiOnRydWV9",
     "retain": true}

`t` is seconds since the capture started (3 decimals, never decreasing). Only wire-v1
uplink topics are allowed, so a replay publishes nothing a terminal could not have sent.

`CaptureWriter` writes one; `CaptureReader` reads one and raises `CaptureError` (naming
the line) for anything else, never another exception. `fresh_ids` gives the reports and
media of a capture new ids, so it can be replayed to a gateway that already has them.
"""

from __future__ import annotations

import base64
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import IO, Any, Literal

import orjson

from firmware_sim.wire import PREFIX, is_device_id

FORMAT = "cgt-capture"
VERSION = 1

UplinkKind = Literal["report", "status", "track", "media"]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A chunk number of at most 9 digits, as the gateway reads it (wire-v1 sets no bound).
_MEDIA = re.compile(rf"media/({_UUID.pattern})/(0|[1-9][0-9]{{0,8}})")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_SINGLE: dict[str, UplinkKind] = {"report": "report", "status": "status", "track": "track"}
_HEADER_KEYS = frozenset({"format", "version", "started_at", "source"})
_RECORD_KEYS = frozenset({"t", "topic", "payload_b64", "retain"})


class CaptureError(ValueError):
    """A capture that is not one: the message names the line (1 is the header)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


# ---- uplink topics ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UplinkTopic:
    device_id: str
    kind: UplinkKind
    media_id: str | None = None  # as written in the topic (the gateway lower-cases it)
    seq: int | None = None


def parse_uplink_topic(topic: str) -> UplinkTopic | None:
    """`cgt/v1/{device_id}/(report|status|track|media/{uuid}/{seq})`, or None."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != PREFIX or not is_device_id(parts[2]):
        return None
    device_id, rest = parts[2], parts[3:]
    if len(rest) == 1 and rest[0] in _SINGLE:
        return UplinkTopic(device_id, _SINGLE[rest[0]])
    media = _MEDIA.fullmatch("/".join(rest))
    if media is None:
        return None
    return UplinkTopic(device_id, "media", media[1], int(media[2]))


def is_uuid(text: str) -> bool:
    return _UUID.fullmatch(text) is not None


# ---- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaptureHeader:
    started_at: str  # RFC 3339 with an offset
    source: str  # free text: what was recorded, e.g. the broker


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One uplink message; its topic is always a wire-v1 uplink (checked on creation)."""

    t: float
    topic: str
    payload: bytes
    retain: bool = False

    def __post_init__(self) -> None:
        if parse_uplink_topic(self.topic) is None:
            raise CaptureError(f"topic {self.topic!r} is not a wire-v1 uplink")
        if not (math.isfinite(self.t) and self.t >= 0):
            raise CaptureError(f"t {self.t!r} is not a time >= 0")

    @property
    def uplink(self) -> UplinkTopic:
        parsed = parse_uplink_topic(self.topic)
        assert parsed is not None  # noqa: S101 - checked in __post_init__
        return parsed


def encode_header(header: CaptureHeader) -> bytes:
    body = {"format": FORMAT, "version": VERSION, **_public(header)}
    return orjson.dumps(body) + b"\n"


def encode_record(record: CaptureRecord) -> bytes:
    body = {
        "t": record.t,
        "topic": record.topic,
        "payload_b64": base64.b64encode(record.payload).decode("ascii"),
        "retain": record.retain,
    }
    return orjson.dumps(body) + b"\n"


def _public(header: CaptureHeader) -> dict[str, str]:
    return {"started_at": header.started_at, "source": header.source}


# ---- writing ---------------------------------------------------------------------------------


class CaptureWriter:
    """Writes the header at once, then a line per `write`; `clock` is monotonic seconds."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        source: str,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._last_t = 0.0
        self.header = CaptureHeader(now().isoformat(timespec="milliseconds"), source)
        stream.write(encode_header(self.header))

    def write(self, topic: str, payload: bytes, retain: bool = False) -> CaptureRecord:
        """Raises `CaptureError` (and writes nothing) for a topic that is no uplink."""
        # Rounding could otherwise step back by a millisecond between two close calls.
        t = max(round(self._clock() - self._start, 3), self._last_t)
        record = CaptureRecord(t, topic, bytes(payload), retain)
        self._stream.write(encode_record(record))
        self._last_t = t
        return record


# ---- reading ---------------------------------------------------------------------------------


class CaptureReader:
    """Reads the header at once (`header`); iterating yields the records, each checked."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = enumerate(lines, start=1)
        self._last_t = 0.0
        self.header = self._read_header()

    def __iter__(self) -> Iterator[CaptureRecord]:
        for number, line in self._lines:
            if line.strip():  # a blank line (a hand edit, a trailing newline) is no record
                yield self._record(number, line)

    def _read_header(self) -> CaptureHeader:
        for number, line in self._lines:
            if not line.strip():
                continue
            body = _object(number, line)
            if body.get("format") != FORMAT:
                raise CaptureError(f"not a {FORMAT} file: the first line is no header", number)
            if body.get("version") != VERSION or isinstance(body.get("version"), bool):
                raise CaptureError(
                    f"capture version {body.get('version')!r} is not {VERSION}", number
                )
            _exact_keys(number, body, _HEADER_KEYS)
            started_at, source = body["started_at"], body["source"]
            if not isinstance(started_at, str) or not _is_rfc3339(started_at):
                raise CaptureError(f"started_at {started_at!r} is not RFC 3339 time", number)
            if not isinstance(source, str):
                raise CaptureError("source is not a string", number)
            return CaptureHeader(started_at, source)
        raise CaptureError(f"empty file: no {FORMAT} header")

    def _record(self, number: int, line: bytes) -> CaptureRecord:
        body = _object(number, line)
        _exact_keys(number, body, _RECORD_KEYS)
        t, topic, encoded, retain = body["t"], body["topic"], body["payload_b64"], body["retain"]
        if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t) or t < 0:
            raise CaptureError(f"t {t!r} is not a number of seconds >= 0", number)
        if t < self._last_t:
            raise CaptureError(f"t {t} goes back in time (after {self._last_t})", number)
        if not isinstance(topic, str) or parse_uplink_topic(topic) is None:
            raise CaptureError(f"topic {topic!r} is not a wire-v1 uplink", number)
        if not isinstance(encoded, str):
            raise CaptureError("payload_b64 is not a string", number)
        try:
            payload = base64.b64decode(encoded, validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII string
            raise CaptureError("payload_b64 is not valid base64", number) from None
        if not isinstance(retain, bool):
            raise CaptureError(f"retain {retain!r} is not true or false", number)
        self._last_t = float(t)
        return CaptureRecord(float(t), topic, payload, retain)


def _object(number: int, line: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise CaptureError(f"not JSON ({error})", number) from None
    if not isinstance(body, dict):
        raise CaptureError("not a JSON object", number)
    return body


def _exact_keys(number: int, body: dict[str, Any], keys: frozenset[str]) -> None:
    missing, unknown = sorted(keys - body.keys()), sorted(body.keys() - keys)
    if missing:
        raise CaptureError(f"missing {', '.join(missing)}", number)
    if unknown:
        raise CaptureError(f"unknown field {', '.join(unknown)}", number)


def _is_rfc3339(text: str) -> bool:
    if not _RFC3339.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:  # matches the shape but is no date: month 13, 24:61
        return False
    return True


# ---- fresh ids -------------------------------------------------------------------------------


def fresh_ids(
    records: Iterable[CaptureRecord], new_id: Callable[[], str] = lambda: str(uuid.uuid4())
) -> Iterator[CaptureRecord]:
    """The same traffic with every report id and media id replaced, consistently (one old
    id, one new id, in envelopes and chunk topics alike). Ids that are not UUIDs stay: a
    capture of a terminal sending bad ids must replay the same fault."""
    mapping: dict[str, str] = {}

    def renamed(old: str) -> str:
        if not is_uuid(old):
            return old
        if old.lower() not in mapping:
            mapping[old.lower()] = new_id()
        return mapping[old.lower()]

    for record in records:
        uplink = record.uplink
        if uplink.kind == "media" and uplink.media_id is not None:
            topic = f"{PREFIX}/{uplink.device_id}/media/{renamed(uplink.media_id)}/{uplink.seq}"
            yield replace(record, topic=topic)
        elif uplink.kind == "report":
            yield replace(record, payload=_renamed_envelope(record.payload, renamed))
        else:
            yield record


def _renamed_envelope(payload: bytes, renamed: Callable[[str], str]) -> bytes:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload  # the gateway refuses it either way; replay the same bytes
    if not isinstance(body, dict):
        return payload
    media = [entry for entry in _list(body.get("media")) if isinstance(entry, dict)]
    changed = False
    for holder, key in [(body, "report_id"), *((entry, "media_id") for entry in media)]:
        old = holder.get(key)
        new = renamed(old) if isinstance(old, str) else old
        if new != old:
            holder[key] = new
            changed = True
    # Re-encoded only if an id changed, so an envelope left alone keeps its exact bytes.
    return orjson.dumps(body) if changed else payload


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
