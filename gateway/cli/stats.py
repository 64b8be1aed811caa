"""`gateway stats`: evaluation statistics (评价) of the cases received in a period, per unit,
area, class, inspector or period, as the registry stands (docs/evaluation.md)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gateway.cases.evaluation import (
    BY_HEADERS,
    BY_KEYS,
    HEADERS,
    TABLE_COUNTS,
    Evaluation,
    Figures,
    class_labels,
    rate_keys,
)
from gateway.cli.options import (
    config_error_exit,
    config_option,
    data_dir_option,
    emit_json,
    fail,
    load_or_exit,
    local_instant,
    open_case_registry,
    registry_option,
)
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, SinkError
from gateway.normalize.codes import load_profile
from gateway.sinks.case_stats import evaluate

# The counts the readable table shows; --json gives them all.


@click.command()
@config_option
@data_dir_option
@registry_option
@click.option(
    "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]),
    help="First local date of arrival, e.g. 2026-11-01.",
)  # fmt: skip
@click.option(
    "--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]),
    help="Last local date of arrival (inclusive).",
)  # fmt: skip
@click.option("--by", required=True, type=click.Choice(BY_KEYS), help="What to group on.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every figure.")
@click.option(
    "--as-of",
    help="RFC 3339 instant deadlines are measured at (default now); without an offset, in"
    " the acceptance time zone.",
)
def stats(
    config_file: Path | None,
    data_dir: Path | None,
    registry: str | None,
    start: datetime,
    end: datetime,
    by: str,
    as_json: bool,
    as_of: str | None,
) -> None:
    """Evaluation statistics: counts and rates of a period."""
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir), registry=registry)
    moment = local_instant(as_of, config.timezone, "--as-of") if as_of else datetime.now(UTC)
    if end < start:
        raise click.BadParameter(f"ends before --from {start.date()}", param_hint="--to")
    labels = _class_labels(config) if by == "class" else None
    book, _ = open_case_registry(config, "stats")
    try:
        found = evaluate(book, start.date(), end.date(), by, moment, config.cases.score, labels)
    except SinkError as error:
        fail(str(error), 1)
    finally:
        book.close()
    if as_json:
        emit_json(found.as_json())
    else:
        click.echo(table(found))


def _class_labels(config: GatewayConfig) -> dict[str, str]:
    try:
        return class_labels(load_profile(config.codes_dir, config.codes.profile))
    except ConfigError as error:
        config_error_exit(error)


def table(found: Evaluation) -> str:
    """The figures as an aligned table: a header line in Chinese, one in English, a row a
    group and the total last; rates in percent, "-" where there is nothing to divide by."""
    keys = [*TABLE_COUNTS, *rate_keys(found.by)]
    scored = found.by == "unit"
    heads = [BY_HEADERS[found.by], *(HEADERS[key] for key in keys)]
    if scored:
        heads += [HEADERS["score"], HEADERS["grade"]]
    rows = [[group.label, *_cells(group.figures, keys, scored)] for group in found.groups]
    rows.append(["合计 total", *_cells(found.total, keys, scored)])
    header_zh = [head.split(" ", 1)[0] for head in heads]
    header_en = [head.split(" ", 1)[1] if " " in head else "" for head in heads]
    lines = [header_zh, header_en, *rows]
    widths = [max(_width(line[col]) for line in lines) for col in range(len(heads))]
    title = (
        f"{found.start} – {found.end}, by {found.by}, as of"
        f" {found.as_of.isoformat(timespec='seconds')}"
    )
    out = [title, ""]
    for line in lines:
        cells = [
            _pad(cell, width, left=col == 0)
            for col, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _cells(figures: Figures, keys: Sequence[str], scored: bool) -> list[str]:
    values: dict[str, Any] = {**figures.counts, **figures.rates}
    cells = [_percent(values[key]) if key.endswith("_rate") else str(values[key]) for key in keys]
    if scored:
        cells += ["-" if figures.score is None else f"{figures.score:.1f}", figures.grade or "-"]
    return cells


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    space = " " * (width - _width(text))
    return text + space if left else space + text
