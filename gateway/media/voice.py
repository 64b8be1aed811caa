"""Voice notes: AMR-NB, AMR-WB, AAC/M4A or WAV in, Opus in Ogg out (mono, about 16 kbit/s,
tuned for speech). Pure: bytes (or a file) and settings in, bytes and metadata out.

FFmpeg's libraries do the work in-process through PyAV (docs/decisions.md has the
measurement against the command line). The duration is counted from the decoded samples,
not taken from the container. Every decode is bounded: by the maximum duration (counted
as it decodes, so a ten-hour file costs no more than the limit) and by a time limit
checked per packet; the worker pool adds a hard limit around the whole call.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

import av
import numpy as np
from av.audio.resampler import AudioResampler

from gateway.errors import MediaError, Reason
from gateway.media.stage_settings import VoiceSettings

# Container names FFmpeg gives each accepted MIME type. FFmpeg probes the contents first
# (some demuxers, ADTS's among them, accept any bytes when forced, so a forced hint would
# turn a WAV sent as audio/aac into "no samples"); the hint is the fallback for what the
# probe cannot place, and a probe that disagrees with it is flagged.
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
# The highest input rate taken: no recorder writes more, and the resampler's filter grows
# with the ratio (a WAV header claiming 134 MHz costs seconds; 2^31 Hz, an allocation error).
MAX_INPUT_HZ = 192_000
_SAMPLES = "fltp"  # 32-bit float, as FFmpeg's AMR and AAC decoders give it


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
        """What the report's `VoiceMetadata` says of the original (gateway.normalize.model)."""
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
        if stream.codec_context is None:  # a codec FFmpeg cannot decode (or a damaged tag)
            raise MediaError(Reason.VOICE_UNREADABLE, "an audio stream FFmpeg cannot decode")
        return _transcode(container, stream, mismatch, settings)


def _open(data: bytes, hint: str | None) -> tuple[Any, bool]:
    try:
        container = av.open(io.BytesIO(data))
    except (av.error.FFmpegError, ValueError) as error:
        if hint is None:
            raise MediaError(Reason.VOICE_UNREADABLE, str(error)[:200]) from None
        try:
            return av.open(io.BytesIO(data), format=hint), False
        except (av.error.FFmpegError, ValueError):
            raise MediaError(Reason.VOICE_UNREADABLE, str(error)[:200]) from None
    return container, hint is not None and hint not in container.format.name.split(",")


def _transcode(container: Any, stream: Any, mismatch: bool, settings: VoiceSettings) -> VoiceResult:
    rate_in = int(stream.codec_context.sample_rate or 0)
    if rate_in > MAX_INPUT_HZ:
        raise MediaError(Reason.VOICE_UNREADABLE, f"sample rate {rate_in} Hz")
    rate_out = NARROWBAND_HZ if 0 < rate_in <= NARROWBAND_HZ else WIDEBAND_HZ
    out = io.BytesIO()
    # Bit-exact: the Ogg stream's serial number is otherwise random, so the same note made
    # twice (a cluster instance taking over a dead one's batch) would differ in its bytes
    # and its SHA-256 from what the report already names.
    output = av.open(out, "w", format="ogg", options={"fflags": "+bitexact"})
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
    # Floats, as decoders give them: with s16 (PyAV's default for libopus) the samples
    # went through a converter first (a tenth more time for an AMR note).
    encoder.format = "flt"
    # Frames of one Opus packet each: a third of the Python calls of 20 ms AMR frames.
    mixdown = _Mixdown(rate_out, rate_out * settings.frame_ms // 1000)
    deadline = time.monotonic() + settings.timeout_s
    max_samples = settings.max_duration_s * rate_out
    samples, peak, errors = 0, 0.0, 0

    def encode(frames: list[Any]) -> None:
        nonlocal samples, peak
        for frame in frames:
            if frame.samples:  # mono float: one plane, read in place
                pcm = np.frombuffer(frame.planes[0], dtype=np.float32, count=frame.samples)
                peak = max(peak, float(pcm.max()), -float(pcm.min()))
            # Our own clock: the source's timestamps may jump or run backwards, which
            # the Ogg muxer refuses; a voice note's time is its samples.
            frame.pts = samples
            samples += frame.samples
            for packet in encoder.encode(frame):
                output.mux(packet)

    with output:
        for packet in _packets(container, stream):
            if time.monotonic() > deadline:
                raise MediaError(Reason.MEDIA_TIMEOUT, f"over {settings.timeout_s} s")
            if packet is None:
                errors += 1  # the container broke off: keep what came before, as FFmpeg does
                break
            try:
                decoded = packet.decode()
            except (av.error.FFmpegError, ValueError):
                errors += 1  # a damaged packet: skip it, as FFmpeg's command line does
                continue
            for frame in decoded:
                encode(mixdown.frames(frame))
            if samples > max_samples:
                raise MediaError(
                    Reason.VOICE_TOO_LONG, f"longer than {settings.max_duration_s:.0f} s"
                )
        encode(mixdown.rest())
        errors += mixdown.errors
        if samples == 0:
            raise MediaError(Reason.VOICE_EMPTY, f"no samples decoded ({errors} bad packets)")
        for packet in encoder.encode(None):
            output.mux(packet)
    peak_dbfs = 20 * np.log10(min(peak, 1.0)) if peak else -120.0  # a float may overshoot
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


class _Mixdown:
    """Decoded frames of any rate and layout in; mono float frames at `rate`, `frame_size`
    samples each (the last one shorter), out. Frames already in that shape (AMR's) go
    straight into a FIFO that cuts them to size; others are resampled first. Frames it
    cannot take are counted as errors."""

    def __init__(self, rate: int, frame_size: int) -> None:
        self.rate, self.frame_size = rate, frame_size
        self.tick = Fraction(1, rate)
        self.fifo = av.AudioFifo()
        self.resampler = self._fresh()
        self.errors = 0

    def _fresh(self) -> AudioResampler:
        return AudioResampler(format=_SAMPLES, layout="mono", rate=self.rate)

    def frames(self, frame: Any) -> list[Any]:
        if not 0 < frame.sample_rate <= MAX_INPUT_HZ:
            self.errors += 1  # a damaged header's rate: nothing to resample from
            return []
        shaped = (
            frame.sample_rate == self.rate
            and frame.format.name == _SAMPLES
            and frame.layout.name == "mono"
        )
        self._queue([frame] if shaped else self._resample(frame))
        return self.fifo.read_many(self.frame_size)

    def _resample(self, frame: Any) -> list[Any]:
        try:
            try:
                return list(self.resampler.resample(frame))
            except ValueError:
                # The decoder changed rate or layout midway (mostly a damaged header): a
                # resampler for the new shape, dropping the few samples the old one held.
                fresh = self._fresh()
                frames = list(fresh.resample(frame))
                self.resampler = fresh
                return frames
        except av.error.FFmpegError:
            self.errors += 1  # a layout it cannot mix down (64 unnamed channels, say)
            return []

    def _queue(self, frames: list[Any]) -> None:
        for frame in frames:
            # The FIFO refuses a change of time base and a jump in the timestamps, which
            # decoders' frames may have; the encoder is given a clock of its own anyway.
            frame.pts, frame.time_base = None, self.tick
            self.fifo.write(frame)

    def rest(self) -> list[Any]:
        """What the resampler and the FIFO hold back, at the end."""
        with contextlib.suppress(av.error.FFmpegError):  # raised if it never took a frame
            self._queue(list(self.resampler.resample(None)))
        return self.fifo.read_many(self.frame_size, partial=True)


def _packets(container: Any, stream: Any) -> Iterator[Any]:
    """The stream's packets, then None if the container could not be read to its end."""
    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            return
        except (av.error.FFmpegError, ValueError):
            yield None
            return
        yield packet
