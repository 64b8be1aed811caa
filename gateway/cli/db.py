"""`gateway db`: the schema of a cluster's shared stores in PostgreSQL."""

from __future__ import annotations

import click

from gateway.cli.options import fail
from gateway.settings import check_postgres_url, redact_url

cluster_url_option = click.option(
    "--cluster",
    "cluster_url",
    required=True,
    envvar="CGT_CLUSTER_URL",
    help="postgresql://USER@HOST[:PORT]/DB (or CGT_CLUSTER_URL).",
)


@click.group()
def db() -> None:
    """The cluster's shared stores in PostgreSQL: upgrade the schema, show its version."""


@db.command()
@cluster_url_option
def upgrade(cluster_url: str) -> None:
    """Apply the missing schema migrations (safe while instances run: they only add)."""
    import psycopg  # noqa: PLC0415 - only this command needs the driver

    from gateway.store.postgres import upgrade as apply  # noqa: PLC0415

    url = _checked(cluster_url)
    try:
        applied = apply(url)
    except psycopg.Error as error:
        fail(f"{redact_url(url)}: {str(error).strip() or type(error).__name__}", 1)
    if not applied:
        click.echo(f"{redact_url(url)}: schema current")
    for part, versions in applied.items():
        click.echo(f"{redact_url(url)}: {part} upgraded to {versions[-1]} (applied {versions})")


@db.command()
@cluster_url_option
def status(cluster_url: str) -> None:
    """Say whether the schema is current; exit 1 if it is not (for a deploy script)."""
    from gateway.store.postgres import SchemaError, check  # noqa: PLC0415

    url = _checked(cluster_url)
    try:
        check(url)
    except SchemaError as error:
        fail(str(error), 1)
    click.echo(f"{redact_url(url)}: schema current")


def _checked(url: str) -> str:
    try:
        return check_postgres_url(url)
    except ValueError as error:
        fail(f"--cluster: {error}", 2)
