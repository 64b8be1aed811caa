"""Where the TLS files live, and making them from the gateway's CA.

    DATA_DIR/pki/ca.crt        the CA terminals and the gateway trust (public)
    DATA_DIR/pki/ca.key        its key (0600): signs the broker's and terminals' certificates
    CONF_DIR/tls/ca.crt        a copy, for the broker (verifies terminals' certificates)
    CONF_DIR/tls/server.crt    the broker's certificate, for the host names given
    CONF_DIR/tls/server.key    its key (0600)
    CONF_DIR/tls/crl.pem       certificates of suspended and revoked terminals (with a
                               client-certificate listener; rewritten by each change)
    OUT/DEVICE.crt, .key       a terminal's certificate (`gateway devices cert`)

`gateway broker-config --tls` makes a CA the first time (a throwaway one, fine for a
trial or the demo) or imports the city's (`--ca-cert`/`--ca-key`), and keeps it on
later runs; `gateway run` with an `mqtts://` broker trusts `DATA_DIR/pki/ca.crt` unless
the config names another CA.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from gateway.devices.atomic import write_atomic
from gateway.devices.device_registry import DeviceRegistry
from gateway.devices.pki import (
    Issued,
    PkiError,
    fingerprint,
    issue_client,
    issue_server,
    load_ca,
    make_crl,
    new_ca,
    not_after,
    serial_number,
)
from gateway.harness.mosquitto import ListenerTls

PKI_DIR = "pki"
TLS_DIR = "tls"
PUBLIC = 0o644
PRIVATE = 0o600


def ca_cert_path(data_dir: Path) -> Path:
    return data_dir / PKI_DIR / "ca.crt"


def ca_key_path(data_dir: Path) -> Path:
    return data_dir / PKI_DIR / "ca.key"


@dataclass(frozen=True, slots=True)
class CaFiles:
    ca: Issued
    cert_path: Path
    made: bool  # made (or imported) this time, not found from an earlier run


def ensure_ca(
    data_dir: Path, *, import_cert: Path | None = None, import_key: Path | None = None
) -> CaFiles:
    """The gateway's CA: imported when files are given, else the one kept, else a new one."""
    cert_path, key_path = ca_cert_path(data_dir), ca_key_path(data_dir)
    if import_cert is not None or import_key is not None:
        if import_cert is None or import_key is None:
            raise PkiError("importing a CA needs both its certificate and its key")
        ca = load_ca(_read(import_cert), _read(import_key))
    elif cert_path.exists() or key_path.exists():
        return CaFiles(load_ca(_read(cert_path), _read(key_path)), cert_path, made=False)
    else:
        ca = new_ca()
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(key_path, ca.key_pem.decode(), PRIVATE)
    write_atomic(cert_path, ca.cert_pem.decode(), PUBLIC)
    return CaFiles(ca, cert_path, made=True)


def own_ca(data_dir: Path) -> Issued:
    """The CA `broker-config --tls` made or imported; a clear error when there is none."""
    cert_path = ca_cert_path(data_dir)
    if not cert_path.exists():
        raise PkiError(f"no CA at {cert_path}: run `gateway broker-config --tls` first")
    return load_ca(_read(cert_path), _read(ca_key_path(data_dir)))


def write_broker_tls(conf_dir: Path, ca: Issued, hostnames: list[str]) -> ListenerTls:
    """The broker's certificate (made afresh each time: host names may have changed)."""
    directory = conf_dir / TLS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    server = issue_server(ca, hostnames)
    files = ListenerTls(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    write_atomic(files.ca_file, ca.cert_pem.decode(), PUBLIC)
    write_atomic(files.cert_file, server.cert_pem.decode(), PUBLIC)
    write_atomic(files.key_file, server.key_pem.decode(), PRIVATE)
    return files


def crl_path(conf_dir: Path) -> Path:
    return conf_dir / TLS_DIR / "crl.pem"


def write_crl(conf_dir: Path, ca: Issued, registry: DeviceRegistry) -> Path:
    path = crl_path(conf_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, make_crl(ca, registry.withheld_serials()).decode(), PUBLIC)
    return path


def refresh_crl(conf_dir: Path, registry: DeviceRegistry) -> None:
    """Rewrite the revocation list if the broker has one (a client-certificate listener)."""
    if crl_path(conf_dir).exists():
        write_crl(conf_dir, own_ca(registry.data_dir), registry)


def write_device_cert(
    out_dir: Path, device_id: str, registry: DeviceRegistry, days: int
) -> list[Path]:
    """A terminal's certificate and key, and the CA it checks the broker with; recorded in
    the registry so that suspending or revoking the device revokes the certificate."""
    ca = own_ca(registry.data_dir)
    issued = issue_client(ca, device_id, days)
    cert_pem = issued.cert_pem
    registry.add_certificate(
        device_id, serial_number(cert_pem), fingerprint(cert_pem), not_after(cert_pem)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert, key = out_dir / f"{device_id}.crt", out_dir / f"{device_id}.key"
    trust = out_dir / "ca.crt"
    write_atomic(key, issued.key_pem.decode(), PRIVATE)
    write_atomic(cert, issued.cert_pem.decode(), PUBLIC)
    write_atomic(trust, ca.cert_pem.decode(), PUBLIC)
    return [cert, key, trust]


def default_hostnames(bind: str) -> list[str]:
    """Names terminals may reach the broker by: this machine's, loopback, the bound address."""
    names = [socket.getfqdn(), socket.gethostname(), "localhost", "127.0.0.1"]
    if bind not in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        names.insert(0, bind)
    return list(dict.fromkeys(name for name in names if name))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise PkiError(f"cannot read {path}: {error.strerror}") from None
