"""What every section of the gateway's config shares: the base model, value types, units,
secrets read from where the config points, and where the shipped config directory is.

Each section lives beside what it configures (`gateway/media/settings.py` beside the
media stages, `gateway/transports/mqtt_settings.py` beside the MQTT link, ...) and imports
only this module and its own package's plain value classes, so loading a config drags in
no codec, no image library and no database driver. `gateway/config.py` puts the sections
together and reads the TOML file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from gateway.errors import ConfigError

SECOND = 1
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

PositiveInt = Annotated[int, Field(gt=0)]
# Not inf or nan (TOML has both): an endless timeout is a hang, or a crash where it is rounded.
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


def _host_port(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must look like HOST:PORT, e.g. 127.0.0.1:9464")
    return value


# Where an HTTP endpoint listens: HOST:PORT ([::1]:PORT for IPv6).
Listen = Annotated[str, AfterValidator(_host_port)]


def listen_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class Section(BaseModel):
    """A table of the config file: unknown keys are refused, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(where: str, env: str | None, file: Path | None) -> SecretStr | None:
    """A secret from the environment variable or the file the config names."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError([f"{where}_env: ${env} is not set"])
        return SecretStr(value)
    if file:
        try:
            return SecretStr(file.read_text(encoding="utf-8").strip())
        except OSError as error:
            raise ConfigError([f"{where}_file: cannot read {file}: {error.strerror}"]) from None
    return None


def redact_url(url: str) -> str:
    """The URL with its password (user info, or a `password=` parameter) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that does not parse)"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name, colon, _ = user.partition(":")
        netloc = f"{name}{':***' if colon else ''}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def default_config_dir() -> Path:
    """The shipped `config/` directory: in a checkout beside the package, in a wheel inside it."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "config", package / "_config"):
        if (candidate / "codes").is_dir():
            return candidate
    raise ConfigError([f"no config directory beside {package}; set codes.dir"])


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def check_postgres_url(value: str) -> str:
    """A PostgreSQL URL's checks; messages never echo it (it may hold a password)."""
    if not value.startswith(POSTGRES_SCHEMES):
        raise ValueError("must be postgresql://USER@HOST[:PORT]/DB")
    parts = urlsplit(value)
    if "@" in parts.path + parts.query + parts.fragment:
        raise ValueError(
            "an '@' after the host: percent-encode the password's / ? # @ (or use"
            " postgres.password_env)"
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("bad port: postgresql://USER@HOST[:PORT]/DB") from None
    if not parts.path.strip("/"):
        raise ValueError("name the database: postgresql://USER@HOST[:PORT]/DB")
    return value
