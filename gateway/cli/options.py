"""What the `gateway` commands share: loading the config (exit 2 on a mistake), the
options that select it, and how a command says it failed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from gateway.config import GatewayConfig, load_config
from gateway.devices.credentials import with_own_credentials
from gateway.errors import ConfigError


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
