"""`gateway`: the commands operators and technicians run.

Each command lives in its own module and that module is imported only when the command
runs, so `gateway --help` or `gateway devices list` never loads Pillow, PyAV, shapely or
a database driver they do not use. The table below names each command's module and its
one-line help (shown by `gateway --help` without importing anything);
`tests/unit/test_cli_commands.py` checks that the table and the commands agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

import click


@dataclass(frozen=True, slots=True)
class Entry:
    module: str  # under gateway.cli
    attribute: str  # the click command or group in it
    summary: str  # its short help, as `gateway --help` shows it


COMMANDS = {
    "run": Entry("run", "run", "Run the gateway until SIGTERM or Ctrl-C."),
    "check-config": Entry(
        "run",
        "check_config",
        "Check a config file; print each mistake with its line, or the effective settings.",
    ),
    "demo": Entry(
        "demo",
        "demo",
        "Start a broker, the gateway with its console and simulated terminals; serve it.",
    ),
    "devices": Entry(
        "devices",
        "devices",
        "Terminals allowed on the broker: add, list, suspend, resume, revoke, rotate.",
    ),
    "broker-config": Entry(
        "devices",
        "broker_config",
        "Write the broker's configuration: listeners, accounts, ACL, TLS.",
    ),
    "users": Entry("users", "users", "The console's accounts: add, list, disable, enable, reset."),
    "db": Entry(
        "db",
        "db",
        "The cluster's shared stores in PostgreSQL: upgrade the schema, show its version.",
    ),
    "task": Entry("tasks", "task", "Tasks for terminals: send one, list them."),
    "bulletin": Entry(
        "bulletin", "bulletin", "Write a month's bulletin (数字城管通报) as PDF or HTML."
    ),
    "stats": Entry("stats", "stats", "Evaluation statistics: counts and rates of a period."),
    "case": Entry(
        "case",
        "case",
        "One step of a case's lifecycle (accept, file, dispatch, …), or show its history.",
    ),
    "overdue": Entry(
        "case", "overdue", "Cases in handling past their deadline, the longest overdue first."
    ),
    "outbox": Entry(
        "outbox",
        "outbox",
        "Deliveries that failed for good (dead letters): list them, replay them.",
    ),
    "media": Entry(
        "media",
        "media",
        "Run one media stage on one file (for technicians): metadata as JSON on stdout.",
    ),
    "nmea": Entry("gnss", "nmea", "NMEA 0183 tools."),
    "gps": Entry("gnss", "gps", "A GNSS receiver on the bench: its fixes, checked, as JSON lines."),
    "locate": Entry(
        "locate",
        "locate",
        "Where LAT LON (WGS-84) is: grid code, road, segment, responsible units, coverage.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they are invoked (click's documented
    pattern for lazily loaded subcommands), with their help taken from `COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command = getattr(import_module(f"gateway.cli.{entry.module}"), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"gateway.cli.{entry.module}.{entry.attribute} is not a command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name].summary) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
def main() -> None:
    """cgt-gateway: 城管通 terminals in, normalized cases out."""


if __name__ == "__main__":
    main()
