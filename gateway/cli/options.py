"""What the `gateway` commands share: loading the config (exit 2 on a mistake), the
options that select it, and how a command says it failed."""

from __future__ import annotations

import json
import sys
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, NoReturn

import click
from structlog.typing import FilteringBoundLogger

from gateway import logs
from gateway.config import GatewayConfig, load_config
from gateway.devices.credentials import with_own_credentials
from gateway.errors import ConfigError
from gateway.sinks.ports import CaseRegistry


def load_or_exit(config: Path | None, **overrides: Any) -> GatewayConfig:
    """The config file (or defaults) with the command line's overrides, and the gateway's
    own broker login from the data directory when the config names none; each mistake is
    printed and the command exits 2."""
    try:
        return with_own_credentials(
            load_config(
                config, {key: value for key, value in overrides.items() if value is not None}
            )
        )
    except ConfigError as error:
        config_error_exit(error)


def open_case_registry(
    config: GatewayConfig, name: str
) -> tuple[CaseRegistry, FilteringBoundLogger]:
    """The registry the config names, and the command's logger (`gateway.NAME`). An
    embedded registry must exist: a mistyped --data-dir would otherwise make an empty one."""
    from gateway.runtime.wiring import open_registry  # noqa: PLC0415 - its drivers, when used

    if not config.registry_in_postgres and not config.registry_path.exists():
        fail(f"no registry at {config.registry_path}", 2)
    logs.setup(config.log.level, config.log.format)
    log = logs.get(f"gateway.{name}")
    return open_registry(config, log), log


def local_instant(text: str, tz: tzinfo, param_hint: str) -> datetime:
    """An RFC 3339 time from the command line; without an offset, in `tz` (the acceptance
    time zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            "RFC 3339, e.g. 2026-12-01T18:00+08:00", param_hint=param_hint
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def config_error_exit(error: ConfigError) -> NoReturn:
    """Each mistake on its own line, then exit 2 (a usage error, as click's own)."""
    for problem in error.problems:
        click.echo(f"config error: {problem}", err=True)
    sys.exit(2)


def fail(message: str, status: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def emit_json(result: object) -> None:
    """A command's result, as indented JSON on stdout (Chinese as it is)."""
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


config_option = click.option(
    "--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML config file (defaults run everything under --data-dir).",
)  # fmt: skip
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Where the stores live."
)
broker_option = click.option("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
registry_option = click.option(
    "--registry", help="sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB."
)
