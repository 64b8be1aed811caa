"""Voice notes: AMR-NB, AMR-WB, AAC/M4A or WAV in, Opus in Ogg out (mono, about 16 kbit/s,
tuned for speech). Pure: bytes (or a file) and settings in, bytes and metadata out.

FFmpeg's libraries do the work in-process through PyAV (docs/decisions.md has the
measurement against the command line). The duration is counted from the decoded samples,
not taken from the container. Every decode is bounded: by the maximum duration (counted
as it decodes, so a ten-hour file costs no more than the limit) and by a time limit
checked per packet; the worker pool adds a hard limit around the whole call.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

import av
import numpy as np
from av.audio.resampler import AudioResampler

from gateway.errors import MediaError, Reason

# Container names FFmpeg expects for each accepted MIME type; a file whose contents
# disagree is probed again without the hint (and flagged).
_CONTAINERS = {
    "audio/amr": "amr",
    "audio/amr-wb": "amr",
    "audio/aac": "aac",
    "audio/mp4": "mp4",
    "audio/wav": "wav",
}
NARROWBAND_HZ = 8_000  # AMR-NB: nothing above 4 kHz to keep
WIDEBAND_HZ = 16_000  # AMR-WB and better: speech needs nothing above 8 kHz
SILENCE_DBFS = -50.0


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    bitrate: int = 16_000
    # libopus effort, 0-10. At 16 kbit/s speech the lowest settings cost about half of
    # the default (10) and still encode SILK speech well (docs/decisions.md).
    complexity: int = 0
    frame_ms: int = 60  # long frames: fewer packets, less overhead, fine for notes
    max_duration_s: float = 600.0  # wire-v1: a voice note is at most 10 minutes
    timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class VoiceResult:
    data: bytes  # Ogg Opus
    duration_s: float
    container: str
    codec: str
    sample_rate: int
    channels: int
    output_rate: int
    peak_dbfs: float
    container_mismatch: bool
    decode_errors: int

    def metadata(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 3),
            "container": self.container,
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "silent": self.peak_dbfs < SILENCE_DBFS,
            "peak_dbfs": round(self.peak_dbfs, 1),
            "container_mismatch": self.container_mismatch,
            "decode_errors": self.decode_errors,
        }


def transcode_voice(
    source: bytes | BinaryIO, mime: str | None = None, settings: VoiceSettings | None = None
) -> VoiceResult:
    """Transcode a voice note, or refuse with a `MediaError` and its reason."""
    settings = settings or VoiceSettings()
    data = source if isinstance(source, bytes) else source.read()
    if not data:
        raise MediaError(Reason.VOICE_EMPTY, "the file is empty")
    container, mismatch = _open(data, _CONTAINERS.get(mime or ""))
    with container:
        streams = container.streams.audio
        if not streams:
            raise MediaError(Reason.VOICE_NO_AUDIO, f"{container.format.name} without audio")
        stream = streams[0]
        return _transcode(container, stream, mismatch, settings)


def _open(data: bytes, hint: str | None) -> tuple[Any, bool]:
    if hint is not None:
        try:
            return av.open(io.BytesIO(data), format=hint), False
        except (av.error.FFmpegError, ValueError):
            pass  # the contents are not what the type says: let FFmpeg look for itself
    try:
        return av.open(io.BytesIO(data)), hint is not None
    except (av.error.FFmpegError, ValueError) as error:
        raise MediaError(Reason.VOICE_UNREADABLE, str(error)[:200]) from None


def _transcode(container: Any, stream: Any, mismatch: bool, settings: VoiceSettings) -> VoiceResult:
    rate_in = int(stream.codec_context.sample_rate or 0)
    rate_out = NARROWBAND_HZ if 0 < rate_in <= NARROWBAND_HZ else WIDEBAND_HZ
    out = io.BytesIO()
    output = av.open(out, "w", format="ogg")
    encoder = output.add_stream(
        "libopus",
        rate=rate_out,
        options={
            "application": "voip",
            "compression_level": str(settings.complexity),
            "frame_duration": str(settings.frame_ms),
        },
    )
    encoder.bit_rate = settings.bitrate
    encoder.layout = "mono"
    # Frames of one Opus packet each: a tenth of the Python calls of 20 ms AMR frames.
    resampler = AudioResampler(
        format="s16", layout="mono", rate=rate_out, frame_size=rate_out * settings.frame_ms // 1000
    )
    deadline = time.monotonic() + settings.timeout_s
    max_samples = settings.max_duration_s * rate_out
    samples, peak, errors = 0, 0, 0

    def encode(frames: list[Any]) -> None:
        nonlocal samples, peak
        for frame in frames:
            pcm = frame.to_ndarray()
            if pcm.size:
                peak = max(peak, int(np.abs(pcm.astype(np.int32)).max()))
            samples += frame.samples
            for packet in encoder.encode(frame):
                output.mux(packet)

    with output:
        for packet in container.demux(stream):
            if time.monotonic() > deadline:
                raise MediaError(Reason.MEDIA_TIMEOUT, f"over {settings.timeout_s} s")
            try:
                decoded = packet.decode()
            except (av.error.FFmpegError, ValueError):
                errors += 1  # a damaged packet: skip it, as FFmpeg's command line does
                continue
            for frame in decoded:
                encode(resampler.resample(frame))
            if samples > max_samples:
                raise MediaError(
                    Reason.VOICE_TOO_LONG, f"longer than {settings.max_duration_s:.0f} s"
                )
        encode(resampler.resample(None))
        if samples == 0:
            raise MediaError(Reason.VOICE_EMPTY, f"no samples decoded ({errors} bad packets)")
        for packet in encoder.encode(None):
            output.mux(packet)
    peak_dbfs = 20 * np.log10(peak / 32768) if peak else -120.0
    return VoiceResult(
        data=out.getvalue(),
        duration_s=samples / rate_out,
        container=container.format.name,
        codec=stream.codec_context.name,
        sample_rate=rate_in,
        channels=int(stream.codec_context.channels or 0),
        output_rate=rate_out,
        peak_dbfs=float(peak_dbfs),
        container_mismatch=mismatch,
        decode_errors=errors,
    )
