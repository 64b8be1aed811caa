"""`gateway case CASE_NO ACTION`: one step of a case's lifecycle, for operators and scripts
(accept, refuse, file, decline, dispatch, return, extend, suspend, resume, feedback, pass,
fail, close, cancel, self-handled), and `gateway case CASE_NO show`: its state and history.

The same rules as every other channel (`gateway.cases.workflow`): an illegal step exits 1
with the reason code and why, and changes nothing. The step is recorded with `--by`, the
channel "cli", and the gateway's clock; the running gateway publishes the event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gateway.cases.timekeeping import timekeeper
from gateway.cases.workflow import (
    ACTION_ZH,
    STATE_ZH,
    Action,
    CaseEvent,
    CaseLife,
    Command,
    Refusal,
)
from gateway.cli.options import (
    config_option,
    data_dir_option,
    emit_json,
    fail,
    load_or_exit,
    open_case_registry,
    registry_option,
)
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, SinkError

ACTIONS = [action.value for action in Action]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("case_no")
@click.argument("action", type=click.Choice([*ACTIONS, "show"]))
@click.option("--unit", "units", multiple=True, help="A responsible unit (repeat for several).")
@click.option("--note", help="Why, at most 500 characters.")
@click.option("--by", "by", help="Who decided it (a person's name); default: the login name.")
@click.option("--condition", help="At filing or dispatch: the filing condition (立案条件).")
@click.option("--command-id", help="An idempotency key: the step is applied once per key.")
@click.option("--json", "as_json", is_flag=True, help="The outcome as JSON.")
@config_option
@data_dir_option
@registry_option
def case(
    case_no: str,
    action: str,
    units: tuple[str, ...],
    note: str | None,
    by: str | None,
    condition: str | None,
    command_id: str | None,
    as_json: bool,
    config_file: Path | None,
    data_dir: Path | None,
    registry: str | None,
) -> None:
    """One step of a case's lifecycle (accept, file, dispatch, …), or show its history.

    ACTION is one of the steps, or `show` for CASE_NO's state, deadline light and history.
    """
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir), registry=registry)
    try:
        clock = timekeeper(config.cases, config.acceptance.zone)
    except ConfigError as error:
        fail("; ".join(error.problems), 2)
    book, _ = open_case_registry(config, "case")
    try:
        if action == "show":
            life = book.life(case_no)
            if life is None:
                fail(f"case.unknown: no case {case_no}", 1)
            _show(life, book.history(case_no), clock.light(life, datetime.now(UTC)), as_json)
            return
        command = Command(
            case_no=case_no,
            action=Action(action),
            at=datetime.now(UTC),
            via="cli",
            by=by or _login(),
            units=units,
            note=note,
            condition=condition,
            command_id=command_id,
        )
        outcome = book.act(command, clock)
    except SinkError as error:
        fail(f"the registry: {error}", 3)
    finally:
        book.close()
    if isinstance(outcome, Refusal):
        fail(f"{outcome.code.value}: {outcome.detail}", 1)
    event = outcome.event
    for year in sorted(clock.calendar.estimated_years):
        click.echo(
            f"note: {year}'s official holidays are not in the calendar's data yet; its"
            " working days are estimated (docs/deadlines.md)",
            err=True,
        )
    if as_json:
        emit_json({**_event_json(event), "repeated": outcome.repeated})
        return
    again = " (already applied with this --command-id)" if outcome.repeated else ""
    deadline = f", deadline {_local(event.deadline_at, config)}" if event.deadline_at else ""
    click.echo(
        f"{case_no}: {ACTION_ZH[event.action]} {event.action.value}:"
        f" {event.from_state.value} → {event.to_state.value} ({STATE_ZH[event.to_state]})"
        f"{deadline}{again}"
    )


def _login() -> str:
    import getpass  # noqa: PLC0415 - only when --by is not given

    return getpass.getuser()


def _local(moment: datetime, config: GatewayConfig) -> str:
    return moment.astimezone(config.acceptance.zone).strftime("%Y-%m-%d %H:%M")


def _event_json(event: CaseEvent) -> dict[str, Any]:
    return {
        "case_no": event.case_no,
        "seq": event.seq,
        "action": event.action.value,
        "from": event.from_state.value,
        "to": event.to_state.value,
        "at": event.at.isoformat(),
        "via": event.via,
        "by": event.by,
        "units": list(event.units),
        "note": event.note,
        "deadline_at": event.deadline_at and event.deadline_at.isoformat(),
    }


def _show(life: CaseLife, events: list[CaseEvent], light: str | None, as_json: bool) -> None:
    if as_json:
        emit_json({
            "case_no": life.case_no,
            "state": life.state.value,
            "units": list(life.units),
            "time_limit": life.time_limit,
            "deadline_at": life.deadline_at and life.deadline_at.isoformat(),
            "light": light,
            "history": [_event_json(event) for event in events],
        })  # fmt: skip
        return
    click.echo(f"{life.case_no}  {STATE_ZH[life.state]} {life.state.value}")
    if life.units:
        click.echo(f"  units: {'、'.join(life.units)}")
    if life.deadline_at:
        click.echo(f"  limit: {life.time_limit}, deadline {life.deadline_at.isoformat()} ({light})")
    for event in events:
        click.echo(
            f"  {event.seq:>3} {event.at.isoformat()} {ACTION_ZH[event.action]}"
            f" {event.action.value} {event.from_state.value}→{event.to_state.value}"
            f" by {event.by} via {event.via}"
            + (f" [{'、'.join(event.units)}]" if event.units else "")
            + (f" {event.note}" if event.note else "")
        )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a case, a line each.")
@config_option
@data_dir_option
@registry_option
def overdue(
    limit: int,
    as_json: bool,
    config_file: Path | None,
    data_dir: Path | None,
    registry: str | None,
) -> None:
    """Cases in handling past their deadline, the longest overdue first.

    Their light is red; a suspended case is not among them (its clock is paused)."""
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir), registry=registry)
    book, _ = open_case_registry(config, "overdue")
    now = datetime.now(UTC)
    try:
        late = book.overdue(now, limit)
    except SinkError as error:
        fail(f"the registry: {error}", 3)
    finally:
        book.close()
    for case in late:
        hours = (now - case.deadline_at).total_seconds() / 3600
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "case_no": case.case_no,
                        "class_code": case.class_code,
                        "units": list(case.units),
                        "deadline_at": case.deadline_at.isoformat(),
                        "overdue_h": round(hours, 1),
                    },
                    ensure_ascii=False,
                )
            )
        else:
            click.echo(
                f"{case.case_no}  {_local(case.deadline_at, config)}  {hours:>7.1f} h"
                f"  {'、'.join(case.units)}"
            )
