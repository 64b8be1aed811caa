"""`gateway task send|list`: tasks for terminals, e.g. an on-site verification (核查) of
a handled case. The task is recorded in the registry, published at QoS 1 on the device's
task topic, and marked sent once the broker acknowledged it."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from pydantic import ValidationError
from structlog.typing import FilteringBoundLogger

from gateway.cli.options import (
    broker_option,
    config_option,
    data_dir_option,
    fail,
    load_or_exit,
    local_instant,
    open_case_registry,
    registry_option,
)
from gateway.config import GatewayConfig
from gateway.errors import SinkError
from gateway.protocols.payloads import DEVICE_ID_PATTERN, Task, TaskLocation
from gateway.runtime.task_dispatch import publish_tasks
from gateway.sinks.bus import MqttPublisher
from gateway.sinks.ports import CaseRegistry, TaskRecord
from gateway.transports.mqtt import MqttLink

# The running gateway's dispatcher leaves a task recorded here alone for this long, so
# the task is not published twice while this command publishes it; should the command
# die in between, the gateway publishes it after that.
HOLD_S = 60.0


@click.group()
def task() -> None:
    """Tasks for terminals: send one, list them."""


@task.command("send")
@config_option
@data_dir_option
@registry_option
@broker_option
@click.option("--device", "device_id", required=True, help="The terminal that gets the task.")
@click.option("--case", "case_no", required=True, help="The registered case it is about.")
@click.option(
    "--kind",
    type=click.Choice(["verify", "inspect"]),
    default="verify",
    show_default=True,
    help="verify: an on-site check that the problem is handled.",
)
@click.option("--note", help="For the inspector, at most 500 characters.")
@click.option(
    "--deadline",
    help="RFC 3339, e.g. 2026-12-01T18:00+08:00; without an offset, in the acceptance time zone.",
)
@click.option("--lat", type=float, help="Where to go, WGS-84 (with --lon).")
@click.option("--lon", type=float)
@click.option("--address", help="Where to go, in words (with --lat and --lon).")
def task_send(
    config_file: Path | None,
    data_dir: Path | None,
    registry: str | None,
    broker: str | None,
    device_id: str,
    case_no: str,
    kind: str,
    note: str | None,
    deadline: str | None,
    lat: float | None,
    lon: float | None,
    address: str | None,
) -> None:
    """Send a task to a terminal and print it as JSON once the broker has it."""
    config = load_or_exit(
        config_file,
        data_dir=data_dir and str(data_dir),
        registry=registry,
        **{"mqtt.broker": broker},
    )
    if not re.fullmatch(DEVICE_ID_PATTERN, device_id):
        raise click.BadParameter("1-64 of A-Z a-z 0-9 _ -", param_hint="--device")
    message = _task(case_no, kind, note, _deadline(deadline, config.timezone), lat, lon, address)
    book, log = _open(config)
    try:
        if not book.case_exists(case_no):
            fail(f"no case {case_no} in the registry ({config.registry_description()})", 2)
        record = book.add_task(device_id, message, hold_s=HOLD_S)
        link = MqttLink(
            config.mqtt,
            log,
            client_id=f"{config.mqtt.client_id}-task-{uuid.uuid4().hex[:8]}",
            persistent=False,
        )
        link.start()
        try:
            timeout_s = config.pipeline.publish_timeout_s
            connected = link.wait_connected(timeout_s)
            sent = connected and publish_tasks(book, MqttPublisher(link), [record], timeout_s, log)
        finally:
            link.stop()
        if not sent:
            fail(
                f"task {message.task_id} is recorded, but the broker {config.mqtt.broker} did"
                f" not take it within {timeout_s:g} s; a running gateway publishes it after"
                f" {HOLD_S:g} s",
                1,
            )
        [record] = [r for r in book.tasks(case_no=case_no) if r.task.task_id == message.task_id]
    except SinkError as error:
        fail(str(error), 1)
    finally:
        book.close()
    click.echo(json.dumps(as_json(record), ensure_ascii=False, indent=2))


@task.command("list")
@config_option
@data_dir_option
@registry_option
@click.option("--unsent", is_flag=True, help="Only tasks not yet published.")
@click.option("--case", "case_no", help="Only the tasks about this case.")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
@click.option("--json", "json_lines", is_flag=True, help="JSON lines instead of a table.")
def task_list(
    config_file: Path | None,
    data_dir: Path | None,
    registry: str | None,
    unsent: bool,
    case_no: str | None,
    limit: int,
    json_lines: bool,
) -> None:
    """The newest tasks: whom for, which case, when sent, how many verifications came."""
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir), registry=registry)
    book, _ = _open(config)
    try:
        records = book.tasks(unsent_only=unsent, case_no=case_no, limit=limit)
    except SinkError as error:
        fail(str(error), 1)
    finally:
        book.close()
    if json_lines:
        for record in records:
            click.echo(json.dumps(as_json(record), ensure_ascii=False))
        return
    click.echo(f"{'task_id':<36}  {'device':<16} {'case_no':<20} {'kind':<7} sent  answers")
    for record in records:
        sent = "yes" if record.sent_at else "no"
        click.echo(
            f"{record.task.task_id:<36}  {record.device_id:<16} {record.task.case_no:<20}"
            f" {record.task.kind:<7} {sent:<5} {record.verifications:>7}"
        )


def _open(config: GatewayConfig) -> tuple[CaseRegistry, FilteringBoundLogger]:
    return open_case_registry(config, "task")


def as_json(record: TaskRecord) -> dict[str, Any]:
    """A task as the terminal gets it, with whom it is for and where it stands."""
    return {
        **record.task.model_dump(mode="json", exclude_none=True),
        "device_id": record.device_id,
        "created_at": record.created_at,
        "sent_at": record.sent_at,
        "verifications": record.verifications,
    }


def _task(
    case_no: str,
    kind: str,
    note: str | None,
    deadline: datetime | None,
    lat: float | None,
    lon: float | None,
    address: str | None,
) -> Task:
    if (lat is None) != (lon is None) or (address is not None and lat is None):
        raise click.UsageError("give --lat and --lon together (and --address only with them)")
    try:
        location = None
        if lat is not None and lon is not None:
            location = TaskLocation(lat=lat, lon=lon, address=address)
        return Task(
            task_id=str(uuid.uuid4()),
            case_no=case_no,
            kind="inspect" if kind == "inspect" else "verify",
            location=location,
            deadline=deadline,
            note=note,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()
        )
        raise click.UsageError(problems) from None


def _deadline(value: str | None, tz: ZoneInfo) -> datetime | None:
    return None if value is None else local_instant(value, tz, "--deadline")
