"""What the photo and voice stages take: plain values, picklable into a worker process,
with no import beyond the standard library (a worker loads nothing it does not use).
`gateway.media.settings` makes them from the config's `[media]`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PhotoSettings:
    display_px: int = 1600  # long edge of the display derivative
    thumb_px: int = 320  # long edge of the thumbnail
    quality: int = 80
    thumb_quality: int = 75
    # A 108-MP phone sensor is the largest in the field; anything beyond is refused
    # before decoding (a decompression bomb declares billions of pixels in a few bytes).
    # Pillow refuses on its own above 178,956,970 (twice its MAX_IMAGE_PIXELS), so a
    # setting beyond that has no effect.
    max_pixels: int = 120_000_000


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    bitrate: int = 16_000
    # libopus effort, 0-10. At 16 kbit/s speech the lowest settings cost about half of
    # the default (10) and still encode SILK speech well (docs/decisions.md).
    complexity: int = 0
    frame_ms: int = 60  # long frames: fewer packets, less overhead, fine for notes
    max_duration_s: float = 600.0  # wire-v1: a voice note is at most 10 minutes
    timeout_s: float = 60.0
