"""The device registry: `DATA_DIR/devices.db` (SQLite, WAL, migrations).

    devices   one row per terminal ever added: its id (the MQTT username and the topic's
              device id), inspector, unit, status, the hash of its broker password,
              created, updated and last-seen times. Rows are never deleted: a revoked id
              stays revoked, so it cannot be handed to another terminal by mistake.
    accounts  the broker accounts of the gateway itself and of a backend (hashes only)
    casework_accounts  the broker accounts of casework backends (the acceptance desk,
              dispatch, the units' systems), several, each its own username
              `casework.<name>`; removed ones keep their row, so a name in a case's
              history (`via mqtt:casework.<name>`) is never handed to another system
    broker    where `gateway broker-config` wrote the broker's files, for the devices
              commands to rewrite them
    certificates  client certificates issued to terminals (`gateway devices cert`), so
              those of suspended and revoked devices go on the revocation list

Status moves: active ⇄ suspended, either → revoked (final).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from gateway.protocols import casework
from gateway.protocols.payloads import DEVICE_ID_PATTERN
from gateway.protocols.terminal import RESERVED_DEVICE_IDS
from gateway.store.db import Database, connect, is_shared, transaction

Status = Literal["active", "suspended", "revoked"]
Role = Literal["gateway", "backend"]
AccountRole = Literal["gateway", "backend", "casework"]

FILE_NAME = "devices.db"
# Account names hold a dot, which no device id may: an account can never be a device.
ACCOUNT_USERNAMES: dict[Role, str] = {"gateway": "cgt.gateway", "backend": "cgt.backend"}

# Casework backends' accounts (gateway/protocols/casework.py): one row per account ever made.
_CASEWORK_ACCOUNTS = """
    CREATE TABLE casework_accounts (
        username        TEXT PRIMARY KEY CHECK (username LIKE 'casework.%'),
        description     TEXT NOT NULL DEFAULT '',
        credential_hash TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        removed_at      TEXT
    )
    """

MIGRATIONS = (
    """
    CREATE TABLE devices (
        device_id       TEXT PRIMARY KEY,
        inspector_id    TEXT NOT NULL,
        unit            TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
        credential_hash TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        last_seen_at    TEXT
    );
    CREATE TABLE accounts (
        role            TEXT PRIMARY KEY CHECK (role IN ('gateway', 'backend')),
        username        TEXT NOT NULL UNIQUE,
        credential_hash TEXT NOT NULL,
        created_at      TEXT NOT NULL
    );
    CREATE TABLE broker (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        conf_dir   TEXT NOT NULL,
        written_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE certificates (
        serial      TEXT PRIMARY KEY,  -- hex: serials run to 159 bits, past SQLite's integers
        device_id   TEXT NOT NULL REFERENCES devices(device_id),
        fingerprint TEXT NOT NULL,
        not_after   TEXT NOT NULL,
        issued_at   TEXT NOT NULL
    );
    CREATE INDEX certificates_device ON certificates(device_id)
    """,
    _CASEWORK_ACCOUNTS,
)

# The same tables in a cluster's PostgreSQL (schema `cgt`, gateway/store/postgres.py).
POSTGRES_MIGRATIONS = (
    MIGRATIONS[0]
    + """;
    CREATE TABLE certificates (
        serial      text PRIMARY KEY,
        device_id   text NOT NULL REFERENCES devices (device_id),
        fingerprint text NOT NULL,
        not_after   text NOT NULL,
        issued_at   text NOT NULL
    );
    CREATE INDEX certificates_device ON certificates (device_id)
    """,
    _CASEWORK_ACCOUNTS,
)

# What each command may do to a device in each status.
_MOVES: dict[str, dict[Status, Status]] = {
    "suspend": {"active": "suspended", "suspended": "suspended"},
    "resume": {"suspended": "active", "active": "active"},
    "revoke": {"active": "revoked", "suspended": "revoked", "revoked": "revoked"},
}


@dataclass(frozen=True, slots=True)
class CaseworkAccount:
    username: str
    description: str
    credential_hash: str
    created_at: str
    updated_at: str
    removed_at: str | None

    def __repr__(self) -> str:  # never the hash in a log or a traceback
        state = f"removed {self.removed_at}" if self.removed_at else "active"
        return f"CaseworkAccount({self.username!r}, {state})"


class RegistryError(Exception):
    """An operator's request the registry refuses (unknown id, a move not allowed)."""


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    inspector_id: str
    unit: str
    status: Status
    credential_hash: str
    created_at: str
    updated_at: str
    last_seen_at: str | None

    def __repr__(self) -> str:  # never the hash in a log or a traceback
        return f"Device({self.device_id!r}, {self.status})"


@dataclass(frozen=True, slots=True)
class Account:
    role: AccountRole
    username: str
    credential_hash: str

    def __repr__(self) -> str:
        return f"Account({self.role!r}, {self.username!r})"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_device_id(device_id: str) -> None:
    if not re.fullmatch(DEVICE_ID_PATTERN, device_id):
        raise RegistryError(f"{device_id!r} is not a device id: 1-64 of A-Z a-z 0-9 _ -")
    # `cases` would not reach the casework topics (a terminal's ACL names only its own
    # uplinks and downlinks under cgt/v1/cases/), but its subtree would be the casework
    # tree's: refused, so no reader of cgt/v1/cases/# ever sees a terminal there.
    if device_id in RESERVED_DEVICE_IDS or device_id == casework.TREE:
        raise RegistryError(f"{device_id!r} is reserved (cgt/v1/{device_id}/ is another tree)")


def casework_username(name: str) -> str:
    """`desk` or `casework.desk` → `casework.desk`, checked against the topic grammar."""
    username = name if name.startswith(casework.ACCOUNT_PREFIX) else casework.ACCOUNT_PREFIX + name
    if not casework.is_account(username):
        raise RegistryError(
            f"{name!r} is not a casework account name: 1-32 of a-z 0-9 _ -, starting with a"
            " letter or digit"
        )
    return username


class DeviceRegistry:
    """In this machine's `devices.db` (a `Path`), or in a cluster's PostgreSQL connection,
    where every instance's intake reads it."""

    def __init__(self, store: Path | Database) -> None:
        self.path = store if isinstance(store, Path) else None
        self.conn: Database = connect(store, MIGRATIONS) if isinstance(store, Path) else store

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> DeviceRegistry:
        return cls(data_dir / FILE_NAME)

    def close(self) -> None:
        self.conn.close()

    # ---- devices ------------------------------------------------------------------------

    def add(self, device_id: str, inspector_id: str, unit: str, credential_hash: str) -> Device:
        check_device_id(device_id)
        stamp = now()
        with transaction(self.conn):
            added = self.conn.execute(
                "INSERT INTO devices (device_id, inspector_id, unit, status,"
                " credential_hash, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?)"
                " ON CONFLICT (device_id) DO NOTHING",
                (device_id, inspector_id, unit, credential_hash, stamp, stamp),
            ).rowcount
        if not added:
            existing = self.get(device_id)
            status = existing.status if existing else "?"
            raise RegistryError(f"device {device_id} already exists ({status})") from None
        return self.require(device_id)

    def get(self, device_id: str) -> Device | None:
        row = self.conn.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id = ?",  # noqa: S608 - a constant
            (device_id,),
        ).fetchone()
        return None if row is None else Device(*row)

    def require(self, device_id: str) -> Device:
        device = self.get(device_id)
        if device is None:
            raise RegistryError(f"no device {device_id} in {self.where}")
        return device

    def devices(self, status: Status | None = None) -> list[Device]:
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self.conn.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices {where} ORDER BY device_id",  # noqa: S608 - constants
            args,
        ).fetchall()
        return [Device(*row) for row in rows]

    def move(self, device_id: str, command: str) -> Device:
        """suspend, resume or revoke; a move the device's status does not allow is refused."""
        with transaction(self.conn):
            device = self.require(device_id)
            target = _MOVES[command].get(device.status)
            if target is None:
                raise RegistryError(f"device {device_id} is {device.status}: cannot {command}")
            self.conn.execute(
                "UPDATE devices SET status = ?, updated_at = ? WHERE device_id = ?",
                (target, now(), device_id),
            )
        return self.require(device_id)

    def set_credential(self, device_id: str, credential_hash: str) -> Device:
        with transaction(self.conn):
            device = self.require(device_id)
            if device.status == "revoked":
                raise RegistryError(f"device {device_id} is revoked: add a new device instead")
            self.conn.execute(
                "UPDATE devices SET credential_hash = ?, updated_at = ? WHERE device_id = ?",
                (credential_hash, now(), device_id),
            )
        return self.require(device_id)

    def statuses(self) -> dict[str, Status]:
        return dict(self.conn.execute("SELECT device_id, status FROM devices").fetchall())

    @property
    def data_dir(self) -> Path:
        """The data directory beside the registry's file (the CA lives there)."""
        if self.path is None:
            raise RegistryError("the CA lives in a data directory: run this with --data-dir")
        return self.path.parent

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "the cluster's device registry"

    def data_version(self) -> Hashable:
        """Changes when another connection committed a change: SQLite's `PRAGMA
        data_version`; in PostgreSQL, a digest of every device's status (the times
        have whole seconds, too coarse for a suspension undone within one)."""
        if is_shared(self.conn):
            (digest,) = self.conn.execute(
                "SELECT md5(coalesce(string_agg(device_id || ':' || status, ','"
                " ORDER BY device_id), '')) FROM devices"
            ).fetchone()
            return str(digest)
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def mark_seen(self, last_seen: dict[str, str]) -> None:
        with transaction(self.conn):
            self.conn.executemany(
                "UPDATE devices SET last_seen_at = ? WHERE device_id = ?"
                " AND (last_seen_at IS NULL OR last_seen_at < ?)",
                [(when, device_id, when) for device_id, when in last_seen.items()],
            )

    # ---- client certificates ------------------------------------------------------------

    def add_certificate(
        self, device_id: str, serial: int, fingerprint: str, not_after: datetime
    ) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO certificates (serial, device_id, fingerprint, not_after, issued_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (f"{serial:x}", device_id, fingerprint, not_after.isoformat(), now()),
            )

    def withheld_serials(self) -> list[int]:
        """Serials of unexpired certificates whose device is suspended or revoked."""
        rows = self.conn.execute(
            "SELECT serial FROM certificates JOIN devices USING (device_id)"
            " WHERE status != 'active' AND not_after > ? ORDER BY serial",
            (datetime.now(UTC).isoformat(),),
        ).fetchall()
        return [int(serial, 16) for (serial,) in rows]

    # ---- broker accounts and files ------------------------------------------------------

    def accounts(self) -> list[Account]:
        """The gateway's and the backend's accounts, then every casework account not removed."""
        rows = self.conn.execute(
            "SELECT role, username, credential_hash FROM accounts ORDER BY role DESC"
        ).fetchall()
        casework = [
            Account("casework", account.username, account.credential_hash)
            for account in self.casework_accounts()
        ]
        return [Account(*row) for row in rows] + casework

    def set_account(self, role: Role, credential_hash: str) -> Account:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO accounts (role, username, credential_hash, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (role) DO UPDATE"
                " SET credential_hash = excluded.credential_hash",
                (role, ACCOUNT_USERNAMES[role], credential_hash, now()),
            )
        return Account(role, ACCOUNT_USERNAMES[role], credential_hash)

    # ---- casework backends' accounts ----------------------------------------------------

    def add_casework(self, name: str, credential_hash: str, description: str = "") -> Account:
        username = casework_username(name)
        stamp = now()
        with transaction(self.conn):
            added = self.conn.execute(
                "INSERT INTO casework_accounts (username, description, credential_hash,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
                (username, description, credential_hash, stamp, stamp),
            ).rowcount
        if not added:
            removed = self._casework(username).removed_at
            state = f"removed {removed}: names are not reused" if removed else "exists"
            raise RegistryError(f"casework account {username} already {state}")
        return Account("casework", username, credential_hash)

    def casework_accounts(self, *, removed: bool = False) -> list[CaseworkAccount]:
        where = "" if removed else " WHERE removed_at IS NULL"
        rows = self.conn.execute(
            f"SELECT {_CASEWORK_COLUMNS} FROM casework_accounts{where} ORDER BY username"  # noqa: S608 - constants
        ).fetchall()
        return [CaseworkAccount(*row) for row in rows]

    def set_casework_credential(self, name: str, credential_hash: str) -> CaseworkAccount:
        username = casework_username(name)
        with transaction(self.conn):
            if self._casework(username).removed_at is not None:
                raise RegistryError(f"casework account {username} is removed")
            self.conn.execute(
                "UPDATE casework_accounts SET credential_hash = ?, updated_at = ?"
                " WHERE username = ?",
                (credential_hash, now(), username),
            )
        return self._casework(username)

    def remove_casework(self, name: str) -> CaseworkAccount:
        """Its password line and ACL section go at the next `apply`; the row stays."""
        username = casework_username(name)
        with transaction(self.conn):
            self._casework(username)
            stamp = now()
            self.conn.execute(
                "UPDATE casework_accounts SET removed_at = coalesce(removed_at, ?),"
                " updated_at = ? WHERE username = ?",
                (stamp, stamp, username),
            )
        return self._casework(username)

    def _casework(self, username: str) -> CaseworkAccount:
        row = self.conn.execute(
            f"SELECT {_CASEWORK_COLUMNS} FROM casework_accounts WHERE username = ?",  # noqa: S608 - a constant
            (username,),
        ).fetchone()
        if row is None:
            raise RegistryError(f"no casework account {username} in {self.where}")
        return CaseworkAccount(*row)

    def broker_dir(self) -> Path | None:
        row = self.conn.execute("SELECT conf_dir FROM broker WHERE id = 1").fetchone()
        return None if row is None else Path(row[0])

    def set_broker_dir(self, conf_dir: Path) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO broker (id, conf_dir, written_at) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET conf_dir = excluded.conf_dir,"
                " written_at = excluded.written_at",
                (str(conf_dir), now()),
            )


_DEVICE_COLUMNS = (
    "device_id, inspector_id, unit, status, credential_hash, created_at, updated_at, last_seen_at"
)
_CASEWORK_COLUMNS = "username, description, credential_hash, created_at, updated_at, removed_at"
