"""`[media]`: the worker pool, and what the photo and voice stages make (the stages take
their own plain `PhotoSettings` and `VoiceSettings`, made here from this section)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.media.stage_settings import PhotoSettings, VoiceSettings
from gateway.settings import PositiveFloat, Section


class MediaSettings(Section):
    """Photo and voice derivatives, made in a pool of worker processes."""

    workers: Annotated[int, Field(ge=0, le=64)] = 0  # 0: one per CPU this process may use
    batch: Annotated[int, Field(ge=1, le=1000)] = 8  # reports whose media are in the pool at once
    timeout_s: PositiveFloat = 60.0  # per media file, hard: the worker is killed past it
    display_px: Annotated[int, Field(ge=64, le=8192)] = 1600
    thumb_px: Annotated[int, Field(ge=16, le=1024)] = 320
    photo_quality: Annotated[int, Field(ge=30, le=95)] = 80
    thumb_quality: Annotated[int, Field(ge=30, le=95)] = 75
    max_pixels: Annotated[int, Field(ge=1_000_000)] = 120_000_000
    voice_bitrate: Annotated[int, Field(ge=6_000, le=64_000)] = 16_000
    voice_complexity: Annotated[int, Field(ge=0, le=10)] = 0
    voice_frame_ms: Literal[20, 40, 60] = 60
    voice_max_duration_s: PositiveFloat = 600.0

    def photo(self) -> PhotoSettings:
        return PhotoSettings(
            display_px=self.display_px,
            thumb_px=self.thumb_px,
            quality=self.photo_quality,
            thumb_quality=self.thumb_quality,
            max_pixels=self.max_pixels,
        )

    def voice(self) -> VoiceSettings:
        return VoiceSettings(
            bitrate=self.voice_bitrate,
            complexity=self.voice_complexity,
            frame_ms=self.voice_frame_ms,
            max_duration_s=self.voice_max_duration_s,
            timeout_s=self.timeout_s,
        )
