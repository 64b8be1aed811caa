"""Real servers for the tests and the benchmarks: PostgreSQL, and S3 (moto's).

- `PostgresCluster`: a throwaway cluster of the Debian packages' newest PostgreSQL, in a
  temporary directory, on a free loopback port. Run as root, it runs as `postgres`
  (PostgreSQL refuses root); otherwise as the current user. Trust authentication.
- `S3Server`: moto's S3 server in a subprocess (`tests/s3_server.py`) on a free loopback
  port, whose listener can be taken away and brought back with its buckets and objects
  kept (`outage()`, `resume()`).

Both are context managers and clean up after themselves, also at interpreter exit; a
run that was killed outright leaves a temporary directory behind, which the next start
of the same kind of server reaps (stopping a PostgreSQL still running in it).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import boto3
import botocore.config
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from gateway.harness.gateway_process import end_process, wait_until
from gateway.harness.mosquitto import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["PostgresCluster", "S3Server", "find_postgres_bin"]

POSTGRES_PREFIX = "cgt-pg-"
S3_PREFIX = "cgt-s3-"
OWNER_FILE = "cgt-owner.pid"
S3_SERVER_SCRIPT = Path(__file__).with_name("s3_server.py")


# --- shared --------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _at_exit(cleanup: Callable[[], None]) -> Callable[[], None]:
    """Run `cleanup` at interpreter exit, in this process only (not in a forked child)."""
    pid = os.getpid()

    def hook() -> None:
        if os.getpid() == pid:
            cleanup()

    atexit.register(hook)
    return hook


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])


def _make_root(prefix: str) -> Path:
    """A private temporary directory, marked with the process that owns it."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / OWNER_FILE).write_text(f"{os.getpid()}\n", encoding="ascii")
    return root


def _reap_stale(prefix: str, stop: Callable[[Path], None]) -> None:
    """Remove temporary directories of `prefix` whose owning process is gone."""
    for root in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((root / OWNER_FILE).read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue  # not ours, or being made right now
        if owner == os.getpid() or _alive(owner):
            continue
        stop(root)
        shutil.rmtree(root, ignore_errors=True)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


# --- PostgreSQL ----------------------------------------------------------------------


def find_postgres_bin() -> Path:
    """The newest `/usr/lib/postgresql/<version>/bin` holding the server's programs."""

    def version(bin_dir: Path) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in bin_dir.parent.name.split("."))
        except ValueError:
            return (-1,)

    candidates = [initdb.parent for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not candidates:
        raise FileNotFoundError(
            "no PostgreSQL server in /usr/lib/postgresql/*/bin (Debian package `postgresql`;"
            " tools/system-deps.sh installs it)"
        )
    return max(candidates, key=version)


def _stop_stale_postgres(root: Path) -> None:
    """Immediate shutdown of a PostgreSQL left running in `root` by a killed run."""
    try:
        pid = int((root / "data" / "postmaster.pid").read_text(encoding="ascii").split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if str(root / "data").encode() not in cmdline:
        return  # the pid was reused: not our postmaster
    try:
        os.kill(pid, signal.SIGQUIT)
    except (ProcessLookupError, PermissionError):
        return
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not _alive(pid), 10, f"stale postmaster {pid}")


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free loopback port.

    `start()` runs initdb the first time (about a second), then starts the server
    (a fraction of a second); `stop()` is a fast shutdown that keeps the data, so `start()`
    brings it back on the same port; `kill()` is an immediate shutdown (like a crash:
    recovery on the next start); `close()` stops it and removes everything. The data
    directory lives in a temporary directory of its own, since when run as root the
    server runs as `postgres`, which must reach it.
    """

    def __init__(self, port: int | None = None) -> None:
        self._port = port if port is not None else free_port()
        self._port_chosen = port is not None
        self._root: Path | None = None
        self._bin = find_postgres_bin()
        self._as_root = os.geteuid() == 0
        self.user = "postgres" if self._as_root else pwd.getpwuid(os.geteuid()).pw_name
        self._exit_hook: Callable[[], None] = self.close

    # -- where things are

    @property
    def port(self) -> int:
        return self._port

    @property
    def version(self) -> str:
        return self._bin.parent.name

    @property
    def root(self) -> Path:
        if self._root is None:
            raise RuntimeError("the cluster was not started")
        return self._root

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self._port}/{database}"

    # -- lifecycle

    def start(self, timeout_s: float = 30) -> Self:
        """Start the server (initdb first, the first time); nothing if it is running."""
        if self._root is not None:
            if not self.running:
                self._start(timeout_s)
            return self
        _reap_stale(POSTGRES_PREFIX, _stop_stale_postgres)
        self._root = _make_root(POSTGRES_PREFIX)
        self._exit_hook = _at_exit(self.close)
        try:
            self._initdb()
            self._start(timeout_s)
        except BaseException:
            self.close()
            raise
        return self

    def stop(self, timeout_s: float = 30) -> None:
        """Fast shutdown: sessions are ended, the data is kept. Nothing if not running."""
        self._shutdown("fast", timeout_s)

    def kill(self) -> None:
        """Immediate shutdown, like a crash: the next start recovers from the WAL."""
        self._shutdown("immediate", 30)

    def restart(self, timeout_s: float = 30) -> Self:
        self.stop(timeout_s)
        return self.start(timeout_s)

    def close(self) -> None:
        """Stop the server, whatever it takes, and remove its directory."""
        atexit.unregister(self._exit_hook)
        if self._root is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                try:
                    self.stop(timeout_s=15)
                except (RuntimeError, subprocess.SubprocessError):
                    self.kill()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    @property
    def running(self) -> bool:
        if self._root is None:
            return False
        return self._pg_ctl("status", timeout_s=10).returncode == 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- databases

    def connect(self, database: str = "postgres") -> psycopg.Connection[TupleRow]:
        """An autocommit connection (the caller closes it)."""
        return psycopg.connect(self.dsn(database), autocommit=True, connect_timeout=10)

    def create_database(self, name: str) -> str:
        """Create an empty database; its DSN."""
        if not 0 < len(name.encode()) <= 63:
            raise ValueError(f"a database name has 1 to 63 bytes: {name!r}")
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the sessions still connected to it."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # -- internals

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self._bin / program), *args]
        if self._as_root:
            return ["runuser", "-u", "postgres", "--", *command]
        return command

    def _run(self, command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=self.root,  # the server's user may not be able to reach ours
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def _pg_ctl(
        self, action: str, *args: str, timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        return self._run(
            self._command("pg_ctl", action, "-D", str(self.data_dir), *args), timeout_s
        )

    def _start(self, timeout_s: float) -> None:
        for _ in range(3):
            result = self._pg_ctl(
                "start",
                "-w",
                f"-t{int(timeout_s)}",
                "-l",
                str(self.log_path),
                "-o",
                f"-p {self._port} -k {self.root / 'socket'}"
                " -c listen_addresses=127.0.0.1 -c fsync=on",
                timeout_s=timeout_s + 10,
            )
            if result.returncode == 0:
                return
            log = _tail(self.log_path)
            if "could not bind" in log and not self._port_chosen:
                self._port = free_port()  # lost the race for the free port: once more
                continue
            break
        raise RuntimeError(
            f"PostgreSQL did not start ({result.returncode}): {result.stdout}{result.stderr}"
            f"\n--- {self.log_path} ---\n{log}"
        )

    def _initdb(self) -> None:
        (self.root / "socket").mkdir()
        if self._as_root:
            account = pwd.getpwnam("postgres")
            for path in (self.root, self.root / "socket"):
                os.chown(path, account.pw_uid, account.pw_gid)
        result = self._run(
            self._command(
                "initdb",
                "-D",
                str(self.data_dir),
                "--auth=trust",
                f"--username={self.user}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # a throwaway cluster: no need to wait for the disk here
                "--no-instructions",
            ),
            timeout_s=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}): {result.stderr}")

    def _shutdown(self, mode: str, timeout_s: float) -> None:
        if not self.running:
            return
        result = self._pg_ctl(
            "stop", "-w", f"-t{int(timeout_s)}", "-m", mode, timeout_s=timeout_s + 10
        )
        if result.returncode != 0 and self.running:
            raise RuntimeError(
                f"PostgreSQL did not stop ({mode}): {result.stdout}{result.stderr}"
                f"\n--- {self.log_path} ---\n{_tail(self.log_path)}"
            )


# --- S3 --------------------------------------------------------------------------------


def _stop_stale_s3(root: Path) -> None:
    """Nothing to stop: the server exits by itself once its parent is gone."""


def s3_gateway_settings(endpoint_url: str, secret_env: str) -> str:
    """The `[s3]` section of a gateway config for a test server on `endpoint_url` (access
    key `testing`; the secret read from `secret_env`, which the caller sets to `testing`)."""
    return (
        "[s3]\n"
        f'endpoint_url = "{endpoint_url}"\n'
        'region = "us-east-1"\n'
        'access_key_id = "testing"\n'
        f'secret_access_key_env = "{secret_env}"\n'
        "path_style = true\n"
    )


def s3_client(
    endpoint_url: str, *, max_attempts: int = 3, connect_timeout: float = 1, read_timeout: float = 5
) -> S3Client:
    """A boto3 client for a throwaway S3 server: path-style, credentials `testing`."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the test servers' dummy credentials
        region_name="us-east-1",
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": max_attempts},
        ),
    )


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the S3 server received it (header names in lower case)."""

    method: str
    path: str  # BUCKET/KEY
    query: str
    headers: dict[str, str]


class S3Server:
    """moto's S3 server in a subprocess, on a free loopback port.

    `outage()` takes its listener away (connections are refused, open ones are cut) and
    `resume()` brings it back on the same port with every bucket and object still there.
    `reset()` empties it. `stop()` ends the process (and its data). The server's log (one
    line per request) goes to `log_path`, in `directory` if one is given, else in a
    temporary directory that `stop()` removes.
    """

    def __init__(self, directory: Path | None = None, port: int | None = None) -> None:
        self._directory = directory
        self._port = port if port is not None else free_port()
        self._port_chosen = port is not None
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._clients: list[S3Client] = []
        self._admin: S3Client | None = None
        self._exit_hook: Callable[[], None] = self.stop

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def root(self) -> Path:
        if self._root is None:
            raise RuntimeError("the S3 server was not started")
        return self._root

    @property
    def log_path(self) -> Path:
        return self.root / "s3-server.log"

    @property
    def running(self) -> bool:
        """The process is there (its listener may be down, in an outage)."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle

    def start(self, timeout_s: float = 30) -> Self:
        """Start the process and wait until it serves S3; nothing if it is running."""
        if self.running:
            return self
        if self._root is None:
            _reap_stale(S3_PREFIX, _stop_stale_s3)
            if self._directory is None:
                self._root = _make_root(S3_PREFIX)
            else:
                self._directory.mkdir(parents=True, exist_ok=True)
                self._root = self._directory
            self._exit_hook = _at_exit(self.stop)
        try:
            self._launch(timeout_s)
            # The first request makes moto build its S3 application: done here, so that
            # a client with short timeouts does not pay for it.
            self._admin_client().list_buckets()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End the process (its buckets and objects with it), close the clients made."""
        atexit.unregister(self._exit_hook)
        for client in self._clients:
            client.close()
        self._clients.clear()
        self._admin = None
        process, self._process = self._process, None
        if process is not None:
            end_process(process, 10)
        if self._root is not None and self._directory is None:
            shutil.rmtree(self._root, ignore_errors=True)
        self._root = None

    def outage(self, timeout_s: float = 10) -> None:
        """Take the listener away: connecting is refused until `resume()`."""
        self._switch(signal.SIGUSR1, "down", timeout_s)
        wait_until(lambda: not _accepts(self._port), timeout_s, "the S3 port to refuse")

    def resume(self, timeout_s: float = 10) -> None:
        """Bring the listener back on the same port, with the data as it was."""
        self._switch(signal.SIGUSR2, "up", timeout_s)
        wait_until(lambda: _accepts(self._port), timeout_s, "the S3 port to accept")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- S3

    def gateway_settings(self, secret_env: str) -> str:
        return s3_gateway_settings(self.endpoint_url, secret_env)

    def client(
        self, *, max_attempts: int = 3, connect_timeout: float = 1, read_timeout: float = 5
    ) -> S3Client:
        """A boto3 client for this server (path-style, credentials `testing`, us-east-1).

        `stop()` closes it, if the caller has not.
        """
        client = s3_client(
            self.endpoint_url,
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._clients.append(client)
        return client

    def create_bucket(self, name: str) -> None:
        self._admin_client().create_bucket(Bucket=name)

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every key in `bucket` with its content."""
        client = self._admin_client()
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                key = entry["Key"]
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                try:
                    found[key] = body.read()
                finally:
                    body.close()
        return found

    def reset(self) -> None:
        """Forget every bucket and object (moto's `/moto-api/reset`)."""
        self._moto_api("/moto-api/reset")

    @contextmanager
    def recording(self) -> Iterator[list[RecordedRequest]]:
        """Every S3 request the server receives within the block, as it received it
        (moto's request recorder): the list is filled when the block ends."""
        seen: list[RecordedRequest] = []
        self._moto_api("/moto-api/recorder/reset-recording")
        self._moto_api("/moto-api/recorder/start-recording")
        try:
            yield seen
        finally:
            self._moto_api("/moto-api/recorder/stop-recording")
            for entry in _json_stream(self._recording_path.read_text()):
                seen.append(
                    RecordedRequest(
                        entry["method"],
                        urlsplit(entry["url"]).path.lstrip("/"),
                        urlsplit(entry["url"]).query,
                        {name.lower(): value for name, value in entry["headers"].items()},
                    )
                )

    # -- internals

    def _moto_api(self, path: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
        try:
            connection.request("POST", path)
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"moto's {path} answered {response.status}")

    @property
    def _recording_path(self) -> Path:
        return self.root / "s3-requests.jsonl"

    def _admin_client(self) -> S3Client:
        if self._admin is None:
            self._admin = self.client(max_attempts=5, connect_timeout=2, read_timeout=30)
        return self._admin

    @property
    def _state_path(self) -> Path:
        return self.root / "s3-server.state"

    def _state(self) -> tuple[int, str]:
        try:
            generation, state = self._state_path.read_text(encoding="ascii").split()
        except (OSError, ValueError):
            return 0, ""
        return int(generation), state

    def _returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def _launch(self, timeout_s: float) -> None:
        for _ in range(3):
            if self._spawn(timeout_s):
                return
            if self._port_chosen or "Address already in use" not in _tail(self.log_path):
                break
            self._port = free_port()  # lost the race for the free port: once more
        raise RuntimeError(f"the S3 server exited:\n{_tail(self.log_path)}")

    def _spawn(self, timeout_s: float) -> bool:
        """Start the process; whether it came up (False: it exited)."""
        self._state_path.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-P",  # tests/ not first in sys.path: its modules would shadow others
                    str(S3_SERVER_SCRIPT),
                    "--port",
                    str(self._port),
                    "--state",
                    str(self._state_path),
                    "--parent-pid",
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MOTO_RECORDER_FILEPATH": str(self._recording_path)},
            )
        process = self._process
        wait_until(
            lambda: process.poll() is not None or self._state()[1] == "up",
            timeout_s,
            f"the S3 server to listen on {self._port} (log: {self.log_path})",
        )
        if process.poll() is not None:
            self._process = None
            return False
        return True

    def _switch(self, signum: signal.Signals, state: str, timeout_s: float) -> None:
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError("the S3 server is not running")
        generation = self._state()[0]
        self._process.send_signal(signum)
        wait_until(
            lambda: self._state()[0] > generation or self._returncode() is not None,
            timeout_s,
            f"the S3 server to go {state}",
        )
        if self._state()[1] != state:
            raise RuntimeError(
                f"the S3 server did not go {state} ({self._returncode()}):\n{_tail(self.log_path)}"
            )


def _json_stream(text: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of moto's recording, one after another. moto writes each request's
    object and its newline in two writes, from the server's threads at once, so two
    concurrent requests (the parts of a multipart upload) can leave `{…}{…}\n\n`."""
    decoder = json.JSONDecoder()
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return
        entry, at = decoder.raw_decode(text, at)
        yield entry
