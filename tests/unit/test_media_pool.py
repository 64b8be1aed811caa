"""The media worker pool: jobs run in spawned workers, derivatives land beside the
original, refusals and overruns come back as `MediaRefused` with their reason, and a worker
killed for overrunning is replaced."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from PIL import Image

from gateway import logs
from gateway.errors import Reason
from gateway.media.jobs import MediaDerived, MediaJob, MediaRefused, derivative_path
from gateway.media.pool import InlineRunner, MediaPool
from gateway.media.stage_settings import PhotoSettings, VoiceSettings
from tests.media_samples import (
    QUADRANT_COLOURS,
    amr_nb,
    colour_close,
    dms,
    encode_image,
    exif_block,
    quadrant_colours,
    quadrants,
    stored_as,
    tone,
    wav,
)

POOL_TIMEOUT_S = 1.5  # a small job takes milliseconds; the slow one below, about 7 s


@pytest.fixture(scope="module")
def pool() -> Iterator[MediaPool]:
    media = MediaPool(workers=2, timeout_s=POOL_TIMEOUT_S, log=logs.get("test"))
    yield media
    media.close()


def job(
    tmp_path: Path,
    name: str,
    kind: str,
    mime: str,
    data: bytes,
    photo: PhotoSettings | None = None,
    voice: VoiceSettings | None = None,
) -> MediaJob:
    source = tmp_path / name
    source.write_bytes(data)
    return MediaJob(name, kind, mime, source, photo or PhotoSettings(), voice or VoiceSettings())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def camera_photo() -> bytes:
    """Upright 640×480 as a phone stores it sideways, with GPS in its EXIF."""
    gps = [(1, 2, "N"), (2, 5, dms(32.0302)), (3, 2, "E"), (4, 5, dms(120.8651))]
    exif = exif_block([(0x0112, 3, 6)], gps=gps)
    return encode_image(stored_as(quadrants(640, 480), 6), "JPEG", exif=exif)


def test_a_batch_comes_back_in_order_with_files_beside_the_originals(
    pool: MediaPool, tmp_path: Path
) -> None:
    batch = [
        job(tmp_path, "photo-1", "photo", "image/jpeg", camera_photo()),
        job(tmp_path, "voice-1", "voice", "audio/wav", wav(tone(2, 16000), 16000)),
        job(tmp_path, "garbage", "photo", "image/jpeg", b"not a photo at all" * 20),
        job(tmp_path, "photo-2", "photo", "image/png", encode_image(quadrants(200, 100), "PNG")),
        job(tmp_path, "voice-2", "voice", "audio/amr", amr_nb(tone(1, 8000))),
    ]
    originals = {item.media_id: sha256(item.source) for item in batch}

    results = pool.run(batch)

    assert [result.media_id for result in results] == [item.media_id for item in batch]
    photo_1, voice_1, garbage, photo_2, voice_2 = results

    assert isinstance(garbage, MediaRefused)
    assert garbage.reason == Reason.PHOTO_UNREADABLE.value
    assert not derivative_path(batch[2].source, "display.jpg").exists()

    assert isinstance(photo_1, MediaDerived)
    display, thumb = photo_1.files
    assert (display.name, display.mime) == ("display.jpg", "image/jpeg")
    assert (display.width, display.height) == (640, 480)  # stored 480×640, stood up
    assert (thumb.width, thumb.height) == (320, 240)
    assert photo_1.metadata["exif_gps"]["lat"] == pytest.approx(32.0302, abs=1e-6)
    for entry in (display, thumb):
        written = derivative_path(batch[0].source, entry.name)
        assert written.parent == batch[0].source.parent
        assert written.stat().st_size == entry.bytes
        assert sha256(written) == entry.sha256
        with Image.open(written) as image:
            assert image.size == (entry.width, entry.height)
            assert not image.getexif()
    with Image.open(derivative_path(batch[0].source, "display.jpg")) as image:
        seen = quadrant_colours(image)
    assert all(colour_close(seen[corner], QUADRANT_COLOURS[corner]) for corner in seen)

    assert isinstance(photo_2, MediaDerived)
    assert [entry.width for entry in photo_2.files] == [200, 200]

    for result, item, seconds in ((voice_1, batch[1], 2.0), (voice_2, batch[4], 1.02)):
        assert isinstance(result, MediaDerived)
        (note,) = result.files
        assert (note.name, note.mime) == ("voice.opus", "audio/ogg")
        assert note.duration_s == pytest.approx(seconds, abs=0.01)
        written = derivative_path(item.source, "voice.opus")
        assert sha256(written) == note.sha256
        with av.open(io.BytesIO(written.read_bytes())) as container:
            assert container.streams.audio[0].codec_context.name == "opus"

    # The originals are untouched, byte for byte (EXIF, GPS and all).
    assert {item.media_id: sha256(item.source) for item in batch} == originals
    assert not list(tmp_path.glob("*.part"))


def test_an_overrunning_job_is_refused_and_the_pool_carries_on(
    pool: MediaPool, tmp_path: Path
) -> None:
    # Ten minutes of WAV at libopus' highest effort: some 7 s of work, so the pool's
    # hard limit (1.5 s) must kill the worker; the stage's own limits are set out of reach.
    slow_settings = VoiceSettings(complexity=10, max_duration_s=3600, timeout_s=3600)
    slow = job(
        tmp_path, "slow", "voice", "audio/wav", wav(tone(600, 16000), 16000), voice=slow_settings
    )
    quick = job(tmp_path, "quick", "photo", "image/png", encode_image(quadrants(64, 48), "PNG"))

    overrun, alongside = pool.run([slow, quick])

    assert isinstance(overrun, MediaRefused)
    assert overrun.reason == Reason.MEDIA_TIMEOUT.value
    assert isinstance(alongside, MediaDerived)
    assert not derivative_path(slow.source, "voice.opus").exists()

    after = pool.run(
        [
            job(tmp_path, "after-1", "photo", "image/jpeg", camera_photo()),
            job(tmp_path, "after-2", "voice", "audio/amr", amr_nb(tone(1, 8000))),
            job(tmp_path, "after-3", "photo", "image/jpeg", b"\xff\xd8\xff"),
        ]
    )
    assert [type(result) for result in after] == [MediaDerived, MediaDerived, MediaRefused]
    assert isinstance(after[2], MediaRefused)
    assert after[2].reason == Reason.PHOTO_TRUNCATED.value


def test_the_settings_travel_with_the_job(pool: MediaPool, tmp_path: Path) -> None:
    small = PhotoSettings(display_px=100, thumb_px=20)
    tight = PhotoSettings(max_pixels=1000)
    short = VoiceSettings(max_duration_s=1)
    data = encode_image(quadrants(400, 300), "PNG")
    results = pool.run(
        [
            job(tmp_path, "small", "photo", "image/png", data, photo=small),
            job(tmp_path, "tight", "photo", "image/png", data, photo=tight),
            job(tmp_path, "short", "voice", "audio/wav", wav(tone(2, 16000), 16000), voice=short),
        ]
    )
    sized, refused, too_long = results
    assert isinstance(sized, MediaDerived)
    assert [(d.width, d.height) for d in sized.files] == [(100, 75), (20, 15)]
    assert isinstance(refused, MediaRefused)
    assert refused.reason == Reason.PHOTO_TOO_MANY_PIXELS.value
    assert isinstance(too_long, MediaRefused)
    assert too_long.reason == Reason.VOICE_TOO_LONG.value


def test_a_decoder_that_raises_refuses_its_file_not_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tripped(source: object, settings: object) -> None:
        raise ValueError("tile extends beyond image")

    monkeypatch.setattr("gateway.media.derive.render_photo", tripped)
    tripping = job(tmp_path, "tripping", "photo", "image/png", encode_image(quadrants(8, 8), "PNG"))
    voice = job(tmp_path, "voice", "voice", "audio/wav", wav(tone(1, 16000), 16000))

    refused, derived = InlineRunner().run([tripping, voice])

    assert isinstance(refused, MediaRefused)
    assert refused.reason == Reason.MEDIA_DECODER_FAILED.value
    assert "ValueError: tile extends beyond image" in refused.message
    assert isinstance(derived, MediaDerived)


def test_a_missing_original_is_the_spools_fault_and_the_batch_is_retried(
    pool: MediaPool, tmp_path: Path
) -> None:
    gone = MediaJob("gone", "photo", "image/jpeg", tmp_path / "never-written")
    with pytest.raises(FileNotFoundError):
        pool.run([gone])
    with pytest.raises(FileNotFoundError):
        InlineRunner().run([gone])
