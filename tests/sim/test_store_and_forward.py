"""Store and forward and faults against a real Mosquitto and the real gateway."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from firmware_sim import scenario
from firmware_sim.faults import Faults
from firmware_sim.fleet import FleetSettings, run_fleet
from firmware_sim.outcomes import Summary
from tests.sim.conftest import SMALL_PHOTO, Stack, running_gateway

pytestmark = pytest.mark.integration


def test_reports_queued_while_no_gateway_answers_go_after_a_restart(tmp_path: Path) -> None:
    from gateway.harness.mosquitto import Mosquitto  # noqa: PLC0415

    queue_dir = tmp_path / "queue"

    def settings(
        broker_url: str, reports: int, drain_s: float, ack_timeout_s: float
    ) -> FleetSettings:
        return FleetSettings(
            broker=broker_url, terminals=2, reports_per_terminal=reports, drain_s=drain_s,
            seed=4, queue_dir=queue_dir, photo_size=SMALL_PHOTO, photo_pool=1,
            ack_timeout_s=ack_timeout_s, max_attempts=1, retry_min_s=0.2,
        )  # fmt: skip

    broker = Mosquitto(tmp_path / "broker").start()
    try:
        # No gateway: every chunk and envelope goes out, nobody answers; all stays queued.
        first = run_fleet(settings(broker.url, reports=2, drain_s=2.5, ack_timeout_s=1.0))
        assert (first.planned, first.sent, first.queued, first.accepted) == (4, 4, 4, 0)
        entries = sorted((queue_dir).glob("sim-*/*.json"))
        assert len(entries) == 4
        assert all(orjson.loads(path.read_bytes())["uploaded"] for path in entries)

        # A new simulator process with the same queue, and a gateway that never saw a chunk.
        # It waits long enough for each answer (a cold media pool takes a second or more
        # on a busy machine): one attempt each, so every report must resume, not restart.
        with running_gateway(broker.url, tmp_path):
            second = run_fleet(settings(broker.url, reports=0, drain_s=30, ack_timeout_s=20.0))
    finally:
        broker.stop()

    assert second.all_accepted, [o for o in second.outcomes if o.status != "accepted"]
    assert {o.report_id for o in second.outcomes} == {o.report_id for o in first.outcomes}
    # Resumed: the envelope first, then only the chunks the gateway listed as missing.
    assert all(o.resends >= 1 for o in second.outcomes)
    assert list(queue_dir.glob("sim-*/*.json")) == []
    journal = [
        orjson.loads(line)
        for path in queue_dir.glob("sim-*/journal.jsonl")
        for line in path.read_bytes().splitlines()
    ]
    assert sorted(j["case_no"] for j in journal) == sorted(str(o.case_no) for o in second.outcomes)


def test_every_fault_knob_on_and_still_every_report_accepted(stack: Stack) -> None:
    soak = scenario.load("soak").faults
    faults = Faults(**{**soak.to_json(), "chunk_corrupt": 0.05, "malformed_envelope": 0.3,
                       "link_drops_per_hour": 0})  # fmt: skip
    settings = FleetSettings(
        broker=stack.broker_url, terminals=6, reports_per_terminal=3, seed=21,
        photo_size=SMALL_PHOTO, photo_pool=1, chunk_bytes=4096, ack_timeout_s=3.0,
        drain_s=60, faults=faults,
    )  # fmt: skip
    summary = run_fleet(settings)

    assert summary.all_accepted, [o for o in summary.outcomes if o.status != "accepted"]
    counts = summary.faults
    assert counts["chunks_lost"] > 0
    assert counts["chunks_garbled"] > 0
    assert counts["duplicates"] > 0
    assert counts["junk_envelopes"] > 0
    # The gateway answered every junk envelope with an error notice.
    assert counts["junk_answered"] == counts["junk_envelopes"]
    assert len({o.case_no for o in summary.outcomes}) == 18


def test_a_link_drop_fires_the_will_and_the_terminal_comes_back(stack: Stack) -> None:
    import asyncio  # noqa: PLC0415

    import aiomqtt  # noqa: PLC0415

    from firmware_sim.fleet import run_fleet_async  # noqa: PLC0415
    from firmware_sim.link import BrokerUrl  # noqa: PLC0415

    settings = FleetSettings(
        broker=stack.broker_url, terminals=1, duration_s=8, reports_per_hour=900, seed=8,
        photo_size=SMALL_PHOTO, photo_pool=1, ack_timeout_s=2.0, drain_s=30,
        faults=Faults(link_drops_per_hour=1800, offline_min_s=0.5, offline_max_s=1.0),
    )  # fmt: skip
    url = BrokerUrl.parse(stack.broker_url)

    async def watch_and_run() -> tuple[list[bool], Summary]:
        seen: list[bool] = []
        async with aiomqtt.Client(url.host, url.port, identifier="status-watcher") as client:
            await client.subscribe(f"cgt/v1/{settings.device_id(0)}/status", qos=1)

            async def collect() -> None:
                async for message in client.messages:
                    seen.append(orjson.loads(bytes(message.payload))["online"])

            collector = asyncio.create_task(collect())
            summary = await run_fleet_async(settings)
            await asyncio.sleep(0.5)
            collector.cancel()
        return seen, summary

    seen, summary = asyncio.run(watch_and_run())
    drops = summary.faults["link_drops"]
    assert drops >= 1
    assert summary.all_accepted, summary.outcomes
    # Online; for each drop the broker's will (offline), then online again; at the end
    # the farewell (or, if the link was down then, the last drop's will).
    assert seen[0] is True
    assert seen[-1] is False
    assert seen.count(False) >= drops
    assert seen.count(True) >= drops
