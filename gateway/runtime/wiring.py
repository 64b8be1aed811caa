"""From a config to the sinks it names, and the secrets they need, checked before start.

The production backends (boto3 for S3, psycopg for PostgreSQL) are imported only when
the config chooses them: a laptop gateway on the embedded defaults never loads them.
"""

from __future__ import annotations

from structlog.typing import FilteringBoundLogger

from gateway.config import GatewayConfig
from gateway.sinks.case_registry_sqlite import SqliteRegistry
from gateway.sinks.objects_local import LocalObjectStore
from gateway.sinks.ports import CaseRegistry, ObjectStore


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
