"""Sample photos and voice notes for the media tests, made on the spot (no binary fixtures
except the AMR-WB note, which nothing here can encode; see tests/fixtures/README.md).

Everything is built from first principles where the code under test relies on a library:
EXIF blocks and ICC profiles are packed by hand, so a test can say exactly which bytes a
camera wrote, and the orientation samples are laid out from the EXIF definition itself
rather than from Pillow's table of transposes.
"""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import pillow_heif
from hypothesis import strategies as st
from PIL import Image

from firmware_sim.voice import encode_audio

FIXTURES = Path(__file__).parent / "fixtures"

# -- photos -------------------------------------------------------------------------------

# The upright reference: four quadrants of clearly different colours, so each of the
# eight orientations (the symmetries of a rectangle) puts a different colour top left.
QUADRANT_COLOURS = {
    "top_left": (220, 30, 30),  # red
    "top_right": (30, 200, 30),  # green
    "bottom_left": (30, 30, 220),  # blue
    "bottom_right": (235, 235, 30),  # yellow
}


def quadrants(width: int, height: int) -> Image.Image:
    """An upright picture whose four quadrants say which way is up."""
    pixels = np.zeros((height, width, 3), np.uint8)
    half_w, half_h = width // 2, height // 2
    pixels[:half_h, :half_w] = QUADRANT_COLOURS["top_left"]
    pixels[:half_h, half_w:] = QUADRANT_COLOURS["top_right"]
    pixels[half_h:, :half_w] = QUADRANT_COLOURS["bottom_left"]
    pixels[half_h:, half_w:] = QUADRANT_COLOURS["bottom_right"]
    return Image.fromarray(pixels)


def stored_as(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera stores for `upright` when it writes `orientation` (EXIF 2.32,
    tag 0x0112: where the stored first row and first column are in the upright view).

    Written as index arithmetic on the upright array `u` (H rows, W columns), so the
    tests do not borrow the table of transposes they are checking."""
    u = np.asarray(upright)
    h, w = u.shape[:2]
    shape = (h, w) if orientation <= 4 else (w, h)
    rows, cols = np.arange(shape[0])[:, None], np.arange(shape[1])[None, :]
    source = {
        1: (rows, cols),  # row 0 is the top, column 0 the left
        2: (rows, w - 1 - cols),  # row 0 top, column 0 right
        3: (h - 1 - rows, w - 1 - cols),  # row 0 bottom, column 0 right
        4: (h - 1 - rows, cols),  # row 0 bottom, column 0 left
        5: (cols, rows),  # row 0 is the left side, column 0 the top
        6: (cols, w - 1 - rows),  # row 0 right side, column 0 top
        7: (h - 1 - cols, w - 1 - rows),  # row 0 right side, column 0 bottom
        8: (h - 1 - cols, rows),  # row 0 left side, column 0 bottom
    }[orientation]
    return Image.fromarray(u[source])


def encode_image(image: Image.Image, fmt: str, **options: Any) -> bytes:
    """`image` as a file of `fmt` ("JPEG", "PNG", "HEIF" through pillow-heif, ...)."""
    pillow_heif.register_heif_opener()  # idempotent; gateway.media.photo does it too
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def quadrant_colours(image: Image.Image) -> dict[str, tuple[int, ...]]:
    """The mean colour of the middle of each quadrant (away from edges and JPEG ringing)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    h, w = rgb.shape[:2]
    centres = {
        "top_left": (h // 4, w // 4),
        "top_right": (h // 4, 3 * w // 4),
        "bottom_left": (3 * h // 4, w // 4),
        "bottom_right": (3 * h // 4, 3 * w // 4),
    }
    dy, dx = max(1, h // 10), max(1, w // 10)
    return {
        name: tuple(int(v) for v in rgb[y - dy : y + dy, x - dx : x + dx].mean(axis=(0, 1)))
        for name, (y, x) in centres.items()
    }


def colour_close(a: Sequence[int], b: Sequence[int], tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


# EXIF, packed by hand: (tag, TIFF type, value). Types: 1 BYTE, 2 ASCII, 3 SHORT, 4 LONG,
# 5 RATIONAL (value: list of (numerator, denominator)), 7 UNDEFINED, 10 SRATIONAL.
ExifEntry = tuple[int, int, Any]
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 10: 8}
EXIF_IFD_POINTER, GPS_IFD_POINTER = 0x8769, 0x8825


def _pack_value(kind: int, value: Any) -> tuple[int, bytes]:
    if kind == 2:
        raw = value.encode() + b"\0" if isinstance(value, str) else bytes(value)
        return len(raw), raw
    if kind in (1, 7):
        raw = bytes(value) if not isinstance(value, int) else bytes([value])
        return len(raw), raw
    values = value if isinstance(value, list | tuple) else [value]
    if kind == 3:
        return len(values), b"".join(struct.pack("<H", v) for v in values)
    if kind == 4:
        return len(values), b"".join(struct.pack("<I", v) for v in values)
    code = "<II" if kind == 5 else "<ii"
    return len(values), b"".join(struct.pack(code, n, d) for n, d in values)


def _pack_ifd(entries: list[ExifEntry], start: int) -> tuple[bytes, list[int]]:
    """One IFD at offset `start` of the TIFF block, its out-of-line values after it.
    Returns the bytes and where each entry's value field is (for pointers)."""
    entries = sorted(entries, key=lambda entry: entry[0])
    head = struct.pack("<H", len(entries))
    data_at = start + 2 + 12 * len(entries) + 4
    extra = b""
    value_fields = []
    for tag, kind, value in entries:
        count, raw = _pack_value(kind, value)
        value_fields.append(start + len(head) + 8)
        if len(raw) <= 4:
            field = raw.ljust(4, b"\0")
        else:
            field = struct.pack("<I", data_at + len(extra))
            extra += raw + (b"\0" if len(raw) % 2 else b"")
        head += struct.pack("<HHI", tag, kind, count) + field
    return head + b"\0\0\0\0" + extra, value_fields


def exif_block(
    ifd0: Sequence[ExifEntry] = (),
    exif: Sequence[ExifEntry] | None = None,
    gps: Sequence[ExifEntry] | None = None,
) -> bytes:
    """An APP1 Exif payload (b"Exif\\0\\0" + little-endian TIFF) as a camera writes it."""
    entries = list(ifd0)
    subs = [
        (tag, list(sub))
        for tag, sub in ((EXIF_IFD_POINTER, exif), (GPS_IFD_POINTER, gps))
        if sub is not None
    ]
    entries += [(tag, 4, 0) for tag, _ in subs]  # pointers, patched below
    block, fields = _pack_ifd(entries, 8)
    tiff = bytearray(b"II*\0" + struct.pack("<I", 8) + block)
    order = sorted(entries, key=lambda entry: entry[0])
    for tag, sub in subs:
        at = len(tiff)
        sub_block, _ = _pack_ifd(sub, at)
        tiff += sub_block
        field = fields[[entry[0] for entry in order].index(tag)]
        tiff[field : field + 4] = struct.pack("<I", at)
    return b"Exif\0\0" + bytes(tiff)


def raw_exif(entries: Sequence[tuple[int, int, int, bytes]], tail: bytes = b"") -> bytes:
    """An Exif payload with one IFD written verbatim: (tag, type, count, 4-byte value or
    offset field), then `tail`. For EXIF that lies about its own layout."""
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, field in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + field.ljust(4, b"\0")[:4]
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + tail


def dms(value: float) -> list[tuple[int, int]]:
    """Degrees, minutes and seconds as EXIF rationals (seconds to 1/10000)."""
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
    return [(degrees, 1), (minutes, 1), (seconds, 10000)]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_declaring(width: int, height: int, rows: bytes = b"") -> bytes:
    """A PNG (8-bit RGB) whose IHDR declares any size, with `rows` as its raw image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def flat_jpeg(width: int, height: int) -> bytes:
    """A baseline grayscale JPEG of mid-grey at any size, in about width × height / 256
    bytes: every 8×8 block is "DC unchanged, end of block", each a one-bit Huffman code."""
    quantisation = _segment(0xDB, b"\x00" + bytes([1]) * 64)
    frame = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    dc_table = _segment(0xC4, b"\x00" + b"\x01" + bytes(15) + b"\x00")  # category 0 only
    ac_table = _segment(0xC4, b"\x10" + b"\x01" + bytes(15) + b"\x00")  # end-of-block only
    scan_header = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    blocks = math.ceil(width / 8) * math.ceil(height / 8)
    scan = bytes(math.ceil(blocks * 2 / 8))  # two zero bits per block
    return (
        b"\xff\xd8" + quantisation + frame + dc_table + ac_table + scan_header + scan + b"\xff\xd9"
    )


def as_mpo(primary: bytes, second: bytes) -> bytes:
    """Two JPEGs as one MPO file (CIPA DC-007): an APP2 "MPF" index after the primary's SOI,
    the second image appended. Phones write this for HDR gain maps and depth images."""

    def index(primary_size: int, second_offset: int) -> bytes:
        entries = struct.pack("<IIIHH", 0x20030000, primary_size, 0, 0, 0) + struct.pack(
            "<IIIHH", 0x00000000, len(second), second_offset, 0, 0
        )
        ifd = struct.pack("<H", 3)
        ifd += struct.pack("<HHI", 0xB000, 7, 4) + b"0100"
        ifd += struct.pack("<HHII", 0xB001, 4, 1, 2)
        ifd += struct.pack("<HHII", 0xB002, 7, len(entries), 8 + 2 + 3 * 12 + 4)
        ifd += b"\0\0\0\0"
        return _segment(0xE2, b"MPF\0" + b"II*\0" + struct.pack("<I", 8) + ifd + entries)

    size = len(primary) + len(index(0, 0))
    header_at = 2 + 4 + 4  # SOI, APP2 marker and length, "MPF\0": where offsets count from
    return primary[:2] + index(size, size - header_at) + primary[2:] + second


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def rgb_icc_profile(
    name: str,
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
    gamma: float = 2.2,
) -> bytes:
    """A minimal ICC v2 display profile (matrix and gamma curves), packed by hand:
    `red`, `green` and `blue` are the primaries' XYZ under D50."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)

    def curve() -> bytes:
        return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"

    text = name.encode("ascii") + b"\0"
    description = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8 + 3 + 67)
    tags = [
        (b"desc", description),
        (b"cprt", b"text" + bytes(4) + b"none\0"),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(*red)),
        (b"gXYZ", xyz(*green)),
        (b"bXYZ", xyz(*blue)),
        (b"rTRC", curve()),
        (b"gTRC", curve()),
        (b"bTRC", curve()),
    ]
    table = struct.pack(">I", len(tags))
    first = 128 + 4 + 12 * len(tags)
    body = b""
    for signature, data in tags:
        padded = data.ljust(math.ceil(len(data) / 4) * 4, b"\0")
        table += signature + struct.pack(">II", first + len(body), len(data))
        body += padded
    header = (
        struct.pack(">I", first + len(body))
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(4 * 5 + 8)
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + bytes(4 + 16 + 28)
    )
    return header + table + body


# sRGB's primaries adapted to D50, as an ICC profile states them.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)

# -- voice notes --------------------------------------------------------------------------


def tone(seconds: float, rate: int, amplitude: int = 8000, hz: float = 220.0) -> np.ndarray:
    """A steady tone with a little noise, as 16-bit mono samples."""
    n = np.arange(round(seconds * rate))
    noise = np.random.default_rng(7).integers(-300, 300, n.size)
    pcm = amplitude * np.sin(2 * np.pi * hz * n / rate) + noise
    return np.clip(pcm, -32768, 32767).astype(np.int16)


def speechlike(seconds: float, rate: int) -> np.ndarray:
    """Harmonics under a syllable-rate envelope: what an Opus speech encoder is for."""
    t = np.arange(round(seconds * rate)) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    noise = np.random.default_rng(3).normal(0, 0.05, t.size)
    return (7000 * (voice * envelope + noise)).clip(-32768, 32767).astype(np.int16)


def wav(pcm: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> bytes:
    """A RIFF WAV of interleaved samples (the stdlib writer)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(pcm.tobytes())
    return out.getvalue()


def amr_nb(pcm: np.ndarray) -> bytes:
    """AMR-NB (8 kHz) in its storage format ("#!AMR\\n"), as a feature phone records."""
    return encode_audio(pcm.tobytes(), 8000, "libopencore_amrnb", "amr")


def aac(pcm: np.ndarray, rate: int, container: str, layout: str = "mono") -> bytes:
    """AAC-LC in "adts" (raw .aac), "mp4" or "ipod" (.m4a); the same samples on every
    channel of `layout`."""
    channels = av.AudioLayout(layout).nb_channels
    return encode_audio(np.repeat(pcm, channels).tobytes(), rate, "aac", container, layout=layout)


def adts_frames(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each frame of an ADTS stream, from the headers' length fields."""
    frames, at = [], 0
    while at + 7 <= len(data):
        length = ((data[at + 3] & 0x03) << 11) | (data[at + 4] << 3) | (data[at + 5] >> 5)
        frames.append((at, length))
        at += max(length, 7)
    return frames


def with_adts_length(data: bytes, index: int, length: int) -> bytes:
    """`data` with frame `index`'s 13-bit frame_length field set to `length`."""
    out = bytearray(data)
    at, _ = adts_frames(data)[index]
    out[at + 3] = (out[at + 3] & 0xFC) | (length >> 11)
    out[at + 4] = (length >> 3) & 0xFF
    out[at + 5] = (out[at + 5] & 0x1F) | ((length & 0x07) << 5)
    return bytes(out)


def mp4_box(data: bytes, kind: bytes) -> int:
    """Where the type of the first `kind` box is (its size is the 4 bytes before)."""
    at = data.find(kind)
    assert at >= 4, f"no {kind!r} box"
    return at


def amr_wb_fixture() -> bytes:
    """3.00 s of AMR-WB (16 kHz), made once outside the tests (tests/fixtures/README.md)."""
    return (FIXTURES / "voice-3s.awb").read_bytes()


def video_only_mp4(frames: int = 3) -> bytes:
    """An MP4 holding one tiny MPEG-4 video stream and no audio."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as output:
        stream = output.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(frames):
            picture = np.full((32, 32, 3), index * 60, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return out.getvalue()


def decoded_samples(data: bytes) -> tuple[int, int]:
    """(samples, rate) of the first audio stream, counted by decoding it all (no resampling)."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        total = sum(frame.samples for frame in container.decode(stream))
        return total, int(stream.codec_context.sample_rate)


# ---- damaged files, for the property tests --------------------------------------------

Mutation = tuple[str, int, Any]


def mutations(span: int) -> st.SearchStrategy[Mutation]:
    """One edit of a file: flip a bit, set a byte, insert bytes or cut the rest, at an
    offset below `span` (taken modulo the file's length)."""
    return st.one_of(
        st.tuples(st.just("flip"), st.integers(0, span), st.integers(0, 7)),
        st.tuples(st.just("set"), st.integers(0, span), st.sampled_from([0x00, 0xFF, 0x7F, 0x80])),
        st.tuples(st.just("insert"), st.integers(0, span), st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("cut"), st.integers(0, span), st.just(0)),
    )


def mutate(data: bytes, edits: list[Mutation]) -> bytes:
    out = bytearray(data)
    for kind, where, what in edits:
        at = where % (len(out) + 1)
        if kind == "insert":
            out[at:at] = what
        elif kind == "cut":
            del out[at:]
        elif at < len(out):
            out[at] = out[at] ^ (1 << what) if kind == "flip" else what
    return bytes(out)
