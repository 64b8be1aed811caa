"""`gateway outbox list|retry`: dead letters, shown and replayed."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import click

from gateway.cli.options import config_option, data_dir_option, fail, load_or_exit
from gateway.lifecycle import STEPS
from gateway.store.outbox import Outbox


@click.group()
def outbox() -> None:
    """Deliveries that failed for good (dead letters): list them, replay them."""


def _outbox_of(config_file: Path | None, data_dir: Path | None) -> Outbox:
    """The data directory's outbox, or the cluster's when the config names one."""
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir))
    if config.cluster.url is not None:
        from gateway.runtime.wiring import shared_connection  # noqa: PLC0415 - a cluster's

        return Outbox(shared_connection(config, "outbox-cli"))
    if not config.outbox_path.exists():
        fail(f"no outbox at {config.outbox_path}", 2)
    return Outbox(config.outbox_path)


sink_option = click.option(
    "--sink", type=click.Choice([step.value for step in STEPS]),
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
