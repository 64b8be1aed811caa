"""A complete Mosquitto configuration for the gateway's devices (`gateway broker-config`).

Listeners, the password file and ACL from the device registry, the accounts of the
gateway and a backend, a pid file for reloads, and with TLS the broker's certificate from
the gateway's CA. The demo configures its broker through the same function.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

from gateway.devices.broker_files import ACL_FILE, PASSWORD_FILE, PID_FILE, apply
from gateway.devices.credentials import AccountFile, ensure_accounts
from gateway.devices.device_registry import FILE_NAME, DeviceRegistry
from gateway.devices.tls_files import (
    CaFiles,
    default_hostnames,
    ensure_ca,
    write_broker_tls,
    write_crl,
)
from gateway.harness.mosquitto import Listener, ListenerTls, write_config


@dataclass(frozen=True, slots=True)
class TlsRequest:
    hostnames: tuple[str, ...] = ()  # names in the broker's certificate; () = this machine's
    # A second listener where terminals log in by client certificate (CN = device id).
    cert_port: int | None = None
    ca_cert: Path | None = None  # the city's CA to import instead of a throwaway one
    ca_key: Path | None = None


@dataclass(frozen=True, slots=True)
class BrokerSetup:
    conf: Path
    bind: str
    port: int
    user: str
    active_devices: int
    accounts: list[AccountFile]
    applied: str  # what happened to a running broker
    tls: ListenerTls | None = None
    ca: CaFiles | None = None
    hostnames: list[str] = field(default_factory=list)
    cert_port: int | None = None

    def describe(self) -> list[str]:
        out = self.conf.parent
        scheme = "mqtts" if self.tls else "mqtt"
        lines = [
            f"wrote {self.conf} ({scheme} listener {self.bind}:{self.port}, no anonymous"
            f" clients, runs as {self.user})",
            f"      {out / PASSWORD_FILE} ({self.active_devices} active devices and the accounts)",
            f"      {out / ACL_FILE} (each terminal confined to cgt/v1/<its id>/)",
        ]
        if self.tls is not None and self.ca is not None:
            origin = "new throwaway CA" if self.ca.made else "CA kept"
            lines.append(f"      {self.tls.cert_file} for {', '.join(self.hostnames)}")
            lines.append(f"CA {self.ca.cert_path} ({origin}): terminals and backends trust it")
        if self.cert_port is not None:
            lines.append(
                f"listener {self.bind}:{self.cert_port}: terminals log in by client certificate"
                " (`gateway devices cert`), the CN is their device id"
            )
        for account in self.accounts:
            state = "new password" if account.made else "password kept"
            lines.append(
                f"account {account.role:<8} {account.username:<12} {state} in {account.path}"
            )
        lines.append(f"start the broker: mosquitto -c {self.conf}")
        lines.append(self.applied)
        return lines


def configure_broker(
    data_dir: Path, out: Path, port: int, *, bind: str, tls: TlsRequest | None = None
) -> BrokerSetup:
    out, data_dir = out.resolve(), data_dir.resolve()
    registry = DeviceRegistry(data_dir / FILE_NAME)
    try:
        accounts = ensure_accounts(registry, data_dir)
        registry.set_broker_dir(out)
        listener_tls = ca = None
        hostnames: list[str] = []
        listeners = [Listener(port, bind)]
        if tls is not None:
            ca = ensure_ca(data_dir, import_cert=tls.ca_cert, import_key=tls.ca_key)
            hostnames = list(tls.hostnames) or default_hostnames(bind)
            listener_tls = write_broker_tls(out, ca.ca, hostnames)
            listeners = [Listener(port, bind, listener_tls)]
            if tls.cert_port is not None:
                crl = write_crl(out, ca.ca, registry)
                listeners.append(Listener(tls.cert_port, bind, listener_tls, crl))
        # Started as root, Mosquitto becomes this user: the one owning its files, and the
        # one whose `gateway devices` commands may signal it.
        user = pwd.getpwuid(os.geteuid()).pw_name
        conf = write_config(
            out,
            listeners,
            auth_lines=f"password_file {out / PASSWORD_FILE}\nacl_file {out / ACL_FILE}",
            allow_anonymous=False,
            run_as=user,
            pid_file=out / PID_FILE,
        )
        applied = apply(registry)
        active = len(registry.devices("active"))
    finally:
        registry.close()
    return BrokerSetup(
        conf=conf,
        bind=bind,
        port=port,
        user=user,
        active_devices=active,
        accounts=accounts,
        applied=applied.describe(),
        tls=listener_tls,
        ca=ca,
        hostnames=hostnames,
        cert_port=tls.cert_port if tls else None,
    )
