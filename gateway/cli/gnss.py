"""`gateway nmea parse` and `gateway gps watch`: a receiver's fixes as JSON lines, for
technicians checking a terminal's receiver (or its log) on the bench."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gateway import logs
from gateway.cli.options import config_option, load_or_exit
from gateway.geo.checks import FixChecks, check
from gateway.protocols.gnss import GnssFix
from gateway.protocols.nmea import parse_log
from gateway.transports.gpsd_client import GPSD_PORT, GpsdClient
from gateway.transports.reconnect import ReconnectingSource
from gateway.transports.serial_reader import NMEA_BAUD, SerialReader


@click.group()
def nmea() -> None:
    """NMEA 0183 tools."""


@nmea.command("parse")
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def nmea_parse(log: Path) -> None:
    """Print the fixes of an NMEA log as JSON lines (one per epoch with a fix)."""
    for fix in parse_log(log):
        click.echo(json.dumps(fix.as_json()))


@click.group()
def gps() -> None:
    """A GNSS receiver on the bench: its fixes, checked, as JSON lines."""


@gps.command("watch")
@click.option("--gpsd", "gpsd_address", metavar="HOST[:PORT]",
              help=f"Read a gpsd (port {GPSD_PORT} unless given).")  # fmt: skip
@click.option("--serial", "serial_url", metavar="DEVICE",
              help="Read NMEA from a serial port: /dev/ttyUSB0, a pty, rfc2217://...")  # fmt: skip
@click.option("--baud", type=click.IntRange(1), default=NMEA_BAUD, show_default=True,
              help="The serial port's rate.")  # fmt: skip
@click.option("--count", type=click.IntRange(1), help="Stop after this many fixes.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0, min_open=True),
              help="Give up after this many seconds (exit 1 if short of --count).")  # fmt: skip
@config_option
def gps_watch(
    gpsd_address: str | None,
    serial_url: str | None,
    baud: int,
    count: int | None,
    timeout_s: float | None,
    config_file: Path | None,
) -> None:
    """Print each fix of a receiver with the checks the gateway applies to a report's fix.

    Each line is the fix (time, lat, lon, mode, alt, speed, track, satellites, hdop), when
    it arrived by this machine's clock, and its flags: fix.stale or fix.ahead_of_report
    (the receiver's clock against this machine's: a wrong date shows here), fix.inaccurate
    (accuracy or HDOP past `[geo.checks]`), fix.jump (an implied speed past the limit since
    the previous fix), fix.outside_china, fix.zero, and fix.no_time (no date known yet).
    Ctrl-C stops it."""
    if (gpsd_address is None) == (serial_url is None):
        raise click.UsageError("give one of --gpsd HOST[:PORT] or --serial DEVICE")
    config = load_or_exit(config_file)
    logs.setup(config.log.level, config.log.format)  # on stderr: stdout is the fixes'
    source: ReconnectingSource[Any, Any]
    if gpsd_address is not None:
        source = GpsdClient(*_host_port(gpsd_address))
    else:
        source = SerialReader(str(serial_url), baudrate=baud)
    timer = threading.Timer(timeout_s, source.stop) if timeout_s is not None else None
    if timer is not None:
        timer.start()
    seen = watch(source, config.geo.checks.rules(), count)
    if timer is not None:
        timer.cancel()
    if count is not None and seen < count:
        click.echo(f"{seen} of {count} fixes before the timeout", err=True)
        sys.exit(1)


def _host_port(address: str) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6] or [IPv6]:PORT."""
    host, port = address, ""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise click.BadParameter("HOST or HOST:PORT", param_hint="--gpsd")
    return host, int(port) if port else GPSD_PORT


def watch(source: ReconnectingSource[Any, Any], rules: FixChecks, count: int | None) -> int:
    """Print checked fixes until `count` of them, the source stops, or Ctrl-C."""
    seen = 0
    previous: GnssFix | None = None
    try:
        for fix in source.fixes():
            click.echo(json.dumps(checked(fix, datetime.now(UTC), previous, rules)))
            previous, seen = fix, seen + 1
            if count is not None and seen >= count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        source.stop()
    return seen


def checked(
    fix: GnssFix, now: datetime, previous: GnssFix | None, rules: FixChecks
) -> dict[str, Any]:
    """One line of `gps watch`: the fix, when it came, and what the gateway would flag."""
    flags = check(fix, now, previous, rules)
    if fix.time is None:
        flags.append("fix.no_time")
    return {**fix.as_json(), "received_at": now.isoformat(timespec="milliseconds"), "flags": flags}
