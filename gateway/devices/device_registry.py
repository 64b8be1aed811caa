"""The device registry: `DATA_DIR/devices.db` (SQLite, WAL, migrations).

    devices   one row per terminal ever added: its id (the MQTT username and the topic's
              device id), inspector, unit, status, the hash of its broker password,
              created, updated and last-seen times. Rows are never deleted: a revoked id
              stays revoked, so it cannot be handed to another terminal by mistake.
    accounts  the broker accounts of the gateway itself and of a backend (hashes only)
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

from gateway.protocols.payloads import DEVICE_ID_PATTERN
from gateway.protocols.terminal import RESERVED_DEVICE_IDS
from gateway.store.db import Database, connect, is_shared, transaction

Status = Literal["active", "suspended", "revoked"]
Role = Literal["gateway", "backend"]

FILE_NAME = "devices.db"
# Account names hold a dot, which no device id may: an account can never be a device.
ACCOUNT_USERNAMES: dict[Role, str] = {"gateway": "cgt.gateway", "backend": "cgt.backend"}

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
)

# What each command may do to a device in each status.
_MOVES: dict[str, dict[Status, Status]] = {
    "suspend": {"active": "suspended", "suspended": "suspended"},
    "resume": {"suspended": "active", "active": "active"},
    "revoke": {"active": "revoked", "suspended": "revoked", "revoked": "revoked"},
}


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
    role: Role
    username: str
    credential_hash: str

    def __repr__(self) -> str:
        return f"Account({self.role!r}, {self.username!r})"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_device_id(device_id: str) -> None:
    if not re.fullmatch(DEVICE_ID_PATTERN, device_id):
        raise RegistryError(f"{device_id!r} is not a device id: 1-64 of A-Z a-z 0-9 _ -")
    if device_id in RESERVED_DEVICE_IDS:
        raise RegistryError(f"{device_id!r} is reserved (cgt/v1/{device_id}/ is another tree)")


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
        rows = self.conn.execute(
            "SELECT role, username, credential_hash FROM accounts ORDER BY role DESC"
        ).fetchall()
        return [Account(*row) for row in rows]

    def set_account(self, role: Role, credential_hash: str) -> Account:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO accounts (role, username, credential_hash, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (role) DO UPDATE"
                " SET credential_hash = excluded.credential_hash",
                (role, ACCOUNT_USERNAMES[role], credential_hash, now()),
            )
        return Account(role, ACCOUNT_USERNAMES[role], credential_hash)

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
