"""The pyvips side of the photo benchmark, in a process of its own.

libvips reads `VIPS_CONCURRENCY` when it starts, so each threading variant runs in its
own process, which `bench.media` starts with the variable set or not:

    python -m bench.media_vips PHOTO OUTDIR

reads the photo once, then answers each line on stdin: `round` makes the display JPEG
and thumbnail once and prints the seconds it took, as JSON; `save` also writes them to
OUTDIR (for the SSIM). libvips' operation cache is off, so no round reuses another's work.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyvips  # type: ignore[import-untyped]

DISPLAY_PX, THUMB_PX, QUALITY = 1600, 320, 80


def render(data: bytes) -> tuple[bytes, bytes]:
    """`thumbnail_buffer` (shrink-on-load, auto-rotate) to 1600 px, kept in memory; the
    thumbnail from it; both saved quality 80, progressive, without metadata."""
    display = pyvips.Image.thumbnail_buffer(data, DISPLAY_PX).copy_memory()
    thumbnail = display.thumbnail_image(THUMB_PX)
    options = {"Q": QUALITY, "interlace": True, "keep": pyvips.enums.ForeignKeep.NONE}
    return display.jpegsave_buffer(**options), thumbnail.jpegsave_buffer(**options)


def serve(photo: Path, outdir: Path) -> None:
    pyvips.cache_set_max(0)
    data = photo.read_bytes()
    libvips = ".".join(str(pyvips.version(n)) for n in range(3))
    print(json.dumps({"concurrency": pyvips.concurrency_get(), "libvips": libvips}), flush=True)
    for line in sys.stdin:
        start = time.perf_counter()
        display, thumbnail = render(data)
        seconds = time.perf_counter() - start
        if line.strip() == "save":
            (outdir / "display.jpg").write_bytes(display)
            (outdir / "thumb.jpg").write_bytes(thumbnail)
        print(json.dumps({"seconds": seconds}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bench.media_vips PHOTO OUTDIR")
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
