"""How simulated terminals prove who they are to the broker, as real ones do.

A fleet logs in one of three ways, as the broker is configured (docs/operations.md):

- no credentials (an open demo or test broker);
- a password per terminal: `--credentials FILE` holds `DEVICE_ID:PASSWORD` lines, as
  `gateway devices add` printed them; `--username` may still template the login
  (`term-{device_id}`), and a shared `--password` covers devices the file lacks;
- a client certificate per terminal: `--cert-dir DIR` holds `DEVICE_ID.crt` and
  `DEVICE_ID.key` (`gateway devices cert`); the broker takes the CN as the username.

`--ca-file` names the CA that signed the broker's certificate (`mqtts://` brokers); without
it the system's trust store is used.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEVICE_ID_FIELD = "{device_id}"  # in a username: each terminal logs in as itself


def for_device(username: str | None, device_id: str) -> str | None:
    """The username a device logs in with: `{device_id}` in it becomes the device's id."""
    return None if username is None else username.replace(DEVICE_ID_FIELD, device_id)


@dataclass(frozen=True, slots=True)
class Login:
    """What one terminal connects with."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext:
        """Verifies the broker by `ca_file` (or the system's CAs); presents the terminal's
        certificate when it has one."""
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True, slots=True)
class Identity:
    """The fleet's way of logging in; `login(device_id)` is one terminal's."""

    username: str | None = None  # may contain {device_id}
    password: str | None = field(default=None, repr=False)  # for every device the file lacks
    passwords: Mapping[str, str] = field(default_factory=dict, repr=False)
    ca_file: Path | None = None
    cert_dir: Path | None = None

    def login(self, device_id: str) -> Login:
        own = self.passwords.get(device_id)
        # A password issued to a device is for its own login, whatever else was said.
        username = for_device(self.username or (DEVICE_ID_FIELD if own else None), device_id)
        cert = key = None
        if self.cert_dir is not None:
            cert, key = self.cert_dir / f"{device_id}.crt", self.cert_dir / f"{device_id}.key"
        return Login(username, own or self.password, self.ca_file, cert, key)

    def public(self) -> dict[str, object]:
        """For a run's record: how the fleet logged in, no secret."""
        return {
            "username": self.username,
            "passwords_for": len(self.passwords),
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "cert_dir": str(self.cert_dir) if self.cert_dir else None,
        }


class CredentialsError(ValueError):
    """A credentials file that cannot be read as `DEVICE_ID:PASSWORD` lines."""


def read_credentials(path: Path) -> dict[str, str]:
    """`DEVICE_ID:PASSWORD` per line; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialsError(f"{path}: cannot read: {error}") from None
    passwords: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        device_id, colon, password = line.partition(":")
        if not colon or not device_id or not password:
            # The line itself may hold a password: say where, never what.
            raise CredentialsError(f"{path}:{number}: not DEVICE_ID:PASSWORD")
        passwords[device_id] = password
    return passwords


def write_credentials(path: Path, passwords: Mapping[str, str]) -> None:
    """The file `read_credentials` takes, readable by its owner only."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{device}:{word}\n" for device, word in passwords.items()))
