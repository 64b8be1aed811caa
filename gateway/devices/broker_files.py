"""Writing the broker's password file and ACL, and telling the running broker.

The files live in the directory `gateway broker-config` wrote (recorded in the
registry). Each change rewrites both (and, with a client-certificate listener, the
certificate revocation list) from the registry under a lock (so two commands at
once cannot leave the older state on disk), atomically (a broker reading mid-write sees
the old file or the new one), then sends SIGHUP to the broker named by its pid file:
Mosquitto reloads the password file and ACL on SIGHUP and disconnects clients whose
credentials no longer hold, so a revoked terminal is out within a second.
"""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.devices.acl import render_acl, render_passwords
from gateway.devices.atomic import write_atomic
from gateway.devices.device_registry import DeviceRegistry
from gateway.devices.passwords import hash_password, new_password
from gateway.devices.tls_files import refresh_crl

PASSWORD_FILE = "passwd"  # noqa: S105 - a file name; the file holds only hashes
ACL_FILE = "acl"
PID_FILE = "mosquitto.pid"
CONF_FILE = "mosquitto.conf"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Applied:
    conf_dir: Path | None  # None: no broker configured yet, nothing written
    reloaded_pid: int | None  # the broker that got SIGHUP, if one runs
    note: str  # what happened, for the operator

    def describe(self) -> str:
        return self.note


def apply(registry: DeviceRegistry) -> Applied:
    """Rewrite the broker's files from the registry and make a running broker reload."""
    conf_dir = registry.broker_dir()
    if conf_dir is None:
        return Applied(None, None, "no broker configured yet: run `gateway broker-config`")
    with _locked(conf_dir):
        accounts, devices = registry.accounts(), registry.devices()
        write_atomic(conf_dir / PASSWORD_FILE, render_passwords(devices, accounts))
        write_atomic(conf_dir / ACL_FILE, render_acl(accounts, devices))
        refresh_crl(conf_dir, registry)
        pid, why = reload_broker(conf_dir / PID_FILE)
    return Applied(conf_dir, pid, f"wrote {conf_dir}/{{{PASSWORD_FILE},{ACL_FILE}}}; {why}")


def with_new_password(
    registry: DeviceRegistry, store: Callable[[str], T]
) -> tuple[T, Applied, str]:
    """A new broker password: its hash stored by `store` (a device's or an account's), the
    broker's files rewritten and the broker reloaded, the registry closed. Returns what
    `store` gave, what was applied, and the password, for the caller to show once: only
    its hash is kept."""
    password = new_password()
    try:
        stored = store(hash_password(password))
        applied = apply(registry)
    finally:
        registry.close()
    return stored, applied, password


def reload_broker(pid_file: Path) -> tuple[int | None, str]:
    """SIGHUP to the Mosquitto whose pid the file holds; (pid or None, what happened)."""
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        return None, "no broker running (no pid file): it reads them when it starts"
    except ValueError:
        return None, f"{pid_file} holds no pid: reload the broker by hand (SIGHUP)"
    # A stale pid file may name a recycled pid: SIGHUP kills most programs.
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None, f"no broker running (pid {pid} is gone): it reads them when it starts"
    if name != "mosquitto":
        return None, f"pid {pid} of {pid_file} is {name!r}, not mosquitto: not signalled"
    try:
        os.kill(pid, signal.SIGHUP)
    except PermissionError:
        return None, f"not allowed to signal the broker (pid {pid}): reload it as its user"
    except ProcessLookupError:
        return None, f"no broker running (pid {pid} is gone): it reads them when it starts"
    return pid, f"broker reloaded (SIGHUP to pid {pid})"


@contextmanager
def _locked(conf_dir: Path) -> Iterator[None]:
    conf_dir.mkdir(parents=True, exist_ok=True)
    with (conf_dir / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
