"""The gateway's configuration: the sections put together, loaded from TOML, checked at
start-up.

Every key has a default that runs a laptop gateway (embedded defaults under the data
dir). Unknown keys and bad values are refused with one message per mistake naming the
key and its line. Units are in the names (`_s`, `_ms`, `_bytes`). Secrets are read
from the environment or a file named here, and never appear in a repr or a message.
Each section is defined beside what it configures (`gateway/settings.py` says how), so
loading a config imports none of the codecs, drivers or clients it configures.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import ValidationError, ValidationInfo, field_validator, model_validator

from gateway.bulletin.settings import BulletinSettings
from gateway.cases.settings import CasesSettings
from gateway.console.settings import ConsoleSettings
from gateway.errors import ConfigError
from gateway.geo.settings import GeoSettings
from gateway.logs import LogSettings
from gateway.media.settings import MediaSettings
from gateway.normalize.settings import AcceptanceSettings, CodesSettings
from gateway.runtime.settings import (
    LimitsSettings,
    MetricsSettings,
    PipelineSettings,
    TaskSettings,
)
from gateway.settings import (
    POSTGRES_SCHEMES,
    Section,
    check_postgres_url,
    default_config_dir,
    redact_url,
)
from gateway.sinks.settings import PostgresSettings, S3Settings
from gateway.store.settings import ClusterSettings, StoreSettings
from gateway.transports.mqtt_settings import MqttSettings


class GatewayConfig(Section):
    data_dir: Path = Path("var/gateway")
    # Where objects go: a directory path, file:///path, or s3://BUCKET[/PREFIX] ([s3]).
    objects: str | None = None
    # The case registry: sqlite:///path or postgresql://USER@HOST[:PORT]/DB ([postgres]).
    registry: str | None = None
    mqtt: MqttSettings = MqttSettings()
    s3: S3Settings = S3Settings()
    postgres: PostgresSettings = PostgresSettings()
    store: StoreSettings = StoreSettings()
    cluster: ClusterSettings = ClusterSettings()
    limits: LimitsSettings = LimitsSettings()
    pipeline: PipelineSettings = PipelineSettings()
    tasks: TaskSettings = TaskSettings()
    media: MediaSettings = MediaSettings()
    geo: GeoSettings = GeoSettings()
    codes: CodesSettings = CodesSettings()
    acceptance: AcceptanceSettings = AcceptanceSettings()
    cases: CasesSettings = CasesSettings()
    bulletin: BulletinSettings = BulletinSettings()
    metrics: MetricsSettings = MetricsSettings()
    console: ConsoleSettings = ConsoleSettings()
    log: LogSettings = LogSettings()

    @property
    def objects_dir(self) -> Path:
        if self.objects is None:
            return self.data_dir / "objects"
        return Path(self.objects.removeprefix("file://"))

    @property
    def objects_in_s3(self) -> bool:
        return self.objects is not None and self.objects.startswith("s3://")

    @property
    def registry_path(self) -> Path:
        if self.registry is None:
            return self.data_dir / "registry.db"
        return Path(self.registry.removeprefix("sqlite://"))

    @property
    def registry_in_postgres(self) -> bool:
        return self.registry is not None and self.registry.startswith(POSTGRES_SCHEMES)

    def objects_description(self) -> str:
        return self.objects if self.objects_in_s3 and self.objects else str(self.objects_dir)

    def registry_description(self) -> str:
        """Where the registry is, without any password the URL holds."""
        if self.registry_in_postgres and self.registry:
            parts = urlsplit(self.registry)
            host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
            user = f"{parts.username}@" if parts.username else ""
            return f"{parts.scheme}://{user}{host}{parts.path}"
        return str(self.registry_path)

    @property
    def inbox_path(self) -> Path:
        return self.data_dir / "inbox.db"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def codes_dir(self) -> Path:
        return self.codes.dir or default_config_dir() / "codes"

    @property
    def timezone(self) -> ZoneInfo:
        return self.acceptance.zone

    @field_validator("objects")
    @classmethod
    def _objects_url(cls, value: str | None) -> str | None:
        if value is None or "://" not in value or value.startswith("file://"):
            return value
        parts = urlsplit(value)
        if parts.scheme != "s3":
            raise ValueError("must be a directory, file:///path or s3://BUCKET[/PREFIX]")
        if "@" in parts.netloc:  # never echoed: it may hold a key
            raise ValueError("s3:// URLs carry no credentials: see [s3] secret_access_key_env")
        if not _BUCKET.fullmatch(parts.netloc):
            raise ValueError(f"{parts.netloc!r} is not an S3 bucket name")
        if parts.query or parts.fragment:
            raise ValueError("s3:// URLs take no query or fragment")
        return value

    @field_validator("registry")
    @classmethod
    def _registry_url(cls, value: str | None) -> str | None:
        if value is None or value.startswith("sqlite:///"):
            return value
        if not value.startswith(POSTGRES_SCHEMES):
            raise ValueError("must be sqlite:///path or postgresql://USER@HOST[:PORT]/DB")
        return check_postgres_url(value)

    @model_validator(mode="before")
    @classmethod
    def _cases_beside_the_cluster(cls, data: Any) -> Any:
        """A cluster keeps its cases in its own database unless `registry` says otherwise."""
        if isinstance(data, dict) and data.get("registry") is None:
            cluster = data.get("cluster")
            url = cluster.get("url") if isinstance(cluster, dict) else None
            if isinstance(url, str) and url.startswith(POSTGRES_SCHEMES):
                return {**data, "registry": url}
        return data

    @field_validator("cluster")
    @classmethod
    def _cluster_objects_shared(
        cls, value: ClusterSettings, info: ValidationInfo
    ) -> ClusterSettings:
        objects = info.data.get("objects")
        if value.url is not None and not (isinstance(objects, str) and objects.startswith("s3://")):
            # Objects and the media spool must be where every instance reaches them.
            raise ValueError(
                "url is set: objects must be s3://BUCKET[/PREFIX] (a directory is this"
                " machine's alone)"
            )
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The registry URL may hold a password (postgresql://USER:PASSWORD@HOST/DB).
        for name, value in super().__repr_args__():
            shown = value
            if name == "registry" and isinstance(value, str):
                shown = redact_url(value)
            elif name == "cluster" and isinstance(value, ClusterSettings) and value.url:
                shown = value.model_copy(update={"url": redact_url(value.url)})
            yield name, shown


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> GatewayConfig:
    """Load a TOML file (or nothing: all defaults), apply dotted-key overrides, validate."""
    text = ""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except OSError as error:
            raise ConfigError([f"{path}: cannot read: {error.strerror}"]) from None
        except UnicodeDecodeError as error:  # TOML is UTF-8; found by fuzz/targets/config.py
            raise ConfigError([f"{path}: not UTF-8 (byte {error.start})"]) from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
        except RecursionError:  # tomllib recurses per nested array or inline table
            raise ConfigError([f"{path}: not valid TOML: nested too deeply"]) from None
        data = _resolve_paths(data, path.parent)
    for dotted, value in (overrides or {}).items():
        blocked = _set(data, dotted.split("."), value)
        if blocked is not None:
            where = f"{path}: " if path else ""
            raise ConfigError([f"{where}{blocked}: not a table, so {dotted} cannot be set"])
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, text, path)) from None


_PATH_KEYS = (
    {("data_dir",), ("codes", "dir"), ("mqtt", "password_file")}
    | {("mqtt", "tls", key) for key in ("ca_file", "cert_file", "key_file")}
    | {("geo", key) for key in ("segments", "segment_table", "districts", "district_table", "grid")}
    | {("s3", "secret_access_key_file"), ("s3", "ca_bundle"), ("postgres", "password_file")}
)


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths in a config file are relative to the file, not the working directory."""
    for keys in _PATH_KEYS:
        table = data
        for key in keys[:-1]:
            inner = table.get(key)
            table = inner if isinstance(inner, dict) else {}
        value = table.get(keys[-1])
        if isinstance(value, str) and not Path(value).is_absolute():
            table[keys[-1]] = str(base / value)
    return data


def _set(data: dict[str, Any], keys: list[str], value: Any) -> str | None:
    """Set a dotted key; returns the dotted prefix that is not a table, if one is in the way
    (e.g. `mqtt = 5` in the file and `mqtt.broker` from the command line)."""
    for depth, key in enumerate(keys[:-1], start=1):
        inner = data.setdefault(key, {})
        if not isinstance(inner, dict):
            return ".".join(keys[:depth])
        data = inner
    data[keys[-1]] = value
    return None


def _describe(error: ValidationError, text: str, path: Path | None) -> list[str]:
    problems = []
    lines = _key_lines(text)
    for item in error.errors(include_url=False):
        keys = tuple(str(part) for part in item["loc"])
        dotted = ".".join(keys) or "(top)"
        line = _line_of(lines, keys)
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}{dotted}: {message}")
    return problems


_BARE_KEYS = r"[A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*"
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_BARE_KEYS})\s*\]")
_ASSIGNMENT = re.compile(rf"\s*({_BARE_KEYS})\s*=")


@dataclass(frozen=True, slots=True)
class _KeyLines:
    headers: dict[tuple[str, ...], int]  # [a.b] -> its line
    assignments: dict[tuple[str, ...], int]  # b = ... inside [a] -> its line


def _key_lines(text: str) -> _KeyLines:
    """The line where each key is first set: its own `[table]` header, or `key =` (dotted
    keys too) inside the table that holds it. One pass over the text: a lookup per problem
    made a file of many mistakes quadratic (10,000 unknown keys took 27 s)."""
    found = _KeyLines({}, {})
    table: tuple[str, ...] | None = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _TABLE_HEADER.match(line):
            table = _split_keys(header[1])
            found.headers.setdefault(table, number)
        elif line.lstrip().startswith("["):
            table = None  # an array of tables or a quoted name: not looked up
        elif table is not None and (assignment := _ASSIGNMENT.match(line)):
            found.assignments.setdefault((*table, *_split_keys(assignment[1])), number)
    return found


def _line_of(lines: _KeyLines, keys: tuple[str, ...]) -> int | None:
    """The key's own line; else the line assigning the array or inline table it is in
    (`grid_extent = [...]` for geo.grid_extent.0)."""
    own = [n for n in (lines.headers.get(keys), lines.assignments.get(keys)) if n is not None]
    if own:
        return min(own)
    for depth in range(len(keys) - 1, 0, -1):
        if (line := lines.assignments.get(keys[:depth])) is not None:
            return line
    return None


def _split_keys(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in dotted.split("."))
