"""Test media for `bench.media`, generated on the spot with fixed seeds (nothing committed).

A photo-like 12-MP camera JPEG: 4000×3000 as the sensor reads it, EXIF orientation 6 (a
phone held upright), a capture time and a GPS position; smooth gradients, texture, edges
and sensor noise, so the decoder and the resamplers see what a camera gives them. And a
60 s AMR-NB voice note (8 kHz, 12.2 kbit/s) encoded by PyAV's `libopencore_amrnb` from a
speech-like signal: pitched, formant-shaped voiced phrases with pauses and a little noise.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from PIL import Image, TiffImagePlugin

from firmware_sim.voice import encode_audio

PHOTO_SIZE = (4000, 3000)  # as stored; upright it is 3000×4000
PHOTO_QUALITY = 92
ORIENTATION = 6
VOICE_SECONDS = 60
VOICE_RATE = 8_000
AMR_BITRATE = 12_200
AMR_FRAME = 160  # samples per 20 ms AMR frame

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_TAKEN = datetime(2026, 11, 28, 9, 15, 0)  # EXIF times carry no zone
_NANTONG = (31.9802, 120.8943)


def _field(
    rng: np.random.Generator, cells: tuple[int, int], size: tuple[int, int]
) -> NDArray[np.float32]:
    """Smooth random texture: a small grid of noise scaled up bicubically, in [-1, 1]."""
    grid = rng.uniform(0, 255, (cells[1], cells[0])).astype(np.uint8)
    big = Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC)
    return np.asarray(big, dtype=np.float32) / 127.5 - 1


def photo_pixels(seed: int = 12) -> NDArray[np.uint8]:
    """A 3000×4000×3 scene (rows × columns as stored): sky, ground, blocks, noise."""
    rng = np.random.default_rng(seed)
    width, height = PHOTO_SIZE
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    vignette = 1 - 0.35 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)
    clouds = _field(rng, (40, 30), PHOTO_SIZE)
    foliage = _field(rng, (800, 600), PHOTO_SIZE)
    grain = _field(rng, (2000, 1500), PHOTO_SIZE)
    # Stored sideways (orientation 6): the horizon runs down the stored image.
    sky = x < 0.45 + 0.05 * np.sin(7 * y)
    blocks = []
    for _ in range(24):  # buildings, signs, kerbs: hard edges in several colours
        left, top = int(rng.integers(0, width - 400)), int(rng.integers(0, height - 400))
        size = int(rng.integers(60, 900)), int(rng.integers(40, 700))
        blocks.append((left, top, *size, rng.uniform(30, 230, 3)))
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    tints = ((90, 140, 215), (95, 120, 70))  # sky blue, ground green-brown
    for channel in range(3):  # one channel at a time: a quarter of the peak memory
        skyward = tints[0][channel] + 40 * x + 18 * clouds
        ground = tints[1][channel] + 45 * foliage + 20 * grain - 30 * x
        plane = np.where(sky, skyward, ground) * vignette
        for left, top, w, h, colour in blocks:
            patch = grain[top : top + h, left : left + w]
            plane[top : top + h, left : left + w] = colour[channel] + 12 * patch
        plane += 3.0 * rng.standard_normal(plane.shape, dtype=np.float32)  # sensor noise
        pixels[..., channel] = np.clip(plane, 0, 255)
    return pixels


def _rational(value: float, scale: int = 10_000) -> TiffImagePlugin.IFDRational:
    return TiffImagePlugin.IFDRational(round(value * scale), scale)


def _dms(degrees: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    whole = int(degrees)
    minutes = (degrees - whole) * 60
    seconds = (minutes - int(minutes)) * 60
    return (_rational(whole, 1), _rational(int(minutes), 1), _rational(seconds, 100))


def photo_exif(variant: int = 0) -> bytes:
    """EXIF of a phone camera (orientation 6, DateTimeOriginal, a GPS IFD) as an APP1
    payload, "Exif\\0\\0" header included."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "BenchCam", "BC-12"
    exif[0x0112] = ORIENTATION
    taken = _TAKEN + timedelta(seconds=37 * variant)
    exif[_EXIF_IFD] = {
        0x9003: taken.strftime("%Y:%m:%d %H:%M:%S"),
        0x9011: "+08:00",
    }
    lat, lon = _NANTONG[0] + variant * 1e-4, _NANTONG[1] + variant * 1e-4
    exif[_GPS_IFD] = {
        0: b"\x02\x03\x00\x00",
        1: "N",
        2: _dms(lat),
        3: "E",
        4: _dms(lon),
        5: b"\x00",
        6: _rational(12.5 + variant, 10),
    }
    return exif.tobytes()


def photo_jpeg(pixels: NDArray[np.uint8], variant: int = 0) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(
        out, "JPEG", quality=PHOTO_QUALITY, exif=photo_exif(variant), subsampling="4:2:0"
    )
    return out.getvalue()


def with_exif(jpeg: bytes, variant: int) -> bytes:
    """The same JPEG with another EXIF block spliced in: a distinct file, no re-encoding."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    at = 2
    while jpeg[at] == 0xFF and jpeg[at + 1] != 0xE1:  # skip APP0 and friends up to APP1
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    if jpeg[at + 1] != 0xE1:
        raise ValueError("no EXIF segment")
    end = at + 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    body = photo_exif(variant)  # Pillow's bytes start with the "Exif\0\0" header
    segment = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    return jpeg[:at] + segment + jpeg[end:]


def speech_signal(
    seconds: int = VOICE_SECONDS, rate: int = VOICE_RATE, seed: int = 60
) -> NDArray[np.int16]:
    """Voiced phrases of 0.8-3 s with intonation, syllable rhythm and formants; pauses
    of 0.2-0.9 s between them; a noise floor and a little breath noise throughout."""
    rng = np.random.default_rng(seed)
    total = seconds * rate
    t = np.arange(total, dtype=np.float64) / rate
    envelope = np.zeros(total)
    f0 = np.full(total, 120.0)
    at = int(0.3 * rate)
    while at < total:
        length = int(rng.uniform(0.8, 3.0) * rate)
        stop = min(total, at + length)
        span = np.arange(stop - at) / rate
        syllables = rng.uniform(3.5, 5.5)
        envelope[at:stop] = (
            np.clip(np.sin(np.pi * syllables * span) ** 2, 0, 1) * np.hanning(stop - at) ** 0.3
        )
        start_f0 = rng.uniform(100, 200)
        f0[at:stop] = start_f0 * (1 + 0.15 * np.sin(2 * np.pi * span / max(span[-1], 0.1)))
        at = stop + int(rng.uniform(0.2, 0.9) * rate)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = np.stack(
        [
            np.interp(
                t, np.linspace(0, seconds, seconds * 4 + 1), rng.uniform(lo, hi, seconds * 4 + 1)
            )
            for lo, hi in ((300, 850), (900, 2300), (2300, 3200))
        ]
    )
    voiced = np.zeros(total)
    for harmonic in range(1, 36):
        frequency = harmonic * f0
        gain = (
            sum(
                np.exp(-(((frequency - formant) / width) ** 2))
                for formant, width in zip(formants, (120, 180, 250), strict=True)
            )
            + 0.02
        )
        voiced += np.where(frequency < rate / 2 - 200, gain / harmonic**0.5, 0) * np.sin(
            harmonic * phase
        )
    voiced /= np.abs(voiced).max()
    breath = rng.normal(0, 1, total) * (0.04 * envelope + 0.004)
    signal = 0.6 * voiced * envelope + breath
    return np.clip(signal * 32767, -32768, 32767).astype(np.int16)


def amr_nb(samples: NDArray[np.int16]) -> bytes:
    """AMR-NB in its `.amr` file format, 12.2 kbit/s, via PyAV's `libopencore_amrnb`
    (the samples after the last whole 20 ms frame are left out)."""
    whole = samples[: len(samples) - len(samples) % AMR_FRAME]
    return encode_audio(
        whole.tobytes(),
        VOICE_RATE,
        "libopencore_amrnb",
        "amr",
        frame_samples=AMR_FRAME,
        bit_rate=AMR_BITRATE,
    )
