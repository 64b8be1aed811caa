"""moto's S3 server in a process of its own, with a switch to take its listener away.

Run by `tests.servers.S3Server` as `python tests/s3_server.py --port N --state FILE
--parent-pid PID`; not meant to be run by hand, though it can be. Signals:

- SIGUSR1: an outage. The listener is shut and every open connection is cut (a server
  that goes away resets its keep-alive connections too); the port is kept bound but not
  listening, so connecting is refused, and nothing else can take the port meanwhile.
- SIGUSR2: the end of the outage: a new listener on the same port. moto keeps its
  buckets and objects in module globals, so they are all still there.
- SIGTERM, SIGINT, SIGHUP: exit. The process also exits when its parent has died, so a
  killed test run leaves no server behind.

After each change it writes `GENERATION STATE` (`up` or `down`) to the state file, so the
parent waits for the change itself rather than guessing from the port.

This is werkzeug's server with moto's application and request handler, as moto's own
`ThreadedMotoServer` makes it, plus a record of open connections to cut on an outage:
`ThreadedMotoServer.stop()` shuts only the listener, and HTTP/1.1 keep-alive connections
would go on being served.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import socket
import threading
from pathlib import Path

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

SIGNALS = {signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}

_connections: set[socket.socket] = set()
_connections_lock = threading.Lock()


class TrackingHandler(MotoRequestHandler):
    """moto's handler, with the connection it serves on record while it serves it."""

    def setup(self) -> None:
        super().setup()
        with _connections_lock:
            _connections.add(self.connection)

    def finish(self) -> None:
        with _connections_lock:
            _connections.discard(self.connection)
        super().finish()


class Listener:
    """moto's WSGI application behind werkzeug's threaded server, on and off."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._placeholder: socket.socket | None = None

    @property
    def up(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        self._server = make_server(
            self.host, self.port, self._app, threaded=True, request_handler=TrackingHandler
        )
        self._thread = threading.Thread(
            # polled for `shutdown()` every 50 ms rather than 500: outages begin sooner
            target=functools.partial(self._server.serve_forever, poll_interval=0.05),
            name="moto-listener",
            daemon=True,
        )
        self._thread.start()

    def stop(self, *, hold_port: bool) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()  # serve_forever returns and closes the listening socket
        self._thread.join()
        self._server = self._thread = None
        if hold_port:
            self._hold_port()
        with _connections_lock:
            connections = list(_connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # its handler may have closed it meanwhile
                connection.shutdown(socket.SHUT_RDWR)

    def _hold_port(self) -> None:
        """Bind the port without listening: connecting is refused, and no one else binds it."""
        placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            placeholder.bind((self.host, self.port))
        except OSError:
            placeholder.close()  # best effort: refused all the same, merely not reserved
        else:
            self._placeholder = placeholder

    def close(self) -> None:
        self.stop(hold_port=False)
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None


def write_state(path: Path, generation: int, state: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{generation} {state}\n", encoding="ascii")
    os.replace(partial, path)


def main() -> int:
    # Blocked before any thread exists, so that every thread inherits the mask and the
    # signals wait, pending, for the loop below.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args()
    parent_pid: int | None = args.parent_pid

    listener = Listener(args.host, args.port)
    listener.start()
    generation = 1
    write_state(args.state, generation, "up")
    try:
        while True:
            info = signal.sigtimedwait(SIGNALS, 1.0)
            if info is None:
                if parent_pid is not None and os.getppid() != parent_pid:
                    return 0  # orphaned: the test run that started us is gone
                continue
            if info.si_signo == signal.SIGUSR1:
                listener.stop(hold_port=True)
            elif info.si_signo == signal.SIGUSR2:
                listener.start()
            else:
                return 0
            generation += 1
            write_state(args.state, generation, "up" if listener.up else "down")
    finally:
        listener.close()


if __name__ == "__main__":
    raise SystemExit(main())
