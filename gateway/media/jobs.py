"""Media jobs and their results: plain, picklable data that crosses into a worker process
and back (`gateway.media.derive` does the work). Nothing here decodes anything, so the
pipeline and the normalizer read results without loading a codec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gateway.media.stage_settings import PhotoSettings, VoiceSettings

# Derivative names: the last part of their object key, and their spool file's suffix.
DISPLAY: Final = "display.jpg"
THUMBNAIL: Final = "thumb.jpg"
VOICE: Final = "voice.opus"
DERIVATIVE_NAMES = (DISPLAY, THUMBNAIL, VOICE)


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
class DerivedFile:
    """One derivative, written beside its original: what the report will say of it."""

    name: str  # one of DERIVATIVE_NAMES
    mime: str
    bytes: int
    sha256: str
    width: int | None = None  # photos
    height: int | None = None
    duration_s: float | None = None  # voice notes


@dataclass(frozen=True, slots=True)
class MediaDerived:
    media_id: str
    files: tuple[DerivedFile, ...]
    # What the stage read from the original (gateway.media.photo / voice `metadata()`);
    # checked against the report's model when it joins the report.
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MediaRefused:
    media_id: str
    reason: str
    message: str


MediaResult = MediaDerived | MediaRefused


def derivative_path(source: Path, name: str) -> Path:
    return source.with_name(f"{source.name}.{name}")
