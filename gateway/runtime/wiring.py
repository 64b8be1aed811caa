"""From a config to the sinks it names, and the secrets they need, checked before start.

The production backends (boto3 for S3, psycopg for PostgreSQL) are imported only when
the config chooses them: a laptop gateway on the embedded defaults never loads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from structlog.typing import FilteringBoundLogger

from gateway.config import GatewayConfig
from gateway.errors import ConfigError, SinkError
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.objects_local import LocalObjectStore
from gateway.sinks.ports import CaseRegistry, ObjectStore
from gateway.store.inbox import Inbox
from gateway.store.outbox import Outbox
from gateway.store.spool import LocalSpool, SharedSpool, Spool

if TYPE_CHECKING:
    from gateway.store.postgres import PgConnection


def check_secrets(config: GatewayConfig) -> None:
    """Every secret the config names can be read (raises ConfigError naming the key)."""
    config.mqtt.password()
    if config.objects_in_s3:
        config.s3.secret_access_key()
    if config.registry_in_postgres:
        config.postgres.password()


def open_objects(config: GatewayConfig) -> ObjectStore:
    if config.objects_in_s3 and config.objects:
        from gateway.sinks.objects_s3 import S3ObjectStore  # noqa: PLC0415 - a backend chosen by the config

        return S3ObjectStore(config.objects, config.s3)
    return LocalObjectStore(config.objects_dir)


def open_registry(config: GatewayConfig, log: FilteringBoundLogger) -> CaseRegistry:
    if config.registry_in_postgres and config.registry:
        from gateway.sinks.case_registry_postgres import PostgresRegistry  # noqa: PLC0415 - a backend chosen by the config

        return PostgresRegistry(config.registry, config.postgres, config.timezone, log)
    return SqliteRegistry(config.registry_path, config.timezone, log)


def check_cluster(config: GatewayConfig) -> None:
    """A cluster's shared stores are there and usable (raises ConfigError saying what to do):
    PostgreSQL reachable with its schema current, the S3 bucket present."""
    if config.cluster.url is None:
        return
    from gateway.sinks.objects_s3 import S3ObjectStore  # noqa: PLC0415 - a cluster's backends
    from gateway.store.postgres import SchemaError, check  # noqa: PLC0415

    problems = []
    try:
        check(config.cluster.url)
    except SchemaError as error:
        problems.append(str(error))
    assert config.objects is not None  # noqa: S101 - the config's own check: s3:// in a cluster
    store = S3ObjectStore(config.objects, config.s3)
    try:
        if not store.bucket_exists():
            problems.append(f"objects: bucket of {config.objects} not found (or not ours)")
    except SinkError as error:
        problems.append(f"objects: {config.objects} is not reachable: {error}")
    finally:
        store.close()
    if problems:
        raise ConfigError(problems)


def open_stores(config: GatewayConfig, role: str) -> tuple[Inbox, Outbox]:
    """The inbox and outbox: this machine's SQLite files, or, in a cluster, both on one
    PostgreSQL connection of `role`'s own (so one transaction can span them)."""
    if config.cluster.url is None:
        return Inbox(config.inbox_path), Outbox(config.outbox_path)
    conn = shared_connection(config, role)
    return Inbox(conn), Outbox(conn, owner=config.mqtt.client_id, lease_s=config.cluster.lease_s)


def shared_connection(config: GatewayConfig, role: str) -> PgConnection:
    from gateway.store.postgres import PgConnection  # noqa: PLC0415 - a cluster's backend

    assert config.cluster.url is not None  # noqa: S101 - callers ask only in a cluster
    return PgConnection(
        config.cluster.url,
        name=f"{config.mqtt.client_id}-{role}",
        connect_timeout_s=config.cluster.connect_timeout_s,
    )


def open_spool(config: GatewayConfig, objects: ObjectStore) -> Spool:
    """The media spool: a local directory, which a cluster keeps in its S3 bucket as well,
    through the objects sink's own client (`objects`)."""
    if config.cluster.url is None:
        return LocalSpool(config.spool_dir)
    from gateway.sinks.objects_s3 import S3ObjectStore  # noqa: PLC0415 - a cluster's backend

    if not isinstance(objects, S3ObjectStore):  # the config's own check makes it S3
        raise TypeError("a cluster's objects are in S3")
    return SharedSpool(config.spool_dir, objects)
