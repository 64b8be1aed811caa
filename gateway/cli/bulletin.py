"""`gateway bulletin`: the monthly Digital Urban Management Bulletin (数字城管通报) as PDF
or HTML, from the case registry's statistics (`docs/bulletin.md`)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import click

from gateway.bulletin import content, render
from gateway.cases.evaluation import class_labels
from gateway.cli.options import (
    config_option,
    data_dir_option,
    fail,
    load_or_exit,
    local_instant,
    open_case_registry,
    registry_option,
)
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, SinkError
from gateway.normalize.codes import load_profile


def _month(_: click.Context, __: click.Parameter, value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise click.BadParameter("YYYY-MM, e.g. 2026-11") from None


@click.command()
@click.option("--month", required=True, callback=_month, help="YYYY-MM: the month reported on.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.pdf or FILE.html (chosen by the extension).",
)
@config_option
@data_dir_option
@registry_option
@click.option(
    "--as-of",
    help="ISO time the figures stand at (overdue measured then); default: the month's end,"
    " or now while it runs. Without an offset, in the acceptance time zone.",
)
@click.option("--city", help="The city in the title; default: [bulletin] city (南通市).")
@click.option("--issuer", help="Who issues it; default: [bulletin] issuer, or the city's center.")
def bulletin(
    month: date,
    out: Path,
    config_file: Path | None,
    data_dir: Path | None,
    registry: str | None,
    as_of: str | None,
    city: str | None,
    issuer: str | None,
) -> None:
    """Write a month's bulletin (数字城管通报) as PDF or HTML.

    Totals against last month, units, districts and streets ranked, the top problems,
    overdue cases and inspectors, with charts (docs/bulletin.md)."""
    if out.suffix.lower() not in (".pdf", ".html", ".htm"):
        raise click.BadParameter("FILE.pdf or FILE.html", param_hint="--out")
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir), registry=registry)
    tz = config.timezone
    moment = content.default_as_of(month, datetime.now(UTC), tz)
    if as_of is not None:
        moment = local_instant(as_of, tz, "--as-of")
    started = time.perf_counter()
    book, log = open_case_registry(config, "bulletin")
    try:
        made = content.gather(
            book,
            month,
            moment.astimezone(tz),
            config.cases.score,
            city=city or config.bulletin.city,
            issuer=issuer or (f"{city}城市管理监督指挥中心" if city else config.bulletin.issued_by),
            labels={"class": _class_names(config)},
        )
    except SinkError as error:
        fail(str(error), 1)
    finally:
        book.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    render.write(made, out, tz)
    log.info(
        "bulletin.written", month=f"{month:%Y-%m}", out=str(out),
        seconds=round(time.perf_counter() - started, 2),
    )  # fmt: skip
    click.echo(str(out))


def _class_names(config: GatewayConfig) -> dict[str, str]:
    """ "event:0102" → "暴露垃圾" (the bulletin's tables show the kind beside it); none when
    the code profile cannot be read."""
    try:
        return class_labels(load_profile(config.codes_dir, config.codes.profile), short=True)
    except ConfigError:
        return {}
