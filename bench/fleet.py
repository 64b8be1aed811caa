"""The simulator's scale, and the gateway under a fleet of 1,000 terminals with media.

Terminals per core: the simulator runs in a child process pinned to CPU 1 (Mosquitto and
the gateway answering its reports are pinned to CPU 0), on patrol: N terminals, a track
every 30 s, 12 reports an hour each with a phone-size photo and (mostly) a voice note.
The child measures its own CPU time (getrusage) over a window that opens once every
terminal is connected, the fewest terminals connected inside the window, and the event
loop's lag (a probe task sleeping 100 ms and timing the oversleep). Baseline, same run,
same core: N bare aiomqtt connections (connect, subscribe to the same downlink topics,
idle with the same 60 s keepalive): the cost of just holding the connections.

Under a fleet: 1,000 terminals, each sending K reports back to back, each report with a
phone-size photo and a voice note; the clock is read from the 10% to the 90% point of
the reports done, so the connect storm and the tail are left out. Two sides, same
broker, same simulator, same content and chunking, all processes on both cores:
- gateway: `gateway run` on embedded sinks answers; done is the `accepted` ack;
- raw (baseline): no gateway; a bare paho-mqtt subscriber (QoS 1) drains every uplink,
  and a report is done when its envelope (published after its last chunk) arrives.
The raw side is the ceiling of the simulator + broker path for this traffic.

    .venv/bin/python -m bench.fleet            # both parts, a few minutes
    .venv/bin/python -m bench.fleet --quick    # fewer terminal counts, shorter windows
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import cpu_model, summary, write
from firmware_sim import wire
from firmware_sim.fleet import FleetSettings, run_fleet_async
from firmware_sim.outcomes import Progress, percentile
from gateway.harness.gateway_process import GatewayProcess, wait_until
from gateway.harness.mosquitto import Mosquitto

SIM_CORE = 1  # the simulator's; everything else gets the other core
PATROL_TERMINALS = (500, 1000, 2000)
QUICK_TERMINALS = (1000,)
# Per run from the fleet's start; the window is what is left after connecting, so it
# holds both rounds of tracks (at 30 s and 60 s). The idle baseline needs no tracks.
PATROL_S = 65.0
IDLE_S = 30.0
QUICK_PATROL_S = 35.0
QUICK_IDLE_S = 20.0
SETTLE_S = 5.0  # after the last terminal connected, before the window opens
REPORTS_PER_HOUR = 12.0
FLEET = 1000
REPORTS_PER_TERMINAL = 1
ROUNDS = 2  # of the fleet part, raw and gateway interleaved (2 keeps it to minutes)
PROBE_S = 0.1


# ---- the child: one simulator process measuring itself ----------------------------------


class Monitor:
    """Samples (time, CPU seconds, terminals connected, accepted) and the loop's lag."""

    def __init__(self) -> None:
        self.connected = 0
        self.accepted = 0
        self.samples: list[tuple[float, float, int, int]] = []
        self.lags: list[tuple[float, float]] = []  # (time, oversleep in s)

    def on_progress(self, progress: Progress) -> None:
        self.connected, self.accepted = progress.connected, progress.accepted

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(PROBE_S)
            now = loop.time()
            self.lags.append((now, now - before - PROBE_S))
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.samples.append((now, usage.ru_utime + usage.ru_stime, self.connected,
                                 self.accepted))  # fmt: skip

    def window(self, terminals: int, end: float) -> dict[str, Any]:
        """CPU share, connections and lag from SETTLE_S after all were connected to `end`."""
        up = next((s[0] for s in self.samples if s[2] >= terminals), None)
        if up is None:
            return {"all_connected": False, "most_connected": max(s[2] for s in self.samples)}
        inside = [s for s in self.samples if up + SETTLE_S <= s[0] <= end]
        first, last = inside[0], inside[-1]
        lags = [lag * 1000 for at, lag in self.lags if first[0] <= at <= last[0]]
        return {
            "all_connected": True,
            "connect_s": up - self.samples[0][0] + PROBE_S,
            "window_s": last[0] - first[0],
            "cpu_share": (last[1] - first[1]) / (last[0] - first[0]),
            "fewest_connected_in_window": min(s[2] for s in inside),
            "accepted_in_window": last[3] - first[3],
            "loop_lag_ms": {
                "p50": percentile(lags, 50),
                "p99": percentile(lags, 99),
                "max": max(lags),
            },
        }


async def patrol_child(broker: str, terminals: int, seconds: float) -> dict[str, Any]:
    monitor = Monitor()
    settings = FleetSettings(
        broker=broker,
        terminals=terminals,
        duration_s=seconds,
        reports_per_hour=REPORTS_PER_HOUR,
        device_prefix=f"pat{uuid.uuid4().hex[:6]}",  # fresh sessions: they are resumed
        progress_interval_s=PROBE_S,
    )
    probe = asyncio.create_task(monitor.run())
    fleet = asyncio.create_task(run_fleet_async(settings, monitor.on_progress))
    started = asyncio.get_running_loop().time()
    # Measure the patrol itself, not the drain after it: stop at its end.
    await asyncio.sleep(seconds - 1)
    window = monitor.window(terminals, started + seconds - 1)
    _stop(fleet, probe)
    return {"mode": "patrol", "terminals": terminals, **window}


async def idle_child(broker: str, terminals: int, seconds: float) -> dict[str, Any]:
    """N bare connections, subscribed to what a terminal subscribes to, doing nothing."""
    monitor = Monitor()
    prefix = f"idle{uuid.uuid4().hex[:6]}"

    async def hold(index: int) -> None:
        device_id = f"{prefix}-{index:04d}"
        client = aiomqtt.Client(
            BROKER_HOST, int(broker.rsplit(":", 1)[1]), identifier=device_id,
            protocol=aiomqtt.ProtocolVersion.V5, keepalive=60, timeout=30,
        )  # fmt: skip
        async with client:
            await client.subscribe([(t, 1) for t in wire.downlink_subscriptions(device_id)])
            monitor.connected += 1
            async for _ in client.messages:
                pass

    probe = asyncio.create_task(monitor.run())
    started = asyncio.get_running_loop().time()
    holders = [asyncio.create_task(hold(i)) for i in range(terminals)]
    await asyncio.sleep(seconds - 1)
    window = monitor.window(terminals, started + seconds - 1)
    _stop(*holders, probe)
    return {"mode": "idle", "terminals": terminals, **window}


async def burst_child(broker: str, terminals: int, reports: int) -> dict[str, Any]:
    """K reports per terminal back to back, each with a phone-size photo and a voice note."""
    series: list[tuple[float, int]] = []
    loop = asyncio.get_running_loop()
    settings = FleetSettings(
        broker=broker,
        terminals=terminals,
        reports_per_terminal=reports,
        voice_share=1.0,
        # Saturated on purpose: answers take minutes, so silence must not trigger
        # re-publication (the raw side never answers at all).
        ack_timeout_s=1800,
        max_attempts=1,
        connect_timeout_s=60,
        # Per terminal: it gives up once its own report has waited this long unanswered,
        # and in a saturated run the last report waits for the whole backlog.
        drain_s=600,
        device_prefix=f"bur{uuid.uuid4().hex[:6]}",
        progress_interval_s=0.25,
    )
    start = loop.time()
    result = await run_fleet_async(settings, lambda p: series.append((p.elapsed_s, p.accepted)))
    media = [sum(m.size for m in o.media) for o in result.outcomes]
    return {
        "mode": "burst",
        "terminals": terminals,
        "planned": result.planned,
        "accepted": result.accepted,
        "rejected": result.rejected,
        "queued": result.queued,
        "retries": result.retries,
        "latency_ms": {"p50": result.latency_p50_ms, "p95": result.latency_p95_ms},
        "media_bytes_per_report": statistics.mean(media),
        "steady_reports_per_s": steady_rate([t for t, _ in _crossings(series)]) or 0.0,
        "elapsed_s": loop.time() - start,
    }


def _crossings(series: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """One (time, count) per report done, from a sampled count (first sample reaching it)."""
    out: list[tuple[float, int]] = []
    for at, count in series:
        out.extend((at, n) for n in range(len(out) + 1, count + 1))
    return out


def steady_rate(done_at: list[float]) -> float | None:
    """Reports per second between the 10% and the 90% report done."""
    if len(done_at) < 10:
        return None
    ordered = sorted(done_at)
    low, high = ordered[len(ordered) // 10], ordered[len(ordered) * 9 // 10 - 1]
    return (len(ordered) * 9 // 10 - len(ordered) // 10 - 1) / (high - low)


def _stop(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()


BROKER_HOST = "127.0.0.1"


def child_main(args: argparse.Namespace) -> None:
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    mode = {"patrol": patrol_child, "idle": idle_child}
    if args.child == "burst":
        result = asyncio.run(burst_child(args.broker, args.terminals, args.reports))
    else:
        result = asyncio.run(mode[args.child](args.broker, args.terminals, args.seconds))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # thousands of connections need no orderly goodbye


def spawn(mode: str, broker: Mosquitto, terminals: int, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.fleet", "--child", mode, "--broker", broker.url,
               "--terminals", str(terminals), *extra]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def finish(child: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    out, _ = child.communicate(timeout=timeout_s)
    if child.returncode != 0:
        raise RuntimeError(f"simulator child exited {child.returncode}")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


# ---- part 1: terminals per core ----------------------------------------------------------


def terminals_per_core(
    scratch: Path, counts: tuple[int, ...], seconds: float, idle_s: float
) -> dict[str, Any]:
    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, everything - {SIM_CORE})  # inherited by broker and gateway
    rows = []
    try:
        with Mosquitto(scratch / "broker-patrol") as broker:
            gateway = GatewayProcess(scratch / "gw-patrol", broker.url).start()
            try:
                for n in counts:
                    pin = ("--core", str(SIM_CORE), "--seconds")
                    idle = finish(spawn("idle", broker, n, *pin, str(idle_s)), idle_s + 120)
                    patrol = finish(spawn("patrol", broker, n, *pin, str(seconds)), seconds + 120)
                    row: dict[str, Any] = {"terminals": n, "idle": idle, "patrol": patrol}
                    if patrol.get("all_connected"):
                        row["terminals_per_core"] = n / patrol["cpu_share"]
                        if idle.get("all_connected"):
                            row["patrol_to_idle_cpu"] = patrol["cpu_share"] / idle["cpu_share"]
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    rows.append(row)
            finally:
                gateway.stop()
    finally:
        os.sched_setaffinity(0, everything)
    return {
        "sim_core": SIM_CORE,
        "patrol_s": seconds,
        "idle_s": idle_s,
        "reports_per_hour": REPORTS_PER_HOUR,
        "track_interval_s": 30,
        "rows": rows,
    }


# ---- part 2: the gateway under 1,000 terminals --------------------------------------------


def raw_round(broker: Mosquitto, terminals: int, reports: int) -> dict[str, Any]:
    """Uplink bytes drained per second between 10% and 90% of all bytes, as reports/s.

    Bytes, not envelopes: the fleet uploads all its reports at once, sharing the window,
    so envelopes bunch up at the end and their spacing says nothing about the rate."""
    envelopes = 0
    received: list[tuple[float, int]] = []  # (time, bytes so far), one per message
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        nonlocal envelopes
        with lock:
            total = received[-1][1] if received else 0
            received.append((time.monotonic(), total + len(message.payload)))
            envelopes += message.topic.endswith("/report")

    subscriber = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:6]}",
                             protocol=paho.MQTTv5)  # fmt: skip
    subscriber.max_inflight_messages_set(1000)
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.loop_start()
    subscriber.subscribe([("cgt/v1/+/report", 1), ("cgt/v1/+/media/#", 1)])
    subscribed.wait(10)
    child = spawn("burst", broker, terminals, "--reports", str(reports))
    try:
        wait_until(lambda: envelopes >= terminals * reports, 1800, "every envelope")
    finally:
        child.kill()  # without a gateway no report is ever answered
        child.wait()
        subscriber.disconnect()
        subscriber.loop_stop()
    total = received[-1][1]
    low = next(at for at, so_far in received if so_far >= total * 0.1)
    high = next(at for at, so_far in received if so_far >= total * 0.9)
    per_report = total / envelopes
    return {
        "reports": envelopes,
        "messages": len(received),
        "media_bytes_per_report": per_report,
        "steady_reports_per_s": total * 0.8 / (high - low) / per_report,
        "elapsed_s": received[-1][0] - received[0][0],
    }


def gateway_round(broker: Mosquitto, scratch: Path, terminals: int, reports: int) -> dict[str, Any]:
    gateway = GatewayProcess(scratch / f"gw-{uuid.uuid4().hex[:6]}", broker.url).start()
    try:
        result = finish(spawn("burst", broker, terminals, "--reports", str(reports)), 3600)
    finally:
        gateway.stop()
    return result


def under_fleet(scratch: Path, terminals: int, reports: int, rounds: int) -> dict[str, Any]:
    raws: list[dict[str, Any]] = []
    gws: list[dict[str, Any]] = []
    # A fresh broker for every side and round: the gateway's persistent session would
    # otherwise queue the raw side's traffic (and a round's leftovers) for the next one.
    for n in range(rounds):  # interleaved, so drift in the machine hits both alike
        with Mosquitto(scratch / f"broker-raw-{n}") as broker:
            raws.append(raw_round(broker, terminals, reports))
        print(json.dumps({"raw": raws[-1]}), file=sys.stderr, flush=True)
        with Mosquitto(scratch / f"broker-gw-{n}") as broker:
            gws.append(gateway_round(broker, scratch, terminals, reports))
        print(json.dumps({"gateway": gws[-1]}), file=sys.stderr, flush=True)
    result: dict[str, Any] = {
        "terminals": terminals,
        "reports_per_terminal": reports,
        "rounds": rounds,
        "photo": "2592x1944 JPEG (the simulator's phone size), voice note on every report",
        "raw_paho_subscriber": {"rounds": raws},
        "gateway": {"rounds": gws},
    }
    for side, runs in (("raw_paho_subscriber", raws), ("gateway", gws)):
        rates = [r["steady_reports_per_s"] for r in runs]
        mbs = [r["steady_reports_per_s"] * r["media_bytes_per_report"] / 1e6 for r in runs]
        result[side] |= {"steady_reports_per_s": summary(rates),
                         "steady_media_mb_per_s": summary(mbs)}  # fmt: skip
    result["gateway"]["latency_p50_ms"] = summary([r["latency_ms"]["p50"] for r in gws])
    result["gateway"]["latency_p95_ms"] = summary([r["latency_ms"]["p95"] for r in gws])
    result["gateway"]["all_accepted"] = all(r["accepted"] == r["planned"] for r in gws)
    result["ratio_gateway_to_raw"] = (
        result["gateway"]["steady_reports_per_s"]["median"]
        / result["raw_paho_subscriber"]["steady_reports_per_s"]["median"]
    )
    return result


def run(quick: bool = False) -> dict[str, Any]:
    counts = QUICK_TERMINALS if quick else PATROL_TERMINALS
    seconds = QUICK_PATROL_S if quick else PATROL_S
    idle_s = QUICK_IDLE_S if quick else IDLE_S
    with tempfile.TemporaryDirectory(prefix="cgt-bench-fleet-") as scratch:
        per_core = terminals_per_core(Path(scratch), counts, seconds, idle_s)
        fleet = under_fleet(Path(scratch), FLEET, REPORTS_PER_TERMINAL, 1 if quick else ROUNDS)
    shares = {row["terminals"]: row["patrol"].get("cpu_share") for row in per_core["rows"]}
    derived = [row["terminals_per_core"] for row in per_core["rows"] if "terminals_per_core" in row]
    result = {
        "benchmark": "fleet",
        "quick": quick,
        "cpu_model": cpu_model(),
        "terminals_per_core": per_core,
        "cpu_share_by_terminals": shares,
        "terminals_per_core_derived": summary(derived) if derived else None,
        "fits_1000_on_one_core": shares.get(1000) is not None and shares[1000] < 1.0,
        "under_fleet": fleet,
    }
    write("fleet", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=("patrol", "idle", "burst"))
    parser.add_argument("--broker")
    parser.add_argument("--terminals", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--reports", type=int, default=REPORTS_PER_TERMINAL)
    parser.add_argument("--core", type=int)
    args = parser.parse_args()
    if args.child:
        child_main(args)
    print(json.dumps(run(args.quick), indent=2))


if __name__ == "__main__":
    main()
