"""The sides of the voice benchmark: AMR-NB file in, Ogg Opus file out, each timed whole.

Ours is `transcode_voice` (PyAV, in-process) between reading the file and writing the
output. The FFmpeg command line is timed as a whole process, wall clock of
`subprocess.run`, since that is what a caller of the command line pays; its own user+sys
CPU time comes from the `RUSAGE_CHILDREN` delta. ffmpeg-python builds the same command
and runs it; its cost is the command line's plus its own Python.
"""

from __future__ import annotations

import collections
import hashlib
import io
import resource
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import ffmpeg  # type: ignore[import-untyped]

from gateway.media.stage_settings import VoiceSettings
from gateway.media.voice import transcode_voice

BITRATE, RATE, FRAME_MS = "16k", 8_000, 60


def cli_command(source: Path, target: Path, complexity: int = 0) -> list[str]:
    """The command line with ours' settings (checked against `ffmpeg -h encoder=libopus`)."""
    return [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-threads",
        "1",
        "-i",
        str(source),
        "-ac",
        "1",
        "-ar",
        str(RATE),
        "-c:a",
        "libopus",
        "-b:a",
        BITRATE,
        "-application",
        "voip",
        "-compression_level",
        str(complexity),
        "-frame_duration",
        str(FRAME_MS),
        "-f",
        "ogg",
        "-y",
        str(target),
    ]


def ffmpeg_python_stream(source: Path, target: Path, complexity: int = 0) -> Any:
    output = {"c:a": "libopus", "b:a": BITRATE}
    return (
        ffmpeg.input(str(source), threads=1)
        .output(
            str(target),
            ac=1,
            ar=RATE,
            application="voip",
            compression_level=complexity,
            frame_duration=FRAME_MS,
            f="ogg",
            **output,
        )
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .overwrite_output()
    )


@dataclass(frozen=True, slots=True)
class Timing:
    wall_s: float
    cpu_s: float  # user+sys: of this process for ours, of the ffmpeg process otherwise


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ours(source: Path, target: Path, complexity: int) -> Timing:
    settings = VoiceSettings(complexity=complexity)
    cpu, start = time.process_time(), time.perf_counter()
    result = transcode_voice(source.read_bytes(), "audio/amr", settings)
    target.write_bytes(result.data)
    return Timing(time.perf_counter() - start, time.process_time() - cpu)


def cli(source: Path, target: Path) -> Timing:
    command = cli_command(source, target)
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return Timing(time.perf_counter() - start, _children_cpu() - cpu)


def ffmpeg_python(source: Path, target: Path) -> Timing:
    cpu, start = _children_cpu(), time.perf_counter()
    ffmpeg_python_stream(source, target).run(capture_stdout=True, capture_stderr=True)
    return Timing(time.perf_counter() - start, _children_cpu() - cpu)


def cli_transcode_only(source: Path, target: Path) -> Timing:
    """The same command with `-benchmark`: FFmpeg's own timer around its transcoding,
    which leaves out the program's start (real time, and user+sys CPU)."""
    command = cli_command(source, target)
    command[command.index("error")] = "info"
    command.insert(1, "-benchmark")
    answer = subprocess.run(command, check=True, capture_output=True, text=True)
    line = next(x for x in answer.stderr.splitlines() if x.startswith("bench: utime="))
    figures = dict(part.split("=") for part in line.removeprefix("bench: ").split())
    seconds = {key: float(value.removesuffix("s")) for key, value in figures.items()}
    return Timing(seconds["rtime"], seconds["utime"] + seconds["stime"])


def cli_startup() -> Timing:
    """`ffmpeg -version`: the price of starting the program (it links 200-odd libraries)."""
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(["ffmpeg", "-hide_banner", "-version"], check=True, capture_output=True)
    return Timing(time.perf_counter() - start, _children_cpu() - cpu)


def inspect_opus(path: Path) -> dict[str, Any]:
    """What an Ogg Opus file holds: the OpusHead's input rate, packet count and duration,
    the TOC configurations (3 = SILK narrowband, 60 ms), the payload's bit rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        head = struct.unpack("<8sBBHI", (stream.codec_context.extradata or b"")[:16])
        tocs: collections.Counter[str] = collections.Counter()
        packets, payload, ticks = 0, 0, 0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            toc = bytes(packet)[0]
            tocs[f"config {toc >> 3}, code {toc & 3}"] += 1
            packets, payload = packets + 1, payload + packet.size
            ticks += packet.duration or 0
        seconds = float(ticks * (stream.time_base or 0))
        encoder = stream.metadata.get("encoder", "")
    return {
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "channels": head[2],
        "input_rate": head[4],
        "packets": packets,
        "seconds": seconds,
        "payload_kbit_s": payload * 8 / seconds / 1000,
        "toc": dict(tocs),
        "encoder": encoder,
    }


def decoded_seconds(source: Path) -> float:
    with av.open(io.BytesIO(source.read_bytes()), format="amr", mode="r") as container:
        stream = container.streams.audio[0]
        samples: int = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate
