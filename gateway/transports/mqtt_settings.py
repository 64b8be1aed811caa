"""`[mqtt]`: the broker the gateway talks to, its login, its session and TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from gateway.settings import DAY, PositiveInt, Section, read_secret


class TlsSettings(Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # Only for a test broker whose certificate names another host; never in production.
    insecure_skip_hostname: bool = False


class MqttSettings(Section):
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
        return read_secret("mqtt.password", self.password_env, self.password_file)
