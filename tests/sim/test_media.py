"""Media: chunking, photos (real JPEGs with EXIF) and voice notes (real AMR-NB)."""

from __future__ import annotations

import hashlib
import io
import random
from array import array
from datetime import datetime, timedelta, timezone

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import ExifTags, Image

from firmware_sim.media import MediaFile
from firmware_sim.photo import PHONE_SIZE, Capture, PhotoPool, strip_app_segments
from firmware_sim.voice import AMR_MAGIC, FRAME_S, VoiceBank, split_frames

CST = timezone(timedelta(hours=8))


# ---- chunking ---------------------------------------------------------------------------


@given(
    parts=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=5).filter(
        lambda parts: sum(map(len, parts)) > 0
    ),
    chunk_bytes=st.integers(min_value=1, max_value=400),
)
def test_chunks_are_the_file_cut_in_order(parts: list[bytes], chunk_bytes: int) -> None:
    file = MediaFile.of("photo", "image/jpeg", *parts)
    chunks = [file.chunk(seq, chunk_bytes) for seq in range(file.chunk_count(chunk_bytes))]
    assert b"".join(chunks) == b"".join(parts) == file.read()
    assert all(len(chunk) == chunk_bytes for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk_bytes
    assert file.size == len(file.read())
    assert file.sha256 == hashlib.sha256(file.read()).hexdigest()


def test_no_chunk_past_the_end() -> None:
    file = MediaFile.of("voice", "audio/amr", b"abcde")
    assert file.chunk(2, 2) == b"e"
    with pytest.raises(IndexError):
        file.chunk(3, 2)
    with pytest.raises(IndexError):
        file.chunk(-1, 2)


# ---- photos -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phone_pool() -> PhotoPool:
    return PhotoPool.generate(count=1, size=PHONE_SIZE, seed="tests")


def capture(unique_id: str, orientation: int = 6) -> Capture:
    return Capture(
        taken_at=datetime(2026, 11, 28, 9, 14, 58, tzinfo=CST),
        lat=32.030217,
        lon=120.865123,
        unique_id=unique_id,
        orientation=orientation,
        alt_m=4.5,
    )


def test_photo_is_a_phone_jpeg_with_camera_exif(phone_pool: PhotoPool) -> None:
    photo = phone_pool.photo(capture("0b7e4c1a2d3f4e5a8b9c0d1e2f3a4b5c"), 0)
    image = Image.open(io.BytesIO(photo.read()))
    image.load()  # decodes every pixel: the spliced file is a whole JPEG
    assert (image.format, image.size, image.mode) == ("JPEG", PHONE_SIZE, "RGB")
    assert photo.mime == "image/jpeg"
    # A textured scene, not a flat card: it compresses like a photo.
    assert 600_000 < photo.size < 8_000_000
    exif = image.getexif()
    assert exif[ExifTags.Base.Orientation] == 6
    assert (exif[ExifTags.Base.Make], exif[ExifTags.Base.Model]) == ("CGT Terminals", "CGT-T5")
    details = exif.get_ifd(ExifTags.IFD.Exif)
    assert details[ExifTags.Base.DateTimeOriginal] == "2026:11:28 09:14:58"
    assert details[ExifTags.Base.OffsetTimeOriginal] == "+08:00"
    assert details[ExifTags.Base.ImageUniqueID] == "0b7e4c1a2d3f4e5a8b9c0d1e2f3a4b5c"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert (gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLongitudeRef]) == ("N", "E")
    assert dms(gps[ExifTags.GPS.GPSLatitude]) == pytest.approx(32.030217, abs=1e-6)
    assert dms(gps[ExifTags.GPS.GPSLongitude]) == pytest.approx(120.865123, abs=1e-6)
    assert gps[ExifTags.GPS.GPSDateStamp] == "2026:11:28"  # UTC: 01:14:58
    assert tuple(map(float, gps[ExifTags.GPS.GPSTimeStamp])) == (1.0, 14.0, 58.0)


def dms(value: tuple[float, float, float]) -> float:
    degrees, minutes, seconds = map(float, value)
    return degrees + minutes / 60 + seconds / 3600


def test_every_report_gets_its_own_photo_bytes(phone_pool: PhotoPool) -> None:
    first = phone_pool.photo(capture("0" * 32), 0)
    second = phone_pool.photo(capture("1" * 32), 0)
    assert first.sha256 != second.sha256
    # The bulky part is shared, not copied: that is what keeps a big fleet small.
    assert first.parts[1] is second.parts[1]
    for photo in (first, second):
        Image.open(io.BytesIO(photo.read())).verify()


def test_pool_pictures_differ_and_are_reproducible() -> None:
    pool = PhotoPool.generate(count=2, size=(320, 240), seed=5)
    again = PhotoPool.generate(count=2, size=(320, 240), seed=5)
    assert pool.bases[0].body != pool.bases[1].body
    assert [b.body for b in pool.bases] == [b.body for b in again.bases]


def test_app0_and_app1_are_replaced_other_segments_kept() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG", exif=Image.Exif().tobytes(), icc_profile=b"x")
    body = strip_app_segments(buffer.getvalue())
    assert body.startswith(b"\xff\xe2")  # the ICC profile's APP2 stays
    assert b"JFIF\x00" not in body
    assert b"Exif\x00\x00" not in body
    with pytest.raises(ValueError, match="SOI"):
        strip_app_segments(b"GIF89a")


# ---- voice ------------------------------------------------------------------------------


def decode(data: bytes) -> tuple[str, str, int, int, array[int]]:
    """(container, codec, rate, channels, mono 16-bit samples) as PyAV reads the file."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
        samples = array("h")
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
        return (
            container.format.name,
            stream.codec_context.name,
            stream.codec_context.sample_rate,
            stream.codec_context.channels,
            samples,
        )


def test_voice_note_is_amr_nb_of_a_few_seconds(voices: VoiceBank) -> None:
    note = voices.note(random.Random(1), min_s=3.0, max_s=8.0)
    assert note.mime == "audio/amr"
    assert note.read().startswith(AMR_MAGIC)
    container, codec, rate, channels, samples = decode(note.read())
    assert (container, codec, rate, channels) == ("amr", "amrnb", 8000, 1)
    frames = len(split_frames(note.read()))
    assert len(samples) / 8000 == pytest.approx(frames * FRAME_S, abs=0.05)
    assert 3.0 - FRAME_S <= len(samples) / 8000 <= 8.0 + FRAME_S
    # Speech-like, not silence: the decoded signal carries real energy.
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert rms > 500


def test_voice_notes_differ_between_reports(voices: VoiceBank) -> None:
    rng = random.Random(2)
    notes = [voices.note(rng) for _ in range(5)]
    assert len({note.sha256 for note in notes}) == 5


def test_split_frames_refuses_what_is_not_amr() -> None:
    with pytest.raises(ValueError, match="AMR"):
        split_frames(b"RIFF....WAVE")
    with pytest.raises(ValueError, match="bad AMR-NB frame"):
        split_frames(AMR_MAGIC + b"\x3c\x00")  # a 12.2 kbit/s frame cut short
