"""`gateway`: run the gateway, check a config, run the demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gateway import logs
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError


def _load(config: Path | None, **overrides: Any) -> GatewayConfig:
    try:
        return load_config(
            config, {key: value for key, value in overrides.items() if value is not None}
        )
    except ConfigError as error:
        for problem in error.problems:
            click.echo(f"config error: {problem}", err=True)
        sys.exit(2)


config_option = click.option(
    "--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML config file (defaults run everything under --data-dir).",
)  # fmt: skip
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Where the stores live."
)


@click.group()
def main() -> None:
    """cgt-gateway: 城管通 terminals in, normalized cases out."""


@main.command()
@config_option
@data_dir_option
@click.option("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
def run(config_file: Path | None, data_dir: Path | None, broker: str | None) -> None:
    """Run the gateway until SIGTERM or Ctrl-C."""
    config = _load(config_file, data_dir=data_dir and str(data_dir), **{"mqtt.broker": broker})
    logs.setup(config.log.level, config.log.format)
    from gateway.app import serve  # noqa: PLC0415 - keep `check-config` light

    try:
        sys.exit(serve(config, logs.get("gateway")))
    except ConfigError as error:
        for problem in error.problems:
            click.echo(f"config error: {problem}", err=True)
        sys.exit(2)


@main.command("check-config")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check_config(config_file: Path) -> None:
    """Check a config file; print each mistake with its line, or the effective settings."""
    config = _load(config_file)
    from gateway.normalize.codes import load_profile  # noqa: PLC0415

    try:
        profile = load_profile(config.codes_dir, config.codes.profile)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(f"config error: {problem}", err=True)
        sys.exit(2)
    click.echo(f"{config_file}: ok")
    click.echo(f"  broker       {config.mqtt.broker} (MQTT {config.mqtt.protocol})")
    click.echo(f"  data dir     {config.data_dir}")
    click.echo(f"  objects      {config.objects_dir}")
    click.echo(f"  registry     {config.registry_path}")
    click.echo(f"  code profile {profile.name}: {len(profile.entries)} classes")


@main.command()
@data_dir_option
@click.option("--terminals", default=20, show_default=True)
@click.option("--reports-per-terminal", default=5, show_default=True)
def demo(data_dir: Path | None, terminals: int, reports_per_terminal: int) -> None:
    """Start a broker, the gateway and simulated terminals; print what happened."""
    from gateway.demo import run_demo  # noqa: PLC0415

    sys.exit(run_demo(data_dir or Path("var/demo"), terminals, reports_per_terminal))


if __name__ == "__main__":
    main()
