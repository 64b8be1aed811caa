"""The shared stores in PostgreSQL: one connection type for the inbox, the outbox and the
device registry of a cluster, and their versioned schema.

The stores' SQL is written once, in the common subset of SQLite and PostgreSQL, with `?`
placeholders; `PgConnection` turns them into psycopg's `%s` (once per statement text) and
otherwise behaves like the `sqlite3.Connection` the stores were written against:
`execute`, `executemany`, `in_transaction`, and `transaction()` that joins an enclosing one.

Every table lives in the schema `cgt` (the case registry, which may share the database,
keeps `public`). Each store brings its own numbered migrations (`PARTS`); the version of
each is recorded in `cgt.schema_parts`. `upgrade()` applies what is missing under an
advisory lock, in one transaction, adding only (new tables, columns, indexes), so it is
safe while instances of the previous version run; `check()` is what an instance runs at
start-up, and it refuses a schema older than its code with the command that fixes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors
from psycopg import pq
from psycopg.rows import TupleRow

from gateway.settings import redact_url

SCHEMA = "cgt"
# Any fixed number: the advisory lock that serializes upgrades across instances.
_UPGRADE_LOCK = 0x63677431  # "cgt1"

# Failures that pass by themselves: the server went away or restarted, a failover, a
# deadlock or serialization conflict between instances. The caller retries the batch.
# (A server shutting down or starting up is an OperationalError too.)
TRANSIENT: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.TransactionRollback,  # deadlock detected, serialization failure
    psycopg.errors.ReadOnlySqlTransaction,  # a primary that became a standby
)

_PLACEHOLDER = re.compile(r"\?")


def pg_sql(statement: str) -> str:
    """A statement with `?` placeholders as psycopg takes it (`%s`)."""
    # The stores' statements hold no '?' or '%' inside literals, so this is exact.
    return _PLACEHOLDER.sub("%s", statement.replace("%", "%%"))


class PgConnection:
    """A psycopg connection that speaks the stores' SQL, reconnecting when it broke.

    Outside a transaction every statement commits on its own (autocommit), as SQLite's
    connections in `isolation_level=None` do; `transaction()` is the unit of durability."""

    def __init__(self, url: str, *, name: str, connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.name = name
        self.connect_timeout_s = connect_timeout_s
        self._sql: dict[str, str] = {}
        self._raw: psycopg.Connection[TupleRow] | None = None
        self._connect()

    def _connect(self) -> psycopg.Connection[TupleRow]:
        self._raw = psycopg.connect(
            self.url,
            autocommit=True,
            application_name=self.name[:63],
            connect_timeout=max(1, round(self.connect_timeout_s)),
            options=f"-c search_path={SCHEMA}",
            # A peer that vanished (a machine lost, not a process killed) is noticed within
            # about 30 s, and the server rolls its transaction back, freeing its claims.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=4,
        )
        return self._raw

    @property
    def raw(self) -> psycopg.Connection[TupleRow]:
        """The live connection; a broken one is replaced, but never mid-transaction."""
        raw = self._raw
        if raw is None or raw.closed or raw.broken:
            if raw is not None and raw.info.transaction_status == pq.TransactionStatus.INTRANS:
                raise psycopg.OperationalError("the connection broke inside a transaction")
            raw = self._connect()
        return raw

    def _statement(self, statement: str) -> str:
        translated = self._sql.get(statement)
        if translated is None:
            translated = self._sql[statement] = pg_sql(statement)
        return translated

    def execute(self, statement: str, params: Sequence[Any] = ()) -> psycopg.Cursor[TupleRow]:
        return self.raw.execute(self._statement(statement), params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self.raw.cursor() as cursor:
            cursor.executemany(self._statement(statement), rows)

    @property
    def in_transaction(self) -> bool:
        raw = self._raw
        return (
            raw is not None
            and not raw.closed
            and (raw.info.transaction_status != pq.TransactionStatus.IDLE)
        )

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """BEGIN ... COMMIT, rolled back on any exception; joins an enclosing one."""
        if self.in_transaction:
            yield self
            return
        raw = self.raw
        try:
            with raw.transaction():
                yield self
        except BaseException:
            if raw.broken:  # the next use reconnects
                self._raw = None
            raise

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None


# ---- the schema ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One store's tables: its name and its numbered migrations (i upgrades i to i + 1)."""

    name: str
    migrations: tuple[str, ...]


def parts() -> tuple[Part, ...]:
    """Every store's part of the shared schema, in the order they are created."""
    from gateway.console.accounts import POSTGRES_MIGRATIONS as CONSOLE  # noqa: PLC0415 - avoids a cycle
    from gateway.devices.device_registry import POSTGRES_MIGRATIONS as DEVICES  # noqa: PLC0415
    from gateway.store.cluster import POSTGRES_MIGRATIONS as CLUSTER  # noqa: PLC0415
    from gateway.store.inbox import POSTGRES_MIGRATIONS as INBOX  # noqa: PLC0415
    from gateway.store.outbox import POSTGRES_MIGRATIONS as OUTBOX  # noqa: PLC0415

    return (
        Part("inbox", INBOX),
        Part("outbox", OUTBOX),
        Part("devices", DEVICES),
        Part("cluster", CLUSTER),
        Part("console", CONSOLE),
    )


class SchemaError(Exception):
    """The database cannot be used as it is; the message says what to do."""


def _versions(raw: psycopg.Connection[TupleRow]) -> dict[str, int]:
    exists = raw.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.schema_parts",)).fetchone()
    if exists is None or exists[0] is None:
        return {}
    rows = raw.execute(f"SELECT part, version FROM {SCHEMA}.schema_parts").fetchall()  # noqa: S608 - a constant
    return {str(part): int(version) for part, version in rows}


def upgrade(url: str) -> dict[str, list[int]]:
    """Apply every missing migration; returns, per part, the versions applied."""
    applied: dict[str, list[int]] = {}
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as raw, raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        raw.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_parts (part text PRIMARY KEY,"
            " version integer NOT NULL, upgraded_at timestamptz NOT NULL DEFAULT now())"
        )
        raw.execute(f"SET LOCAL search_path = {SCHEMA}")
        versions = _versions(raw)
        for part in parts():
            done = versions.get(part.name, 0)
            for number in range(done, len(part.migrations)):
                raw.execute(part.migrations[number].encode())
                applied.setdefault(part.name, []).append(number + 1)
            if done < len(part.migrations):
                raw.execute(
                    "INSERT INTO schema_parts (part, version) VALUES (%s, %s) ON CONFLICT (part)"
                    " DO UPDATE SET version = excluded.version, upgraded_at = now()",
                    (part.name, len(part.migrations)),
                )
    return applied


def check(url: str) -> None:
    """Raise `SchemaError` unless the database is reachable and its schema is current."""
    where = redact_url(url)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as raw:
            versions = _versions(raw)
    except psycopg.OperationalError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SchemaError(f"cluster database {where} is not reachable: {first}") from None
    behind = [
        f"{part.name} {versions.get(part.name, 0)} < {len(part.migrations)}"
        for part in parts()
        if versions.get(part.name, 0) < len(part.migrations)
    ]
    ahead = [
        f"{part.name} {versions[part.name]} > {len(part.migrations)}"
        for part in parts()
        if versions.get(part.name, 0) > len(part.migrations)
    ]
    if not versions:
        raise SchemaError(
            f"cluster database {where} has no gateway schema:"
            " run `gateway db upgrade --cluster URL`"
        )
    if behind:
        raise SchemaError(
            f"cluster database {where} is behind this gateway ({', '.join(behind)}):"
            " run `gateway db upgrade --cluster URL`"
        )
    if ahead:
        raise SchemaError(
            f"cluster database {where} is newer than this gateway ({', '.join(ahead)}):"
            " upgrade the gateway"
        )
