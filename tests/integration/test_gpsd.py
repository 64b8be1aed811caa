"""Our gpsd client against a real gpsd (Debian's 3.22), fed the real receiver logs by gpsfake.

gpsfake cycles the log at 5 ms a sentence (gpsd starts reading when the client's WATCH
arrives, so a single pass could end before we connect). The logs are quectel-L70 (2022)
and nmea-fuzzy-cases (2020): gpsd 3.22 moves dates before 2020-10-23 forward by 1024
weeks (its changelog: "Don't compute wrong GPS rollover after 2020-10-23", fixed after
3.22), so bu353s4's 2014 arrives as 2034; these two arrive as recorded.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from gateway.harness.mosquitto import free_port
from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import parse_log
from gateway.transports.gpsd_client import GpsdClient
from tests.gnss import LOGS

pytestmark = pytest.mark.integration

GPSFAKE = shutil.which("gpsfake") or "/usr/bin/gpsfake"


@contextmanager
def gpsfake(log: Path, port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """gpsfake and the gpsd it starts, in a process group of their own that is gone,
    control socket and all, when the block ends."""
    output = (workdir / f"gpsfake-{port}-{log.stem}.txt").open("wb")
    process = subprocess.Popen(
        [GPSFAKE, "-q", "-c", "0.005", "-P", str(port), str(log)],
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.close()
        deadline = time.monotonic() + 5
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # gpsd, gpsfake's child, exits on its own signal
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        # gpsfake leaves its gpsd control socket behind, even on a clean exit.
        Path(f"/tmp/gpsfake-{process.pid}.sock").unlink(missing_ok=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Collector:
    """The client's fixes, gathered on a thread of their own."""

    def __init__(self, client: GpsdClient) -> None:
        self.client = client
        self.fixes: queue.Queue[GnssFix] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="gpsd-client", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for fix in self.client.fixes():
            self.fixes.put(fix)

    def until(self, times: set[datetime], timeout_s: float = 20) -> list[GnssFix]:
        """Fixes until every one of `times` has been seen."""
        got: list[GnssFix] = []
        deadline = time.monotonic() + timeout_s
        while not times <= {fix.time for fix in got}:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"missing {sorted(times - {fix.time for fix in got})}"
            try:
                got.append(self.fixes.get(timeout=remaining))
            except queue.Empty:
                continue
        return got

    def stop(self) -> None:
        self.client.stop()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def collector() -> Iterator[Collector]:
    # Started before gpsd: it retries (every 0.05 s at first) until gpsd listens.
    client = GpsdClient("127.0.0.1", free_port(), backoff_first_s=0.05, backoff_max_s=0.5)
    running = Collector(client)
    yield running
    running.stop()


def assert_agree(got: list[GnssFix], log: Path) -> None:
    """gpsd's fixes against our parse of the same log: same times, same positions."""
    ours = {fix.time: fix for fix in parse_log(log)}
    stamped = [fix for fix in got if fix.time is not None]
    assert {fix.time for fix in stamped} == set(ours)
    for fix in stamped:
        mine = ours[fix.time]
        assert fix.source == "gpsd"
        assert fix.lat == pytest.approx(mine.lat, abs=1e-6)
        assert fix.lon == pytest.approx(mine.lon, abs=1e-6)


def times_of(fixes: Iterable[GnssFix]) -> set[datetime]:
    """The times of our fixes from a log; every one has a time (the logs here carry RMCs)."""
    times: set[datetime] = set()
    for fix in fixes:
        assert fix.time is not None, fix
        times.add(fix.time)
    return times


@pytest.mark.parametrize("name", ["quectel-L70.log", "nmea-fuzzy-cases.log"])
def test_gpsd_fixes_agree_with_our_parse(name: str, collector: Collector, tmp_path: Path) -> None:
    log = LOGS / name
    expected = times_of(parse_log(log))
    with gpsfake(log, collector.client.address[1], tmp_path):
        got = collector.until(expected)
    assert_agree(got, log)


def test_the_client_comes_back_when_gpsd_does(collector: Collector, tmp_path: Path) -> None:
    port = collector.client.address[1]
    first, second = LOGS / "nmea-fuzzy-cases.log", LOGS / "quectel-L70.log"
    first_times = times_of(parse_log(first))
    with gpsfake(first, port, tmp_path):
        assert_agree(collector.until(first_times), first)
    # gpsd is gone; another comes up on the same port, and the client finds it.
    with gpsfake(second, port, tmp_path):
        got = collector.until(times_of(parse_log(second)))
    assert_agree([fix for fix in got if fix.time not in first_times], second)
