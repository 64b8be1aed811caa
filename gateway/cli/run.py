"""`gateway run` and `gateway check-config`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from gateway import logs
from gateway.cli.options import (
    broker_option,
    config_error_exit,
    config_option,
    data_dir_option,
    load_or_exit,
    registry_option,
)
from gateway.errors import ConfigError
from gateway.geo.places import load_locator
from gateway.normalize.codes import load_profile
from gateway.settings import redact_url


@click.command()
@config_option
@data_dir_option
@broker_option
@click.option("--objects", help="A directory, or s3://BUCKET[/PREFIX] (see [s3]).")
@registry_option
@click.option("--metrics", help="HOST:PORT for /metrics and /healthz (see [metrics]).")
@click.option("--console", help="HOST:PORT for the web console (see [console]).")
@click.option(
    "--cluster",
    "cluster_url",
    help="postgresql://USER@HOST/DB: share the stores with other instances (see [cluster]).",
)
@click.option("--client-id", help="This instance's MQTT client id, unique in a cluster.")
def run(
    config_file: Path | None,
    data_dir: Path | None,
    broker: str | None,
    objects: str | None,
    registry: str | None,
    metrics: str | None,
    console: str | None,
    cluster_url: str | None,
    client_id: str | None,
) -> None:
    """Run the gateway until SIGTERM or Ctrl-C."""
    config = load_or_exit(
        config_file,
        data_dir=data_dir and str(data_dir),
        objects=objects,
        registry=registry,
        **{
            "mqtt.broker": broker,
            "metrics.listen": metrics,
            "console.listen": console,
            "cluster.url": cluster_url,
            "mqtt.client_id": client_id,
        },
    )
    logs.setup(config.log.level, config.log.format)
    # Both processes' counters go to files in a fresh directory, summed at each scrape
    # (gateway/metrics.py). prometheus_client reads the variable once, when it is first
    # imported, so the runtime (which imports it) is imported only after it is set.
    metrics_dir = config.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    from gateway.runtime.service import serve  # noqa: PLC0415 - see above

    try:
        sys.exit(serve(config, logs.get("gateway")))
    except ConfigError as error:
        config_error_exit(error)


@click.command("check-config")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check_config(config_file: Path) -> None:
    """Check a config file; print each mistake with its line, or the effective settings."""
    config = load_or_exit(config_file)
    try:
        profile = load_profile(config.codes_dir, config.codes.profile)
        locator = load_locator(config.geo)
    except ConfigError as error:
        config_error_exit(error)
    click.echo(f"{config_file}: ok")
    click.echo(f"  broker       {config.mqtt.broker} (MQTT {config.mqtt.protocol})")
    click.echo(f"  data dir     {config.data_dir}")
    click.echo(f"  objects      {config.objects_description()}")
    click.echo(f"  registry     {config.registry_description()}")
    if config.cluster.url is not None:
        click.echo(f"  cluster      {redact_url(config.cluster.url)} (shared mode)")
    click.echo(f"  code profile {profile.name}: {len(profile.entries)} classes")
    click.echo(
        f"  segments     {len(locator.segments.segments)} from {config.geo.file('segments')}"
    )
    grid = "generated" if config.geo.grid is None else str(config.geo.grid)
    click.echo(f"  unit grid    {grid}")
