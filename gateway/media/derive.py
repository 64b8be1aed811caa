"""One media job in a worker process (`gateway.media.pool`): decode the original in the
spool, make its derivatives, write them beside it. Returns a result rather than raising
for bad media."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, BinaryIO

from gateway.errors import MediaError, Reason
from gateway.media.jobs import (
    DISPLAY,
    THUMBNAIL,
    VOICE,
    DerivedFile,
    MediaDerived,
    MediaJob,
    MediaRefused,
    MediaResult,
)
from gateway.media.photo import render_photo
from gateway.media.voice import transcode_voice

# A derivative made but not yet written: its name, bytes and measures.
_Made = tuple[str, bytes, dict[str, Any]]


def run(job: MediaJob) -> MediaResult:
    """Decode, derive and write one job's files.

    Bad media come back as `MediaRefused`, whatever the decoder raised: a decoder tripping
    over hostile input it should have refused must reject that one file, not fail the
    whole batch forever. `OSError` from the spool itself (opening the original, writing
    a derivative: a full disk) is the machine's fault, not the terminal's, so it
    propagates and the step retries the batch later.
    """
    with job.source.open("rb") as source:
        try:
            made, metadata = _photo(source, job) if job.kind == "photo" else _voice(source, job)
        except MediaError as error:
            return MediaRefused(job.media_id, error.reason.value, error.detail)
        except Exception as error:  # noqa: BLE001 - see the docstring
            detail = f"{type(error).__name__}: {error}"[:300]
            return MediaRefused(job.media_id, Reason.MEDIA_DECODER_FAILED.value, detail)
    files = tuple(
        DerivedFile(name, _MIME[name], *_write(job.output(name), data), **measures)
        for name, data, measures in made
    )
    return MediaDerived(job.media_id, files, metadata)


_MIME = {DISPLAY: "image/jpeg", THUMBNAIL: "image/jpeg", VOICE: "audio/ogg"}


def _photo(source: BinaryIO, job: MediaJob) -> tuple[list[_Made], dict[str, Any]]:
    result = render_photo(source, job.photo)
    made = [
        (name, rendition.data, {"width": rendition.width, "height": rendition.height})
        for name, rendition in ((DISPLAY, result.display), (THUMBNAIL, result.thumbnail))
    ]
    return made, result.metadata()


def _voice(source: BinaryIO, job: MediaJob) -> tuple[list[_Made], dict[str, Any]]:
    result = transcode_voice(source, job.mime, job.voice)
    return [(VOICE, result.data, {"duration_s": round(result.duration_s, 3)})], result.metadata()


def _write(path: Path, data: bytes) -> tuple[int, str]:
    """Durably, before the verdict that names it is recorded; returns its size and SHA-256."""
    partial = path.with_name(path.name + ".part")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return len(data), hashlib.sha256(data).hexdigest()
