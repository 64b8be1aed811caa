"""`[s3]` and `[postgres]`: how to reach the production object store and case registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.settings import MiB, PositiveFloat, Section, read_secret


class S3Settings(Section):
    """How to reach an S3-compatible store (used when `objects` is s3://BUCKET[/PREFIX]).

    Whatever is left unset comes the standard AWS ways: AWS_ENDPOINT_URL_S3 or
    AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE and
    the shared config files, instance roles."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key_env: str | None = None
    secret_access_key_file: Path | None = None
    path_style: bool = False  # MinIO, Ceph and most self-hosted servers want path-style
    server_side_encryption: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None
    ca_bundle: Path | None = None
    multipart_threshold_bytes: Annotated[int, Field(ge=5 * MiB)] = 16 * MiB
    multipart_chunk_bytes: Annotated[int, Field(ge=5 * MiB)] = 8 * MiB
    connect_timeout_s: PositiveFloat = 5.0
    read_timeout_s: PositiveFloat = 30.0
    # Attempts within one delivery (botocore's standard retry mode, with jitter); after
    # that the outbox's own backoff takes over.
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must look like https://HOST[:PORT]")
            if "@" in parts.netloc:  # never echoed: it may hold a key
                raise ValueError("takes no credentials: see access_key_id, secret_access_key_env")
        return value

    def secret_access_key(self) -> SecretStr | None:
        return read_secret(
            "s3.secret_access_key", self.secret_access_key_env, self.secret_access_key_file
        )


class PostgresSettings(Section):
    """The PostgreSQL case registry (used when `registry` is postgresql://...). The URL
    may leave the password out: PGPASSWORD, ~/.pgpass or `password_env` / `password_file`."""

    password_env: str | None = None
    password_file: Path | None = None
    pool_min: Annotated[int, Field(ge=1, le=100)] = 1
    pool_max: Annotated[int, Field(ge=1, le=100)] = 4
    connect_timeout_s: PositiveFloat = 5.0
    statement_timeout_ms: Annotated[int, Field(gt=0, le=2**31 - 1)] = 30_000  # PostgreSQL's int

    def password(self) -> SecretStr | None:
        return read_secret("postgres.password", self.password_env, self.password_file)

    @model_validator(mode="after")
    def _pool_bounds(self) -> PostgresSettings:
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min is larger than pool_max")
        return self
