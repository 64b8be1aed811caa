"""Opening the case registry the config names: SQLite (embedded) or PostgreSQL."""

from __future__ import annotations

from typing import Protocol

from structlog.typing import FilteringBoundLogger

from gateway.config import GatewayConfig
from gateway.sinks.ports import Registry, TaskBook


class CaseRegistry(Registry, TaskBook, Protocol):
    """What both registries are: the pipeline's `Registry` and the tasks' `TaskBook`."""


def open_registry(config: GatewayConfig, log: FilteringBoundLogger) -> CaseRegistry:
    if config.registry_in_postgres and config.registry:
        from gateway.sinks.registry_postgres import PostgresRegistry  # noqa: PLC0415 - psycopg is slow to import

        return PostgresRegistry(config.registry, config.postgres, config.timezone, log)
    from gateway.sinks.registry_sqlite import SqliteRegistry  # noqa: PLC0415

    return SqliteRegistry(config.registry_path, config.timezone, log)
