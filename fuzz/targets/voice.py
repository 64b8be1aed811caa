"""Any bytes as a voice note, through `transcode_voice` with the pipeline's settings. The
input's first line is the MIME type the manifest claimed (the seeds name one); without a
newline there is no claim. Ogg Opus with samples, or a `MediaError` with a voice reason
(or the time limit's `media.timeout`)."""

from __future__ import annotations

from fuzz.invariant import require
from gateway.errors import MediaError, Reason
from gateway.media.settings import MediaSettings
from gateway.media.voice import transcode_voice

SETTINGS = MediaSettings().voice()
_REASONS = {reason for reason in Reason if reason.value.startswith("voice.")} | {
    Reason.MEDIA_TIMEOUT
}


def one_input(data: bytes) -> None:
    head, newline, rest = data.partition(b"\n")
    mime, audio = (head.decode("utf-8", "replace"), rest) if newline else (None, data)
    try:
        result = transcode_voice(audio, mime, SETTINGS)
    except MediaError as error:
        require(error.reason in _REASONS, f"reason {error.reason}")
        require(bool(error.detail), f"{error.reason} without a detail")
        return
    require(result.duration_s > 0, f"duration {result.duration_s}")
    require(result.data.startswith(b"OggS"), "the derivative is no Ogg")
