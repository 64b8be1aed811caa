"""`gateway users add|list|disable|enable|reset`: the console's accounts.

Accounts are made here, by whoever runs the gateway, never through the web page. A new
account, and one reset, gets a one-time password printed on stdout (the only place it
ever appears): at its first login the console asks for a password of the user's own.
Each command is written to the console's audit log as done by `cli:<the OS user>`.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from gateway.cli.options import config_option, data_dir_option, fail, load_or_exit
from gateway.console.accounts import ROLES, AccountError, Accounts, open_accounts


@click.group()
def users() -> None:
    """The console's accounts: add, list, disable, enable, reset."""


@contextmanager
def _accounts(config_file: Path | None, data_dir: Path | None) -> Iterator[Accounts]:
    config = load_or_exit(config_file, data_dir=data_dir and str(data_dir))
    accounts = open_accounts(config)
    try:
        yield accounts
    except AccountError as error:
        fail(str(error), 1)
    finally:
        accounts.close()


def _done(accounts: Accounts, action: str, name: str) -> None:
    accounts.audit(f"cli:{getpass.getuser()}", action, target=name, remote="cli")


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@config_option
@data_dir_option
def add(name: str, role: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Add an account; its one-time password is printed on stdout."""
    with _accounts(config_file, data_dir) as accounts:
        password = accounts.add(name, role)  # type: ignore[arg-type]
        _done(accounts, f"user_add:{role}", name)
    click.echo(password)


@users.command("reset")
@click.argument("name")
@config_option
@data_dir_option
def reset(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """A new one-time password for NAME (printed on stdout); its logins end."""
    with _accounts(config_file, data_dir) as accounts:
        password = accounts.reset(name)
        _done(accounts, "user_reset", name)
    click.echo(password)


@users.command("disable")
@click.argument("name")
@config_option
@data_dir_option
def disable(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Disable NAME: it cannot log in, and its logins end at once."""
    with _accounts(config_file, data_dir) as accounts:
        accounts.disable(name)
        _done(accounts, "user_disable", name)


@users.command("enable")
@click.argument("name")
@config_option
@data_dir_option
def enable(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Enable NAME again."""
    with _accounts(config_file, data_dir) as accounts:
        accounts.enable(name)
        _done(accounts, "user_enable", name)


@users.command("list")
@config_option
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.option("--audit", "audit_lines", type=int, default=0, help="Also the last N audit entries.")
def list_users(
    config_file: Path | None, data_dir: Path | None, as_json: bool, audit_lines: int
) -> None:
    """The accounts (never their passwords), and optionally the audit log."""
    with _accounts(config_file, data_dir) as accounts:
        found = accounts.users()
        entries = accounts.audit_log(audit_lines) if audit_lines else []
    for user in found:
        if as_json:
            click.echo(json.dumps({"name": user.name, "role": user.role,
                                   "disabled": user.disabled, "must_change": user.must_change,
                                   "created_at": user.created_at}))  # fmt: skip
        else:
            state = (
                "disabled" if user.disabled else ("one-time password" if user.must_change else "")
            )
            click.echo(f"{user.name:<24} {user.role:<11} {user.created_at}  {state}".rstrip())
    for entry in entries:
        verdict = "" if entry.allowed else "  REFUSED"
        click.echo(
            f"{entry.at}  {entry.name or '-':<20} {entry.action} {entry.target or ''}{verdict}"
        )
