"""Media: photo derivatives, voice transcoding and the worker pool, each beside its baselines.

Photo: a generated 12-MP camera JPEG (4000×3000, EXIF orientation 6) to the 1600-px display
JPEG and the 320-px thumbnail (both quality 80) by `render_photo`, by naive Pillow, by
pyvips' `thumbnail` with its default threading and with one thread (each in a process of
its own), and by variants of ours that change one step; interleaved rounds after one
untimed warm-up each; SSIM of each output against naive Pillow's; the peak memory of one
photo in a fresh process. Voice: a generated 60 s AMR-NB note to Ogg Opus at 16 kbit/s by
`transcode_voice` (PyAV), by the FFmpeg command line and by ffmpeg-python, with this
process (and so its ffmpeg children) pinned to one CPU. Pool: a burst of 100 distinct
12-MP photos through `MediaPool` on every CPU, the same jobs one after another in-process,
and bare processes rendering at once (the ceiling). The CPU time other processes take
meanwhile is recorded per section: a disturbed run is flagged, not hidden.

`python -m bench.media` runs it all in about 2 minutes on the 2-core machine.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, features
from skimage.metrics import structural_similarity

from bench import media_photo, media_samples, media_voice
from bench.common import summary, write
from gateway import logs
from gateway.media.jobs import MediaDerived, MediaJob
from gateway.media.pool import InlineRunner, MediaPool, default_workers

ROOT = Path(__file__).resolve().parent.parent
PHOTO_ROUNDS, VOICE_ROUNDS, POOL_ROUNDS = 9, 9, 3
MEMORY_PROBES = 3
POOL_PHOTOS, PIXEL_VARIANTS, BARE_PHOTOS = 100, 4, 30
MB = 1_000_000
QUIET_SHARE = 0.05  # above it, a section's figures are flagged as disturbed


class Load:
    """How busy the machine was during a section, besides us: the CPU time /proc/stat
    counts as busy, less this process's and its reaped children's. The development
    machine is shared, and two cores leave no room for a neighbour's test run."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {}

    @staticmethod
    def _busy_s(cpu: int | None) -> tuple[float, float]:
        """Busy seconds (steal included) and, of them, stolen by the hypervisor."""
        name = "cpu" if cpu is None else f"cpu{cpu}"
        line = next(x for x in Path("/proc/stat").read_text().splitlines() if x.split()[0] == name)
        fields = [int(n) for n in line.split()[1:]]
        idle, steal = fields[3] + fields[4], fields[7]  # idle and iowait; steal
        tick = os.sysconf("SC_CLK_TCK")
        return (sum(fields[:8]) - idle) / tick, steal / tick

    @staticmethod
    def _own_s() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    @contextmanager
    def section(self, name: str, cpu: int | None = None) -> Iterator[None]:
        """Time a section; with `cpu`, count that CPU only (we are pinned to it)."""
        (busy, steal), own, start = self._busy_s(cpu), self._own_s(), time.perf_counter()
        yield
        wall = time.perf_counter() - start
        busy_after, steal_after = self._busy_s(cpu)
        own = self._own_s() - own
        others = busy_after - busy - own
        cpus = 1 if cpu is not None else os.cpu_count() or 1
        share = others / (wall * cpus)  # of the machine, or of `cpu`
        self.sections[name] = {
            "wall_s": wall,
            "own_cpu_s": own,
            "others_cpu_s": others,  # other processes, and the hypervisor's steal
            "steal_s": steal_after - steal,
            "others_share": share,
            "cpus": cpus,
            "disturbed": share > QUIET_SHARE,
        }
        if share > QUIET_SHARE:
            print(
                f"bench.media: during {name}, others took {share:.0%} of the CPU time: "
                "its figures are not representative",
                file=sys.stderr,
            )


def rotated(names: list[str], turn: int) -> list[str]:
    """Each round starts with another side, so none always runs first."""
    turn %= len(names)
    return names[turn:] + names[:turn]


class VipsProcess:
    """A `bench.media_vips` process: pyvips with or without `VIPS_CONCURRENCY=1`."""

    def __init__(self, photo: Path, outdir: Path, concurrency: int | None) -> None:
        env = {key: value for key, value in os.environ.items() if key != "VIPS_CONCURRENCY"}
        if concurrency is not None:
            env["VIPS_CONCURRENCY"] = str(concurrency)
        outdir.mkdir()
        self.outdir = outdir
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.media_vips", str(photo), str(outdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self.info: dict[str, Any] = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def round(self, command: str = "round") -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return float(self._answer()["seconds"])

    def outputs(self) -> tuple[bytes, bytes]:
        self.round("save")
        return (self.outdir / "display.jpg").read_bytes(), (self.outdir / "thumb.jpg").read_bytes()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def ssim(ours: bytes, reference: bytes) -> dict[str, float]:
    """Mean SSIM (7×7 window) on luma (Pillow's "L") and per RGB channel, averaged."""
    a, b = Image.open(io.BytesIO(ours)), Image.open(io.BytesIO(reference))
    if a.size != b.size:
        raise ValueError(f"sizes differ: {a.size} against {b.size}")
    measure: Callable[..., float] = structural_similarity  # scikit-image has no annotations
    luma = measure(np.asarray(a.convert("L")), np.asarray(b.convert("L")), data_range=255)
    rgb = measure(
        np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")), data_range=255, channel_axis=2
    )
    return {"luma": float(luma), "rgb_per_channel": float(rgb)}


def photo(path: Path, scratch: Path) -> dict[str, Any]:
    data = path.read_bytes()
    in_process: dict[str, media_photo.Side] = {
        "ours": media_photo.ours,
        "naive_pillow": media_photo.naive,
        "ours_lanczos": media_photo.ours_lanczos,
        "ours_without_draft": media_photo.ours_without_draft,
        "ours_lanczos_thumbnail": media_photo.ours_lanczos_thumbnail,
    }
    vips = {
        "pyvips_default_threads": VipsProcess(path, scratch / "vips-default", None),
        "pyvips_one_thread": VipsProcess(path, scratch / "vips-one", 1),
    }
    try:
        outputs = {name: side(data) for name, side in in_process.items()}  # the warm-up
        outputs |= {name: process.outputs() for name, process in vips.items()}
        samples: dict[str, list[float]] = {name: [] for name in [*in_process, *vips]}
        stages: list[dict[str, float]] = []
        for turn in range(PHOTO_ROUNDS):
            for name in rotated(list(samples), turn):
                if name in vips:
                    samples[name].append(vips[name].round())
                else:
                    start = time.perf_counter()
                    in_process[name](data)
                    samples[name].append(time.perf_counter() - start)
            stages.append(media_photo.stages(data))
        concurrency = {name: process.info["concurrency"] for name, process in vips.items()}
    finally:
        for process in vips.values():
            process.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    naive_display = outputs["naive_pillow"][0]
    return {
        "input": {"bytes": len(data), "size": list(Image.open(io.BytesIO(data)).size)},
        "unit": "seconds per photo (display and thumbnail, from the JPEG's bytes in memory)",
        "rounds": PHOTO_ROUNDS,
        "pyvips_concurrency": concurrency,
        "sides": {name: summary(values) for name, values in samples.items()},
        "over_ours": {name: median / medians["ours"] for name, median in medians.items()},
        "ssim_display_against_naive": {
            name: ssim(display, naive_display)
            for name, (display, _) in outputs.items()
            if name != "naive_pillow"
        },
        "ssim_thumbnail_against_naive": {
            name: ssim(thumbnail, outputs["naive_pillow"][1])
            for name, (_, thumbnail) in outputs.items()
            if name != "naive_pillow"
        },
        "output_bytes": {
            name: {"display": len(display), "thumbnail": len(thumbnail)}
            for name, (display, thumbnail) in outputs.items()
        },
        "ours_stages": {name: summary([round_[name] for round_ in stages]) for name in stages[0]},
        "display_encodings_bytes": media_photo.display_encodings(data),
    }


def memory(path: Path) -> dict[str, Any]:
    """Peak RSS of a fresh process after its imports, and after one photo (median probe)."""
    result: dict[str, Any] = {"unit": "MB (10^6 bytes) of peak RSS (VmHWM; see bench.media_photo)"}
    for side in media_photo.SIDES:
        probes = []
        for _ in range(MEMORY_PROBES):
            command = [sys.executable, "-m", "bench.media_photo", "memory", side, str(path)]
            answer = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
            probes.append(json.loads(answer.stdout))
        probes.sort(key=lambda probe: probe["peak_kib"] - probe["baseline_kib"])
        middle = probes[len(probes) // 2]
        result[side] = {
            "after_imports": middle["baseline_kib"] * 1024 / MB,
            "after_one_photo": middle["peak_kib"] * 1024 / MB,
            "photo_adds": (middle["peak_kib"] - middle["baseline_kib"]) * 1024 / MB,
            "probes_kib": probes,
        }
    return result


@contextmanager
def one_cpu() -> Iterator[int]:
    """Pin this process (and so the children it starts) to one CPU, then restore."""
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


def voice(note: Path, scratch: Path, load: Load) -> dict[str, Any]:
    out = scratch / "voice"
    out.mkdir()
    seconds = media_samples.VOICE_SECONDS
    sides: dict[str, Callable[[], media_voice.Timing]] = {
        "ours": partial(media_voice.ours, note, out / "ours.ogg", 0),
        "ours_complexity_1": partial(media_voice.ours, note, out / "ours-c1.ogg", 1),
        "ours_complexity_10": partial(media_voice.ours, note, out / "ours-c10.ogg", 10),
        "ffmpeg_cli": partial(media_voice.cli, note, out / "cli.ogg"),
        "ffmpeg_python": partial(media_voice.ffmpeg_python, note, out / "ffmpeg-python.ogg"),
        "ffmpeg_cli_transcode_only": partial(media_voice.cli_transcode_only, note, out / "b.ogg"),
        "ffmpeg_cli_startup_only": media_voice.cli_startup,
    }
    with one_cpu() as cpu, load.section("voice_pinned", cpu):
        for side in sides.values():  # the warm-up
            side()
        timings: dict[str, list[media_voice.Timing]] = {name: [] for name in sides}
        for turn in range(VOICE_ROUNDS):
            for name in rotated(list(sides), turn):
                timings[name].append(sides[name]())
    wall = {name: statistics.median(t.wall_s for t in values) for name, values in timings.items()}
    files = {
        "ours": "ours",
        "ours_complexity_1": "ours-c1",
        "ours_complexity_10": "ours-c10",
        "ffmpeg_cli": "cli",
        "ffmpeg_python": "ffmpeg-python",
    }
    return {
        "input": {
            "bytes": note.stat().st_size,
            "codec": "AMR-NB 12.2 kbit/s, 8 kHz mono",
            "nominal_seconds": seconds,
            "decoded_seconds": media_voice.decoded_seconds(note),
        },
        "pinned_to_cpu": cpu,
        "rounds": VOICE_ROUNDS,
        "unit": "seconds, file in to file out; x real time = 60 / seconds",
        "cli_command": media_voice.cli_command(note, out / "cli.ogg"),
        "ffmpeg_python_command": media_voice.ffmpeg_python_stream(
            note, out / "ffmpeg-python.ogg"
        ).compile(),
        "wall": {name: summary([t.wall_s for t in values]) for name, values in timings.items()},
        "cpu": {name: summary([t.cpu_s for t in values]) for name, values in timings.items()},
        "x_real_time": {name: seconds / median for name, median in wall.items()},
        "over_ours": {name: median / wall["ours"] for name, median in wall.items()},
        "outputs": {
            name: media_voice.inspect_opus(out / f"{stem}.ogg") for name, stem in files.items()
        },
    }


def spool_photos(pixels: np.ndarray[Any, Any], spool: Path, count: int) -> list[Path]:
    """`count` distinct camera JPEGs: a few pixel variants (the scene shifted a few
    columns, so every block differs), each under many EXIF blocks (time, position)."""
    spool.mkdir()
    paths = []
    variants = min(count, PIXEL_VARIANTS)
    per_variant = -(-count // variants)
    for variant in range(variants):
        jpeg = media_samples.photo_jpeg(np.roll(pixels, 8 * variant + 3, axis=1))
        for copy in range(per_variant):
            number = variant * per_variant + copy
            if number < count:
                path = spool / f"photo-{number:03d}.jpg"
                path.write_bytes(media_samples.with_exif(jpeg, number + 1))
                paths.append(path)
    return paths


def pool(pixels: np.ndarray[Any, Any], scratch: Path) -> dict[str, Any]:
    logs.setup("warning", "json", stream=io.StringIO())
    paths = spool_photos(pixels, scratch / "spool", POOL_PHOTOS)
    workers = default_workers()
    warm_paths = spool_photos(pixels[:, ::-1], scratch / "warm", workers)

    def batch(files: list[Path]) -> list[MediaJob]:
        return [MediaJob(f.stem, "photo", "image/jpeg", f) for f in files]

    jobs, warm = batch(paths), batch(warm_paths)
    media_pool = MediaPool(workers=0, timeout_s=120, log=logs.get("bench.media"))
    inline = InlineRunner()
    samples: dict[str, list[float]] = {"pool": [], "inline": [], "bare_processes": []}
    try:
        start = time.perf_counter()
        media_pool.run(warm)  # one job per worker: spawns and imports happen here
        warm_up_s = time.perf_counter() - start
        for turn in range(POOL_ROUNDS):
            for name in rotated(list(samples), turn):
                if name == "bare_processes":
                    samples[name].append(bare_processes(paths[0], workers))
                    continue
                runner = media_pool if name == "pool" else inline
                start = time.perf_counter()
                results = runner.run(jobs)
                samples[name].append(len(jobs) / (time.perf_counter() - start))
                refused = [result for result in results if not isinstance(result, MediaDerived)]
                if refused:
                    raise RuntimeError(f"{name}: {len(refused)} refused, first {refused[0]}")
    finally:
        media_pool.close()
    rates = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "photos": len(jobs),
        "distinct_files": len({p.read_bytes() for p in paths}),
        "workers": workers,
        "rounds": POOL_ROUNDS,
        "unit": "photos per second (pool and inline: one run() of the whole burst, files "
        "in, derivatives written and fsynced beside each source, as in production)",
        "pool_warm_up_s_excluded": warm_up_s,
        "pool": summary(samples["pool"]),
        "inline_one_after_another": summary(samples["inline"]),
        "bare_processes": summary(samples["bare_processes"]),
        "bare_processes_note": f"{workers} processes, each render_photo {BARE_PHOTOS} times "
        "from memory, rates summed: what the CPUs give without a pool or files",
        "pool_over_inline": rates["pool"] / rates["inline"],
        "pool_over_bare_processes": rates["pool"] / rates["bare_processes"],
    }


def bare_processes(path: Path, count: int) -> float:
    """Photos per second of `count` processes rendering at once, summed."""
    command = [sys.executable, "-m", "bench.media_photo", "loop", str(path), str(BARE_PHOTOS)]
    pipe = subprocess.PIPE
    processes = [
        subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True, cwd=ROOT)
        for _ in range(count)
    ]
    for process in processes:  # all warmed up, then all at once
        assert process.stdout is not None
        process.stdout.readline()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    answers = [json.loads(process.communicate()[0]) for process in processes]
    return float(sum(answer["photos_per_s"] for answer in answers))


def _opus_version(library: str) -> str:
    lib = ctypes.CDLL(library)
    lib.opus_get_version_string.restype = ctypes.c_char_p
    return str(lib.opus_get_version_string().decode())


def _loaded(name: str) -> str:
    with Path("/proc/self/maps").open() as maps:
        for line in maps:
            if name in line and "/" in line:
                return line[line.index("/") :].strip()
    raise LookupError(name)


def versions() -> dict[str, Any]:
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True)
    ldd = subprocess.run(["ldd", "/usr/bin/ffmpeg"], capture_output=True, text=True, check=True)
    cli_opus = next(line.split()[2] for line in ldd.stdout.splitlines() if "libopus" in line)
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "gateway/media"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "pillow": metadata.version("pillow"),
        "libjpeg_turbo": features.version_feature("libjpeg_turbo"),
        "pyvips": metadata.version("pyvips"),
        "pyav": av.__version__,
        "pyav_ffmpeg": av.ffmpeg_version_info,
        "pyav_ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "pyav_libopus": _opus_version(_loaded("libopus")),
        "ffmpeg_cli": ffmpeg.stdout.splitlines()[0],
        "ffmpeg_cli_libopus": _opus_version(cli_opus),
        "ffmpeg_python": metadata.version("ffmpeg-python"),
        "scikit_image": metadata.version("scikit-image"),
        "git_head": head.stdout.strip(),
        "gateway_media_uncommitted": dirty.stdout.splitlines(),
    }


def goals(
    photos: dict[str, Any], mem: dict[str, Any], voices: dict[str, Any], pools: dict[str, Any]
) -> dict[str, Any]:
    """Each goal of the issue: the figure measured, and whether it is met."""
    sides = {name: value["median"] for name, value in photos["sides"].items()}
    similarity = photos["ssim_display_against_naive"]["ours"]
    speed = voices["x_real_time"]
    return {
        "photo_2.5x_naive_pillow": {
            "measured": sides["naive_pillow"] / sides["ours"],
            "met": sides["naive_pillow"] / sides["ours"] >= 2.5,
        },
        **{
            f"photo_no_slower_than_{name}": {
                "measured": sides[name] / sides["ours"],  # above 1: ours is faster
                "met": sides["ours"] <= sides[name],
            }
            for name in ("pyvips_default_threads", "pyvips_one_thread")
        },
        "photo_ssim_0.97_against_naive": {
            "measured": similarity["rgb_per_channel"],
            "luma": similarity["luma"],
            "met": min(similarity.values()) >= 0.97,
        },
        "photo_memory_under_120_MB": {
            "measured": mem["ours"]["photo_adds"],
            "whole_process_peak": mem["ours"]["after_one_photo"],
            "met": mem["ours"]["photo_adds"] < 120,
            "whole_process_under": mem["ours"]["after_one_photo"] < 120,
        },
        "voice_300x_real_time_one_core": {"measured": speed["ours"], "met": speed["ours"] >= 300},
        "voice_faster_than_cli": {
            "measured": speed["ours"] / speed["ffmpeg_cli"],  # above 1: ours is faster
            "met": speed["ours"] > speed["ffmpeg_cli"],
        },
        "pool_photos_per_second_burst_of_100": {
            "measured": pools["pool"]["median"],
            "over_inline": pools["pool_over_inline"],
            "met": None,  # the issue asks for the figure, with no threshold
        },
    }


def run() -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cgt-bench-media-") as directory:
        scratch, load = Path(directory), Load()
        with load.section("generate"):
            pixels = media_samples.photo_pixels()
            photo_path = scratch / "photo.jpg"
            photo_path.write_bytes(media_samples.photo_jpeg(pixels))
            note = scratch / "note.amr"
            note.write_bytes(media_samples.amr_nb(media_samples.speech_signal()))
        with load.section("photo"):
            photos = photo(photo_path, scratch)
        with load.section("memory"):
            mem = memory(photo_path)
        voices = voice(note, scratch, load)
        with load.section("pool"):
            pools = pool(pixels, scratch)
    result = {
        "benchmark": "media",
        "versions": versions(),
        "photo": photos,
        "photo_memory": mem,
        "voice": voices,
        "pool": pools,
        "goals": goals(photos, mem, voices, pools),
        "machine_load": load.sections,
        "benchmark_seconds": time.perf_counter() - started,
    }
    write("media", result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
