"""Voice notes: AMR-NB (`audio/amr`, the RFC 4867 file format, 8 kHz mono) as handsets record.

A `VoiceBank` synthesizes and encodes one long speech-like track once (PyAV's
libopencore_amrnb). AMR-NB frames are 20 ms and self-delimiting, so each note is the
file header plus a run of the track's frames: a valid .amr file of its own length and
bytes, with no encoder call per report.
"""

from __future__ import annotations

import io
import math
import random
from array import array
from dataclasses import dataclass

import av

from firmware_sim.media import MediaFile

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # AMR-NB codes 20 ms frames
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
BIT_RATE = 12200  # the top AMR-NB mode, what handsets use for voice memos
AMR_MAGIC = b"#!AMR\n"
# Speech bytes after the table-of-contents byte, by frame type (RFC 4867, 5.3); 8 is
# comfort noise, 15 "no data"; 9-14 never occur in AMR-NB files from this encoder.
_FRAME_BYTES = (12, 13, 15, 17, 19, 20, 26, 31, 5, -1, -1, -1, -1, -1, -1, 0)
_TABLE = 512  # samples per wavetable period
# Formant frequencies (F1, F2, F3, Hz) of five vowels, rounded from phonetics tables.
_VOWELS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (300, 870, 2240),
    (530, 1840, 2480),
    (570, 840, 2410),
)


@dataclass(frozen=True, slots=True)
class VoiceBank:
    frames: tuple[bytes, ...]  # AMR-NB frames, each with its TOC byte

    @classmethod
    def generate(cls, seconds: float = 24.0, seed: int | str = 0) -> VoiceBank:
        rng = random.Random(f"voice-bank/{seed}")
        return cls(tuple(split_frames(encode_amr_nb(synthesize_speech(seconds, rng)))))

    @property
    def seconds(self) -> float:
        return len(self.frames) * FRAME_S

    def note(self, rng: random.Random, min_s: float = 3.0, max_s: float = 8.0) -> MediaFile:
        """A note of `min_s`-`max_s` seconds cut from a random place in the track."""
        count = min(round(rng.uniform(min_s, max_s) / FRAME_S), len(self.frames))
        start = rng.randrange(len(self.frames) - count + 1)
        return MediaFile.of(
            "voice", "audio/amr", AMR_MAGIC + b"".join(self.frames[start : start + count])
        )


def split_frames(amr: bytes) -> list[bytes]:
    """The frames of an AMR-NB file, each with its table-of-contents byte."""
    if not amr.startswith(AMR_MAGIC):
        raise ValueError("not an AMR-NB file: no #!AMR header")
    frames, position = [], len(AMR_MAGIC)
    while position < len(amr):
        size = _FRAME_BYTES[(amr[position] >> 3) & 0x0F]
        if size < 0 or position + 1 + size > len(amr):
            raise ValueError(f"bad AMR-NB frame at byte {position}")
        frames.append(amr[position : position + 1 + size])
        position += 1 + size
    return frames


def encode_amr_nb(samples: array[int]) -> bytes:
    """16-bit mono PCM at 8 kHz into an .amr file, the last frame padded with silence."""
    pcm = samples.tobytes()
    pcm += bytes(-len(pcm) % (2 * FRAME_SAMPLES))
    return encode_audio(
        pcm, SAMPLE_RATE, "libopencore_amrnb", "amr", frame_samples=FRAME_SAMPLES, bit_rate=BIT_RATE
    )


def encode_audio(
    pcm: bytes,
    rate: int,
    codec: str,
    container: str,
    *,
    layout: str = "mono",
    frame_samples: int = 1024,
    bit_rate: int | None = None,
) -> bytes:
    """Interleaved 16-bit native-endian PCM through one of FFmpeg's encoders (PyAV) into
    `container`: `frame_samples` per channel in each frame given to it, the last one
    shorter if the samples run out (the benchmarks and the tests encode with this too)."""
    channels = av.AudioLayout(layout).nb_channels
    step = 2 * channels * frame_samples
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate)
        if not isinstance(stream, av.AudioStream):
            raise TypeError(f"{codec} is no audio encoder")
        stream.layout = layout
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        for offset in range(0, len(pcm), step):
            block = pcm[offset : offset + step]
            frame = av.AudioFrame(format="s16", layout=layout, samples=len(block) // 2 // channels)
            frame.planes[0].update(block)
            frame.sample_rate = rate
            frame.pts = offset // 2 // channels
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def synthesize_speech(seconds: float, rng: random.Random) -> array[int]:
    """Syllables of voiced sound in words and pauses, with a falling, wavering pitch.

    Each syllable reads a vowel's wavetable (harmonics weighted by its formants) at the
    speaker's pitch, under a rise-and-fall envelope; a little hiss runs throughout."""
    tables = [_vowel_table(formants) for formants in _VOWELS]
    total = int(seconds * SAMPLE_RATE)
    out = array("h")
    base_pitch = rng.uniform(105, 210)  # a lower or higher voice
    phase = 0.0
    while len(out) < total:
        for syllable in range(rng.randint(1, 4)):  # a word
            table = rng.choice(tables)
            length = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
            pitch = base_pitch * rng.uniform(0.9, 1.15) * (1 - 0.04 * syllable)
            loudness = rng.uniform(5000, 11000)
            for i in range(length):
                phase = (phase + pitch * (1 + 0.01 * math.sin(i * 0.03)) / SAMPLE_RATE) % 1.0
                envelope = math.sin(math.pi * i / length)
                out.append(
                    _clip(loudness * envelope * table[int(phase * _TABLE)] + rng.gauss(0, 150))
                )
        for _ in range(int(rng.uniform(0.05, 0.35) * SAMPLE_RATE)):  # the pause after it
            out.append(_clip(rng.gauss(0, 150)))
    del out[total:]
    return out


def _vowel_table(formants: tuple[int, int, int], pitch: float = 150.0) -> list[float]:
    weights = [
        sum(math.exp(-(((h * pitch - f) / 120) ** 2)) for f in formants) / h**0.5
        for h in range(1, int(3600 / pitch) + 1)
    ]
    table = [
        sum(w * math.sin(2 * math.pi * h * k / _TABLE) for h, w in enumerate(weights, start=1))
        for k in range(_TABLE)
    ]
    peak = max(abs(value) for value in table) or 1.0
    return [value / peak for value in table]


def _clip(value: float) -> int:
    return max(-32768, min(32767, int(value)))
