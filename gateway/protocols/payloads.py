"""Typed payloads of the terminal wire contract (wire-v1), uplink and downlink.

These models are the single source of the JSON Schemas in `docs/asyncapi.yaml`.
They validate shape only; what depends on configuration (size limits) is checked
against `WireLimits` passed in the validation context, and what depends on state
(a known report, a known device) is the intake's business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.errors import Reason

KiB = 1024
MiB = 1024 * KiB

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"

PHOTO_MIMES = ("image/jpeg", "image/png", "image/heic")
VOICE_MIMES = ("audio/amr", "audio/amr-wb", "audio/aac", "audio/mp4", "audio/wav")


@dataclass(frozen=True, slots=True)
class WireLimits:
    """Bounds on what a terminal may send. Defaults are wire-v1's own numbers."""

    envelope_bytes: int = 64 * KiB  # wire-v1: an envelope is at most 64 KiB
    status_bytes: int = 4 * KiB  # a status is a handful of fields
    track_bytes: int = 256 * KiB  # ten minutes of 1 Hz fixes with room to spare
    chunk_bytes: int = 256 * KiB  # wire-v1: a chunk is at most 256 KiB
    photo_bytes: int = 20 * MiB  # wire-v1: a photo is at most 20 MiB
    # Ten minutes of 16-bit 16 kHz WAV (the bulkiest accepted voice format) is 19.2 MB.
    voice_bytes: int = 20 * MiB
    media_per_report: int = 8  # three photos and a voice note is the field's norm
    chunks_per_media: int = 4096  # bounds the manifest's chunk_bytes from below
    nmea_sentences: int = 64  # a few epochs of RMC/GGA/GSA/GSV from one receiver
    track_fixes: int = 3600  # an hour of 1 Hz fixes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _limits(info: ValidationInfo) -> WireLimits:
    context = info.context
    if isinstance(context, dict):
        limits = context.get("limits")
        if isinstance(limits, WireLimits):
            return limits
    return WireLimits()


def reject(reason: Reason, message: str) -> PydanticCustomError:
    """A validation error that carries one of our reason codes as its type."""
    return PydanticCustomError(reason.value, message)


class Fix(_Strict):
    """A WGS-84 position as the terminal's receiver (or gpsd) reported it."""

    lat: Annotated[float, Field(ge=-90, le=90, description="latitude, degrees")]
    lon: Annotated[float, Field(ge=-180, le=180, description="longitude, degrees")]
    accuracy_m: Annotated[float | None, Field(ge=0, description="horizontal accuracy")] = None
    time: Annotated[AwareDatetime | None, Field(description="time of the fix")] = None
    alt_m: Annotated[float | None, Field(ge=-1000, le=10000)] = None
    speed_mps: Annotated[float | None, Field(ge=0, le=1000)] = None
    course_deg: Annotated[float | None, Field(ge=0, lt=360)] = None
    hdop: Annotated[float | None, Field(ge=0, le=100)] = None
    satellites: Annotated[int | None, Field(ge=0, le=255)] = None
    mode: Annotated[Literal[2, 3] | None, Field(description="2: 2D fix, 3: 3D fix")] = None


class MediaManifest(_Strict):
    """One media file of a report, announced before (or after) its chunks."""

    media_id: Annotated[str, Field(pattern=UUID_PATTERN)]
    kind: Literal["photo", "voice"]
    mime: str
    bytes: Annotated[int, Field(ge=1)]
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)]
    chunk_bytes: Annotated[int, Field(ge=1)]

    @property
    def chunk_count(self) -> int:
        return math.ceil(self.bytes / self.chunk_bytes)

    def expected_chunk_size(self, seq: int) -> int:
        """Length of chunk `seq`: `chunk_bytes` for all but the last, the rest for the last."""
        if seq < self.chunk_count - 1:
            return self.chunk_bytes
        return self.bytes - self.chunk_bytes * (self.chunk_count - 1)

    @model_validator(mode="after")
    def _check_limits(self, info: ValidationInfo) -> MediaManifest:
        limits = _limits(info)
        allowed = PHOTO_MIMES if self.kind == "photo" else VOICE_MIMES
        if self.mime not in allowed:
            raise reject(Reason.MEDIA_MIME, f"{self.kind} cannot be {self.mime!r}")
        cap = limits.photo_bytes if self.kind == "photo" else limits.voice_bytes
        if self.bytes > cap:
            raise reject(Reason.MEDIA_TOO_LARGE, f"{self.bytes} bytes > {cap}")
        if self.chunk_bytes > limits.chunk_bytes:
            raise reject(
                Reason.CHUNK_TOO_LARGE, f"chunk_bytes {self.chunk_bytes} > {limits.chunk_bytes}"
            )
        if self.chunk_count > limits.chunks_per_media:
            raise reject(
                Reason.MEDIA_TOO_MANY_CHUNKS,
                f"{self.chunk_count} chunks > {limits.chunks_per_media}",
            )
        return self


class ReportEnvelope(_Strict):
    """A problem report: the form, the fix and the manifest of its media."""

    v: Literal[1]
    report_id: Annotated[str, Field(pattern=UUID_PATTERN)]
    created_at: AwareDatetime
    kind: Literal["component", "event"]
    class_code: Annotated[str, Field(pattern=r"^[0-9]{4,5}$")]
    object_code: Annotated[str | None, Field(pattern=r"^[0-9]{16,17}$")] = None
    description: Annotated[str, Field(min_length=1, max_length=500)]
    inspector_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    device_id: Annotated[str | None, Field(pattern=DEVICE_ID_PATTERN)] = None
    task_id: Annotated[
        str | None,
        Field(
            pattern=UUID_PATTERN,
            description="Set on a verification report: the task_id of the task it answers "
            "(a task sent to this device). The report is filed under the task's case, and "
            "its `accepted` ack carries that case's number; an unknown task is rejected "
            "with `task.unknown`.",
        ),
    ] = None
    fix: Fix | None = None
    nmea: Annotated[list[Annotated[str, Field(max_length=120)]] | None, Field(min_length=1)] = None
    media: list[MediaManifest] = []

    @model_validator(mode="after")
    def _check_report(self, info: ValidationInfo) -> ReportEnvelope:
        limits = _limits(info)
        if self.fix is None and self.nmea is None:
            raise reject(Reason.ENVELOPE_NO_LOCATION, "give fix, nmea or both")
        if self.nmea is not None and len(self.nmea) > limits.nmea_sentences:
            raise reject(
                Reason.FIELD_INVALID,
                f"nmea has {len(self.nmea)} sentences > {limits.nmea_sentences}",
            )
        if len(self.media) > limits.media_per_report:
            raise reject(Reason.MEDIA_TOO_MANY, f"{len(self.media)} > {limits.media_per_report}")
        ids = [m.media_id.lower() for m in self.media]
        if len(set(ids)) != len(ids):
            raise reject(Reason.MEDIA_DUPLICATE_ID, "media ids must be unique in a report")
        return self


class Status(_Strict):
    """The terminal's retained presence; its last will publishes `{"online": false}`."""

    online: bool
    battery_pct: Annotated[float | None, Field(ge=0, le=100)] = None
    firmware: Annotated[str | None, Field(max_length=64)] = None
    signal_dbm: Annotated[int | None, Field(ge=-150, le=0)] = None


class Track(_Strict):
    """A batch of the inspector's patrol fixes."""

    fixes: Annotated[list[Fix], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_size(self, info: ValidationInfo) -> Track:
        cap = _limits(info).track_fixes
        if len(self.fixes) > cap:
            raise reject(Reason.FIELD_INVALID, f"track has {len(self.fixes)} fixes > {cap}")
        return self


# ---- downlink ---------------------------------------------------------------------------


class ReasonBody(_Strict):
    code: str
    message: str
    field: str | None = None


class Ack(_Strict):
    """The gateway's answer about one report. `incomplete` with an empty `missing` answers a
    re-sent report whose media are all in: it is being registered; `accepted` follows."""

    report_id: str
    status: Literal["accepted", "incomplete", "rejected"]
    case_no: str | None = None
    reason: ReasonBody | None = None
    missing: dict[str, list[int]] | None = None


class ErrorNotice(_Strict):
    """An uplink message that cannot be tied to a report (a bad chunk, status or envelope)."""

    topic: str
    reason: ReasonBody
    media_id: str | None = None
    seq: int | None = None


class TaskLocation(_Strict):
    lat: float
    lon: float
    address: str | None = None


class Task(_Strict):
    """Work for the inspector, e.g. an on-site verification (核查) of a handled case."""

    task_id: Annotated[str, Field(pattern=UUID_PATTERN)]
    case_no: str
    kind: Literal["verify", "inspect"]
    location: TaskLocation | None = None
    deadline: AwareDatetime | None = None
    note: Annotated[str | None, Field(max_length=500)] = None


class TerminalConfig(_Strict):
    """Settings the terminal should use; retained on its config topic."""

    chunk_bytes: int
    photo_max_px: int
    upload_windows: list[str] = []
