"""`gateway locate LAT LON`: what the geo stage makes of a position."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.options import config_error_exit, config_option, emit_json, load_or_exit
from gateway.errors import ConfigError
from gateway.geo.places import load_locator


@click.command()
@click.argument("lat", type=float)
@click.argument("lon", type=float)
@config_option
def locate(lat: float, lon: float, config_file: Path | None) -> None:
    """Where LAT LON (WGS-84) is: grid code, road, segment, responsible units, coverage."""
    config = load_or_exit(config_file)
    try:
        locator = load_locator(config.geo)
    except ConfigError as error:
        config_error_exit(error)
    place = locator.place(lat, lon).model_dump(mode="json")
    emit_json({"wgs84": {"lat": lat, "lon": lon}, **place})
