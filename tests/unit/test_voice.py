"""The voice stage: AMR-NB, AMR-WB, AAC/M4A and WAV in, mono Ogg Opus of about 16 kbit/s
out, the duration counted from the decoded audio; every hostile file a derivative or a
rejection with a reason code, never another exception and never a hang."""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import MediaError, Reason
from gateway.media.stage_settings import VoiceSettings
from gateway.media.voice import VoiceResult, transcode_voice
from tests.media_samples import (
    aac,
    adts_frames,
    amr_nb,
    amr_wb_fixture,
    decoded_samples,
    encode_image,
    mp4_box,
    mutate,
    mutations,
    quadrants,
    speechlike,
    tone,
    video_only_mp4,
    wav,
    with_adts_length,
)
from tests.timing import Reference, assert_within, seconds

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"  # FFmpeg's name for its ISO media demuxer


def refusal(data: bytes, mime: str | None = None, voice: VoiceSettings | None = None) -> MediaError:
    with pytest.raises(MediaError) as caught:
        transcode_voice(data, mime, voice)
    return caught.value


def decode_output(data: bytes) -> tuple[np.ndarray, int]:
    """The derivative decoded: mono samples (float) and their rate; asserts Ogg Opus mono."""
    with av.open(io.BytesIO(data), "r") as container:
        assert container.format.name == "ogg"
        (stream,) = container.streams.audio
        assert stream.codec_context.name == "opus"
        assert stream.codec_context.layout.nb_channels == 1
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        return np.concatenate(chunks).astype(np.float64), int(stream.codec_context.sample_rate)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def stereo_wav(seconds: float, rate: int) -> bytes:
    return wav(np.repeat(tone(seconds, rate), 2), rate, channels=2)


# (mime, how to make it, codec, container, input rate, output rate). Each is 3 s of a
# 220 Hz tone; AMR-WB is the fixture (the same tone, encoded outside the tests).
ACCEPTED: list[Any] = [
    pytest.param(
        "audio/amr", lambda: amr_nb(tone(3, 8000)), "amrnb", "amr", 8000, 8000, id="AMR-NB"
    ),
    pytest.param("audio/amr-wb", amr_wb_fixture, "amrwb", "amr", 16000, 16000, id="AMR-WB"),
    pytest.param(
        "audio/aac",
        lambda: aac(tone(3, 16000), 16000, "adts"),
        "aac",
        "aac",
        16000,
        16000,
        id="AAC in ADTS",
    ),
    pytest.param(
        "audio/mp4",
        lambda: aac(tone(3, 16000), 16000, "mp4"),
        "aac",
        MP4,
        16000,
        16000,
        id="AAC in MP4",
    ),
    pytest.param(
        "audio/mp4",
        lambda: aac(tone(3, 44100), 44100, "ipod"),
        "aac",
        MP4,
        44100,
        16000,
        id="AAC in M4A 44.1k",
    ),
    pytest.param(
        "audio/wav",
        lambda: wav(tone(3, 16000), 16000),
        "pcm_s16le",
        "wav",
        16000,
        16000,
        id="WAV 16k",
    ),
    pytest.param(
        "audio/wav", lambda: wav(tone(3, 8000), 8000), "pcm_s16le", "wav", 8000, 8000, id="WAV 8k"
    ),
    pytest.param(
        "audio/wav",
        lambda: stereo_wav(3, 44100),
        "pcm_s16le",
        "wav",
        44100,
        16000,
        id="WAV 44.1k stereo",
    ),
    pytest.param(
        "audio/wav",
        lambda: wav((tone(3, 16000) // 256 + 128).astype(np.uint8), 16000, width=1),
        "pcm_u8",
        "wav",
        16000,
        16000,
        id="WAV 8-bit",
    ),
]


@pytest.mark.parametrize(("mime", "make", "codec", "container", "rate_in", "rate_out"), ACCEPTED)
def test_every_accepted_input_becomes_mono_ogg_opus(
    mime: str,
    make: Callable[[], bytes],
    codec: str,
    container: str,
    rate_in: int,
    rate_out: int,
) -> None:
    data = make()
    true_samples, true_rate = decoded_samples(data)

    result = transcode_voice(data, mime)

    meta = result.metadata()
    assert (meta["codec"], meta["container"], meta["sample_rate"]) == (codec, container, rate_in)
    assert result.output_rate == rate_out
    assert meta["container_mismatch"] is False
    assert meta["decode_errors"] == 0
    assert meta["silent"] is False
    # The duration is the decoded audio's: within a resampler's rounding of PyAV's own
    # count, and within the codecs' framing (AMR adds a flushed 20 ms frame, ADTS cannot
    # signal AAC's 1024-sample priming, so 64 ms at 16 kHz) of the 3 s that went in.
    assert meta["duration_s"] == pytest.approx(true_samples / true_rate, abs=0.005)
    assert meta["duration_s"] == pytest.approx(3.0, abs=0.08)

    samples, rate = decode_output(result.data)
    assert samples.size / rate == pytest.approx(result.duration_s, abs=0.03)
    assert dominant_hz(samples, rate) == pytest.approx(220, abs=5)  # the tone survived
    assert np.sqrt(np.mean(samples**2)) > 0.05 * np.abs(samples).max() > 0


def test_a_file_object_and_no_mime_work_too() -> None:
    data = amr_wb_fixture()
    result = transcode_voice(io.BytesIO(data))
    assert result.metadata()["codec"] == "amrwb"
    assert result.metadata()["container_mismatch"] is False


def test_the_same_note_gives_the_same_bytes_every_time() -> None:
    """A cluster instance that takes over a dead one's batch makes the note again: its
    bytes (and SHA-256) must be those the report may already name. Without bit-exact Ogg
    the stream's serial number was random."""
    data = amr_nb(speechlike(3, 8000))
    made = {transcode_voice(data, "audio/amr").data for _ in range(3)}
    assert len(made) == 1


@pytest.mark.parametrize(
    ("make", "mime"),
    [
        pytest.param(lambda: wav(speechlike(20, 16000), 16000), "audio/wav", id="WAV 16k"),
        pytest.param(lambda: amr_nb(speechlike(20, 8000)), "audio/amr", id="AMR-NB"),
        pytest.param(
            lambda: aac(speechlike(20, 44100), 44100, "ipod"), "audio/mp4", id="M4A 44.1k"
        ),
    ],
)
def test_the_bitrate_is_about_16_kbit_s(make: Callable[[], bytes], mime: str) -> None:
    result = transcode_voice(make(), mime)
    kbit_s = len(result.data) * 8 / result.duration_s / 1000
    assert 11 <= kbit_s <= 20, kbit_s  # Opus VBR around its 16 kbit/s target, Ogg included


def test_the_opus_stream_is_tuned_for_speech() -> None:
    result = transcode_voice(wav(speechlike(2, 16000), 16000), "audio/wav")
    with av.open(io.BytesIO(result.data), "r") as container:
        stream = container.streams.audio[0]
        packets = [packet for packet in container.demux(stream) if packet.size]
        # 60 ms frames: one Opus packet per 60 ms of audio (2 s: about 34)
        assert 30 <= len(packets) <= 36
        # TOC byte of each packet: configs 0-11 are SILK (the speech codec), 12-15 hybrid
        assert all(bytes(packet)[0] >> 3 <= 15 for packet in packets)


# -- loud, silent ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "silent"),
    [
        pytest.param(wav(np.zeros(32000, np.int16), 16000), True, id="WAV of zeros"),
        pytest.param(
            wav(np.random.default_rng(1).integers(-20, 20, 32000).astype(np.int16), 16000),
            True,
            id="WAV hiss at -64 dBFS",
        ),
        pytest.param(amr_nb(np.zeros(16000, np.int16)), True, id="AMR-NB of zeros"),
        pytest.param(aac(np.zeros(32000, np.int16), 16000, "adts"), True, id="AAC of zeros"),
        pytest.param(
            wav(tone(2, 16000, amplitude=200), 16000), False, id="a quiet tone, about -36 dBFS"
        ),
        pytest.param(wav(tone(2, 16000), 16000), False, id="a loud tone"),
    ],
)
def test_silence_is_flagged_and_still_transcoded(data: bytes, silent: bool) -> None:
    result = transcode_voice(data)
    assert result.metadata()["silent"] is silent
    assert result.duration_s == pytest.approx(2.0, abs=0.12)
    samples, _ = decode_output(result.data)
    assert samples.size > 0


def test_the_peak_is_measured_on_the_samples_sent_to_the_encoder() -> None:
    full_scale = np.zeros(16000, np.int16)
    full_scale[8000] = -32768  # the one 16-bit value whose magnitude has no positive twin
    assert transcode_voice(wav(full_scale, 16000)).peak_dbfs == pytest.approx(0.0, abs=0.01)
    loud = transcode_voice(wav(tone(1, 16000, amplitude=8000), 16000))
    assert loud.peak_dbfs == pytest.approx(20 * np.log10(8300 / 32768), abs=0.3)


# -- the container says one thing --------------------------------------------------------

AMR = amr_nb(tone(1, 8000))
WAV = wav(tone(1, 16000), 16000)
ADTS = aac(tone(1, 16000), 16000, "adts")
M4A = aac(tone(1, 16000), 16000, "ipod")


@pytest.mark.parametrize(
    ("data", "mime", "container"),
    [
        pytest.param(AMR, "audio/wav", "amr", id="AMR sent as audio/wav"),
        pytest.param(WAV, "audio/amr", "wav", id="WAV sent as audio/amr"),
        pytest.param(WAV, "audio/aac", "wav", id="WAV sent as audio/aac"),
        pytest.param(M4A, "audio/aac", MP4, id="M4A sent as audio/aac"),
        pytest.param(amr_wb_fixture(), "audio/aac", "amr", id="AMR-WB sent as audio/aac"),
        pytest.param(ADTS, "audio/mp4", "aac", id="ADTS sent as audio/mp4"),
        pytest.param(ADTS, "audio/amr-wb", "aac", id="ADTS sent as audio/amr-wb"),
    ],
)
def test_a_file_that_is_not_what_its_type_says_is_transcoded_and_flagged(
    data: bytes, mime: str, container: str
) -> None:
    # FFmpeg probes the contents: the derivative is made from what the file is, and the
    # metadata says the declared type was wrong. (Forcing the declared demuxer turned a
    # WAV or M4A sent as audio/aac into "voice.empty": ADTS's demuxer takes any bytes.)
    samples, rate = decoded_samples(data)
    result = transcode_voice(data, mime)
    assert result.container == container
    assert result.container_mismatch is True
    assert result.duration_s == pytest.approx(samples / rate, abs=0.005)
    assert not result.metadata()["silent"]


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        pytest.param(amr_wb_fixture(), "audio/amr", id="AMR-WB as audio/amr: one container"),
        pytest.param(AMR, "audio/amr-wb", id="AMR-NB as audio/amr-wb: one container"),
        pytest.param(WAV, "audio/x-wav", id="a type without a hint"),
        pytest.param(WAV, None, id="no type"),
        pytest.param(M4A, "audio/mp4", id="M4A as audio/mp4"),
    ],
)
def test_a_file_matching_its_type_is_not_flagged(data: bytes, mime: str | None) -> None:
    assert transcode_voice(data, mime).container_mismatch is False


def wav_declaring(data: bytes, **fields: int) -> bytes:
    """`data` (a canonical 44-byte-header WAV) with fields of its fmt chunk replaced."""
    offsets = {"format": (20, "<H"), "channels": (22, "<H"), "rate": (24, "<I"), "bits": (34, "<H")}
    out = bytearray(data)
    for name, value in fields.items():
        at, code = offsets[name]
        out[at : at + struct.calcsize(code)] = struct.pack(code, value)
    return bytes(out)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(wav_declaring(WAV, format=6), id="WAV says A-law, holds 16-bit PCM"),
        pytest.param(wav_declaring(WAV, format=7), id="WAV says mu-law, holds 16-bit PCM"),
        pytest.param(wav_declaring(WAV, format=0x11), id="WAV says IMA ADPCM, holds PCM"),
        pytest.param(wav_declaring(WAV, format=0x55), id="WAV says MP3, holds PCM"),
        pytest.param(wav_declaring(WAV, bits=24), id="WAV says 24-bit, holds 16-bit"),
        pytest.param(WAV[:40] + struct.pack("<I", len(AMR)) + AMR, id="WAV header, AMR inside"),
        pytest.param(M4A.replace(b"mp4a", b"samr", 1), id="MP4 sample entry says AMR, holds AAC"),
    ],
)
def test_a_container_that_lies_about_its_codec_gives_a_derivative_or_a_reason(data: bytes) -> None:
    # Nothing can tell a lying header from the truth before decoding: what the header
    # says is decoded (as noise, often), or the decoder gives up and it is refused.
    result = outcome(data, "audio/wav")
    if isinstance(result, MediaError):
        assert result.reason in (Reason.VOICE_EMPTY, Reason.VOICE_UNREADABLE)
    else:
        assert decode_output(result.data)[0].size > 0


# -- refused -----------------------------------------------------------------------------


def test_over_the_maximum_duration_is_refused_and_stops_early() -> None:
    long_note = wav(tone(600, 16000), 16000)  # 10 minutes: about 3 s to transcode whole
    # The baseline: a note as long as the limit, transcoded whole. Refusing the long note
    # costs about that (the 2 s it reads), not 300 times that (all ten minutes).
    as_long_as_the_limit = wav(tone(2, 16000), 16000)
    baseline_s = seconds(lambda: transcode_voice(as_long_as_the_limit, "audio/wav"))
    started = time.perf_counter()
    error = refusal(long_note, "audio/wav", VoiceSettings(max_duration_s=2))
    refused_s = time.perf_counter() - started
    assert error.reason is Reason.VOICE_TOO_LONG
    assert_within(refused_s, baseline_s, factor=10, floor_s=0.5, what="refusing 10 min over 2 s")


@pytest.mark.parametrize(
    ("seconds", "refused"),
    [
        pytest.param(5.0, True, id="5 s over 2 s"),
        pytest.param(2.1, True, id="2.1 s over 2 s"),
        pytest.param(2.0, False, id="exactly 2 s"),
        pytest.param(1.9, False, id="1.9 s"),
    ],
)
def test_the_maximum_duration_is_the_decoded_length(seconds: float, refused: bool) -> None:
    voice = VoiceSettings(max_duration_s=2)
    data = wav(tone(seconds, 16000), 16000)
    if refused:
        assert refusal(data, "audio/wav", voice).reason is Reason.VOICE_TOO_LONG
    else:
        assert transcode_voice(data, "audio/wav", voice).duration_s == pytest.approx(seconds)


def test_the_time_limit_stops_a_long_decode() -> None:
    error = refusal(wav(tone(60, 16000), 16000), "audio/wav", VoiceSettings(timeout_s=0))
    assert error.reason is Reason.MEDIA_TIMEOUT


def test_the_default_limits() -> None:
    assert VoiceSettings().max_duration_s == 600
    assert VoiceSettings().timeout_s > 0


def silent_wav_header(rate: int = 16000) -> bytes:
    return wav(np.zeros(0, np.int16), rate)


@pytest.mark.parametrize(
    ("data", "mime", "reason"),
    [
        pytest.param(b"", "audio/amr", Reason.VOICE_EMPTY, id="empty file"),
        pytest.param(
            silent_wav_header(), "audio/wav", Reason.VOICE_EMPTY, id="WAV header, no samples"
        ),
        pytest.param(
            silent_wav_header() + b"\x01", "audio/wav", Reason.VOICE_EMPTY, id="WAV, half a sample"
        ),
        pytest.param(b"#!AMR\n", "audio/amr", Reason.VOICE_EMPTY, id="AMR magic, no frames"),
        pytest.param(
            b"#!AMR-WB\n", "audio/amr-wb", Reason.VOICE_EMPTY, id="AMR-WB magic, no frames"
        ),
        pytest.param(video_only_mp4(), "audio/mp4", Reason.VOICE_NO_AUDIO, id="MP4 of video only"),
        pytest.param(
            encode_image(quadrants(32, 32), "JPEG"), "audio/amr", Reason.VOICE_NO_AUDIO, id="a JPEG"
        ),
        pytest.param(
            encode_image(quadrants(32, 32), "PNG"), None, Reason.VOICE_NO_AUDIO, id="a PNG"
        ),
        pytest.param(b"hello, world\n" * 100, "audio/amr", Reason.VOICE_UNREADABLE, id="text"),
        pytest.param(bytes(1000), "audio/wav", Reason.VOICE_UNREADABLE, id="zeros"),
        pytest.param(
            np.random.default_rng(5).bytes(4000), None, Reason.VOICE_UNREADABLE, id="noise"
        ),
        pytest.param(M4A[:32], "audio/mp4", Reason.VOICE_UNREADABLE, id="MP4: ftyp only"),
        pytest.param(
            M4A[: len(M4A) // 2],
            "audio/mp4",
            Reason.VOICE_UNREADABLE,
            id="MP4 cut before its index",
        ),
        pytest.param(
            M4A.replace(b"stsd", b"xtsd", 1),
            "audio/mp4",
            Reason.VOICE_UNREADABLE,
            id="MP4 track without a sample description",  # was: AttributeError
        ),
        pytest.param(
            wav_declaring(WAV, rate=134_233_728),
            "audio/wav",
            Reason.VOICE_UNREADABLE,
            id="WAV at 134 MHz",  # was: 1.4 s in the resampler for 1 s of data
        ),
        pytest.param(
            wav_declaring(WAV, rate=2**31 - 1),
            "audio/wav",
            Reason.VOICE_UNREADABLE,
            id="WAV at 2^31 Hz",  # was: av.error.MemoryError
        ),
        pytest.param(
            wav_declaring(WAV, channels=64),
            "audio/wav",
            Reason.VOICE_EMPTY,
            id="WAV of 64 unnamed channels",  # was: av.error.ArgumentError from the mixer
        ),
        pytest.param(
            wav_declaring(WAV, bits=0),
            "audio/wav",
            Reason.VOICE_UNREADABLE,
            id="WAV of 0-bit samples",
        ),
    ],
)
def test_what_holds_no_voice_is_refused_with_its_reason(
    data: bytes, mime: str | None, reason: Reason
) -> None:
    baseline_s = seconds(lambda: transcode_voice(WAV, "audio/wav"))  # 1 s of voice, whole
    started = time.perf_counter()
    assert refusal(data, mime).reason is reason
    refused_s = time.perf_counter() - started
    assert_within(
        refused_s, baseline_s, factor=10, floor_s=0.5, what=f"refusing with {reason.value}"
    )


# -- damaged, but there is audio ---------------------------------------------------------


def m4a_moov_first(pcm: np.ndarray, rate: int, tmp_path: Path) -> bytes:
    """AAC in M4A with its index before the audio (`-movflags faststart`, as streaming
    apps write it): a cut file keeps its index."""
    path = tmp_path / "note.m4a"
    with av.open(str(path), "w", format="ipod", options={"movflags": "faststart"}) as output:
        stream = output.add_stream("aac", rate=rate)
        stream.layout = "mono"
        for start in range(0, pcm.size, 1024):
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + 1024].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    return data


@pytest.mark.parametrize(
    ("make", "mime"),
    [
        pytest.param(lambda: amr_nb(tone(4, 8000)), "audio/amr", id="AMR-NB"),
        pytest.param(amr_wb_fixture, "audio/amr-wb", id="AMR-WB"),
        pytest.param(lambda: aac(tone(4, 16000), 16000, "adts"), "audio/aac", id="ADTS"),
        pytest.param(lambda: wav(tone(4, 16000), 16000), "audio/wav", id="WAV"),
    ],
)
def test_a_note_cut_in_half_gives_the_half_that_arrived(
    make: Callable[[], bytes], mime: str
) -> None:
    whole = make()
    samples, rate = decoded_samples(whole)
    result = transcode_voice(whole[: len(whole) // 2], mime)
    assert result.duration_s == pytest.approx(samples / rate / 2, abs=0.1)
    assert not result.container_mismatch


def test_a_truncated_m4a_with_its_index_first_gives_what_arrived(tmp_path: Path) -> None:
    whole = m4a_moov_first(tone(4, 16000), 16000, tmp_path)
    result = transcode_voice(whole[: len(whole) // 2], "audio/mp4")
    assert result.duration_s == pytest.approx(2, abs=0.25)
    assert result.decode_errors >= 1


def test_an_mp4_claiming_a_512_mb_sample_gives_what_came_before() -> None:
    # Was: av.error.MemoryError out of the demuxer. Now the demuxer's failure ends the
    # note like the end of the file, counted as a decode error.
    data = bytearray(aac(tone(1, 16000), 16000, "mp4"))
    sizes = mp4_box(bytes(data), b"stsz") + 16  # type, version+flags, size, count
    data[sizes + 4 * 5 : sizes + 4 * 6] = struct.pack(">I", 0x2000_0000)

    result = transcode_voice(bytes(data), "audio/mp4")

    assert result.decode_errors >= 1
    assert 0.2 <= result.duration_s <= 0.5  # the five AAC frames before the bad one


def test_a_stream_that_changes_rate_midway_is_transcoded_whole() -> None:
    # ADTS carries its rate in every frame header, so two notes end to end are one valid
    # stream. Was: ValueError("Frame does not match AudioResampler setup").
    first, second = aac(tone(1, 16000), 16000, "adts"), aac(tone(1, 8000), 8000, "adts")
    expected = sum(n / rate for n, rate in (decoded_samples(first), decoded_samples(second)))

    result = transcode_voice(first + second, "audio/aac")

    assert result.duration_s == pytest.approx(expected, abs=0.07)  # less the held-back part-frame
    assert dominant_hz(*decode_output(result.data)) == pytest.approx(220, abs=5)


def test_a_stream_that_turns_stereo_midway_is_transcoded_whole() -> None:
    first = aac(tone(1, 16000), 16000, "adts")
    second = aac(tone(1, 16000), 16000, "adts", layout="stereo")
    expected = sum(n / rate for n, rate in (decoded_samples(first), decoded_samples(second)))

    result = transcode_voice(first + second, "audio/aac")

    assert result.duration_s == pytest.approx(expected, abs=0.07)
    assert dominant_hz(*decode_output(result.data)) == pytest.approx(220, abs=5)


@pytest.mark.parametrize("index", range(5))
def test_an_adts_frame_that_swallows_its_neighbours_is_survived(index: int) -> None:
    # Frame `index` claims 1024 bytes more than it has: the demuxer hands the decoder a
    # long packet and the timestamps stumble. Was: av.error.ArgumentError from the Ogg
    # muxer (timestamps out of order); the derivative's clock is now its own samples.
    data = aac(tone(0.5, 16000), 16000, "adts")
    _, length = adts_frames(data)[index]
    result = transcode_voice(with_adts_length(data, index, length + 1024), "audio/aac")
    samples, rate = decode_output(result.data)
    assert samples.size / rate == pytest.approx(result.duration_s, abs=0.03)


# -- fuzz ----------------------------------------------------------------------------------

SEEDS = {
    "AMR-NB": amr_nb(tone(0.3, 8000)),
    "AMR-WB": amr_wb_fixture()[:1500],
    "ADTS": aac(tone(0.3, 16000), 16000, "adts"),
    "MP4": aac(tone(0.3, 16000), 16000, "mp4"),
    "WAV": wav(tone(0.2, 16000), 16000),
}
MIMES = ["audio/amr", "audio/amr-wb", "audio/aac", "audio/mp4", "audio/wav", None]

mutation = mutations(1 << 16)


def outcome(data: bytes, mime: str | None) -> VoiceResult | MediaError:
    try:
        return transcode_voice(data, mime)
    except MediaError as error:
        return error


# Never a hang: each input takes less than 50 times a 1-s note, or 2 s (tests/timing.py).
REFERENCE = Reference(lambda: transcode_voice(WAV, "audio/wav"), factor=50, floor_s=2.0)


def assert_result_or_reason(data: bytes, mime: str | None) -> None:
    result = REFERENCE.timed(lambda: outcome(data, mime), f"{len(data)} bytes as {mime}")
    if isinstance(result, MediaError):
        assert result.reason.value.startswith("voice."), result.reason
        assert result.detail
        return
    assert result.data.startswith(b"OggS")
    assert result.duration_s > 0
    assert result.output_rate in (8000, 16000)
    assert result.metadata()["decode_errors"] >= 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    mime=st.sampled_from(MIMES),
    mutations=st.lists(mutation, min_size=1, max_size=5),
)
def test_any_mutated_note_gives_a_derivative_or_a_reason(
    seed: str, mime: str | None, mutations: list[Any]
) -> None:
    assert_result_or_reason(mutate(SEEDS[seed], mutations), mime)


@settings(max_examples=100)
@given(data=st.binary(max_size=1024), mime=st.sampled_from(MIMES))
def test_any_bytes_give_a_derivative_or_a_reason(data: bytes, mime: str | None) -> None:
    assert_result_or_reason(data, mime)


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_every_prefix_of_a_small_note_gives_a_derivative_or_a_reason(seed: str) -> None:
    data = SEEDS[seed]
    for end in range(0, len(data), max(1, len(data) // 100)):
        assert_result_or_reason(data[:end], None)
