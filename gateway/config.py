"""Typed configuration, loaded from TOML and checked at start-up.

Every key has a default that runs a laptop gateway (embedded defaults under the data
dir). Unknown keys and bad values are refused with one message per mistake naming the
key and its line. Units are in the names (`_s`, `_ms`, `_bytes`). Secrets are read
from the environment or a file named here, and never appear in a repr or a message.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.devices.limits import DeviceLimits
from gateway.errors import ConfigError
from gateway.geo.checks import FixChecks
from gateway.media.photo import PhotoSettings
from gateway.media.voice import VoiceSettings
from gateway.protocols.payloads import KiB, MiB, WireLimits
from gateway.store.levels import StoreLimits

SECOND = 1
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
GiB = 1024 * MiB

PositiveInt = Annotated[int, Field(gt=0)]
# Not inf or nan (TOML has both): an endless timeout is a hang, or a crash where it is rounded.
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # Only for a test broker whose certificate names another host; never in production.
    insecure_skip_hostname: bool = False


class MqttSettings(_Section):
    broker: str = "mqtt://127.0.0.1:1883"
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "cgt-gateway"
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    keepalive_s: Annotated[int, Field(gt=0, le=65535)] = 30  # MQTT's is 16 bits
    # The broker queues uplinks for the gateway's session while it is down; a week covers
    # a long weekend's outage. The broker's own queue limit bounds memory (see config/).
    session_expiry_s: Annotated[int, Field(gt=0, le=0xFFFFFFFF)] = 7 * DAY  # 32 bits
    # Unacknowledged messages in flight to us; the intake's commit batch fills from these.
    receive_maximum: Annotated[int, Field(ge=1, le=65535)] = 500
    shared_group: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None
    reconnect_min_s: PositiveInt = 1
    reconnect_max_s: PositiveInt = 60
    tls: TlsSettings | None = None

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must look like mqtt://HOST:PORT or mqtts://HOST:PORT")
        if "@" in value:  # never echoed: what looks like user info may hold a password
            raise ValueError("takes no user or password: set mqtt.username, mqtt.password_env")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as error:
            raise ValueError(f"bad port: {error}") from None
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.broker).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.broker)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def uses_tls(self) -> bool:
        return self.tls is not None or urlsplit(self.broker).scheme == "mqtts"

    def password(self) -> SecretStr | None:
        return _secret("mqtt.password", self.password_env, self.password_file)


def _secret(where: str, env: str | None, file: Path | None) -> SecretStr | None:
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


class S3Settings(_Section):
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
        return _secret(
            "s3.secret_access_key", self.secret_access_key_env, self.secret_access_key_file
        )


class PostgresSettings(_Section):
    """The PostgreSQL case registry (used when `registry` is postgresql://...). The URL
    may leave the password out: PGPASSWORD, ~/.pgpass or `password_env` / `password_file`."""

    password_env: str | None = None
    password_file: Path | None = None
    pool_min: Annotated[int, Field(ge=1, le=100)] = 1
    pool_max: Annotated[int, Field(ge=1, le=100)] = 4
    connect_timeout_s: PositiveFloat = 5.0
    statement_timeout_ms: Annotated[int, Field(gt=0, le=2**31 - 1)] = 30_000  # PostgreSQL's int

    def password(self) -> SecretStr | None:
        return _secret("postgres.password", self.password_env, self.password_file)

    @model_validator(mode="after")
    def _pool_bounds(self) -> PostgresSettings:
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min is larger than pool_max")
        return self


class StoreSettings(_Section):
    commit_batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    commit_batch_bytes: PositiveInt = 16 * MiB
    commit_linger_ms: Annotated[float, Field(ge=0, le=1000)] = 2.0
    # Messages received but not yet committed; the MQTT thread waits beyond this.
    intake_queue_bytes: PositiveInt = 64 * MiB
    upload_ttl_s: PositiveInt = DAY
    orphan_ttl_s: PositiveInt = HOUR
    housekeeping_s: PositiveInt = MINUTE
    # Bounds of the local stores (gateway/store/levels.py): past them, new media (or new
    # reports) are refused with `server.retry_later` instead of filling the disk.
    spool_max_bytes: PositiveInt = 8 * GiB
    outbox_max_reports: PositiveInt = 200_000
    min_free_bytes: Annotated[int, Field(ge=0)] = 512 * MiB

    def limits(self) -> StoreLimits:
        return StoreLimits(self.spool_max_bytes, self.outbox_max_reports, self.min_free_bytes)


class LimitsSettings(_Section):
    envelope_bytes: PositiveInt = 64 * KiB
    chunk_bytes: PositiveInt = 256 * KiB
    photo_bytes: PositiveInt = 20 * MiB
    voice_bytes: PositiveInt = 20 * MiB
    media_per_report: PositiveInt = 8
    chunks_per_media: PositiveInt = 4096
    nmea_sentences: PositiveInt = 64
    track_fixes: PositiveInt = 3600
    # Each device's own budgets (gateway/devices/limits.py), so one cannot crowd out the
    # rest. 120 a minute: a terminal back from a day offline flushes its backlog at once.
    reports_per_device_per_minute: PositiveInt = 120
    media_bytes_per_device_per_hour: PositiveInt = 2 * GiB
    spool_bytes_per_device: PositiveInt = 512 * MiB  # chunks held for unfinished uploads

    def wire(self) -> WireLimits:
        return WireLimits(**self.model_dump(include={f.name for f in fields(WireLimits)}))

    def device(self) -> DeviceLimits:
        return DeviceLimits(
            self.reports_per_device_per_minute,
            self.media_bytes_per_device_per_hour,
            self.spool_bytes_per_device,
        )

    @model_validator(mode="after")
    def _budgets_fit(self) -> LimitsSettings:
        # Below these, a chunk (or a whole photo or voice note) could never be taken.
        if self.media_bytes_per_device_per_hour < self.chunk_bytes:
            raise ValueError("media_bytes_per_device_per_hour is smaller than chunk_bytes")
        if self.spool_bytes_per_device < max(self.photo_bytes, self.voice_bytes):
            raise ValueError("spool_bytes_per_device is smaller than photo_bytes or voice_bytes")
        return self


class PipelineSettings(_Section):
    # "process" puts the pipeline on its own core; "thread" keeps one process (tests).
    mode: Literal["process", "thread"] = "process"
    batch: Annotated[int, Field(ge=1, le=10_000)] = 200
    idle_poll_ms: Annotated[float, Field(gt=0, le=10_000)] = 5.0
    retry_first_s: PositiveFloat = 1.0
    retry_max_s: PositiveFloat = 300.0
    publish_timeout_s: PositiveFloat = 10.0
    # A terminal whose upload fails its checksum this often gets the report rejected.
    media_max_failures: PositiveInt = 3


class TaskSettings(_Section):
    """Tasks for terminals that backends insert into the registry (`sent_at` NULL)."""

    poll_s: Annotated[float, Field(gt=0, le=3600)] = 2.0  # how often the registry is asked
    batch: Annotated[int, Field(ge=1, le=10_000)] = 100  # tasks published per round


class MediaSettings(_Section):
    """Photo and voice derivatives, made in a pool of worker processes."""

    workers: Annotated[int, Field(ge=0, le=64)] = 0  # 0: one per CPU this process may use
    batch: Annotated[int, Field(ge=1, le=1000)] = 8  # reports whose media are in the pool at once
    timeout_s: PositiveFloat = 60.0  # per media file, hard: the worker is killed past it
    display_px: Annotated[int, Field(ge=64, le=8192)] = 1600
    thumb_px: Annotated[int, Field(ge=16, le=1024)] = 320
    photo_quality: Annotated[int, Field(ge=30, le=95)] = 80
    thumb_quality: Annotated[int, Field(ge=30, le=95)] = 75
    max_pixels: Annotated[int, Field(ge=1_000_000)] = 120_000_000
    voice_bitrate: Annotated[int, Field(ge=6_000, le=64_000)] = 16_000
    voice_complexity: Annotated[int, Field(ge=0, le=10)] = 0
    voice_frame_ms: Literal[20, 40, 60] = 60
    voice_max_duration_s: PositiveFloat = 600.0

    def photo(self) -> PhotoSettings:
        return PhotoSettings(
            display_px=self.display_px,
            thumb_px=self.thumb_px,
            quality=self.photo_quality,
            thumb_quality=self.thumb_quality,
            max_pixels=self.max_pixels,
        )

    def voice(self) -> VoiceSettings:
        return VoiceSettings(
            bitrate=self.voice_bitrate,
            complexity=self.voice_complexity,
            frame_ms=self.voice_frame_ms,
            max_duration_s=self.voice_max_duration_s,
            timeout_s=self.timeout_s,
        )


class FixCheckSettings(_Section):
    max_age_s: PositiveFloat = 120.0  # a fix older than this at the report's creation
    max_ahead_s: PositiveFloat = 60.0
    max_accuracy_m: PositiveFloat = 50.0
    max_hdop: PositiveFloat = 5.0
    max_speed_mps: PositiveFloat = 50.0
    agreement_m: PositiveFloat = 50.0  # terminal fix against its own NMEA

    def rules(self) -> FixChecks:
        return FixChecks(**self.model_dump())


class GeoSettings(_Section):
    """The city's layers. Defaults are the shipped, APPROXIMATE files under config/."""

    segments: Path | None = None  # GeoJSON, a feature per segment_id of `segment_table`
    segment_table: Path | None = None
    districts: Path | None = None
    district_table: Path | None = None
    grid: Path | None = None  # the city's unit grid (GeoJSON with grid_code); else generated
    grid_cell_m: Annotated[float, Field(ge=10, le=1000)] = 100.0
    grid_area_code: Annotated[str, Field(pattern=r"^[0-9]{6}$")] = "320600"
    # south, west, north, east of the generated grid (the three covered districts)
    grid_extent: tuple[Finite, Finite, Finite, Finite] = (31.88, 120.76, 32.12, 121.02)
    match_tolerance_m: Annotated[float, Field(gt=0, le=500)] = 30.0
    default_units: dict[str, str] = {
        "崇川区": "崇川区城市管理监督指挥中心",
        "港闸区": "港闸区城市管理监督指挥中心",
        "开发区": "开发区城市管理监督指挥中心",
    }
    checks: FixCheckSettings = FixCheckSettings()

    def file(self, name: str) -> Path:
        configured: Path | None = getattr(self, name)
        shipped = {
            "segments": "segments.geojson",
            "segment_table": "responsibility_segments.csv",
            "districts": "districts.geojson",
            "district_table": "coverage.csv",
        }
        return configured or default_config_dir() / shipped[name]


class CodesSettings(_Section):
    profile: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "gbt30428"
    dir: Path | None = None


class AcceptanceSettings(_Section):
    timezone: str = "Asia/Shanghai"
    opens: time = time(8, 0)
    closes: time = time(18, 0)
    # How far a report's created_at (the terminal's clock) may lie after, or before, the
    # gateway's received_at before the report is flagged `clock.ahead` / `clock.behind`.
    # Behind allows for store and forward: a terminal may hold a report for days.
    created_at_max_ahead_s: PositiveFloat = 5.0 * MINUTE
    created_at_max_behind_s: PositiveFloat = 7.0 * DAY

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        # OSError: a directory such as "Asia", or a name too long for the file system
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class MetricsSettings(_Section):
    # HOST:PORT for /metrics (Prometheus) and /healthz; unset: no HTTP endpoint.
    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError("must look like HOST:PORT, e.g. 127.0.0.1:9464")
        return value

    def address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class LogSettings(_Section):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class GatewayConfig(_Section):
    data_dir: Path = Path("var/gateway")
    # Where objects go: a directory path, file:///path, or s3://BUCKET[/PREFIX] ([s3]).
    objects: str | None = None
    # The case registry: sqlite:///path or postgresql://USER@HOST[:PORT]/DB ([postgres]).
    registry: str | None = None
    mqtt: MqttSettings = MqttSettings()
    s3: S3Settings = S3Settings()
    postgres: PostgresSettings = PostgresSettings()
    store: StoreSettings = StoreSettings()
    limits: LimitsSettings = LimitsSettings()
    pipeline: PipelineSettings = PipelineSettings()
    tasks: TaskSettings = TaskSettings()
    media: MediaSettings = MediaSettings()
    geo: GeoSettings = GeoSettings()
    codes: CodesSettings = CodesSettings()
    acceptance: AcceptanceSettings = AcceptanceSettings()
    metrics: MetricsSettings = MetricsSettings()
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
        return ZoneInfo(self.acceptance.timezone)

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
        parts = urlsplit(value)
        # Messages never echo the URL: it may hold a password.
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

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The registry URL may hold a password (postgresql://USER:PASSWORD@HOST/DB).
        for name, value in super().__repr_args__():
            secret = name == "registry" and isinstance(value, str)
            yield name, redact_url(value) if secret else value


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


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
