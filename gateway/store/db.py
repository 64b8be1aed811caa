"""SQLite connections for the gateway's durable stores: WAL, full sync, versioned schemas."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.store.postgres import PgConnection

# Long enough to ride out the other process's batch commit (a few ms), short enough that a
# stuck writer shows up as an error instead of a silent stall.
BUSY_TIMEOUT_MS = 10_000


def connect(path: Path, migrations: Sequence[str] = ()) -> sqlite3.Connection:
    """Open (creating if needed) a WAL database with durable commits and apply migrations.

    `migrations[i]` upgrades the schema from version i to i+1; the version lives in
    `PRAGMA user_version`, so a store written by an older gateway is brought forward.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk (WAL fsynced) before we acknowledge anything built on it.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    if migrations:
        migrate(conn, migrations)
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[str]) -> None:
    with transaction(conn):
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for number in range(version, len(migrations)):
            for statement in _statements(migrations[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")


def _statements(script: str) -> Iterator[str]:
    # executescript() would commit on its own and break the migration's transaction, so
    # the script is cut at each ';' that ends a statement (not one inside a trigger).
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement
            statement = ""
    if statement.strip(" \n;"):
        yield statement


class Rows(Protocol):
    """What a statement returns, from SQLite or psycopg alike."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """A store's connection: SQLite's own, or `gateway.store.postgres.PgConnection`."""

    def execute(self, statement: str, params: Sequence[Any] = ..., /) -> Rows: ...

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]], /) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


def sqlite_file(path: Path | None) -> Path:
    """The SQLite file behind a store, which a cluster's store (path None) has not."""
    if path is None:
        raise ValueError("a cluster's store has no SQLite file")
    return path


def is_conflict(error: BaseException) -> bool:
    """Whether a shared store rolled a transaction back for a conflict with another
    instance's (a deadlock, a serialization failure, a key taken meanwhile): trying
    again at once is right. Named by SQLSTATE, so SQLite's errors never match."""
    state = getattr(error, "sqlstate", None)
    return isinstance(state, str) and state in ("40001", "40P01", "23505")


def is_shared(conn: Database) -> bool:
    """Whether the store is a cluster's (PostgreSQL) rather than this machine's (SQLite)."""
    return not isinstance(conn, sqlite3.Connection)


@contextmanager
def transaction(conn: Database) -> Iterator[Database]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

    Inside another `transaction` it joins the outer one, so callers can group several
    store operations into one commit (one fsync)."""
    if not isinstance(conn, sqlite3.Connection):
        pg: PgConnection = conn  # type: ignore[assignment]
        with pg.transaction():
            yield conn
        return
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A short-lived read-only connection of one's own (for operators' reads and probes)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
    try:
        yield conn
    finally:
        conn.close()
