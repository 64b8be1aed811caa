"""The gateway killed with SIGKILL mid-stream loses no report and makes no duplicate case."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.harness.mosquitto import Mosquitto
from tests.factories import envelope, photo_upload
from tests.integration.helpers import GatewayProcess, Terminal, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPORTS_PER_TERMINAL = 150
TERMINALS = 4
RATE_PER_TERMINAL = 60  # reports per second: the stream lasts about 2.5 s


def stream(terminal: Terminal, sent: list[str], stop: threading.Event) -> None:
    for n in range(REPORTS_PER_TERMINAL):
        if stop.is_set():
            return
        uploads = [photo_upload(size=(400, 300), chunk_bytes=16384)] if n % 10 == 0 else []
        body = envelope(uploads)
        sent.append(body["report_id"])
        terminal.send(body, uploads)
        time.sleep(1 / RATE_PER_TERMINAL)


def accepted(terminals: list[Terminal]) -> int:
    for terminal in terminals:
        terminal.pump()
    return sum(1 for t in terminals for report_id in list(t.acks) if t.final(report_id))


@pytest.fixture
def gateway(tmp_path: Path, broker: Mosquitto) -> Iterator[GatewayProcess]:
    """Terminals here send faster than the per-device report budget allows (150 in 2.5 s):
    the budget is raised, so only the kills are under test."""
    config = tmp_path / "gateway.toml"
    config.write_text("[limits]\nreports_per_device_per_minute = 100000\n")
    process = GatewayProcess(tmp_path / "gateway", broker.url, config=config).start()
    yield process
    process.stop()


def test_sigkill_mid_stream_loses_nothing_and_doubles_nothing(
    broker: Mosquitto, gateway: GatewayProcess
) -> None:
    terminals = [Terminal(broker.url, f"tz-{n:04d}") for n in range(TERMINALS)]
    sent: list[list[str]] = [[] for _ in terminals]
    stop = threading.Event()
    streams = [
        threading.Thread(target=stream, args=(t, s, stop), daemon=True)
        for t, s in zip(terminals, sent, strict=True)
    ]
    for thread in streams:
        thread.start()

    total = TERMINALS * REPORTS_PER_TERMINAL
    kills_at = []
    for threshold in (total // 5, total // 2):

        def reached(t: int = threshold) -> bool:
            return accepted(terminals) >= t

        wait_until(reached, 60, f"{threshold} accepted")
        kills_at.append(accepted(terminals))
        gateway.kill()
        time.sleep(0.3)
        gateway.start()
    for thread in streams:
        thread.join(60)

    wait_until(lambda: accepted(terminals) == total, 120, "every report accepted")
    assert all(0 < k < total for k in kills_at), kills_at

    cases = dict(gateway.cases())
    all_sent = {report_id for ids in sent for report_id in ids}
    assert len(all_sent) == total
    assert set(cases) == all_sent, "lost or unknown cases"
    assert len(gateway.cases()) == total, "a report became two cases"
    assert len(set(cases.values())) == total, "a case number was given twice"
    for terminal in terminals:
        for report_id, acks in terminal.acks.items():
            numbers = {ack.get("case_no") for ack in acks if ack["status"] == "accepted"}
            assert numbers == {cases[report_id]}, (report_id, acks)
            assert all(ack["status"] != "rejected" for ack in acks)
    objects = gateway.data_dir / "objects" / "reports"
    wait_until(lambda: len(list(objects.glob("*/report.json"))) == total, 60, "every report stored")
    for terminal in terminals:
        terminal.close()
