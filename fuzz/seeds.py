"""Rebuild the seed corpora, fuzz/corpus/TARGET/seed-*, from what the tests already hold:
the golden vectors (tests/vectors/), the receiver logs and gpsd's decodings of them
(tests/fixtures/nmea/), the AMR-WB note, and photos and voice notes made by
tests.media_samples. Only `seed-*` files are replaced; regression inputs (a fixed finding,
named otherwise) stay.

    python -m fuzz.seeds

Every seed is kept small (a few KiB): the engine mutates from them, and media decode
time grows with their size.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from firmware_sim.capture import CaptureWriter
from fuzz.targets import CORPUS, TARGETS
from tests import media_samples as media
from tests.vectors import HERE as VECTORS
from tests.vectors import payload_of

ROOT = Path(__file__).resolve().parent.parent
NMEA_LOGS = sorted((ROOT / "tests/fixtures/nmea").glob("*.log"))
ORIENTATION = 0x0112
EXCERPT_BYTES = 1536  # of a receiver log or gpsd capture: a few epochs


def _vectors(name: str) -> list[dict[str, object]]:
    data = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    vectors: list[dict[str, object]] = data["vectors"]
    return vectors


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _excerpt(lines: list[str]) -> str:
    out = ""
    for line in lines:
        if len(out) + len(line) + 1 > EXCERPT_BYTES:
            break
        out += line + "\n"
    return out


def uplink_seeds() -> Iterator[tuple[str, str, bytes]]:
    """(target, name, bytes) from the uplink vectors: each topic, and each payload under the
    target of its topic's message."""
    for vector in _vectors("uplink"):
        topic, payload, name = str(vector["topic"]), payload_of(vector), _slug(str(vector["id"]))
        yield "topic", name, topic.encode()
        kind = topic.split("/")[3] if topic.count("/") >= 3 else ""
        if kind == "media":
            yield "chunk", name, topic.split("/", 3)[3].encode() + b"\n" + payload
        elif kind == "report":
            yield "envelope", name, payload
        elif kind in ("status", "track"):
            yield kind, name, payload


def downlink_seeds() -> Iterator[tuple[str, str, bytes]]:
    for vector in _vectors("downlink"):
        topic = str(vector["topic"]).encode()
        yield "downlink", _slug(str(vector["id"])), topic + b"\n" + payload_of(vector)


def nmea_seeds() -> Iterator[tuple[str, str, bytes]]:
    """One sentence of each talker and type of every log; an excerpt of each log; an
    excerpt of gpsd's JSON for each."""
    seen: set[str] = set()
    for log in NMEA_LOGS:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line]
        sentences = [line for line in lines if line.startswith("$")]
        for sentence in sentences:
            kind = sentence.split(",", 1)[0]
            if kind not in seen:
                seen.add(kind)
                yield "nmea_sentence", _slug(kind), sentence.encode()
        yield "nmea_epochs", log.stem, _excerpt(sentences).encode()
        check = log.with_name(log.name + ".chk").read_text(errors="replace").splitlines()
        yield "gpsd", log.stem, _excerpt([line for line in check if line.startswith("{")]).encode()
    # What gpsd says before its reports: the greeting, the devices, the watch answer.
    yield (
        "gpsd",
        "greeting",
        (
            b'{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}\n'
            b'{"class":"DEVICES","devices":[{"class":"DEVICE","path":"/dev/ttyUSB0"}]}\n'
            b'{"class":"WATCH","enable":true,"json":true}\n'
            b'{"class":"ERROR","message":"Unrecognized request"}\n'
        ),
    )


def photo_seeds() -> Iterator[tuple[str, str, bytes]]:
    picture = media.quadrants(24, 16)
    exif = media.exif_block([(ORIENTATION, 3, 6)])
    gray16 = Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    palette = picture.convert("P")
    palette.info["transparency"] = 0
    icc = media.rgb_icc_profile("Wide", (0.7, 0.3, 0.0), (0.15, 0.7, 0.1), (0.1, 0.0, 0.7))
    yield "photo", "jpeg-exif-orientation-6", media.encode_image(picture, "JPEG", exif=exif)
    yield "photo", "jpeg-progressive", media.encode_image(picture, "JPEG", progressive=True)
    yield (
        "photo",
        "jpeg-cmyk",
        media.encode_image(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), "JPEG"),
    )
    yield "photo", "jpeg-gray", media.encode_image(picture.convert("L"), "JPEG")
    yield "photo", "jpeg-icc", media.encode_image(picture, "JPEG", icc_profile=icc)
    yield "photo", "jpeg-flat-64x48", media.flat_jpeg(64, 48)
    small = media.encode_image(media.quadrants(16, 16), "JPEG")
    yield "photo", "mpo", media.as_mpo(small, media.encode_image(media.quadrants(8, 8), "JPEG"))
    yield "photo", "png-rgba", media.encode_image(picture.convert("RGBA"), "PNG")
    yield "photo", "png-16-bit-gray", media.encode_image(gray16, "PNG")
    yield "photo", "png-palette-transparent", media.encode_image(palette, "PNG")
    yield "photo", "png-exif", media.encode_image(picture, "PNG", exif=exif)
    yield "photo", "heic", media.encode_image(picture, "HEIF", quality=50)


def voice_seeds() -> Iterator[tuple[str, str, bytes]]:
    """The first line is the MIME type the manifest would claim (see fuzz.targets.voice)."""
    narrow, wide = media.tone(0.1, 8000), media.tone(0.1, 16000)
    yield "voice", "wav", b"audio/wav\n" + media.wav(media.tone(0.05, 8000), 8000)
    yield "voice", "wav-no-mime", media.wav(media.tone(0.02, 8000), 8000, channels=1)
    yield (
        "voice",
        "wav-stereo-8-bit",
        b"audio/wav\n"
        + media.wav(
            (media.tone(0.02, 8000) >> 8).astype(np.uint8).repeat(2), 8000, channels=2, width=1
        ),
    )
    yield "voice", "amr-nb", b"audio/amr\n" + media.amr_nb(media.tone(0.2, 8000))
    yield "voice", "amr-wb", b"audio/amr-wb\n" + media.amr_wb_fixture()[:1024]
    yield "voice", "aac-adts", b"audio/aac\n" + media.aac(wide, 16000, "adts")
    yield "voice", "m4a", b"audio/mp4\n" + media.aac(narrow, 8000, "ipod")


def config_seeds() -> Iterator[tuple[str, str, bytes]]:
    yield "config", "example", (ROOT / "config/gateway.example.toml").read_bytes()
    yield (
        "config",
        "production-sinks",
        (
            b'data_dir = "var"\nobjects = "s3://cgt-objects/nantong"\n'
            b'registry = "postgresql://cgt@db:5432/cgt"\n\n'
            b'[mqtt]\nbroker = "mqtts://broker:8883"\nusername = "gateway"\n'
            b'password_env = "CGT_MQTT_PASSWORD"\n\n[mqtt.tls]\nca_file = "ca.pem"\n\n'
            b"[media]\nworkers = 2\nmax_pixels = 50_000_000\nvoice_frame_ms = 40\n"
        ),
    )
    yield (
        "config",
        "mistakes",
        (
            b'[mqtt]\nbroker = "http://x"\nkeepalive = -1\nnonsense = 1\n\n'
            b'[acceptance]\ntimezone = "Mars/Olympus"\n\n[metrics]\nlisten = "nowhere"\n'
        ),
    )


def capture_seeds() -> Iterator[tuple[str, str, bytes]]:
    out = io.BytesIO()
    ticks = iter(range(100))
    started = datetime(2026, 11, 28, 9, 15, 2, tzinfo=timezone(timedelta(hours=8)))
    writer = CaptureWriter(
        out, source="fuzz seeds", clock=lambda: next(ticks) * 0.25, now=lambda: started
    )
    for vector in _vectors("uplink")[:12]:  # the accepted ones: reports, chunks, status, track
        writer.write(str(vector["topic"]), payload_of(vector)[:512], retain=False)
    yield "capture", "twelve-uplinks", out.getvalue()
    yield "capture", "header-only", out.getvalue().split(b"\n", 1)[0] + b"\n"


def all_seeds() -> Iterator[tuple[str, str, bytes]]:
    for make in (
        uplink_seeds,
        downlink_seeds,
        nmea_seeds,
        photo_seeds,
        voice_seeds,
        config_seeds,
        capture_seeds,
    ):
        yield from make()


def main() -> None:
    for target in TARGETS.values():
        target.seeds.mkdir(parents=True, exist_ok=True)
        for old in target.seeds.glob("seed-*"):
            old.unlink()
    written: set[tuple[str, bytes]] = set()
    for name, seed, data in all_seeds():
        if (name, data) in written:  # many vectors share a topic
            continue
        written.add((name, data))
        path = CORPUS / name / f"seed-{seed}"
        if len(data) > TARGETS[name].max_len:
            raise SystemExit(f"{path}: {len(data)} bytes, over its {TARGETS[name].max_len}")
        path.write_bytes(data)
    for target in TARGETS.values():
        files = list(target.seeds.iterdir())
        size = sum(path.stat().st_size for path in files)
        print(f"{target.name:<14} {len(files):>3} inputs, {size:>6} bytes")


if __name__ == "__main__":
    main()
