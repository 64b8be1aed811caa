"""`firmware-sim`: simulated terminals for technicians and load tests.

    firmware-sim run --broker mqtt://HOST:PORT --terminals N --reports-per-terminal K
    firmware-sim run --broker mqtt://HOST:PORT --terminals 200 --duration 10m --scenario soak
    firmware-sim gps [--pty | --device /dev/ttyUSB0] [--segment ID] [--seconds N]

Progress goes to stderr (rewritten in place on a terminal, a line a second
otherwise), the summary to stdout. The exit code is 0 only if every report was
accepted, 1 if any was not, 2 for bad usage.
"""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TextIO

import click
import orjson

from firmware_sim import scenario
from firmware_sim.faults import HELP as FAULT_HELP
from firmware_sim.faults import Faults
from firmware_sim.fleet import FleetSettings, run_fleet
from firmware_sim.identity import CredentialsError, Identity, read_credentials
from firmware_sim.outcomes import Progress, Summary
from firmware_sim.scenario import ScenarioError

_SHOWN_PROBLEMS = 20  # non-accepted reports listed in the text summary; --json has all


@click.group()
def main() -> None:
    """Simulated 城管通 terminals speaking wire-v1 to a gateway through an MQTT broker."""


class Duration(click.ParamType[float, Any]):
    """Seconds, or a number with s, m or h: `90`, `90s`, `10m`, `1.5h`."""

    name = "duration"
    _UNITS: ClassVar[dict[str, float]] = {"s": 1.0, "m": 60.0, "h": 3600.0}

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        text = str(value).strip().lower()
        scale = self._UNITS.get(text[-1:], None)
        try:
            seconds = float(text[:-1] if scale else text) * (scale or 1.0)
        except ValueError:
            self.fail(f"{value!r} is not a duration like 90, 90s, 10m or 1.5h", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} is not a positive duration", param, ctx)
        return seconds


def identity_options(command: Callable[..., None]) -> Callable[..., None]:
    """How the terminals log in (firmware_sim/identity.py); the command gets `identity`."""
    options = [
        click.option("--username", default=None, help="may contain {device_id}"),
        click.option("--password", default=None, envvar="FIRMWARE_SIM_PASSWORD",
                     help="one for all terminals, or $FIRMWARE_SIM_PASSWORD"),
        click.option("--credentials", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, help="a DEVICE_ID:PASSWORD line per terminal"),
        click.option("--ca-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     default=None, help="the CA of an mqtts:// broker's certificate"),
        click.option("--cert-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
                     default=None, help="DEVICE_ID.crt and .key: log in by certificate"),
    ]  # fmt: skip

    def wrapped(
        username: str | None,
        password: str | None,
        credentials: Path | None,
        ca_file: Path | None,
        cert_dir: Path | None,
        **kwargs: Any,
    ) -> None:
        try:
            passwords = read_credentials(credentials) if credentials else {}
        except CredentialsError as error:
            raise click.BadParameter(str(error), param_hint="--credentials") from None
        identity = Identity(username, password, passwords, ca_file, cert_dir)
        command(identity=identity, **kwargs)

    functools.update_wrapper(wrapped, command)
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def fault_options(command: Callable[..., None]) -> Callable[..., None]:
    """One `--KNOB` option per fault, so each can be set on the command line."""
    for name in reversed(Faults.names()):
        command = click.option(
            f"--{name.replace('_', '-')}",
            f"fault_{name}",
            type=click.FloatRange(min=0),
            default=None,
            help=f"fault: {FAULT_HELP[name]}",
        )(command)
    return command


# Options whose value, when given, overrides the scenario's (None: not given).
_FLEET_OPTIONS = {
    "terminals": "terminals",
    "reports_per_terminal": "reports_per_terminal",
    "duration": "duration_s",
    "reports_per_hour": "reports_per_hour",
    "device_prefix": "device_prefix",
    "seed": "seed",
    "timeout_s": "ack_timeout_s",
    "attempts": "max_attempts",
    "chunk_bytes": "chunk_bytes",
    "connect_timeout_s": "connect_timeout_s",
    "interval_s": "report_interval_s",
    "drain_s": "drain_s",
}


@main.command()
@click.option(
    "--broker",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    help="mqtt://HOST:PORT or mqtts://",
)
@click.option(
    "--scenario",
    default=None,
    help="a scenario: NAME in firmware_sim/scenarios/ or a TOML path (options given here win)",
)
@click.option("--terminals", type=click.IntRange(min=1), default=None, help="[default: 1]")
@click.option(
    "--reports-per-terminal",
    type=click.IntRange(min=0),
    default=None,
    help="back to back, or at most this many on patrol [default: 1 without --duration]",
)
@click.option(
    "--duration",
    type=Duration(),
    default=None,
    help="patrol this long (90, 10m, 1h), reporting at --reports-per-hour",
)
@click.option(
    "--reports-per-hour",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="per terminal, on patrol [default: 12]",
)
@click.option(
    "--queue-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="the terminals' store-and-forward queues; kept across runs [default: temporary]",
)
@click.option(
    "--device-prefix", default=None, help="device ids are PREFIX-0001, ... [default: sim]"
)
@identity_options
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the summary and every report's outcome here",
)
@click.option("--seed", type=int, default=None, help="reproduce a run's content (ids stay fresh)")
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="silence after a report before publishing it again [default: 30]",
)
@click.option(
    "--attempts",
    type=click.IntRange(min=1),
    default=None,
    help="publications of a report per try; the queue tries again later [default: 3]",
)
@click.option("--chunk-bytes", type=click.IntRange(1, 256 * 1024), default=None,
              help="[default: 65536]")  # fmt: skip
@click.option("--connect-timeout-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="[default: 10]")  # fmt: skip
@click.option(
    "--interval-s",
    type=click.FloatRange(min=0),
    default=None,
    help="pause between one terminal's reports, back to back [default: 0]",
)
@click.option(
    "--drain-s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="after the last report, stop once no terminal is answered this long [default: 60]",
)
@fault_options
def run(
    broker: str,
    scenario: str | None,
    queue_dir: Path | None,
    identity: Identity,
    json_path: Path | None,
    **options: Any,
) -> None:
    """Run N terminals: K reports each back to back, or on patrol for a duration, with
    store and forward, verification tasks answered, and faults on demand."""
    try:
        settings = fleet_settings(broker, scenario, queue_dir, identity, options)
    except (ScenarioError, ValueError, TypeError) as error:
        raise click.UsageError(str(error)) from None
    printer = ProgressPrinter(sys.stderr)
    try:
        summary = run_fleet(settings, printer)
    except KeyboardInterrupt:
        printer.done()
        click.echo("interrupted: no summary (queued reports stay in --queue-dir)", err=True)
        sys.exit(130)
    printer.done()
    click.echo(format_summary(summary))
    if json_path is not None:
        record = {"settings": settings.public(), **summary.to_json()}
        json_path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    sys.exit(0 if summary.all_accepted else 1)


def fleet_settings(
    broker: str,
    scenario_name: str | None,
    queue_dir: Path | None,
    identity: Identity,
    options: dict[str, Any],
) -> FleetSettings:
    """Defaults, then the scenario, then what the command line gave."""
    chosen = scenario.load(scenario_name) if scenario_name else scenario.Scenario("none")
    values: dict[str, Any] = dict(chosen.fleet)
    for option, key in _FLEET_OPTIONS.items():
        if options.get(option) is not None:
            values[key] = options[option]
    faults = chosen.faults.to_json()
    faults.update(
        {name: options[f"fault_{name}"] for name in Faults.names()
         if options.get(f"fault_{name}") is not None}
    )  # fmt: skip
    return FleetSettings(
        broker=broker,
        identity=identity,
        queue_dir=queue_dir,
        faults=Faults(**faults),
        **values,
    )


@main.command()
@click.option("--pty", "use_pty", is_flag=True, help="write to a new pseudo-terminal (the default)")
@click.option("--device", type=click.Path(dir_okay=False), default=None,
              help="write to this serial device instead (pyserial), e.g. /dev/ttyUSB0")  # fmt: skip
@click.option("--baud", type=int, default=9600, show_default=True)
@click.option("--segment", default=None, help="segment id to patrol [default: the first]")
@click.option("--speed-mps", type=click.FloatRange(min=0), default=1.4, show_default=True)
@click.option("--seconds", type=click.IntRange(min=1), default=None,
              help="epochs to send [default: until Ctrl-C]")  # fmt: skip
@click.option("--interval-s", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="wall time between epochs (each epoch is 1 s of receiver time)")  # fmt: skip
@click.option("--seed", type=int, default=None)
def gps(
    use_pty: bool,
    device: str | None,
    baud: int,
    segment: str | None,
    speed_mps: float,
    seconds: int | None,
    interval_s: float,
    seed: int | None,
) -> None:
    """A receiver walking a segment: RMC and GGA at 1 Hz, to a pseudo-terminal (its path
    is printed: `gpsd -N /dev/pts/N`) or a serial device."""
    from firmware_sim.gps import PtyFeed, feed, patrol  # noqa: PLC0415
    from firmware_sim.routes import load_roads  # noqa: PLC0415

    if use_pty and device is not None:
        raise click.UsageError("--pty and --device are exclusive")
    roads = load_roads()
    road = next((r for r in roads if r.segment_id == segment), None) if segment else roads[0]
    if road is None:
        raise click.UsageError(f"no segment {segment!r} in the segments file")
    epochs = patrol(
        road, datetime.now(UTC).replace(microsecond=0), speed_mps=speed_mps,
        rng=random.Random(seed),
    )  # fmt: skip
    try:
        if device is not None:
            import serial  # noqa: PLC0415

            with serial.Serial(device, baud) as port:
                click.echo(f"{device}: patrolling {road.segment_id} {road.road_zh}", err=True)
                feed(port, epochs, interval_s=interval_s, count=seconds)
            return
        with PtyFeed() as pty:
            click.echo(pty.path)  # alone on stdout, for scripts: gpsd -N "$(...)"
            sys.stdout.flush()
            click.echo(f"patrolling {road.segment_id} {road.road_zh}", err=True)
            feed(pty.stream, epochs, interval_s=interval_s, count=seconds)
    except KeyboardInterrupt:
        sys.exit(130)


@main.command()
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True,
              help="mqtt://HOST:PORT or mqtts://")  # fmt: skip
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the capture file to write (JSON Lines)")  # fmt: skip
@click.option("--username", default=None, help="an account that reads every uplink")
@click.option("--password", default=None, envvar="FIRMWARE_SIM_PASSWORD",
              help="or $FIRMWARE_SIM_PASSWORD")  # fmt: skip
@click.option("--ca-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="the CA of an mqtts:// broker's certificate")  # fmt: skip
@click.option("--devices", default="*", show_default=True,
              help="record only device ids matching this glob, e.g. 'sim-*'")  # fmt: skip
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="stop after this long [default: at Ctrl-C]")  # fmt: skip
def record(
    broker: str,
    out_path: Path,
    username: str | None,
    password: str | None,
    ca_file: Path | None,
    devices: str,
    seconds: float | None,
) -> None:
    """Record terminals' uplinks (reports, chunks, status, track) from a broker into a
    capture file for `replay`, until Ctrl-C or --seconds."""
    import time  # noqa: PLC0415

    import aiomqtt  # noqa: PLC0415

    from firmware_sim.identity import Login  # noqa: PLC0415
    from firmware_sim.link import BrokerUrl  # noqa: PLC0415
    from firmware_sim.recorder import RecordCounts, RecordSettings, record_file  # noqa: PLC0415

    try:
        url = BrokerUrl.parse(broker)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    login = Login(username, password, ca_file)
    settings = RecordSettings(url, login=login, devices=devices, seconds=seconds)
    counts = RecordCounts()
    started = time.monotonic()

    def ready() -> None:
        click.echo(f"recording {url} into {out_path} (Ctrl-C to stop)", err=True)

    failure = None
    try:
        record_file(out_path, settings, counts, ready)
    except aiomqtt.MqttError as error:
        failure = f"broker {url}: {error}"
    except OSError as error:
        raise click.FileError(str(out_path), str(error)) from None
    click.echo(counts.format(out_path, time.monotonic() - started))
    if failure is not None:
        click.echo(failure, err=True)
        sys.exit(1)


@main.command()
@click.argument("capture_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True,
              help="mqtt://HOST:PORT or mqtts://")  # fmt: skip
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="1: the recorded timing, 2: twice as fast, 0: as fast as possible")  # fmt: skip
@click.option("--fresh-ids", is_flag=True,
              help="new report and media ids: a gateway that has them takes them anew")  # fmt: skip
@identity_options
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="wait after the last message for final answers")  # fmt: skip
@click.option("--connect-timeout-s", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True)  # fmt: skip
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="write every report's outcome here")  # fmt: skip
def replay(
    capture_path: Path,
    broker: str,
    speed: float,
    fresh_ids: bool,
    identity: Identity,
    timeout_s: float,
    connect_timeout_s: float,
    json_path: Path | None,
) -> None:
    """Replay a capture against a broker, one connection per device; exit 0 if every
    report got a final answer (accepted or rejected), 1 if not."""
    from firmware_sim import replay as replaying  # noqa: PLC0415
    from firmware_sim.capture import CaptureError  # noqa: PLC0415

    try:
        settings = replaying.ReplaySettings(
            broker=broker,
            speed=speed,
            identity=identity,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    try:
        capture = replaying.load(capture_path, fresh=fresh_ids)
    except (OSError, CaptureError) as error:
        raise click.BadParameter(str(error), param_hint=f"FILE {capture_path}") from None
    try:
        result = replaying.run(capture, settings)
    except replaying.ReplayError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted: no summary", err=True)
        sys.exit(130)
    click.echo(replaying.format_result(capture, settings, result))
    if json_path is not None:
        body = {"capture": capture.to_json(), "settings": settings.public(), **result.to_json()}
        json_path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    sys.exit(0 if result.answers.all_final else 1)


class ProgressPrinter:
    """One status line a tick: rewritten in place on a TTY, appended in a log."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, progress: Progress) -> None:
        line = format_progress(progress)
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def format_progress(p: Progress) -> str:
    p50 = f"{p.latency_p50_ms:.0f} ms" if p.latency_p50_ms is not None else "-"
    return (
        f"[{p.elapsed_s:6.1f}s] connected {p.connected}/{p.terminals}  sent {p.sent}/{p.planned}"
        f"  accepted {p.accepted}  rejected {p.rejected}  queued {p.queued}"
        f"  in flight {p.in_flight}  p50 {p50}"
    )


def format_summary(summary: Summary) -> str:
    def ms(value: float | None) -> str:
        return f"{value:.0f}" if value is not None else "-"

    lines = [
        f"terminals     {summary.terminals}",
        f"reports       {summary.planned} planned, {summary.sent} sent",
        f"accepted      {summary.accepted}",
        f"rejected      {summary.rejected}",
        f"queued        {summary.queued} (on disk, for the next run; {summary.retries} retries)",
        f"failed        {summary.failed}",
        f"latency (ms)  p50 {ms(summary.latency_p50_ms)}  p95 {ms(summary.latency_p95_ms)}"
        f"  max {ms(summary.latency_max_ms)}",
        f"duration      {summary.duration_s:.1f} s",
        f"seed          {summary.seed}",
    ]
    if summary.tasks.get("received"):
        lines.append(
            f"tasks         {summary.tasks['received']} received,"
            f" {summary.tasks['answered']} answered"
        )
    faults = {name: count for name, count in summary.faults.items() if count}
    if faults:
        lines.append("faults        " + ", ".join(f"{k} {v}" for k, v in faults.items()))
    problems = [o for o in summary.outcomes if o.status != "accepted"]
    for outcome in problems[:_SHOWN_PROBLEMS]:
        lines.append(
            f"  {outcome.status:8} {outcome.device_id} {outcome.report_id}  {outcome.reason or ''}"
        )
    if len(problems) > _SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(problems) - _SHOWN_PROBLEMS} more (see --json)")
    lines.append(
        "result        " + ("all accepted" if summary.all_accepted else "NOT all accepted")
    )
    return "\n".join(lines)
