"""`gateway devices add|list|suspend|resume|revoke|rotate`, `gateway devices casework
add|list|rotate|remove` (the accounts of casework backends) and `gateway broker-config`.

The registry lives in the data directory (`DATA_DIR/devices.db`). Every change rewrites
the broker's password file and ACL where `broker-config` put them and makes a running
broker reload them (SIGHUP to the pid of its pid file). A new or rotated password is
printed once, alone on stdout (for `PASSWORD=$(gateway devices add ...)`); everything
else goes to stderr. Passwords are never logged or stored, only their hashes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from gateway.cli.options import config_option, data_dir_option, fail, load_or_exit
from gateway.devices.broker_files import Applied, apply, with_new_password
from gateway.devices.broker_setup import TlsRequest, configure_broker
from gateway.devices.device_registry import (
    FILE_NAME,
    CaseworkAccount,
    Device,
    DeviceRegistry,
    RegistryError,
)
from gateway.devices.pki import CLIENT_DAYS, PkiError
from gateway.devices.tls_files import write_device_cert


def _registry(config_file: Path | None, data_dir: Path | None, *, create: bool) -> DeviceRegistry:
    """The data directory's registry, or the cluster's when the config names one."""
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir))
    if config.cluster.url is not None:
        from gateway.runtime.wiring import shared_connection  # noqa: PLC0415 - a cluster's

        return DeviceRegistry(shared_connection(config, "devices"))
    path = config.data_dir / FILE_NAME
    if not create and not path.exists():
        fail(f"no device registry at {path} (`gateway devices add` makes it)", 2)
    return DeviceRegistry(path)


T = TypeVar("T")


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def devices() -> None:
    """Terminals allowed on the broker: add, list, suspend, resume, revoke, rotate."""


@devices.command("add")
@click.argument("device_id")
@click.option("--inspector", "inspector_id", required=True, help="The inspector it is issued to.")
@click.option("--unit", required=True, help="The inspector's unit.")
@config_option
@data_dir_option
def devices_add(
    device_id: str, inspector_id: str, unit: str, config_file: Path | None, data_dir: Path | None
) -> None:
    """Register a terminal; print its new broker password (once: it is not stored)."""
    registry = _registry(config_file, data_dir, create=True)
    _, applied, password = _with_new_password(
        registry, lambda hashed: registry.add(device_id, inspector_id, unit, hashed)
    )
    _say(f"device {device_id} added (inspector {inspector_id}, unit {unit})")
    _say(f"broker login: username {device_id}, the password below (shown this once)")
    _report(applied)
    click.echo(password)


@devices.command("rotate")
@click.argument("device_id")
@config_option
@data_dir_option
def devices_rotate(device_id: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Give a terminal a new password (printed once); the old one stops working."""
    registry = _registry(config_file, data_dir, create=False)
    device, applied, password = _with_new_password(
        registry, lambda hashed: registry.set_credential(device_id, hashed)
    )
    _say(f"device {device_id} ({device.status}): new password below (shown this once)")
    _report(applied)
    click.echo(password)


def _move(command: str, device_id: str, config_file: Path | None, data_dir: Path | None) -> None:
    registry = _registry(config_file, data_dir, create=False)
    try:
        device = registry.move(device_id, command)
        applied = apply(registry)
    except (RegistryError, PkiError) as error:
        fail(str(error), 2)
    finally:
        registry.close()
    click.echo(f"device {device_id} is {device.status}")
    _report(applied)


@devices.command("suspend")
@click.argument("device_id")
@config_option
@data_dir_option
def devices_suspend(device_id: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Lock a terminal out until `resume` (a lost or broken terminal)."""
    _move("suspend", device_id, config_file, data_dir)


@devices.command("resume")
@click.argument("device_id")
@config_option
@data_dir_option
def devices_resume(device_id: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Let a suspended terminal in again, with the password it had."""
    _move("resume", device_id, config_file, data_dir)


@devices.command("revoke")
@click.argument("device_id")
@config_option
@data_dir_option
def devices_revoke(device_id: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Lock a terminal out for good; its id is never used again."""
    _move("revoke", device_id, config_file, data_dir)


@devices.command("list")
@config_option
@data_dir_option
@click.option("--json", "json_lines", is_flag=True, help="JSON lines instead of a table.")
def devices_list(config_file: Path | None, data_dir: Path | None, json_lines: bool) -> None:
    """Every terminal ever added, with its status and when it was last heard from."""
    registry = _registry(config_file, data_dir, create=False)
    try:
        rows = registry.devices()
    finally:
        registry.close()
    if json_lines:
        for device in rows:
            click.echo(json.dumps(_as_json(device), ensure_ascii=False))
        return
    click.echo(
        f"{'device_id':<20} {'status':<10} {'inspector':<14} {'created':<26} last seen  unit"
    )
    for device in rows:
        click.echo(
            f"{device.device_id:<20} {device.status:<10} {device.inspector_id:<14}"
            f" {device.created_at:<26} {device.last_seen_at or '-'}  {device.unit}"
        )


def _as_json(device: Device) -> dict[str, str | None]:
    return {
        "device_id": device.device_id,
        "status": device.status,
        "inspector_id": device.inspector_id,
        "unit": device.unit,
        "created_at": device.created_at,
        "updated_at": device.updated_at,
        "last_seen_at": device.last_seen_at,
    }


def _with_new_password(
    registry: DeviceRegistry, store: Callable[[str], T]
) -> tuple[T, Applied, str]:
    """`broker_files.with_new_password`, a registry or PKI refusal an exit 2 with why."""
    try:
        return with_new_password(registry, store)
    except (RegistryError, PkiError) as error:
        fail(str(error), 2)


def _report(applied: Applied) -> None:
    _say(applied.describe())


@devices.command("cert")
@click.argument("device_id")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where DEVICE_ID.crt, DEVICE_ID.key and ca.crt go.")  # fmt: skip
@click.option("--days", type=click.IntRange(1, 3650), default=CLIENT_DAYS, show_default=True)
@config_option
@data_dir_option
def devices_cert(
    device_id: str, out: Path, days: int, config_file: Path | None, data_dir: Path | None
) -> None:
    """Issue a client certificate (CN = the device id) from the gateway's CA, for brokers
    with a client-certificate listener (`broker-config --tls --cert-port`)."""
    registry = _registry(config_file, data_dir, create=False)
    try:
        device = registry.require(device_id)
        if device.status != "active":
            fail(f"device {device_id} is {device.status}: no certificate for it", 2)
        written = write_device_cert(out, device_id, registry, days)
    except (RegistryError, PkiError) as error:
        fail(str(error), 2)
    finally:
        registry.close()
    for path in written:
        _say(f"wrote {path}")
    _say("suspending or revoking the device shuts this certificate out too (CRL and ACL)")


@devices.group("casework")
def casework() -> None:
    """Broker accounts of casework backends (acceptance desk, dispatch, the units' systems):
    each writes commands on cgt/v1/cases/commands/<its username> and reads its answers,
    the case events and the normalized reports (docs/asyncapi.yaml)."""


@casework.command("add")
@click.argument("name")
@click.option("--description", default="", help="Whose system it is, e.g. 受理台.")
@config_option
@data_dir_option
def casework_add(
    name: str, description: str, config_file: Path | None, data_dir: Path | None
) -> None:
    """Make an account `casework.NAME`; print its password (once: it is not stored)."""
    registry = _registry(config_file, data_dir, create=True)
    account, applied, password = _with_new_password(
        registry, lambda hashed: registry.add_casework(name, hashed, description)
    )
    _say(f"casework account {account.username} added")
    _say(f"broker login: username {account.username}, the password below (shown this once)")
    _report(applied)
    click.echo(password)


@casework.command("rotate")
@click.argument("name")
@config_option
@data_dir_option
def casework_rotate(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Give a casework account a new password (printed once); the old one stops working."""
    registry = _registry(config_file, data_dir, create=False)
    account, applied, password = _with_new_password(
        registry, lambda hashed: registry.set_casework_credential(name, hashed)
    )
    _say(f"casework account {account.username}: new password below (shown this once)")
    _report(applied)
    click.echo(password)


@casework.command("remove")
@click.argument("name")
@config_option
@data_dir_option
def casework_remove(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Shut a casework account out for good (its name is not used again)."""
    registry = _registry(config_file, data_dir, create=False)
    try:
        account = registry.remove_casework(name)
        applied = apply(registry)
    except (RegistryError, PkiError) as error:
        fail(str(error), 2)
    finally:
        registry.close()
    click.echo(f"casework account {account.username} is removed")
    _report(applied)


@casework.command("list")
@config_option
@data_dir_option
@click.option("--json", "json_lines", is_flag=True, help="JSON lines instead of a table.")
@click.option("--removed", is_flag=True, help="Removed accounts too.")
def casework_list(
    config_file: Path | None, data_dir: Path | None, json_lines: bool, removed: bool
) -> None:
    """The casework accounts, with their topics' account name."""
    registry = _registry(config_file, data_dir, create=False)
    try:
        rows = registry.casework_accounts(removed=removed)
    finally:
        registry.close()
    if json_lines:
        for account in rows:
            click.echo(json.dumps(_casework_json(account), ensure_ascii=False))
        return
    click.echo(f"{'username':<32} {'created':<26} {'removed':<26} description")
    for account in rows:
        click.echo(
            f"{account.username:<32} {account.created_at:<26} {account.removed_at or '-':<26}"
            f" {account.description}"
        )


def _casework_json(account: CaseworkAccount) -> dict[str, str | None]:
    return {
        "username": account.username,
        "description": account.description,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
        "removed_at": account.removed_at,
    }


@click.command(
    "broker-config",
    short_help="Write the broker's configuration: listeners, accounts, ACL, TLS.",
)
@config_option
@data_dir_option
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="The listener's port.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where mosquitto.conf, the password file, the ACL and its data go.")  # fmt: skip
@click.option("--bind", default="0.0.0.0", show_default=True, help="The listener's address.")  # noqa: S104 - terminals connect from the network
@click.option("--tls", is_flag=True, help="TLS, a certificate from the gateway's CA.")
@click.option("--hostname", "hostnames", multiple=True,
              help="A name terminals reach the broker by (repeatable).")  # fmt: skip
@click.option("--cert-port", type=click.IntRange(1, 65535), default=None,
              help="With --tls: also a listener for terminals with certificates.")  # fmt: skip
@click.option("--ca-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="With --tls: import the city's CA (with --ca-key).")  # fmt: skip
@click.option("--ca-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None)  # fmt: skip
def broker_config(
    config_file: Path | None,
    data_dir: Path | None,
    port: int,
    out: Path,
    bind: str,
    tls: bool,
    hostnames: tuple[str, ...],
    cert_port: int | None,
    ca_cert: Path | None,
    ca_key: Path | None,
) -> None:
    """Write a complete Mosquitto configuration: listeners, password file and ACL from the
    device registry, the gateway's and a backend's accounts, a pid file for reloads, and
    with --tls the broker's certificate from the gateway's CA (made once, kept)."""
    if not tls and (hostnames or cert_port or ca_cert or ca_key):
        raise click.UsageError("--hostname, --cert-port, --ca-cert and --ca-key need --tls")
    if cert_port is not None and cert_port == port:
        raise click.UsageError("--cert-port must differ from --port")
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir))
    request = TlsRequest(hostnames, cert_port, ca_cert, ca_key) if tls else None
    try:
        setup = configure_broker(config.data_dir, out, port, bind=bind, tls=request)
    except PkiError as error:
        fail(str(error), 2)
    for line in setup.describe():
        click.echo(line)
