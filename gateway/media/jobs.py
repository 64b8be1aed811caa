"""Media jobs: one original in the spool, its derivatives out beside it. Run in a worker
process (`gateway.media.pool`); everything here is picklable and returns a result rather
than raising for bad media."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import MediaError
from gateway.media.photo import PhotoSettings, render_photo
from gateway.media.voice import VoiceSettings, transcode_voice

# Derivative names: the last part of their object key, and their spool file's suffix.
DISPLAY, THUMBNAIL, VOICE = "display.jpg", "thumb.jpg", "voice.opus"
MIME = {DISPLAY: "image/jpeg", THUMBNAIL: "image/jpeg", VOICE: "audio/ogg"}
DERIVATIVE_NAMES = tuple(MIME)


@dataclass(frozen=True, slots=True)
class MediaJob:
    media_id: str
    kind: str  # "photo" or "voice"
    mime: str
    source: Path
    photo: PhotoSettings = field(default_factory=PhotoSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)

    def output(self, name: str) -> Path:
        return derivative_path(self.source, name)


@dataclass(frozen=True, slots=True)
class Derived:
    media_id: str
    derivatives: list[dict[str, Any]]  # name, mime, bytes, sha256 and width/height or duration
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Refused:
    media_id: str
    reason: str
    message: str


def derivative_path(source: Path, name: str) -> Path:
    return source.with_name(f"{source.name}.{name}")


def run(job: MediaJob) -> Derived | Refused:
    try:
        if job.kind == "photo":
            return _photo(job)
        return _voice(job)
    except MediaError as error:
        return Refused(job.media_id, error.reason.value, error.detail)


def _photo(job: MediaJob) -> Derived:
    with job.source.open("rb") as source:
        result = render_photo(source, job.photo)
    derivatives = [
        _write(job.output(name), rendition.data)
        | {"width": rendition.width, "height": rendition.height}
        for name, rendition in ((DISPLAY, result.display), (THUMBNAIL, result.thumbnail))
    ]
    return Derived(job.media_id, _named(derivatives, (DISPLAY, THUMBNAIL)), result.metadata())


def _voice(job: MediaJob) -> Derived:
    with job.source.open("rb") as source:
        result = transcode_voice(source, job.mime, job.voice)
    derivative = _write(job.output(VOICE), result.data) | {
        "duration_s": round(result.duration_s, 3)
    }
    return Derived(job.media_id, _named([derivative], (VOICE,)), result.metadata())


def _named(derivatives: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"name": name, "mime": MIME[name]} | item
        for name, item in zip(names, derivatives, strict=True)
    ]


def _write(path: Path, data: bytes) -> dict[str, Any]:
    """Durably, before the verdict that names it is recorded."""
    partial = path.with_name(path.name + ".part")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
