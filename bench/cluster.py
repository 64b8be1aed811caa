"""Shared mode (issue 14): 1, 2 and 3 gateway instances on PostgreSQL and S3, against the
embedded default and the wire contract's floor, end to end and CPU per report by component.

Configurations, each round on a fresh Mosquitto (and, in shared mode, a fresh database and
bucket), alternated forward and backward (ABCDE EDCBA ABCDE) to spread drift:
- floor: `bench.ingest`'s two-process floor (bare paho clients doing only the MQTT work the
  wire contract leaves a gateway: PUBACK, `accepted` ack, normalized copy; nothing stored),
  once on a backlog as `bench.ingest` measures it (10,000 reports), once fed live by the
  same load generator as the gateways below. Text reports only.
- embedded: `gateway run` without a cluster (SQLite stores, a local objects directory);
  also `bench.ingest`'s backlog round (its `gateway_round`), to tie to that benchmark.
- shared_N: N instances of `gateway run --config gateway.toml --client-id cgt-gw-i` with
  `[cluster]` on a throwaway PostgreSQL cluster (`tests.servers.PostgresCluster`), objects
  and the media spool in SeaweedFS's S3 server (`bench.seaweedfs`, one Go process; with
  `--s3 moto`, moto's as the tests use it, `tests.servers.S3Server`),
  `[mqtt] shared_group = "cgt"`; the schema made by `gateway db upgrade --cluster URL`.

Load, in a child process that says when it is ready and starts when told, so the CPU
meters are read just before the first publish:
- text: 2,000 of `bench.ingest`'s reports (200 devices) from one paho-mqtt connection,
  all published at once at QoS 1 while the consumers run; the clock runs from the first
  publish to the last `accepted` ack received (acks to `cgt/v1/+/ack`).
- photo: the firmware simulator (`firmware_sim.fleet.run_fleet_async`): 30 terminals, 4
  reports each back to back (120), every report with one to three 2592x1944 photos (the
  simulator's phone size; about 1.5 a report with this seed) and no voice note; the clock
  runs from the fleet's start to every report `accepted` (its progress counter, sampled
  every 50 ms).
  The text load goes first in each round, so the photo load also starts the media
  worker pools (started with the first media batch).

CPU, from /proc/PID/stat (utime + stime + cutime + cstime, summed over the process tree):
each instance (the `gateway run` process, its pipeline child and media workers), all
processes of the PostgreSQL cluster (postmaster and its children), Mosquitto, the S3
server, the load generator (its own getrusage) and the machine (/proc/stat), read just
before the load starts and once every delivery of every report is done (registry,
objects, bus, ack). "other" is the machine's busy time less all of those and this
process: what the machine spent on anyone else. On a shared machine each measurement
waits for others to be nearly idle first, and one they disturbed is made again (both are
kept in the results; see QUIET_SHARE and DISTURBED_SHARE).

    .venv/bin/python -m bench.cluster            # about 10 minutes on 2 cores (3 rounds)
    .venv/bin/python -m bench.cluster --quick    # a smoke run: small loads, one round
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, MutableSequence
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench import ingest
from bench.common import cpu_model, summary, write
from bench.seaweedfs import SeaweedFS
from firmware_sim.fleet import FleetSettings, build_kit, run_fleet_async
from firmware_sim.outcomes import Progress
from gateway.harness.gateway_process import GatewayProcess, wait_until
from gateway.harness.mosquitto import Mosquitto
from gateway.transports.mqtt import no_delay
from tests.servers import PostgresCluster, S3Server


@dataclass(frozen=True)
class Sizes:
    text: int  # text reports per round
    backlog: int  # text reports of `bench.ingest`'s own backlog rounds (it takes 20,000)
    terminals: int  # simulated terminals for the photo reports
    per_terminal: int  # photo reports each, back to back
    rounds: int  # of every configuration
    settle_s: float  # after the instances start (imports, first connections), untimed
    idle_s: float  # then the idle CPU is measured this long


FULL = Sizes(
    text=2_000, backlog=10_000, terminals=30, per_terminal=4, rounds=3, settle_s=1.5, idle_s=2.0
)
QUICK = Sizes(
    text=400, backlog=400, terminals=10, per_terminal=2, rounds=1, settle_s=1.0, idle_s=1.0
)
# On a shared machine: before each measurement, wait (at most QUIET_WAIT_S) until other
# people's processes take less than QUIET_SHARE of a core; a measurement during which they
# took more than DISTURBED_SHARE on average is discarded (kept in the results) and made
# again, at most RETRIES times, all of it within RETRY_BUDGET_S a run. On a machine of its
# own (`make bench`) none of this waits.
QUIET_SHARE = 0.15
QUIET_WAIT_S = 60.0
DISTURBED_SHARE = 0.2
RETRIES = 2
RETRY_BUDGET_S = 900.0
INSTANCES = (1, 2, 3)
PHOTO_SEED = 20261203  # the same photos in every round (report ids stay fresh)
BUCKET = "cgt-bench"
PREFIX = "objects"
SECRET_ENV = "CGT_BENCH_S3_SECRET"  # noqa: S105 - the name of a variable, not a secret
TEXT_TIMEOUT_S = 300.0
PHOTO_TIMEOUT_S = 900.0
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# ---- CPU meters ----------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks of the process and of its children it has reaped)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = text.rsplit(")", 1)[1].split()
        # after the name: state, ppid, ... utime (14th field), stime, cutime, cstime (17th)
        table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return table


def tree_ticks(root: int, table: dict[int, tuple[int, int]]) -> int:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
            todo.extend(children.get(pid, ()))
    return total


def machine_busy_s() -> float:
    """All CPUs' busy time so far (user, nice, system, irq, softirq, steal)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICK


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Meter:
    """CPU seconds so far of named groups of process trees, of this process and the machine."""

    groups: dict[str, list[int]]

    def read(self) -> dict[str, float]:
        table = process_table()
        seconds = {
            name: sum(tree_ticks(root, table) for root in roots) / CLOCK_TICK
            for name, roots in self.groups.items()
        }
        return {**seconds, "bench": own_cpu_s(), "machine": machine_busy_s()}


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}


def postmaster_pid(postgres: PostgresCluster) -> int:
    return int((postgres.data_dir / "postmaster.pid").read_text(encoding="ascii").split()[0])


def s3_server_pid() -> int:
    """moto's server: this process's child running tests/s3_server.py."""
    for pid, (parent, _) in process_table().items():
        if parent != os.getpid():
            continue
        with contextlib.suppress(OSError):
            if b"s3_server.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    raise RuntimeError("no S3 server among this process's children")


# ---- the load, in a child process ----------------------------------------------------------


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def text_child(broker_url: str, count: int) -> dict[str, Any]:
    """`bench.ingest`'s reports, all published at once; done at the last `accepted` ack."""
    port = int(broker_url.rsplit(":", 1)[1])
    messages = ingest.payloads()[:count]  # fresh report ids
    wanted = {orjson.loads(payload)["report_id"] for _, payload in messages}
    accepted: set[str] = set()
    statuses: Counter[str] = Counter()
    last = [0.0]
    done, subscribed = threading.Event(), threading.Event()

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        ack = orjson.loads(message.payload)
        statuses[str(ack.get("status"))] += 1
        report_id = ack.get("report_id")
        if ack.get("status") == "accepted" and report_id in wanted and report_id not in accepted:
            accepted.add(report_id)
            last[0] = time.time()
            if len(accepted) == count:
                done.set()

    # No paho window (as the floor and the gateway's links): a full one makes paho walk the
    # messages in flight on every PUBACK.
    terminal = ingest.client(
        f"bench-terminal-{uuid.uuid4().hex[:6]}", port, persistent=False, max_inflight=0
    )
    no_delay(terminal)
    terminal.on_message = on_message
    terminal.on_subscribe = lambda *_: subscribed.set()
    terminal.loop_start()
    terminal.subscribe("cgt/v1/+/ack", qos=1)
    if not subscribed.wait(10):
        raise TimeoutError("no SUBACK for the acks")
    emit({"ready": True})
    sys.stdin.readline()
    cpu, started = own_cpu_s(), time.time()
    for topic, payload in messages:
        terminal.publish(topic, payload, qos=1)
    published = time.time()
    done.wait(TEXT_TIMEOUT_S)
    result = {
        "reports": count,
        "accepted": len(accepted),
        "statuses": dict(statuses),
        "started": started,
        "published_s": published - started,
        "finished": last[0],
        "load_cpu_s": own_cpu_s() - cpu,
    }
    terminal.disconnect()
    terminal.loop_stop()
    return result


async def photo_child(broker_url: str, terminals: int, per_terminal: int) -> dict[str, Any]:
    """The simulator's terminals, K photo reports each back to back."""
    settings = FleetSettings(
        broker=broker_url,
        terminals=terminals,
        reports_per_terminal=per_terminal,
        voice_share=0.0,
        seed=PHOTO_SEED,
        device_prefix="photo",
        ack_timeout_s=120,  # saturated on purpose: no re-publication while queued
        max_attempts=2,
        drain_s=120,
        progress_interval_s=0.05,
    )
    kit = build_kit(settings, PHOTO_SEED)  # encoded before the clock runs
    series: list[tuple[float, int, int]] = []

    def on_progress(progress: Progress) -> None:
        series.append((time.time(), progress.accepted, progress.planned))

    emit({"ready": True})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu, started = own_cpu_s(), time.time()
    outcome = await run_fleet_async(settings, on_progress, kit=kit)
    planned = outcome.planned
    finished = next((at for at, ok, _ in series if ok >= planned), series[-1][0])
    photos = [sum(m.kind == "photo" for m in o.media) for o in outcome.outcomes]
    sizes = [sum(m.size for m in o.media) for o in outcome.outcomes]
    return {
        "reports": planned,
        "accepted": outcome.accepted,
        "rejected": outcome.rejected,
        "queued": outcome.queued,
        "retries": outcome.retries,
        "photos_per_report": statistics.mean(photos) if photos else 0.0,
        "media_bytes_per_report": statistics.mean(sizes) if sizes else 0.0,
        "latency_p50_ms": outcome.latency_p50_ms,
        "latency_p95_ms": outcome.latency_p95_ms,
        "started": started,
        "finished": finished,
        "load_cpu_s": own_cpu_s() - cpu,
    }


def child_main(args: argparse.Namespace) -> None:
    if args.child == "text":
        result = text_child(args.broker, args.reports)
    else:
        result = asyncio.run(photo_child(args.broker, args.terminals, args.per_terminal))
    emit(result)
    os._exit(0)  # no orderly goodbye needed from the terminals


@dataclass
class Load:
    """A load child: spawned and ready (connected, media encoded), waiting for `go`."""

    command: list[str]
    process: subprocess.Popen[str] = field(init=False)

    def __post_init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.cluster", *self.command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            self.process.kill()
            raise RuntimeError(f"load child {self.command} did not get ready: {line!r}")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def result(self, timeout_s: float) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=timeout_s)
        if self.process.returncode != 0:
            raise RuntimeError(f"load child {self.command} exited {self.process.returncode}")
        record: dict[str, Any] = json.loads(out.splitlines()[-1])
        return record


def text_load(broker: Mosquitto, reports: int) -> Load:
    return Load(["--child", "text", "--broker", broker.url, "--reports", str(reports)])


def photo_load(broker: Mosquitto, terminals: int, per_terminal: int) -> Load:
    return Load(["--child", "photo", "--broker", broker.url, "--terminals", str(terminals),
                 "--per-terminal", str(per_terminal)])  # fmt: skip


# ---- one measured load ---------------------------------------------------------------------


def measure(
    meter: Meter, load: Load, finished: Callable[[], bool], timeout_s: float
) -> dict[str, Any]:
    """Run `load` to its last `accepted`, then wait for every delivery (`finished`); the rate
    to the last ack, and the CPU of every component from the go to every delivery done."""
    before = meter.read()
    load.go()
    result = load.result(timeout_s)
    if result["accepted"] != result["reports"]:
        raise RuntimeError(f"not every report accepted: {result}")
    wait_until(finished, timeout_s, "every delivery done")
    completed = time.time()
    cpu = spent(before, meter.read())
    reports = result["reports"]
    elapsed = result["finished"] - result["started"]
    cpu["load"] = result["load_cpu_s"]
    machine = cpu.pop("machine")
    cpu["other"] = machine - sum(cpu.values())
    instances = [name for name in cpu if name.startswith("instance")]
    cpu["instances"] = sum(cpu[name] for name in instances)
    window = completed - result["started"]
    return {
        "accepted_per_s": reports / elapsed,
        "completed_per_s": reports / window,
        "cpu_us_per_report": {name: seconds / reports * 1e6 for name, seconds in cpu.items()},
        "window_s": window,
        "machine_cores_busy": machine / window,
        "load": {k: v for k, v in result.items() if k not in ("started", "finished")},
    }


def idle(meter: Meter, seconds: float) -> dict[str, float]:
    """CPU share of one core each component takes doing nothing (polling, heartbeats)."""
    before = meter.read()
    time.sleep(seconds)
    used = spent(before, meter.read())
    return {name: value / seconds for name, value in used.items() if name != "machine"}


@dataclass
class Patience:
    """What is left of the run's time for waiting out other people's work, and retries."""

    left_s: float = RETRY_BUDGET_S

    def wait_for_quiet(self, meter: Meter) -> dict[str, float]:
        """Until others (the machine less our metered processes) are nearly idle."""
        started = time.monotonic()
        while True:
            before = meter.read()
            time.sleep(1.0)
            used = spent(before, meter.read())
            others = used["machine"] - sum(v for k, v in used.items() if k != "machine")
            waited = time.monotonic() - started
            if others < QUIET_SHARE or waited >= min(QUIET_WAIT_S, self.left_s):
                self.left_s -= max(0.0, waited - 1.0)
                return {"others_cores": others, "waited_s": waited}

    def measure(
        self, meter: Meter, make_load: Callable[[], Load], finished: Callable[[], bool],
        timeout_s: float,
    ) -> dict[str, Any]:  # fmt: skip
        """`measure`, again while the machine was disturbed (and patience is left)."""
        discarded: list[dict[str, Any]] = []
        while True:
            quiet = self.wait_for_quiet(meter)
            started = time.monotonic()
            result = measure(meter, make_load(), finished, timeout_s)
            result["quiet_before"] = quiet
            others = result["cpu_us_per_report"]["other"] * result["load"]["reports"] / 1e6
            result["others_cores"] = others / result["window_s"]
            if (
                result["others_cores"] <= DISTURBED_SHARE
                or len(discarded) >= RETRIES
                or self.left_s <= 0
            ):
                result["discarded"] = discarded
                return result
            self.left_s -= time.monotonic() - started
            discarded.append(result)


# ---- configurations ------------------------------------------------------------------------


@dataclass
class Setup:
    """What every round shares."""

    scratch: Path
    postgres: PostgresCluster
    s3: S3Server | SeaweedFS
    postgres_pid: int
    s3_pid: int
    patience: Patience = field(default_factory=Patience)

    def meter(self, broker: Mosquitto, groups: dict[str, list[int]]) -> Meter:
        """The CPU of `groups`, and of the broker, PostgreSQL and the S3 server."""
        assert broker.process is not None
        return Meter({
            **groups,
            "broker": [broker.process.pid],
            "postgres": [self.postgres_pid],
            "s3": [self.s3_pid],
        })  # fmt: skip


def instance_groups(instances: list[GatewayProcess]) -> dict[str, list[int]]:
    """Each gateway instance's process tree, as `instance_1`, `instance_2`, ..."""
    return {
        f"instance_{index}": [instance.process.pid]
        for index, instance in enumerate(instances, 1)
        if instance.process is not None
    }


def floor_round(setup: Setup, sizes: Sizes, rnd: int) -> dict[str, Any]:
    """`bench.ingest`'s two-process floor: on a backlog as it measures it, and fed live."""
    with Mosquitto(setup.scratch / f"broker-floor-{rnd}") as broker:
        assert broker.process is not None
        broker_pid = broker.process.pid
        messages = ingest.payloads()[: sizes.backlog]
        backlog = ingest.floor_two_processes_round(broker.port, messages, broker_pid)
        return {"backlog": backlog, "text": floor_live(broker, setup, sizes)}


def floor_live(broker: Mosquitto, setup: Setup, sizes: Sizes) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    client_ids = [f"bench-floor{n}-{tag}" for n in range(ingest.FLOOR_PROCESSES)]
    for client_id in client_ids:
        ingest.subscribe_session(broker.port, client_id, f"$share/floor/{ingest.REPORT_TOPIC}")
    context = multiprocessing.get_context("spawn")
    counts: list[MutableSequence[int]] = [context.RawArray("q", 2) for _ in client_ids]
    start, stop = context.Barrier(len(client_ids) + 1), context.Event()
    results: Queue[tuple[float, float, float]] = context.Queue()
    children = [
        context.Process(
            target=ingest.floor_child, args=(client_id, broker.port, shared, start, stop, results)
        )
        for client_id, shared in zip(client_ids, counts, strict=True)
    ]
    for child in children:
        child.start()
    start.wait(60)
    try:
        meter = setup.meter(
            broker, {"floor": [child.pid for child in children if child.pid is not None]}
        )
        # by now the floor processes are connected
        return setup.patience.measure(
            meter, lambda: text_load(broker, sizes.text), lambda: True, TEXT_TIMEOUT_S
        )
    finally:
        stop.set()
        for _ in children:
            results.get(timeout=30)
        for child in children:
            child.join(30)
        for client_id in client_ids:
            ingest.end_session(broker.port, client_id)


def pending_local(gateway: GatewayProcess) -> Callable[[], bool]:
    """Every delivery of the embedded gateway's outbox done (its count reads 0 while the
    file cannot be read, hence the rows counted too)."""

    def finished() -> bool:
        rows = gateway.count("outbox.db", "SELECT count(*) FROM deliveries")
        pending = gateway.count(
            "outbox.db", "SELECT count(*) FROM deliveries WHERE state = 'pending'"
        )
        return rows > 0 and pending == 0

    return finished


def embedded_round(setup: Setup, sizes: Sizes, rnd: int) -> dict[str, Any]:
    with Mosquitto(setup.scratch / f"broker-embedded-{rnd}") as broker:
        assert broker.process is not None
        data_dir = setup.scratch / f"embedded-{rnd}"
        gateway = GatewayProcess(data_dir, broker.url).start(timeout_s=60)
        try:
            assert gateway.process is not None
            meter = setup.meter(broker, instance_groups([gateway]))
            result = run_loads(setup, meter, broker, sizes, pending_local(gateway))
            dead = gateway.count(
                "outbox.db", "SELECT count(*) FROM deliveries WHERE state = 'dead'"
            )
            cases = gateway.count("registry.db", "SELECT count(*) FROM cases")
        finally:
            gateway.stop()
        assert dead == 0, f"{dead} dead deliveries"
        assert cases == result["text"]["load"]["reports"] + result["photo"]["load"]["reports"]
        # bench.ingest's own measurement: a backlog queued for the gateway's session
        messages = ingest.payloads()[: sizes.backlog]
        result["backlog"] = ingest.gateway_round(broker.url, messages, setup.scratch)
    return result


def run_loads(
    setup: Setup, meter: Meter, broker: Mosquitto, sizes: Sizes, finished: Callable[[], bool]
) -> dict[str, Any]:
    time.sleep(sizes.settle_s)  # the last instance started is still warming up
    setup.patience.wait_for_quiet(meter)
    result: dict[str, Any] = {"idle_cpu_share": idle(meter, sizes.idle_s)}
    result["text"] = setup.patience.measure(
        meter, lambda: text_load(broker, sizes.text), finished, TEXT_TIMEOUT_S
    )
    result["photo"] = setup.patience.measure(
        meter,
        lambda: photo_load(broker, sizes.terminals, sizes.per_terminal),
        finished,
        PHOTO_TIMEOUT_S,
    )
    for load in ("text", "photo"):
        less_idle(result[load], result["idle_cpu_share"])
    return result


def less_idle(measured: dict[str, Any], idle_share: dict[str, float]) -> None:
    """CPU per report less what the component takes idle over the same window: a lower
    bound of the work a report costs (busy, it polls less), beside the upper bound."""
    reports = measured["load"]["reports"]
    cpu = measured["cpu_us_per_report"]
    window = measured["window_s"]
    idle_us = {name: share * window / reports * 1e6 for name, share in idle_share.items()}
    idle_us["instances"] = sum(v for k, v in idle_us.items() if k.startswith("instance"))
    measured["cpu_us_per_report_less_idle"] = {
        name: max(0.0, cpu[name] - idle_us[name]) for name in idle_us if name in cpu
    }


def cluster_config(path: Path, s3: S3Server | SeaweedFS, dsn: str) -> Path:
    path.write_text(
        f"""objects = "s3://{BUCKET}/{PREFIX}"

[cluster]
url = "{dsn}"

[mqtt]
shared_group = "cgt"

{s3.gateway_settings(SECRET_ENV)}""",
        encoding="utf-8",
    )
    return path


@contextlib.contextmanager
def cluster_database(setup: Setup, name: str) -> Iterator[str]:
    """A fresh database with the gateway's schema, and a fresh bucket; gone afterwards."""
    dsn = setup.postgres.create_database(name)
    setup.s3.create_bucket(BUCKET)
    try:
        subprocess.run(
            [sys.executable, "-m", "gateway", "db", "upgrade", "--cluster", dsn],
            capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        yield dsn
    finally:
        setup.postgres.drop_database(name)
        setup.s3.reset()


def pending_shared(conn: psycopg.Connection[Any]) -> Callable[[], bool]:
    def finished() -> bool:
        row = conn.execute("SELECT count(*) FROM cgt.deliveries WHERE state = 'pending'").fetchone()
        return row is not None and int(row[0]) == 0

    return finished


def shared_round(setup: Setup, sizes: Sizes, rnd: int, count: int) -> dict[str, Any]:
    name = f"cgt_bench_{count}_{rnd}"
    with (
        cluster_database(setup, name) as dsn,
        Mosquitto(setup.scratch / f"broker-{name}") as broker,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        assert broker.process is not None
        config = cluster_config(setup.scratch / f"{name}.toml", setup.s3, dsn)
        instances = [
            GatewayProcess(
                setup.scratch / f"{name}-gw{index}",
                broker.url,
                config=config,
                env={SECRET_ENV: "testing"},
                args=["--client-id", f"cgt-gw-{index}"],
            )
            for index in range(1, count + 1)
        ]
        try:
            for instance in instances:
                instance.start(timeout_s=60)
            meter = setup.meter(broker, instance_groups(instances))
            result = run_loads(setup, meter, broker, sizes, pending_shared(conn))
            row = conn.execute(
                "SELECT count(*) FROM cgt.deliveries WHERE state = 'dead'"
            ).fetchone()
            assert row is not None
            assert row[0] == 0, f"{row[0]} dead deliveries"
        finally:
            for instance in instances:
                instance.stop()
    return result


# ---- the run -------------------------------------------------------------------------------


CONFIGS = ("floor", "embedded", *(f"shared_{n}" for n in INSTANCES))


def one_round(setup: Setup, sizes: Sizes, config: str, rnd: int) -> dict[str, Any]:
    if config == "floor":
        return floor_round(setup, sizes, rnd)
    if config == "embedded":
        return embedded_round(setup, sizes, rnd)
    return shared_round(setup, sizes, rnd, int(config.split("_")[1]))


def gather(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds of one configuration."""
    out: dict[str, Any] = {}
    for load in ("text", "photo"):
        samples = [r[load] for r in rounds if load in r]
        if not samples:
            continue
        out[load] = {
            "accepted_per_s": summary([s["accepted_per_s"] for s in samples]),
            "completed_per_s": summary([s["completed_per_s"] for s in samples]),
            "machine_cores_busy": summary([s["machine_cores_busy"] for s in samples]),
        }
        for key in ("cpu_us_per_report", "cpu_us_per_report_less_idle"):
            if key in samples[0]:
                out[load][key] = {
                    name: summary([s[key][name] for s in samples]) for name in samples[0][key]
                }
        if load == "photo":
            out[load]["latency_p50_ms"] = summary([s["load"]["latency_p50_ms"] for s in samples])
            out[load]["photos_per_report"] = samples[0]["load"]["photos_per_report"]
            out[load]["media_bytes_per_report"] = samples[0]["load"]["media_bytes_per_report"]
    if "idle_cpu_share" in rounds[0]:
        out["idle_cpu_share"] = {
            name: summary([r["idle_cpu_share"][name] for r in rounds])
            for name in rounds[0]["idle_cpu_share"]
        }
    if "backlog" in rounds[0]:
        key = "rate" if "rate" in rounds[0]["backlog"] else "end_to_end"
        out["backlog_per_s"] = summary([r["backlog"][key] for r in rounds])
    out["rounds"] = rounds
    return out


def ratios(configs: dict[str, dict[str, Any]]) -> dict[str, float]:
    def rate(config: str, load: str) -> float:
        value: float = configs[config][load]["accepted_per_s"]["median"]
        return value

    out = {
        "embedded_to_floor_live": rate("embedded", "text") / rate("floor", "text"),
        "embedded_backlog_to_floor_backlog": configs["embedded"]["backlog_per_s"]["median"]
        / configs["floor"]["backlog_per_s"]["median"],
        "floor_live_to_floor_backlog": rate("floor", "text")
        / configs["floor"]["backlog_per_s"]["median"],
    }
    for load in ("text", "photo"):
        out[f"{load}_shared_1_to_embedded"] = rate("shared_1", load) / rate("embedded", load)
        for n in INSTANCES[1:]:
            out[f"{load}_shared_{n}_to_shared_1"] = rate(f"shared_{n}", load) / rate(
                "shared_1", load
            )
        for n in INSTANCES:
            if load == "text":
                out[f"text_shared_{n}_to_floor_live"] = rate(f"shared_{n}", load) / rate(
                    "floor", load
                )
    return out


def per_core(configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Reports a core of each component would carry, from its median CPU per report: what
    extrapolates to more machines (the rates on 2 cores do not)."""
    out: dict[str, Any] = {}
    for config, measured in configs.items():
        for load in ("text", "photo"):
            if load not in measured:
                continue
            cpu = measured[load]["cpu_us_per_report"]
            parts = [p for p in ("instances", "floor", "postgres", "broker", "s3") if p in cpu]
            out.setdefault(config, {})[load] = {
                part: 1e6 / cpu[part]["median"] for part in parts if cpu[part]["median"] > 0
            }
    return out


def s3_server(kind: str, directory: Path) -> contextlib.AbstractContextManager[Any]:
    return SeaweedFS(directory) if kind == "seaweedfs" else S3Server(directory)


def run(quick: bool = False, s3_kind: str = "seaweedfs") -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    rounds = sizes.rounds
    started = time.time()
    load_average = os.getloadavg()
    collected: dict[str, list[dict[str, Any]]] = {config: [] for config in CONFIGS}
    order: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="cgt-bench-cluster-") as scratch,
        PostgresCluster() as postgres,
        s3_server(s3_kind, Path(scratch) / "s3") as s3,
    ):
        s3_pid = s3.pid if isinstance(s3, SeaweedFS) else s3_server_pid()
        s3_name = (
            f"SeaweedFS {s3.version()} (`weed server`, one process)"
            if isinstance(s3, SeaweedFS)
            else "moto (tests/s3_server.py), one Python process"
        )
        setup = Setup(Path(scratch), postgres, s3, postmaster_pid(postgres), s3_pid)
        for rnd in range(rounds):
            sequence = CONFIGS if rnd % 2 == 0 else tuple(reversed(CONFIGS))
            for config in sequence:  # ABCDE EDCBA ABCDE: drift spread over all
                began = time.monotonic()
                result = one_round(setup, sizes, config, rnd)
                result["round_s"] = time.monotonic() - began
                collected[config].append(result)
                order.append(config)
                print(json.dumps({config: brief(result)}), file=sys.stderr, flush=True)
        postgres_version = postgres.version
    configs = {config: gather(rounds_) for config, rounds_ in collected.items()}
    result = {
        "benchmark": "cluster",
        "quick": quick,
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_average,
        "duration_s": time.time() - started,
        "postgres": postgres_version,
        "s3": s3_name,
        "note": "2 cores: 3 instances measure contention, not scale-out; the CPU per report"
        " figures are what extrapolate",
        "text_reports": sizes.text,
        "backlog_reports": sizes.backlog,
        "photo_reports": sizes.terminals * sizes.per_terminal,
        "photo_terminals": sizes.terminals,
        "rounds": rounds,
        "order": order,
        "unit": "reports per second to the last `accepted` ack; CPU in µs per report",
        "ratios": ratios(configs),
        "reports_per_core": per_core(configs),
        "configs": configs,
    }
    write("cluster", result)
    return result


def brief(result: dict[str, Any]) -> dict[str, Any]:
    """A round's rates, for the progress lines on stderr."""
    out: dict[str, Any] = {}
    for load in ("text", "photo"):
        if load in result:
            out[load] = round(result[load]["accepted_per_s"], 1)
    if "backlog" in result:
        backlog = result["backlog"]
        out["backlog"] = round(backlog.get("rate", backlog.get("end_to_end", 0.0)), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster")
    parser.add_argument("--quick", action="store_true", help="small loads, one round")
    parser.add_argument(
        "--s3", choices=("seaweedfs", "moto"), default="seaweedfs", help="the S3 server"
    )
    parser.add_argument("--child", choices=("text", "photo"))
    parser.add_argument("--broker")
    parser.add_argument("--reports", type=int, default=FULL.text)
    parser.add_argument("--terminals", type=int, default=FULL.terminals)
    parser.add_argument("--per-terminal", type=int, default=FULL.per_terminal)
    args = parser.parse_args()
    if args.child:
        child_main(args)
    print(json.dumps(run(args.quick, args.s3), indent=2))


if __name__ == "__main__":
    main()
