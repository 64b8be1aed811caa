"""Mosquitto for the demo and the tests: the project's config, rendered, and a process.

Production brokers are run by operators from a config written the same way (see
`docs/operations.md`); this module only saves them and the tests from repeating it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.harness.gateway_process import end_process
from gateway.settings import default_config_dir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class ListenerTls:
    """The broker's side of TLS: the CA that signed the terminals' and gateway's view of
    the broker (and, with client certificates, the terminals' certificates), and its own."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class Listener:
    port: int
    bind: str = "127.0.0.1"
    tls: ListenerTls | None = None
    # With a revocation list, terminals prove who they are by certificate, not password:
    # the certificate's CN becomes the username, so the ACL's `%u` patterns confine them
    # as before, and certificates on the list are refused at the handshake.
    client_certificates_crl: Path | None = None

    def render(self) -> str:
        lines = [f"listener {self.port} {self.bind}"]
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
                "tls_version tlsv1.2",  # the oldest still safe; TLS 1.3 is taken too
            ]
        if self.client_certificates_crl is not None:
            lines += [
                "require_certificate true",
                "use_identity_as_username true",
                f"crlfile {self.client_certificates_crl}",
            ]
        return "\n".join(lines)


def write_config(
    directory: Path,
    listeners: Sequence[Listener],
    *,
    auth_lines: str = "",
    allow_anonymous: bool = True,
    run_as: str | None = None,
    pid_file: Path | None = None,
) -> Path:
    """Render `config/mosquitto/mosquitto.conf.template` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    template = (default_config_dir() / "mosquitto" / "mosquitto.conf.template").read_text()
    if not listeners:
        raise ValueError("a broker needs at least one listener")
    if any(item.client_certificates_crl and item.tls is None for item in listeners):
        raise ValueError("client certificates need a TLS listener")
    text = template.format(
        listeners="\n\n".join(listener.render() for listener in listeners),
        allow_anonymous="true" if allow_anonymous else "false",
        auth_lines=auth_lines,
        user_line=f"user {run_as}" if run_as else "",
        # `gateway devices` sends SIGHUP to this pid to reload the password file and ACL.
        pid_line=f"pid_file {pid_file}" if pid_file else "",
        persistence_dir=directory / "data",
        log_dest=f"file {directory / 'mosquitto.log'}",
    )
    path = directory / "mosquitto.conf"
    path.write_text(text)
    return path


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("mosquitto is not installed (Debian package `mosquitto`)")


@dataclass
class Mosquitto:
    """A Mosquitto process on a loopback port with the project's config."""

    directory: Path
    port: int = field(default_factory=free_port)
    auth_lines: str = ""
    tls: bool = False  # the listener of `conf` speaks TLS (mqtts://)
    allow_anonymous: bool = True
    # A configuration written already (by `gateway broker-config`) instead of a rendered one.
    conf: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.conf or write_config(
            self.directory,
            [Listener(self.port)],
            auth_lines=self.auth_lines,
            allow_anonymous=self.allow_anonymous,
            # Started as root, Mosquitto drops to the `mosquitto` user, which cannot read a
            # test's or demo's private directory; it stays the user that started it.
            run_as="root" if os.geteuid() == 0 else None,
        )
        stderr = self.directory / "stderr.log"
        with stderr.open("ab") as errors:
            self.process = subprocess.Popen(  # noqa: S603 - our own binary and config
                [find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=errors
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = conf.parent / "mosquitto.log"
                found = stderr.read_text() + (log.read_text() if log.exists() else "")
                raise RuntimeError(f"mosquitto exited {self.process.returncode}: {found}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
            else:
                return self
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process, 10)
        self.process = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
