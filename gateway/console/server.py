"""The console on a thread of `gateway run`: waitress serving the Flask application.

waitress is a pure-Python production WSGI server (a fixed pool of worker threads, no
fork), which suits a gateway that is already a set of threads around its intake; a city
puts a TLS reverse proxy in front of it (docs/console.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack

from structlog.typing import FilteringBoundLogger
from waitress.server import create_server

from gateway.cases.evaluation import class_labels
from gateway.cases.timekeeping import timekeeper
from gateway.config import GatewayConfig
from gateway.console.accounts import open_accounts
from gateway.console.app import BulletinNames, Console, MapLayers, create_app
from gateway.console.sources import InstanceStatus, open_sources
from gateway.geo.grid import RegularGrid

THREADS = 4


def map_layers(config: GatewayConfig) -> MapLayers:
    geo = config.geo
    south, west, north, east = geo.grid_extent
    return MapLayers(
        districts=geo.file("districts"),
        segments=geo.file("segments"),
        segment_table=geo.file("segment_table"),
        gcj02=config.console.tiles_datum == "gcj02",
        tiles=config.console.tiles,
        grid=RegularGrid(south, west, north, east, geo.grid_cell_m, geo.grid_area_code),
        grid_file=geo.grid,
    )


class ConsoleServer:
    def __init__(
        self,
        config: GatewayConfig,
        log: FilteringBoundLogger,
        status: Callable[[], InstanceStatus] | None = None,
    ) -> None:
        address = config.console.address()
        if address is None:
            raise ValueError("no [console] listen address")
        self.log = log
        self._resources = ExitStack()
        sources = self._resources.enter_context(open_sources(config))
        accounts = open_accounts(config)
        self._resources.callback(accounts.close)
        app = create_app(Console(
            sources, accounts, config.console, map_layers(config), log, status,
            clock=timekeeper(config.cases, config.acceptance.zone),
            cases=config.cases,
            class_names=_class_names(config),
            names=_bulletin_names(config),
        ))  # fmt: skip
        self.server = create_server(
            app,
            host=address[0],
            port=address[1],
            threads=THREADS,
            ident="cgt-console",
            # Forwarded headers are read by ProxyFix, for the configured proxies only.
            clear_untrusted_proxy_headers=True,
        )
        self._thread = threading.Thread(target=self.server.run, name="console", daemon=True)

    @property
    def url(self) -> str:
        host = str(self.server.effective_host)  # type: ignore[union-attr]
        return f"http://{host}:{self.server.effective_port}"  # type: ignore[union-attr]

    def start(self) -> None:
        self._thread.start()
        self.log.info("console.listening", url=self.url)

    def stop(self) -> None:
        self.server.close()
        self._thread.join(10)
        self._resources.close()


def _class_names(config: GatewayConfig) -> dict[str, str]:
    """ "event:0102" → "事件 0102 暴露垃圾", for statistics and bulletins by class."""
    from gateway.normalize.codes import load_profile  # noqa: PLC0415 - the console's only

    return class_labels(load_profile(config.codes_dir, config.codes.profile))


def _bulletin_names(config: GatewayConfig) -> BulletinNames:
    """The bulletin's city and issuer (`[bulletin]`)."""
    return BulletinNames(config.bulletin.city, config.bulletin.issued_by)
