"""The console's accounts on both engines (a SQLite file, a real PostgreSQL): one-time
passwords, Argon2id hashes, sessions that end, disabling that ends them, the audit log,
and the cookie key every instance shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.console.accounts import AccountError, Accounts
from gateway.store.postgres import PgConnection, upgrade


@pytest.fixture(params=["sqlite", "postgres"])
def accounts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Accounts]:
    if request.param == "sqlite":
        found = Accounts(tmp_path / "console.db")
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        upgrade(dsn)  # `gateway db upgrade`: the console's part comes with the rest
        found = Accounts(PgConnection(dsn, name="test-console"))
    yield found
    found.close()


def test_a_new_account_logs_in_with_its_one_time_password_then_must_change_it(
    accounts: Accounts,
) -> None:
    password = accounts.add("li.ming", "operator")
    user = accounts.authenticate("li.ming", password)
    assert user is not None
    assert (user.role, user.must_change) == ("operator", True)
    assert accounts.authenticate("li.ming", password + "x") is None
    assert accounts.authenticate("nobody", password) is None

    with pytest.raises(AccountError, match="at least 12"):
        accounts.set_password("li.ming", "short")
    accounts.set_password("li.ming", "a long enough secret")
    assert accounts.authenticate("li.ming", password) is None
    changed = accounts.authenticate("li.ming", "a long enough secret")
    assert changed is not None
    assert not changed.must_change


def test_names_and_roles_are_checked_and_passwords_are_never_stored(accounts: Accounts) -> None:
    with pytest.raises(AccountError, match="not an account name"):
        accounts.add("bad name", "viewer")
    with pytest.raises(AccountError, match="not a role"):
        accounts.add("wang", "admin")  # type: ignore[arg-type]
    password = accounts.add("wang", "viewer")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("wang", "technician")
    (stored,) = accounts.conn.execute(
        "SELECT password_hash FROM console_users WHERE name = ?", ("wang",)
    ).fetchone()
    assert stored.startswith("$argon2id$")
    assert password not in stored


def test_a_session_ends_when_idle_past_its_end_or_when_the_account_changes(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts.add("zhao", "technician")
    clock = [1_000_000.0]
    monkeypatch.setattr("gateway.console.accounts.time.time", lambda: clock[0])
    token = accounts.open_session("zhao", lifetime_s=3600)
    assert accounts.session_user(token, idle_s=600) is not None
    clock[0] += 500
    assert accounts.session_user(token, idle_s=600) is not None  # used: kept alive
    clock[0] += 599
    assert accounts.session_user(token, idle_s=600) is not None
    clock[0] += 601
    assert accounts.session_user(token, idle_s=600) is None  # idle too long

    token = accounts.open_session("zhao", lifetime_s=3600)
    for _ in range(7):  # busy all the time, but a login lasts `lifetime_s` at most
        clock[0] += 550
        accounts.session_user(token, idle_s=600)
    assert accounts.session_user(token, idle_s=600) is None

    token = accounts.open_session("zhao", lifetime_s=3600)
    accounts.disable("zhao")
    assert accounts.session_user(token, idle_s=600) is None
    accounts.enable("zhao")
    assert accounts.session_user(token, idle_s=600) is None  # logging in again is needed
    password = accounts.reset("zhao")
    user = accounts.authenticate("zhao", password)
    assert user is not None
    assert user.must_change
    accounts.close_session(accounts.open_session("zhao", lifetime_s=60))
    assert accounts.session_user("not a token", idle_s=600) is None


def test_a_disabled_account_cannot_log_in(accounts: Accounts) -> None:
    password = accounts.add("sun", "viewer")
    accounts.disable("sun")
    assert accounts.authenticate("sun", password) is None
    with pytest.raises(AccountError, match="no account"):
        accounts.disable("nobody")


def test_the_audit_log_keeps_who_did_what_and_whether_it_was_allowed(
    accounts: Accounts,
) -> None:
    accounts.audit("li.ming", "download_original", target="E1/m1", remote="10.0.0.7")
    accounts.audit("wang", "refused:original", target="/original/E1/m1", allowed=False)
    newest, older = accounts.audit_log(2)
    assert (newest.name, newest.action, newest.allowed) == ("wang", "refused:original", False)
    assert (older.name, older.target, older.remote, older.allowed) == (
        "li.ming", "E1/m1", "10.0.0.7", True,
    )  # fmt: skip


def test_the_cookie_key_is_made_once_and_shared(accounts: Accounts, tmp_path: Path) -> None:
    first = accounts.secret_key()
    assert len(first) == 64
    assert accounts.secret_key() == first
