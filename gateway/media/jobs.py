"""Media jobs: one original in the spool, its derivatives out beside it. Run in a worker
process (`gateway.media.pool`); everything here is picklable and returns a result rather
than raising for bad media."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gateway.errors import MediaError, Reason
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
    """Decode, derive and write one job's files.

    Bad media come back as `Refused`, whatever the decoder raised: a decoder tripping
    over hostile input it should have refused must reject that one file, not fail the
    whole batch forever. `OSError` from the spool itself (opening the original, writing
    a derivative: a full disk) is the machine's fault, not the terminal's, so it
    propagates and the step retries the batch later.
    """
    with job.source.open("rb") as source:
        try:
            derive = _photo if job.kind == "photo" else _voice
            files, metadata = derive(source, job)
        except MediaError as error:
            return Refused(job.media_id, error.reason.value, error.detail)
        except Exception as error:  # noqa: BLE001 - see the docstring
            detail = f"{type(error).__name__}: {error}"[:300]
            return Refused(job.media_id, Reason.MEDIA_DECODER_FAILED.value, detail)
    derivatives = [
        {"name": name, "mime": MIME[name]} | _write(job.output(name), data) | measures
        for name, data, measures in files
    ]
    return Derived(job.media_id, derivatives, metadata)


# A derived file before it is written: its name, its bytes, its measures.
Rendered = tuple[str, bytes, dict[str, Any]]


def _photo(source: BinaryIO, job: MediaJob) -> tuple[list[Rendered], dict[str, Any]]:
    result = render_photo(source, job.photo)
    files = [
        (name, rendition.data, {"width": rendition.width, "height": rendition.height})
        for name, rendition in ((DISPLAY, result.display), (THUMBNAIL, result.thumbnail))
    ]
    return files, result.metadata()


def _voice(source: BinaryIO, job: MediaJob) -> tuple[list[Rendered], dict[str, Any]]:
    result = transcode_voice(source, job.mime, job.voice)
    return [(VOICE, result.data, {"duration_s": round(result.duration_s, 3)})], result.metadata()


def _write(path: Path, data: bytes) -> dict[str, Any]:
    """Durably, before the verdict that names it is recorded."""
    partial = path.with_name(path.name + ".part")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
