"""`gateway`: run the gateway, check a config, run the demo."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway import logs
from gateway.cli_devices import broker_config, devices
from gateway.cli_options import broker_option, config_option, data_dir_option, registry_option
from gateway.cli_options import load_or_exit as _load
from gateway.cli_tasks import task
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.store.outbox import Outbox


@click.group()
def main() -> None:
    """cgt-gateway: 城管通 terminals in, normalized cases out."""


main.add_command(task)
main.add_command(devices)
main.add_command(broker_config)


@main.command()
@config_option
@data_dir_option
@broker_option
@click.option("--objects", help="A directory, or s3://BUCKET[/PREFIX] (see [s3]).")
@registry_option
@click.option("--metrics", help="HOST:PORT for /metrics and /healthz (see [metrics]).")
def run(
    config_file: Path | None,
    data_dir: Path | None,
    broker: str | None,
    objects: str | None,
    registry: str | None,
    metrics: str | None,
) -> None:
    """Run the gateway until SIGTERM or Ctrl-C."""
    config = _load(
        config_file,
        data_dir=data_dir and str(data_dir),
        objects=objects,
        registry=registry,
        **{"mqtt.broker": broker, "metrics.listen": metrics},
    )
    logs.setup(config.log.level, config.log.format)
    # Before prometheus_client is first imported (by gateway.app): both processes' counters
    # go to files in a fresh directory, summed at each scrape (gateway/metrics.py).
    metrics_dir = config.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
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
    from gateway.geo.locate import load_locator  # noqa: PLC0415
    from gateway.normalize.codes import load_profile  # noqa: PLC0415

    try:
        profile = load_profile(config.codes_dir, config.codes.profile)
        locator = load_locator(config.geo)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(f"config error: {problem}", err=True)
        sys.exit(2)
    click.echo(f"{config_file}: ok")
    click.echo(f"  broker       {config.mqtt.broker} (MQTT {config.mqtt.protocol})")
    click.echo(f"  data dir     {config.data_dir}")
    click.echo(f"  objects      {config.objects_description()}")
    click.echo(f"  registry     {config.registry_description()}")
    click.echo(f"  code profile {profile.name}: {len(profile.entries)} classes")
    click.echo(
        f"  segments     {len(locator.segments.segments)} from {config.geo.file('segments')}"
    )
    grid = "generated" if config.geo.grid is None else str(config.geo.grid)
    click.echo(f"  unit grid    {grid}")


@main.group()
def media() -> None:
    """Run one media stage on one file (for technicians): metadata as JSON on stdout."""


def _emit(result: dict[str, Any]) -> None:
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@media.command("photo")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--thumbnail", type=click.Path(dir_okay=False, path_type=Path),
              help="Where the thumbnail goes [default: OUT with .thumb.jpg].")  # fmt: skip
@config_option
def media_photo(source: Path, out: Path, thumbnail: Path | None, config_file: Path | None) -> None:
    """Make the display JPEG (OUT) and thumbnail of a photo, as the pipeline does."""
    from gateway.errors import MediaError  # noqa: PLC0415 - keep `check-config` light
    from gateway.media.photo import render_photo  # noqa: PLC0415

    settings = _load(config_file).media.photo()
    try:
        with source.open("rb") as stream:
            result = render_photo(stream, settings)
    except MediaError as error:
        _emit({"rejected": error.reason.value, "message": error.detail})
        sys.exit(1)
    thumbnail = thumbnail or out.with_suffix(".thumb.jpg")
    out.write_bytes(result.display.data)
    thumbnail.write_bytes(result.thumbnail.data)
    renditions = ((out, result.display), (thumbnail, result.thumbnail))
    _emit(
        {
            "derivatives": [
                {"path": str(path), "bytes": len(r.data), "width": r.width, "height": r.height}
                for path, r in renditions
            ],
            "metadata": result.metadata(),
        }
    )


@media.command("voice")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mime", help="The type the terminal declared, e.g. audio/amr [default: probe].")
@config_option
def media_voice(source: Path, out: Path, mime: str | None, config_file: Path | None) -> None:
    """Transcode a voice note to Ogg Opus (OUT), as the pipeline does."""
    from gateway.errors import MediaError  # noqa: PLC0415
    from gateway.media.voice import transcode_voice  # noqa: PLC0415

    settings = _load(config_file).media.voice()
    try:
        with source.open("rb") as stream:
            result = transcode_voice(stream, mime, settings)
    except MediaError as error:
        _emit({"rejected": error.reason.value, "message": error.detail})
        sys.exit(1)
    out.write_bytes(result.data)
    derivative = {"path": str(out), "bytes": len(result.data), "duration_s": result.duration_s}
    _emit({"derivatives": [derivative], "metadata": result.metadata()})


@main.group()
def nmea() -> None:
    """NMEA 0183 tools."""


@nmea.command("parse")
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def nmea_parse(log: Path) -> None:
    """Print the fixes of an NMEA log as JSON lines (one per epoch with a fix)."""
    from gateway.protocols.nmea import parse_log  # noqa: PLC0415

    for fix in parse_log(log):
        click.echo(json.dumps(fix.as_json()))


@main.command()
@click.argument("lat", type=float)
@click.argument("lon", type=float)
@config_option
def locate(lat: float, lon: float, config_file: Path | None) -> None:
    """Where LAT LON (WGS-84) is: grid code, road, segment, responsible units, coverage."""
    from gateway.geo.locate import load_locator  # noqa: PLC0415

    config = _load(config_file)
    try:
        locator = load_locator(config.geo)
    except ConfigError as error:
        for problem in error.problems:
            click.echo(f"config error: {problem}", err=True)
        sys.exit(2)
    _emit({"wgs84": {"lat": lat, "lon": lon}, **locator.place(lat, lon)})


@main.group()
def outbox() -> None:
    """Deliveries that failed for good (dead letters): list them, replay them."""


def _outbox_of(config_file: Path | None, data_dir: Path | None) -> Outbox:
    from gateway.store.outbox import Outbox  # noqa: PLC0415

    config = _load(config_file, data_dir=data_dir and str(data_dir))
    if not config.outbox_path.exists():
        click.echo(f"no outbox at {config.outbox_path}", err=True)
        sys.exit(2)
    return Outbox(config.outbox_path)


sink_option = click.option(
    "--sink", type=click.Choice(["media", "registry", "objects", "bus", "ack"]),
    help="Only this sink's dead letters.",
)  # fmt: skip


@outbox.command("list")
@config_option
@data_dir_option
@sink_option
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def outbox_list(
    config_file: Path | None, data_dir: Path | None, sink: str | None, as_json: bool
) -> None:
    """Show the dead letters and, per sink, what is pending."""
    store = _outbox_of(config_file, data_dir)
    try:
        letters = store.dead_letters(sink)
        depths = store.depths()
    finally:
        store.close()
    if as_json:
        for letter in letters:
            click.echo(json.dumps(dataclasses.asdict(letter), ensure_ascii=False))
        return
    click.echo("sink      pending  oldest_s  dead")
    for name, (pending, oldest, dead) in depths.items():
        if sink is None or name == sink:
            click.echo(f"{name:<9} {pending:>7}  {oldest:>8.0f}  {dead:>4}")
    for letter in letters:
        when = datetime.fromtimestamp(letter.updated_at, UTC).isoformat(timespec="seconds")
        click.echo(
            f"{letter.sink:<9} {letter.report_id}  attempts {letter.attempts}  {when}\n"
            f"          {letter.last_error}"
        )


@outbox.command("retry")
@config_option
@data_dir_option
@sink_option
@click.option("--report", "reports", multiple=True, help="Only this report id (repeatable).")
def outbox_retry(
    config_file: Path | None, data_dir: Path | None, sink: str | None, reports: tuple[str, ...]
) -> None:
    """Make dead letters pending again, once their cause is fixed; the running gateway
    picks them up within a second."""
    store = _outbox_of(config_file, data_dir)
    try:
        revived = store.revive(sink, list(reports) or None)
    finally:
        store.close()
    click.echo(f"{revived} dead letters made pending again")


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
