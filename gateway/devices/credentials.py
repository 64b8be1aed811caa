"""The broker accounts of the gateway and of a backend, and where their passwords live.

    DATA_DIR/credentials/gateway.password   the gateway's own (0600); `gateway run
                                            --data-dir DATA_DIR` logs in with it
    DATA_DIR/credentials/backend.password   a backend's (0600), to hand to the backend

`gateway broker-config` makes them once and keeps them on later runs; the registry holds
only their hashes. A config that names `mqtt.username` itself overrides all of this.
With an `mqtts://` broker the gateway likewise trusts the CA of `DATA_DIR/pki/ca.crt`
(`broker-config --tls`), unless the config names `mqtt.tls.ca_file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.devices.atomic import write_atomic
from gateway.devices.device_registry import ACCOUNT_USERNAMES, DeviceRegistry, Role
from gateway.devices.passwords import hash_password, new_password
from gateway.devices.tls_files import ca_cert_path
from gateway.transports.mqtt_settings import TlsSettings

ROLES: tuple[Role, ...] = ("gateway", "backend")


def password_path(data_dir: Path, role: Role) -> Path:
    return data_dir / "credentials" / f"{role}.password"


@dataclass(frozen=True, slots=True)
class AccountFile:
    role: Role
    username: str
    path: Path
    made: bool  # a new password was made this time


def ensure_accounts(registry: DeviceRegistry, data_dir: Path) -> list[AccountFile]:
    """Each account with a password file and a matching hash in the registry; a password
    is made only when its file is missing (or the registry lacks the account)."""
    known = {account.role for account in registry.accounts()}
    result = []
    for role in ROLES:
        path = password_path(data_dir, role)
        made = role not in known or not path.exists()
        if made:
            password = new_password()
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(path, password + "\n")
            registry.set_account(role, hash_password(password))
        result.append(AccountFile(role, ACCOUNT_USERNAMES[role], path, made))
    return result


def with_own_credentials(config: GatewayConfig) -> GatewayConfig:
    """The gateway's broker login and CA from its data directory, unless the config names
    its own."""
    mqtt = config.mqtt
    update: dict[str, object] = {}
    path = password_path(config.data_dir, "gateway")
    named = mqtt.username is not None or mqtt.password_env or mqtt.password_file
    if not named and path.exists():
        update.update(username=ACCOUNT_USERNAMES["gateway"], password_file=path)
    ca = ca_cert_path(config.data_dir)
    if mqtt.uses_tls and (mqtt.tls is None or mqtt.tls.ca_file is None) and ca.exists():
        tls = mqtt.tls or TlsSettings()
        update["tls"] = tls.model_copy(update={"ca_file": ca})
    if not update:
        return config
    return config.model_copy(update={"mqtt": mqtt.model_copy(update=update)})
