"""The console's accounts, sessions and audit log: `DATA_DIR/console.db` (SQLite), or in a
cluster the shared PostgreSQL (schema `cgt`), so that every instance knows every login.

    console_users     name, role, Argon2id hash, whether the password is a one-time one
                      that must be changed at the next login, disabled
    console_sessions  one row per login: the SHA-256 of its token (the cookie holds the
                      token; a stolen database holds nothing to log in with), when it was
                      last used, when it ends whatever happens
    console_audit     every action a person took, with who, when, from where, and whether
                      it was allowed
    console_secret    the key that signs the session cookie, shared by all instances

Accounts are made by command (`gateway users`), never through the web page.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.store.db import Database, connect, transaction

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

Role = Literal["viewer", "operator", "technician"]
ROLES: tuple[Role, ...] = get_args(Role)
FILE_NAME = "console.db"
NAME_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
PASSWORD_MIN = 12

_SCHEMA = """
    CREATE TABLE console_users (
        name          TEXT PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'technician')),
        password_hash TEXT NOT NULL,
        must_change   INTEGER NOT NULL DEFAULT 1,
        disabled      INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE TABLE console_sessions (
        token_hash TEXT PRIMARY KEY,
        name       TEXT NOT NULL REFERENCES console_users (name),
        created_at {time} NOT NULL,
        seen_at    {time} NOT NULL,
        ends_at    {time} NOT NULL
    );
    CREATE INDEX console_sessions_name ON console_sessions (name);
    CREATE TABLE console_audit (
        id      {serial},
        at      TEXT NOT NULL,
        name    TEXT,
        action  TEXT NOT NULL,
        target  TEXT,
        allowed INTEGER NOT NULL,
        remote  TEXT
    );
    CREATE INDEX console_audit_at ON console_audit (at);
    CREATE TABLE console_secret (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        value TEXT NOT NULL
    )
    """
MIGRATIONS = (_SCHEMA.format(time="REAL", serial="INTEGER PRIMARY KEY AUTOINCREMENT"),)
# The same tables in a cluster's PostgreSQL (gateway/store/postgres.py, part "console").
POSTGRES_MIGRATIONS = (
    _SCHEMA.format(time="double precision", serial="bigint GENERATED ALWAYS AS IDENTITY"),
)

# Argon2id with the library's defaults (RFC 9106's second recommendation: 64 MiB, 3
# passes): about 50 ms a login here, which is nothing for a person and a lot for a guesser.
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name takes as long as a
# wrong password and the timing does not tell which names exist.
_NOBODY = _HASHER.hash(secrets.token_urlsafe(16))


class AccountError(Exception):
    """An operator's request the accounts refuse (unknown name, a bad name or password)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    must_change: bool
    disabled: bool
    created_at: str

    def __repr__(self) -> str:
        return f"User({self.name!r}, {self.role})"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: str
    name: str | None
    action: str
    target: str | None
    allowed: bool
    remote: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise AccountError(f"{name!r} is not an account name: 1-64 of A-Z a-z 0-9 _ . -")


def check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"a password needs at least {PASSWORD_MIN} characters")


_USER_COLUMNS = "name, role, must_change, disabled, created_at"


class Accounts:
    """In this machine's `console.db` (a `Path`) or a cluster's PostgreSQL connection.
    Safe to share between the web server's threads (one statement group at a time)."""

    def __init__(self, store: Path | Database) -> None:
        self.conn: Database = connect(store, MIGRATIONS) if isinstance(store, Path) else store
        self._lock = threading.Lock()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Accounts:
        return cls(data_dir / FILE_NAME)

    def close(self) -> None:
        self.conn.close()

    # ---- accounts (the `gateway users` command) --------------------------------------------

    def add(self, name: str, role: Role) -> str:
        """A new account with a one-time password, which is returned (and never stored)."""
        check_name(name)
        if role not in ROLES:
            raise AccountError(f"{role!r} is not a role: {', '.join(ROLES)}")
        password = secrets.token_urlsafe(12)
        stamp = _now()
        with self._lock, transaction(self.conn):
            added = self.conn.execute(
                "INSERT INTO console_users (name, role, password_hash, must_change, disabled,"
                " created_at, updated_at) VALUES (?, ?, ?, 1, 0, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, role, _HASHER.hash(password), stamp, stamp),
            ).rowcount
        if not added:
            raise AccountError(f"account {name} already exists")
        return password

    def reset(self, name: str) -> str:
        """A new one-time password for `name`; its sessions end."""
        password = secrets.token_urlsafe(12)
        self._update(name, "password_hash = ?, must_change = 1", (_HASHER.hash(password),))
        return password

    def disable(self, name: str) -> None:
        self._update(name, "disabled = 1", ())

    def enable(self, name: str) -> None:
        self._update(name, "disabled = 0", ())

    def users(self) -> list[User]:
        with self._lock:
            rows = self.conn.execute(
                f"SELECT {_USER_COLUMNS} FROM console_users ORDER BY name"  # noqa: S608 - a constant
            ).fetchall()
        return [_user(row) for row in rows]

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self.conn.execute(
                f"SELECT {_USER_COLUMNS} FROM console_users WHERE name = ?",  # noqa: S608 - a constant
                (name,),
            ).fetchone()
        return None if row is None else _user(row)

    def _update(self, name: str, assignments: str, args: tuple[object, ...]) -> None:
        with self._lock, transaction(self.conn):
            changed = self.conn.execute(
                f"UPDATE console_users SET {assignments}, updated_at = ? WHERE name = ?",  # noqa: S608 - the callers' constants
                (*args, _now(), name),
            ).rowcount
            # Whatever changed (a new password, disabled or enabled again), log in again.
            self.conn.execute("DELETE FROM console_sessions WHERE name = ?", (name,))
        if not changed:
            raise AccountError(f"no account {name}")

    # ---- logging in ------------------------------------------------------------------------

    def authenticate(self, name: str, password: str) -> User | None:
        """The account if `password` is its password and it is not disabled."""
        with self._lock:
            row = self.conn.execute(
                "SELECT password_hash FROM console_users WHERE name = ?", (name,)
            ).fetchone()
        stored = row[0] if row else _NOBODY
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        user = self.get(name) if row else None
        if user is None or user.disabled:
            return None
        if _HASHER.check_needs_rehash(stored):
            self._update_hash(name, _HASHER.hash(password))
        return user

    def set_password(self, name: str, password: str) -> None:
        """The account's own new password (no longer a one-time one); its other sessions
        end."""
        check_password(password)
        self._update(name, "password_hash = ?, must_change = 0", (_HASHER.hash(password),))

    def _update_hash(self, name: str, password_hash: str) -> None:
        with self._lock, transaction(self.conn):
            self.conn.execute(
                "UPDATE console_users SET password_hash = ? WHERE name = ?", (password_hash, name)
            )

    def open_session(self, name: str, lifetime_s: float) -> str:
        """A new session for `name`: the token for the cookie."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock, transaction(self.conn):
            # Sessions that ended are of no use to anyone: drop them as new ones begin.
            self.conn.execute("DELETE FROM console_sessions WHERE ends_at < ?", (now,))
            self.conn.execute(
                "INSERT INTO console_sessions (token_hash, name, created_at, seen_at, ends_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (_token_hash(token), name, now, now, now + lifetime_s),
            )
        return token

    def session_user(self, token: str, idle_s: float) -> User | None:
        """Whose session `token` is, if it has not ended (idle for `idle_s`, or past its
        end) and the account is not disabled. A session in use is kept alive."""
        now = time.time()
        digest = _token_hash(token)
        with self._lock:
            row = self.conn.execute(
                "SELECT name, seen_at, ends_at FROM console_sessions WHERE token_hash = ?",
                (digest,),
            ).fetchone()
            if row is None or now > float(row[2]) or now - float(row[1]) > idle_s:
                return None
            if now - float(row[1]) > min(60.0, idle_s / 10):  # not a write on every request
                self.conn.execute(
                    "UPDATE console_sessions SET seen_at = ? WHERE token_hash = ?", (now, digest)
                )
        user = self.get(str(row[0]))
        return None if user is None or user.disabled else user

    def close_session(self, token: str) -> None:
        with self._lock:
            self.conn.execute(
                "DELETE FROM console_sessions WHERE token_hash = ?", (_token_hash(token),)
            )

    def secret_key(self) -> str:
        """The key that signs session cookies: made once, shared by every instance."""
        with self._lock, transaction(self.conn):
            self.conn.execute(
                "INSERT INTO console_secret (id, value) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                (secrets.token_hex(32),),
            )
            (value,) = self.conn.execute("SELECT value FROM console_secret").fetchone()
        return str(value)

    # ---- the audit log ---------------------------------------------------------------------

    def audit(
        self,
        name: str | None,
        action: str,
        *,
        target: str | None = None,
        allowed: bool = True,
        remote: str | None = None,
    ) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO console_audit (at, name, action, target, allowed, remote)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (_now(), name, action, target, int(allowed), remote),
            )

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT at, name, action, target, allowed, remote FROM console_audit"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [AuditEntry(row[0], row[1], row[2], row[3], bool(row[4]), row[5]) for row in rows]


def open_accounts(config: GatewayConfig) -> Accounts:
    """The data directory's accounts, or the cluster's (every instance knows every login)."""
    if config.cluster.url is None:
        return Accounts.in_data_dir(config.data_dir)
    from gateway.runtime.wiring import shared_connection  # noqa: PLC0415 - a cluster's

    return Accounts(shared_connection(config, "console-accounts"))


def _user(row: tuple[object, ...]) -> User:
    name, role, must_change, disabled, created_at = row
    return User(str(name), role, bool(must_change), bool(disabled), str(created_at))  # type: ignore[arg-type]
