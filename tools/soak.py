"""The soak: a fleet of terminals with their faults on, a gateway killed at random, a
broker restarted once; then every report checked against the stores.

    .venv/bin/python tools/soak.py [--duration 600] [--terminals 200] [--seed N]
        [--kill-every 15:45] [--production] [--instances N] [--keep] [--work-dir DIR]

A Mosquitto of its own (the project's config, persistence on, a free port), the gateway
(`gateway run`, embedded sinks in a fresh data directory; with --production a throwaway
PostgreSQL and moto's S3 server) and `firmware-sim run` as a subprocess. While the
simulator runs, the gateway's process group gets SIGKILL every 15-45 s (seeded) and is
started again; the broker is stopped and started on the same port and persistence
directory once, mid-run. When the simulator is done the gateway is given time to finish
what it owes (its outbox drained), is stopped, and `soak_check` compares what the
terminals were told with the registry and the object store.

With --instances N (2 or more) the gateway runs in shared mode: a throwaway PostgreSQL
(`gateway db upgrade --cluster` first) holds every instance's stores and the registry,
moto's S3 the objects and the media spool, and N instances (`cgt-gw-1`...) share one
subscription. Each SIGKILL takes a random instance, and PostgreSQL is restarted once
(`--postgres-restarts`) as well as the broker.

Progress goes to stderr as `soak t=SECONDS event=NAME key=value ...` lines; the summary
and the checker's `lost=N duplicated=N` to stdout. Exit code 0 only if both are 0.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType

import orjson
from soak_check import Verdict, local_digests, render, run_check, s3_digests
from soak_stack import (
    S3_SECRET_ENV,
    Backlog,
    Gateway,
    ProductionSinks,
    SimPlan,
    backlog,
    cases_registered,
    die_with_parent,
    pick_case,
    simulator_command,
)

from gateway.harness.gateway_process import end_process
from gateway.harness.mosquitto import Mosquitto

PROGRESS_EVERY_S = 10.0
BROKER_DOWN_S = 2.0  # long enough that every client notices and reconnects
SIM_GRACE_S = 900.0  # after the duration: the simulator drains its queues, then gives up
SUPERVISOR_GIVES_UP_S = 120.0  # an instance that will not start again fails the soak


@dataclass(frozen=True, slots=True)
class SoakSettings:
    duration_s: float = 600.0
    terminals: int = 200
    seed: int = field(default_factory=lambda: random.SystemRandom().randrange(2**31))
    kill_every_s: tuple[float, float] = (15.0, 45.0)
    broker_restarts: int = 1
    drain_timeout_s: float = 300.0
    production: bool = False
    work_dir: Path | None = None
    keep: bool = False
    allowed_rejections: tuple[str, ...] = ()
    reports_per_hour: float | None = None  # per terminal; None: the soak scenario's
    tasks: int | None = None  # verification tasks sent during the run; None: one a minute
    instances: int = 1  # 2 or more: shared mode (PostgreSQL and S3), one shared group
    postgres_restarts: int = 1  # in shared mode: the first a crash, then fast, in turn

    @property
    def task_count(self) -> int:
        return self.tasks if self.tasks is not None else max(1, int(self.duration_s // 60))

    @property
    def shared(self) -> bool:
        return self.instances >= 2


@dataclass
class SoakResult:
    settings: SoakSettings
    work_dir: Path
    kills_at_s: list[float] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)  # in shared mode: which instance, each kill
    gateway_up_s: list[float] = field(default_factory=list)  # start to ready, each restart
    broker_restarts_at_s: list[float] = field(default_factory=list)
    postgres_restarts_at_s: list[float] = field(default_factory=list)  # back up, each
    # In shared mode: instances that exited by themselves, restarted as a supervisor would.
    exits: list[str] = field(default_factory=list)
    sim_exit: int | None = None
    run_s: float = 0.0
    drain_s: float = 0.0
    check_s: float = 0.0
    drained: Backlog | None = None
    verdict: Verdict | None = None
    error: str | None = None  # the soak could not get as far as a verdict
    removed: bool = False  # the work dir, after a pass
    sim_faults: dict[str, object] = field(default_factory=dict)  # what the simulator did
    tasks_sent: list[str] = field(default_factory=list)  # task ids `gateway task send` sent
    tasks_failed: list[str] = field(default_factory=list)  # why a send did not work
    tasks_unanswered: list[str] = field(default_factory=list)  # sent, no verification accepted

    @property
    def ok(self) -> bool:
        return self.verdict is not None and self.verdict.ok and not self.tasks_unanswered


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.started


def progress(clock: Clock, event: str, **fields: object) -> None:
    """One logfmt line on stderr: what happened when, for a human or a grep."""
    parts = [f"soak t={clock.now():.1f}", f"event={event}"]
    for key, value in fields.items():
        text = str(value)
        parts.append(f"{key}={orjson.dumps(text).decode() if ' ' in text else text}")
    print(" ".join(parts), file=sys.stderr, flush=True)


def schedule(settings: SoakSettings, rng: random.Random) -> list[tuple[float, str]]:
    """When to kill the gateway (seeded gaps of kill_every_s) and when to restart the
    broker (evenly inside the run) and, in shared mode, PostgreSQL (evenly too, a quarter
    of its gap later: not with the broker's), in order of time."""
    low, high = settings.kill_every_s
    events: list[tuple[float, str]] = []
    at = rng.uniform(low, high)
    while at < settings.duration_s:
        events.append((at, "kill"))
        at += rng.uniform(low, high)
    for n in range(settings.broker_restarts):
        events.append((settings.duration_s * (n + 1) / (settings.broker_restarts + 1), "broker"))
    restarts = settings.postgres_restarts if settings.shared else 0
    for n in range(restarts):
        events.append((settings.duration_s * (n + 1.25) / (restarts + 1), "postgres"))
    # Tasks early enough that the inspector can walk there and report before the end.
    for n in range(settings.task_count):
        events.append((settings.duration_s * (0.1 + 0.6 * (n + 0.5) / settings.task_count), "task"))
    return sorted(events)


def sim_status(path: Path) -> str:
    """The simulator's latest progress line (it writes one a second to stderr)."""
    try:
        with path.open("rb") as stream:
            stream.seek(max(0, path.stat().st_size - 400))
            lines = stream.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def run_soak(settings: SoakSettings) -> SoakResult:
    """The whole soak. A temporary work dir is removed after a pass unless `keep`; a
    failed soak's, and one named by `work_dir`, are always kept."""
    if settings.work_dir is not None:
        settings.work_dir.mkdir(parents=True, exist_ok=False)
        work = settings.work_dir.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="cgt-soak-"))
    result = SoakResult(settings, work)
    try:
        _run(settings, result)
    except (RuntimeError, TimeoutError) as error:  # a part that would not start or stop
        result.error = f"{type(error).__name__}: {error}"
    finally:
        if settings.work_dir is None and not settings.keep and result.ok:
            shutil.rmtree(work, ignore_errors=True)
            result.removed = True
    return result


@dataclass
class Parts:
    """What the soak disturbs and how it reads the stores: the broker, the gateway (one,
    or a cluster's instances), and the production sinks if there are any."""

    broker: Mosquitto
    gateways: list[Gateway]
    sinks: ProductionSinks | None
    count_cases: Callable[[], int | None]
    pick: Callable[[], tuple[str, str] | None]
    owed: Callable[[], Backlog | None]  # what the gateway (or the cluster) has not finished


def _parts(
    settings: SoakSettings,
    work: Path,
    broker: Mosquitto,
    sinks: ProductionSinks | None,
    rng: random.Random,
) -> Parts:
    """The gateway, or a cluster's instances, and how to read what they stored and owe."""
    if settings.shared:
        assert sinks is not None  # noqa: S101 - _run starts them for shared mode
        config = sinks.write_config(work / "gateway.toml", shared=True)
        gateways = [
            # Each data dir holds only a local spool cache and the metrics; the JSON log
            # beside it, as the harness's GatewayProcess has it (`<data_dir>.log`).
            Gateway(
                work / f"gw-{n}",
                broker.url,
                work / f"gw-{n}.log",
                config=config,
                env={S3_SECRET_ENV: "testing"},
                client_id=f"cgt-gw-{n}",
            )
            for n in range(1, settings.instances + 1)
        ]
        owed: Callable[[], Backlog | None] = sinks.backlog
    else:
        gateway = Gateway(work / "gateway", broker.url, work / "gateway.log")
        if sinks is not None:
            gateway.config = sinks.write_config(work / "gateway.toml")
            gateway.env = {S3_SECRET_ENV: "testing"}
        gateways, owed = [gateway], partial(backlog, gateway.data_dir)
    if sinks is None:
        data_dir = gateways[0].data_dir
        return Parts(
            broker,
            gateways,
            None,
            partial(cases_registered, data_dir),
            partial(pick_case, data_dir, rng),
            owed,
        )
    return Parts(broker, gateways, sinks, sinks.cases, partial(sinks.pick_case, rng), owed)


def _who(gateway: Gateway) -> dict[str, str]:
    """The instance, in a progress line (nothing for the one embedded gateway)."""
    return {"instance": gateway.client_id} if gateway.client_id is not None else {}


def _run(settings: SoakSettings, result: SoakResult) -> None:
    clock = Clock()
    rng = random.Random(settings.seed)  # noqa: S311 - a reproducible schedule, not a secret
    work = result.work_dir
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(work / "broker"))
        progress(clock, "broker.started", url=broker.url, persistence=work / "broker" / "data")
        sinks = None
        if settings.production or settings.shared:
            sinks = ProductionSinks.start(work)
            stack.callback(sinks.close)
            progress(clock, "sinks.started", registry=sinks.dsn, objects=sinks.objects_url)
            if settings.shared:
                upgraded = sinks.upgrade_schema().splitlines()
                progress(clock, "schema.upgraded", parts=len(upgraded), cluster=sinks.dsn)
        parts = _parts(settings, work, broker, sinks, rng)
        for gateway in parts.gateways:
            stack.callback(gateway.stop)
            progress(clock, "gateway.started", ready_s=f"{gateway.start():.1f}", **_who(gateway))

        plan = SimPlan(
            broker.url,
            settings.terminals,
            settings.duration_s,
            settings.seed,
            work / "sim.json",
            work / "sim-queue",
            settings.reports_per_hour,
        )
        command = simulator_command(plan)
        with (work / "sim.out").open("ab") as out, (work / "sim.err").open("ab") as err:
            sim = subprocess.Popen(  # noqa: S603 - our own program
                command,
                cwd=work,  # not the caller's: `-m` would import from there
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - the runner starts no threads
            )
        stack.callback(_end, sim)
        progress(clock, "sim.started", terminals=settings.terminals, command=" ".join(command[3:]))

        _disturb(settings, result, clock, rng, sim, parts)
        _end(sim)
        result.sim_exit = sim.returncode
        result.run_s = clock.now()
        progress(clock, "sim.exited", code=result.sim_exit)

        began = time.monotonic()
        result.drained = _drain(settings, clock, parts.owed)
        result.drain_s = time.monotonic() - began
        for gateway in parts.gateways:
            gateway.stop()
            progress(clock, "gateway.stopped", **_who(gateway))

        _check(settings, result, clock, plan.json_path, parts.gateways[0], sinks)


def _check(
    settings: SoakSettings,
    result: SoakResult,
    clock: Clock,
    json_path: Path,
    gateway: Gateway,
    sinks: ProductionSinks | None,
) -> None:
    """Every outcome the simulator wrote against the stores, and every task answered."""
    if not json_path.exists():
        exit_code = result.sim_exit
        result.error = f"the simulator wrote no outcomes (exit {exit_code}): see {result.work_dir}"
        progress(clock, "sim.no_outcomes", stderr=result.work_dir / "sim.err")
        return
    document = orjson.loads(json_path.read_bytes())
    result.sim_faults = {**document.get("faults", {}), **_prefixed(document.get("tasks"))}
    began = time.monotonic()
    if sinks is None:
        registry, objects = str(gateway.data_dir / "registry.db"), gateway.data_dir / "objects"
        digests = local_digests(objects)
    else:
        registry, digests = sinks.dsn, s3_digests(sinks.objects_url, sinks.client())
    result.verdict = run_check(json_path, registry, digests, settings.allowed_rejections)
    answered = {
        outcome.get("task_id")
        for outcome in document.get("outcomes", [])
        if outcome.get("status") == "accepted"
    }
    result.tasks_unanswered = [task for task in result.tasks_sent if task not in answered]
    result.check_s = time.monotonic() - began


def _prefixed(tasks: object) -> dict[str, object]:
    return {f"tasks_{k}": v for k, v in tasks.items()} if isinstance(tasks, dict) else {}


def _disturb(
    settings: SoakSettings,
    result: SoakResult,
    clock: Clock,
    rng: random.Random,
    sim: subprocess.Popen[bytes],
    parts: Parts,
) -> None:
    """Kill the gateway (an instance), restart the broker (and PostgreSQL) and send
    verification tasks on schedule while the simulator runs."""
    events = schedule(settings, rng)
    next_progress = PROGRESS_EVERY_S
    deadline = settings.duration_s + SIM_GRACE_S
    while sim.poll() is None:
        now = clock.now()
        if now > deadline:
            progress(clock, "sim.overdue", deadline_s=deadline)
            return
        if settings.shared:
            _supervise(result, clock, parts.gateways)
        if events and now >= events[0][0]:
            _, what = events.pop(0)
            if what == "kill":
                _kill_and_restart(result, clock, rng, parts.gateways)
            elif what == "task":
                _send_task(result, clock, parts.gateways[0], parts.broker.url, parts.pick())
            elif what == "broker":
                _restart_broker(result, clock, parts.broker)
            elif parts.sinks is not None:  # "postgres": scheduled in shared mode only
                _restart_postgres(result, clock, parts.sinks)
        elif now >= next_progress:
            next_progress += PROGRESS_EVERY_S
            state = parts.owed()
            progress(
                clock,
                "progress",
                cases=parts.count_cases(),
                backlog=state.describe() if state else "-",
                sim=sim_status(result.work_dir / "sim.err"),
            )
        time.sleep(0.1)


def _kill_and_restart(
    result: SoakResult, clock: Clock, rng: random.Random, gateways: Sequence[Gateway]
) -> None:
    # One gateway: no draw, so an embedded soak's seed gives the schedule it always gave.
    gateway = gateways[rng.randrange(len(gateways))] if len(gateways) > 1 else gateways[0]
    gateway.kill()
    result.kills_at_s.append(round(clock.now(), 1))
    if gateway.client_id is not None:
        result.killed.append(gateway.client_id)
    kill = len(result.kills_at_s)
    progress(clock, "gateway.killed", kill=kill, signal="SIGKILL", **_who(gateway))
    time.sleep(rng.uniform(0.2, 3.0))  # down for a moment: terminals and the broker notice
    up_s = gateway.start()
    result.gateway_up_s.append(round(up_s, 2))
    progress(clock, "gateway.restarted", kill=kill, ready_s=f"{up_s:.1f}", **_who(gateway))


def _supervise(result: SoakResult, clock: Clock, gateways: Sequence[Gateway]) -> None:
    """Start again an instance that exited by itself (`gateway run` exits non-zero when
    its pipeline dies, for its supervisor to restart it), and say so in the summary."""
    for gateway in gateways:
        code = gateway.exited()
        if code is None:
            continue
        result.exits.append(f"{gateway.client_id} exit {code} at {clock.now():.1f} s")
        progress(clock, "gateway.exited", code=code, log=gateway.log_path, **_who(gateway))
        deadline = time.monotonic() + SUPERVISOR_GIVES_UP_S
        while True:
            try:
                up_s = gateway.start()
            except (RuntimeError, TimeoutError):  # e.g. the database not back yet: exit 2
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
                continue
            progress(clock, "gateway.restarted", ready_s=f"{up_s:.1f}", **_who(gateway))
            break


def _send_task(
    result: SoakResult,
    clock: Clock,
    gateway: Gateway,
    broker_url: str,
    case: tuple[str, str] | None,
) -> None:
    """`gateway task send`, as an operator would: verify a case already registered."""
    if case is None:
        result.tasks_failed.append("no case registered yet")
        progress(clock, "task.skipped", why="no case registered yet")
        return
    case_no, device_id = case
    command = [sys.executable, "-m", "gateway", "task", "send", "--data-dir",
               str(gateway.data_dir), "--broker", broker_url, "--device", device_id,
               "--case", case_no, "--kind", "verify"]  # fmt: skip
    if gateway.config is not None:
        command += ["--config", str(gateway.config)]
    sent = subprocess.run(  # noqa: S603 - our own program
        command, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **gateway.env},
    )  # fmt: skip
    if sent.returncode != 0:
        result.tasks_failed.append(sent.stderr.strip()[-300:])
        progress(clock, "task.failed", case_no=case_no, code=sent.returncode)
        return
    task_id = orjson.loads(sent.stdout)["task_id"]
    result.tasks_sent.append(task_id)
    progress(clock, "task.sent", case_no=case_no, device_id=device_id, task_id=task_id)


def _restart_broker(result: SoakResult, clock: Clock, broker: Mosquitto) -> None:
    broker.stop()
    progress(clock, "broker.stopped")
    time.sleep(BROKER_DOWN_S)
    broker.start()  # same port, same persistence directory
    result.broker_restarts_at_s.append(round(clock.now(), 1))
    progress(clock, "broker.restarted", url=broker.url)


def _restart_postgres(result: SoakResult, clock: Clock, sinks: ProductionSinks) -> None:
    """The cluster's database down and up: every instance's stores and the registry."""
    crash = len(result.postgres_restarts_at_s) % 2 == 0
    began = time.monotonic()
    progress(clock, "postgres.stopping", mode="immediate" if crash else "fast")
    sinks.restart_database(crash=crash)  # same port, same data
    result.postgres_restarts_at_s.append(round(clock.now(), 1))
    progress(clock, "postgres.restarted", down_s=f"{time.monotonic() - began:.1f}")


def _drain(
    settings: SoakSettings, clock: Clock, owed: Callable[[], Backlog | None]
) -> Backlog | None:
    """Wait until the gateway owes nothing (seen twice, a second apart): every ready
    report taken, no delivery pending; its state as last seen."""
    deadline = time.monotonic() + settings.drain_timeout_s
    streak, state = 0, None
    while time.monotonic() < deadline:
        state = owed()
        streak = streak + 1 if state is not None and state.drained else 0
        if streak >= 2:
            progress(clock, "gateway.drained", backlog=state.describe() if state else "-")
            return state
        time.sleep(1.0)
    progress(clock, "gateway.not_drained", backlog=state.describe() if state else "-")
    return state


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop the simulator if it still runs (the soak failed or was interrupted)."""
    end_process(process, 20)


def summary(result: SoakResult) -> str:
    s = result.settings
    sinks = "PostgreSQL + S3 (moto)" if s.production else "SQLite registry + local objects"
    if s.shared:
        sinks = f"{s.instances} instances in shared mode, PostgreSQL + S3 (moto)"
    verdict = result.verdict
    ups = sorted(result.gateway_up_s)
    up = f"ready again in {ups[len(ups) // 2]:.1f} s p50, {ups[-1]:.1f} s max" if ups else ""
    drained = result.drained.describe() if result.drained else "-"
    lines = [
        f"soak: {s.terminals} terminals, {s.duration_s:g} s, seed {s.seed}, {sinks}",
        f"  gateway SIGKILLs  {len(result.kills_at_s)} at {result.kills_at_s} s; {up}",
        f"  broker restarts   {len(result.broker_restarts_at_s)} at "
        f"{result.broker_restarts_at_s} s",
    ]
    if s.shared:
        per = Counter(result.killed)
        killed = ", ".join(f"{name} x{per[name]}" for name in sorted(per))
        crash = " (the first a crash: immediate shutdown)" if result.postgres_restarts_at_s else ""
        exits = f": {result.exits} (restarted, as a supervisor would)" if result.exits else ""
        lines += [
            f"  instances killed  {killed or 'none'}",
            f"  postgres restarts {len(result.postgres_restarts_at_s)} at "
            f"{result.postgres_restarts_at_s} s{crash}",
            f"  exited by itself  {len(result.exits)}{exits}",
        ]
    lines.append(f"  simulator exit    {result.sim_exit}")
    if result.sim_faults:
        faults = " ".join(f"{k}={v}" for k, v in result.sim_faults.items())
        lines.append(f"  faults injected   {faults}")
    lines.append(
        f"  tasks             {len(result.tasks_sent)} sent, "
        f"{len(result.tasks_sent) - len(result.tasks_unanswered)} answered by a verification"
        + (f", {len(result.tasks_failed)} not sent" if result.tasks_failed else "")
    )
    if result.tasks_unanswered:
        lines.append(f"  unanswered tasks  {result.tasks_unanswered}")
    if verdict is not None:
        lines.append(
            f"  reports           {verdict.reports}, accepted {verdict.accepted}; "
            + "; ".join(verdict.notes)
        )
    lines += [
        f"  after the run     {drained}",
        f"  timings           run {result.run_s:.1f} s, drain {result.drain_s:.1f} s, "
        f"check {result.check_s:.1f} s",
        f"  work dir          {result.work_dir}" + (" (removed)" if result.removed else ""),
    ]
    if verdict is not None:
        lines.append(render(verdict))
    if result.error is not None:
        lines.append(f"soak failed: {result.error}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> SoakSettings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of reporting")
    parser.add_argument("--terminals", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="the kills' schedule and content")
    parser.add_argument(
        "--kill-every", default="15:45", metavar="MIN:MAX", help="seconds between SIGKILLs"
    )
    parser.add_argument(
        "--reports-per-hour", type=float, help="per terminal [default: the soak scenario's]"
    )
    parser.add_argument("--broker-restarts", type=int, default=1)
    parser.add_argument(
        "--tasks", type=int, help="verification tasks sent during the run [default: 1 a minute]"
    )
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--production", action="store_true", help="PostgreSQL and S3 sinks")
    parser.add_argument(
        "--instances", type=int, default=1, metavar="N",
        help="2 or more: shared mode, N instances on PostgreSQL and S3 [default: 1, embedded]",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-restarts", type=int, default=1, help="in shared mode [default: 1]"
    )
    parser.add_argument("--work-dir", type=Path, help="a new directory [default: a temporary]")
    parser.add_argument("--keep", action="store_true", help="keep the work dir after a pass")
    parser.add_argument(
        "--allow-rejection", action="append", default=[], metavar="CODE",
        help="a rejection reason the scenario intends (repeatable); by default none",
    )  # fmt: skip
    args = parser.parse_args(argv)
    low, _, high = args.kill_every.partition(":")
    try:
        kill_every = (float(low), float(high or low))
    except ValueError:
        parser.error("--kill-every is MIN:MAX seconds")
    if not 0 < kill_every[0] <= kill_every[1] or args.duration <= 0 or args.terminals < 1:
        parser.error("--kill-every, --duration and --terminals must be positive")
    if args.instances < 1 or args.postgres_restarts < 0:
        parser.error("--instances must be positive, --postgres-restarts not negative")
    settings = SoakSettings(
        duration_s=args.duration,
        terminals=args.terminals,
        kill_every_s=kill_every,
        broker_restarts=args.broker_restarts,
        drain_timeout_s=args.drain_timeout,
        production=args.production,
        work_dir=args.work_dir,
        keep=args.keep,
        allowed_rejections=tuple(args.allow_rejection),
        reports_per_hour=args.reports_per_hour,
        tasks=args.tasks,
        instances=args.instances,
        postgres_restarts=args.postgres_restarts,
    )
    if args.seed is not None:
        settings = dataclasses.replace(settings, seed=args.seed)
    return settings


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds: every part is stopped


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    result = run_soak(parse_args(argv))
    print(summary(result))
    if result.verdict is None:
        return 2
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
