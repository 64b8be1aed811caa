"""The fast tier starts no server: a test not marked `integration` that starts one fails.

What counts as starting a server (`server_in`): Mosquitto, PostgreSQL (`initdb`,
`pg_ctl start`, `postgres`), the S3 server (`tests/s3_server.py`, moto's `moto_server`),
gpsd and gpsfake, and the gateway as a process (`gateway run`, `gateway demo`). Tools
that do their job and exit (`mosquitto_passwd`, `pg_ctl status`, `openssl`, the gateway's
other commands) do not count, nor does a pty the simulator feeds.

Two watches, both installed for the whole session by `tests/conftest.py`, armed only
while a test that is not `integration` runs (its set-up, call and tear-down):

- An audit hook (PEP 578) sees every process this interpreter launches, whoever launches
  it (`gateway.harness.mosquitto`, `tests/servers.py`, gpsfake, `GatewayProcess`, the
  test itself) and by whatever means (`subprocess`, `asyncio`, `os.exec*`,
  `os.posix_spawn`, `os.system`). Armed, it raises `ServerStarted` before the server
  exists, and records it, so the test fails even if the code under test swallowed the
  exception.
- A watcher thread looks at this process's descendants every 0.1 s while armed, and at
  the end of each phase, for a server started one step removed (by a command the test
  ran, such as `firmware-sim` or a script). One that lives less than 0.1 s may slip
  past, as may one that detaches from its parent (a postmaster `pg_ctl` started); a
  server a test talks to lives longer, and `pg_ctl` run from this process is caught by
  the audit hook.

The guard holds in every run, the full one included: a test that starts a server
without the `integration` mark fails there as well as in the fast tier.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GUARD", "ServerStarted", "server_in"]

SERVER_PROGRAMS = frozenset(
    {"mosquitto", "postgres", "postmaster", "initdb", "gpsd", "gpsfake", "moto_server"}
)
SERVER_SCRIPTS = frozenset({"s3_server.py", "gpsfake", "moto_server"})
GATEWAY_SERVICES = frozenset({"run", "demo"})  # `gateway run`, `gateway demo`
WRAPPERS = frozenset({"runuser", "sudo", "su", "env", "setsid", "nohup", "nice", "stdbuf"})
SHELLS = frozenset({"sh", "bash", "dash"})
PYTHON_OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "-Q"})
EVENTS = frozenset({"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system"})
WATCH_EVERY_S = 0.1


class ServerStarted(Exception):
    """A test outside the `integration` tier started a server."""


def _name(arg: str) -> str:
    return os.path.basename(arg)


def _unwrap(argv: list[str]) -> list[str]:
    """The command a wrapper runs: `runuser -u postgres -- CMD`, `env A=1 CMD`, ..."""
    while argv and _name(argv[0]) in WRAPPERS:
        if "--" in argv:
            argv = argv[argv.index("--") + 1 :]
            continue
        rest = argv[1:]
        while rest and (rest[0].startswith("-") or "=" in rest[0]):
            rest = rest[1:]
        argv = rest
    return argv


def _first_positional(args: list[str]) -> str | None:
    return next((arg for arg in args if not arg.startswith("-")), None)


def _python_server(args: list[str]) -> str | None:
    """The server an interpreter's command line starts (a script's name or `-m module`)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-c":
            return None
        if arg == "-m" and index + 1 < len(args):
            module, rest = args[index + 1], args[index + 2 :]
            if module in ("moto.server", "moto"):
                return "moto_server"
            if module == "gateway" and _first_positional(rest) in GATEWAY_SERVICES:
                return f"gateway {_first_positional(rest)}"
            return None
        if not arg.startswith("-"):
            return _name(arg) if _name(arg) in SERVER_SCRIPTS else None
        index += 2 if arg in PYTHON_OPTIONS_WITH_VALUE else 1
    return None


def server_in(command: Sequence[str | bytes | os.PathLike[Any]] | str | bytes) -> str | None:
    """The server a command line starts, or None."""
    if isinstance(command, (str, bytes)):
        text = os.fsdecode(command)
        try:
            argv = shlex.split(text)
        except ValueError:
            argv = text.split()
    else:
        argv = [os.fsdecode(arg) for arg in command]
    argv = _unwrap(argv)
    if not argv:
        return None
    program, args = _name(argv[0]), argv[1:]
    if program in SHELLS and len(args) >= 2 and args[0] == "-c":
        return server_in(args[1])
    if program in SERVER_PROGRAMS:
        return program
    if program == "pg_ctl" and ({"start", "restart"} & set(args)):
        return "pg_ctl start"
    if program == "gateway" and _first_positional(args) in GATEWAY_SERVICES:
        return f"gateway {_first_positional(args)}"
    if program.startswith("python"):
        return _python_server(args)
    return None


def _command_of(event: str, args: tuple[Any, ...]) -> Any:
    if event == "subprocess.Popen":  # (executable, args, cwd, env)
        return args[1]
    if event in ("os.exec", "os.posix_spawn", "os.spawn"):  # (path, argv, env) or (mode, ...)
        return args[2] if event == "os.spawn" else args[1]
    return args[0]  # os.system: (command,)


# --- the descendants of this process -----------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _descendant_servers() -> dict[tuple[int, str], str]:
    """Servers among this process's descendants: (pid, start time) -> what it is."""
    servers: dict[tuple[int, str], str] = {}
    pending, seen = _children(os.getpid()), set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            continue
        what = server_in([arg for arg in argv if arg])
        if what is not None:
            servers[(pid, started)] = (
                f"{what} (pid {pid}: {b' '.join(argv).decode(errors='replace')[:200]})"
            )
        pending += _children(pid)
    return servers


# --- the guard ---------------------------------------------------------------------------


@dataclass
class Guard:
    """Armed while a test outside the `integration` tier runs; keeps what it caught."""

    armed_for: str | None = None  # the node id of the test it is armed for
    caught: list[tuple[str, str]] = field(default_factory=list)  # (node id, what)
    started_by_integration: int = 0
    _known: dict[tuple[int, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # guards `caught`
    _watching: threading.Lock = field(default_factory=threading.Lock)  # guards `_known`
    _wake: threading.Event = field(default_factory=threading.Event)
    _installed: bool = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        sys.addaudithook(self._audit)  # cannot be removed: it does nothing unless armed
        threading.Thread(target=self._watch, name="server-guard", daemon=True).start()

    @contextmanager
    def armed(self, nodeid: str | None) -> Iterator[list[str]]:
        """Armed for `nodeid` inside the block (None: allowed to start servers); the list
        holds, after the block, the servers it started."""
        if nodeid is not None:
            with self._watching:
                self._known = _descendant_servers()  # an integration test's, still going
        with self._lock:
            before = len(self.caught)
        self.armed_for = nodeid
        self._wake.set()
        started: list[str] = []
        try:
            yield started
        finally:
            if nodeid is not None:
                self._check_descendants(nodeid)
            self.armed_for = None
            self._wake.clear()
            with self._lock:
                started += [what for _, what in self.caught[before:]]

    @contextmanager
    def expecting(self) -> Iterator[list[str]]:
        """For the guard's own tests: what it catches in the block is handed over, not
        held against the test."""
        with self._lock:
            before = len(self.caught)
        handed: list[str] = []
        try:
            yield handed
        finally:
            with self._lock:
                handed += [what for _, what in self.caught[before:]]
                del self.caught[before:]

    def _record(self, nodeid: str, what: str) -> None:
        with self._lock:
            self.caught.append((nodeid, what))

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in EVENTS:
            return
        try:
            what = server_in(_command_of(event, args))
        except Exception:  # noqa: BLE001 - never break a launch the guard cannot read
            return
        if what is None:
            return
        nodeid = self.armed_for
        if nodeid is None:
            self.started_by_integration += 1
            return
        self._record(nodeid, what)
        raise ServerStarted(
            f"{nodeid} started {what}, but is not marked `integration`:"
            " the fast tier (`make unit`) starts no server"
        )

    def _check_descendants(self, nodeid: str) -> None:
        with self._watching:
            for key, what in _descendant_servers().items():
                if key not in self._known:
                    self._known[key] = what
                    self._record(nodeid, what)

    def _watch(self) -> None:
        while True:
            self._wake.wait()
            nodeid = self.armed_for
            if nodeid is not None:
                self._check_descendants(nodeid)
            time.sleep(WATCH_EVERY_S)


GUARD = Guard()
