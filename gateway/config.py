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
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from gateway.errors import ConfigError
from gateway.geo.checks import FixChecks
from gateway.media.photo import PhotoSettings
from gateway.media.voice import VoiceSettings
from gateway.protocols.payloads import KiB, MiB, WireLimits

SECOND = 1
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


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
    keepalive_s: PositiveInt = 30
    # The broker queues uplinks for the gateway's session while it is down; a week covers
    # a long weekend's outage. The broker's own queue limit bounds memory (see config/).
    session_expiry_s: PositiveInt = 7 * DAY
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
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError([f"mqtt.password_env: ${self.password_env} is not set"])
            return SecretStr(value)
        if self.password_file:
            return SecretStr(self.password_file.read_text(encoding="utf-8").strip())
        return None


class StoreSettings(_Section):
    commit_batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    commit_batch_bytes: PositiveInt = 16 * MiB
    commit_linger_ms: Annotated[float, Field(ge=0, le=1000)] = 2.0
    # Messages received but not yet committed; the MQTT thread waits beyond this.
    intake_queue_bytes: PositiveInt = 64 * MiB
    upload_ttl_s: PositiveInt = DAY
    orphan_ttl_s: PositiveInt = HOUR
    housekeeping_s: PositiveInt = MINUTE


class LimitsSettings(_Section):
    envelope_bytes: PositiveInt = 64 * KiB
    chunk_bytes: PositiveInt = 256 * KiB
    photo_bytes: PositiveInt = 20 * MiB
    voice_bytes: PositiveInt = 20 * MiB
    media_per_report: PositiveInt = 8
    chunks_per_media: PositiveInt = 4096
    nmea_sentences: PositiveInt = 64
    track_fixes: PositiveInt = 3600

    def wire(self) -> WireLimits:
        return WireLimits(**self.model_dump())


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
    grid_extent: tuple[float, float, float, float] = (31.88, 120.76, 32.12, 121.02)
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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class LogSettings(_Section):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class GatewayConfig(_Section):
    data_dir: Path = Path("var/gateway")
    # Where objects go: a directory path, file:///path, or (issue 5) s3://bucket/prefix.
    objects: str | None = None
    # The case registry: sqlite:///path or (issue 5) postgresql://...
    registry: str | None = None
    mqtt: MqttSettings = MqttSettings()
    store: StoreSettings = StoreSettings()
    limits: LimitsSettings = LimitsSettings()
    pipeline: PipelineSettings = PipelineSettings()
    media: MediaSettings = MediaSettings()
    geo: GeoSettings = GeoSettings()
    codes: CodesSettings = CodesSettings()
    acceptance: AcceptanceSettings = AcceptanceSettings()
    log: LogSettings = LogSettings()

    @property
    def objects_dir(self) -> Path:
        if self.objects is None:
            return self.data_dir / "objects"
        return Path(self.objects.removeprefix("file://"))

    @property
    def registry_path(self) -> Path:
        if self.registry is None:
            return self.data_dir / "registry.db"
        return Path(self.registry.removeprefix("sqlite://"))

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
        if value is not None and "://" in value and not value.startswith("file://"):
            raise ValueError("must be a directory or file:///path")
        return value

    @field_validator("registry")
    @classmethod
    def _registry_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("sqlite:///"):
            raise ValueError("must be sqlite:///path")
        return value


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
        except tomllib.TOMLDecodeError as error:
            raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
        data = _resolve_paths(data, path.parent)
    for dotted, value in (overrides or {}).items():
        _set(data, dotted.split("."), value)
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, text, path)) from None


_PATH_KEYS = (
    {("data_dir",), ("codes", "dir"), ("mqtt", "password_file")}
    | {("mqtt", "tls", key) for key in ("ca_file", "cert_file", "key_file")}
    | {("geo", key) for key in ("segments", "segment_table", "districts", "district_table", "grid")}
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


def _set(data: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = value


def _describe(error: ValidationError, text: str, path: Path | None) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        keys = [str(part) for part in item["loc"]]
        dotted = ".".join(keys) or "(top)"
        line = _line_of(text, keys)
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}{dotted}: {message}")
    return problems


def _line_of(text: str, keys: list[str]) -> int | None:
    """The line where a dotted key is set: its own `[table]` header, or `key =` inside the
    table that holds it."""
    if not text or not keys:
        return None
    own_header = _header(keys)
    parent_header = _header(keys[:-1]) if len(keys) > 1 else None
    assignment = re.compile(r"^\s*" + re.escape(keys[-1]) + r"\s*=")
    inside = parent_header is None
    for number, line in enumerate(text.splitlines(), start=1):
        if own_header.match(line):
            return number
        if re.match(r"^\s*\[", line):
            inside = parent_header is not None and parent_header.match(line) is not None
        elif inside and assignment.match(line):
            return number
    return None


def _header(keys: list[str]) -> re.Pattern[str]:
    return re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(re.escape, keys)) + r"\s*\]")
