"""The Pillow sides of the photo benchmark, and a probe of one photo's peak memory.

Each side takes the camera JPEG's bytes and returns the display JPEG (1600 px long edge,
quality 80) and the thumbnail (320 px, quality 80) as bytes. `naive` is the way the issue
describes; `ours` is `render_photo`; the `ours_*` variants change one step of it, to back
the choices in docs/decisions.md with figures.

    python -m bench.media_photo memory ours|naive PHOTO

prints, as JSON, the process's peak RSS after its imports and after one photo (Pillow
allocates in C, where tracemalloc does not look): `VmHWM` from /proc/self/status, and
`ru_maxrss` beside it. On Linux `ru_maxrss` carries the parent's high-water mark across
fork and exec, so from a parent of more than the probe's size it shows the parent's
figure; `VmHWM` belongs to the process's own address space and starts afresh at exec.

    python -m bench.media_photo loop PHOTO COUNT

renders the photo COUNT times and prints the rate: several at once show what the CPUs
give without a pool (the pool's ceiling).
"""

from __future__ import annotations

import io
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

from gateway.media.photo import render_photo
from gateway.media.stage_settings import PhotoSettings

DISPLAY_PX, THUMB_PX, QUALITY = 1600, 320, 80
# Ours encodes its thumbnail at 75 by default; the benchmark asks 80 of every side.
SETTINGS = PhotoSettings(
    display_px=DISPLAY_PX, thumb_px=THUMB_PX, quality=QUALITY, thumb_quality=QUALITY
)

Side = Callable[[bytes], tuple[bytes, bytes]]


def _fit(size: tuple[int, int], long_edge: int) -> tuple[int, int]:
    scale = long_edge / max(size)
    return round(size[0] * scale), round(size[1] * scale)


def _jpeg(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, **options)
    return out.getvalue()


def naive(data: bytes) -> tuple[bytes, bytes]:
    """Open, `exif_transpose`, LANCZOS resize of the full image to each size, save q80."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    display = image.resize(_fit(image.size, DISPLAY_PX), Image.Resampling.LANCZOS)
    thumbnail = image.resize(_fit(image.size, THUMB_PX), Image.Resampling.LANCZOS)
    return _jpeg(display), _jpeg(thumbnail)


def ours(data: bytes) -> tuple[bytes, bytes]:
    result = render_photo(data, SETTINGS)
    return result.display.data, result.thumbnail.data


def _variant(
    draft: bool = True,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
    reducing_gap: float | None = 3.0,
    thumbnail_resample: Image.Resampling | None = None,
) -> Side:
    """Ours with one step changed; by default the same draft decode, bicubic shrink,
    rotation, box-reduced thumbnail and progressive encode (without the EXIF facts and
    the colour-profile step). With `thumbnail_resample`, the thumbnail is resized from the
    display with it and `reducing_gap=2`, as Pillow's `Image.thumbnail` does."""

    def side(data: bytes) -> tuple[bytes, bytes]:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(0x0112, 1)
            if draft:
                image.draft("RGB", _fit(image.size, DISPLAY_PX))
            image.load()
            rgb = image.convert("RGB")
        display = rgb.resize(_fit(rgb.size, DISPLAY_PX), resample, reducing_gap=reducing_gap)
        if orientation == 6:
            display = display.transpose(Image.Transpose.ROTATE_270)
        if thumbnail_resample is None:
            thumbnail = display.reduce(max(display.size) // THUMB_PX)
        else:
            size = _fit(display.size, THUMB_PX)
            thumbnail = display.resize(size, thumbnail_resample, reducing_gap=2.0)
        return _jpeg(display, progressive=True), _jpeg(thumbnail, progressive=True)

    return side


ours_lanczos = _variant(resample=Image.Resampling.LANCZOS, reducing_gap=None)
ours_without_draft = _variant(draft=False)
ours_lanczos_thumbnail = _variant(thumbnail_resample=Image.Resampling.LANCZOS)

SIDES: dict[str, Side] = {"ours": ours, "naive": naive}


def stages(data: bytes) -> dict[str, float]:
    """Seconds of each step of ours, done the way `render_photo` does them."""
    marks = [time.perf_counter()]
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", _fit(image.size, DISPLAY_PX))
    image.load()
    marks.append(time.perf_counter())
    bicubic = image.resize(_fit(image.size, DISPLAY_PX), Image.Resampling.BICUBIC, reducing_gap=3.0)
    marks.append(time.perf_counter())
    image.resize(_fit(image.size, DISPLAY_PX), Image.Resampling.LANCZOS)
    marks.append(time.perf_counter())
    upright = bicubic.transpose(Image.Transpose.ROTATE_270)
    marks.append(time.perf_counter())
    thumbnail = upright.reduce(5)
    marks.append(time.perf_counter())
    _jpeg(upright, progressive=True)
    marks.append(time.perf_counter())
    _jpeg(upright)
    marks.append(time.perf_counter())
    _jpeg(upright, optimize=True)
    marks.append(time.perf_counter())
    _jpeg(thumbnail, progressive=True)
    marks.append(time.perf_counter())
    names = (
        "decode_draft_2000x1500",
        "resize_bicubic",
        "resize_lanczos_instead",
        "rotate",
        "thumbnail_reduce_5",
        "encode_display_progressive",
        "encode_display_baseline",
        "encode_display_optimized",
        "encode_thumbnail_progressive",
    )
    return {name: marks[n + 1] - marks[n] for n, name in enumerate(names)}


def display_encodings(data: bytes) -> dict[str, int]:
    """Bytes of ours' display JPEG, encoded progressive (as ours does) and otherwise."""
    source = Image.open(io.BytesIO(data))
    source.draft("RGB", _fit(source.size, DISPLAY_PX))
    shrunk = source.resize(_fit(source.size, DISPLAY_PX), Image.Resampling.BICUBIC, reducing_gap=3)
    image = shrunk.transpose(Image.Transpose.ROTATE_270)
    return {
        "progressive": len(_jpeg(image, progressive=True)),
        "baseline": len(_jpeg(image)),
        "baseline_optimized": len(_jpeg(image, optimize=True)),
    }


def _peaks_kib() -> tuple[int, int]:
    """VmHWM and ru_maxrss, both in KiB."""
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory(side: str, photo: Path) -> dict[str, int]:
    baseline, baseline_maxrss = _peaks_kib()
    SIDES[side](photo.read_bytes())
    peak, peak_maxrss = _peaks_kib()
    return {
        "baseline_kib": baseline,
        "peak_kib": peak,
        "ru_maxrss_baseline_kib": baseline_maxrss,
        "ru_maxrss_peak_kib": peak_maxrss,
    }


def loop(photo: Path, count: int) -> dict[str, float]:
    """Photos per second of `ours` over `count` photos from memory. After one warm-up it
    says "ready" and waits for a line on stdin, so that several start together."""
    data = photo.read_bytes()
    ours(data)
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    for _ in range(count):
        ours(data)
    return {"photos_per_s": count / (time.perf_counter() - start)}


USAGE = "usage: python -m bench.media_photo memory ours|naive PHOTO | loop PHOTO COUNT"

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "memory" and sys.argv[2] in SIDES:
        print(json.dumps(memory(sys.argv[2], Path(sys.argv[3]))))
    elif len(sys.argv) == 4 and sys.argv[1] == "loop":
        print(json.dumps(loop(Path(sys.argv[2]), int(sys.argv[3]))))
    else:
        sys.exit(USAGE)
