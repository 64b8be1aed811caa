"""A burst of large photos: processed off the intake, in bounded batches; text reports and
acks already due go on meanwhile, and the pipeline's memory stays bounded."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from gateway.harness.mosquitto import Mosquitto
from tests.factories import Upload, envelope
from tests.integration.helpers import GatewayProcess, Terminal, wait_until
from tests.timing import assert_within

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PHOTOS = 24
# Text reports during the burst against the same before and after it (tests/timing.py).
FACTOR, FLOOR_S = 30, 10.0


def camera_jpeg() -> bytes:
    """A 12-MP JPEG (4000×3000), smooth enough to stay about a megabyte."""
    gradient = Image.linear_gradient("L").resize((4000, 3000))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def children(pid: int) -> list[int]:
    """Children of every thread of `pid` (a thread's children are listed under it alone)."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")
    return [int(child) for task in tasks for child in task.read_text().split()]


def is_spawned_worker(pid: int) -> bool:
    """A process multiprocessing spawned to run our code (not its resource tracker)."""
    return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()


def texts_answered_in(terminal: Terminal, count: int = 10) -> float:
    """Seconds for `count` text reports, sent at once, to be accepted."""
    started = time.monotonic()
    texts = [envelope() for _ in range(count)]
    for body in texts:
        terminal.send(body)
    for body in texts:
        assert terminal.wait_final(body["report_id"], 60)["status"] == "accepted"
    return time.monotonic() - started


def deriving(gateway: GatewayProcess) -> int:
    return gateway.count("outbox.db", "SELECT count(*) FROM outcomes WHERE state = 'deriving'")


def test_text_reports_are_not_held_up_by_a_burst_of_photos(
    broker: Mosquitto, gateway: GatewayProcess
) -> None:
    text_terminal = Terminal(broker.url, "tz-0201")
    quiet_before_s = texts_answered_in(text_terminal)  # the baseline, before the burst
    photo_terminal = Terminal(broker.url, "tz-0200")
    data = camera_jpeg()
    photo_reports = []
    for _ in range(PHOTOS):
        upload = Upload(data, chunk_bytes=256 * 1024)
        body = envelope([upload])
        photo_reports.append(body["report_id"])
        photo_terminal.send(body, [upload])

    # Once the photos are being worked on, text reports still go straight through.
    wait_until(lambda: deriving(gateway) > 0, 30, "photos in the media step")
    during_s = texts_answered_in(text_terminal)
    still_deriving = deriving(gateway)

    for report_id in photo_reports:
        assert photo_terminal.wait_final(report_id, 120)["status"] == "accepted"
    wait_until(lambda: deriving(gateway) == 0, 120, "the burst to be over")
    quiet_after_s = texts_answered_in(text_terminal)  # the baseline, after the burst
    print(f"\n10 text reports: {quiet_before_s:.2f} s before the burst, {during_s:.2f} s during,"
          f" {quiet_after_s:.2f} s after")  # fmt: skip
    assert still_deriving > 0, "the burst was over before the text reports; nothing was shown"
    # Slower during the burst (the photos have both cores), but not held up behind it.
    assert_within(
        during_s,
        max(quiet_before_s, quiet_after_s),
        factor=FACTOR,
        floor_s=FLOOR_S,
        what="10 text reports during the burst",
    )

    # The pipeline process and its media workers decoded 24 12-MP photos in bounded
    # batches: none of them holds more than a few photos' worth of memory at its peak.
    assert gateway.process is not None
    pipeline = [pid for pid in children(gateway.process.pid) if is_spawned_worker(pid)]
    workers = [pid for pid in children(pipeline[0]) if is_spawned_worker(pid)]
    assert len(pipeline) == 1
    assert len(workers) >= 1
    for pid in pipeline + workers:
        assert peak_rss_kib(pid) < 250 * 1024, (pid, peak_rss_kib(pid))
    photo_terminal.close()
    text_terminal.close()
