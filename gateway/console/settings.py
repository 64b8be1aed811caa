"""`[console]`: where the console listens and how long a login lasts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.settings import HOUR, MINUTE, Listen, Section, listen_address


class ConsoleSettings(Section):
    # HOST:PORT for the console (`gateway run --console`); unset: no console. Put it
    # behind a TLS reverse proxy (docs/console.md) unless it listens on loopback only.
    listen: Listen | None = None
    # A login ends after this long without a request, and after `session_max_s` anyhow.
    session_idle_s: Annotated[float, Field(ge=MINUTE, le=24 * HOUR)] = 30 * MINUTE
    session_max_s: Annotated[float, Field(ge=MINUTE, le=7 * 24 * HOUR)] = 12 * HOUR
    # The session cookie only over HTTPS: true behind a TLS proxy, which a city runs.
    secure_cookie: bool = False
    # How many reverse proxies in front set X-Forwarded-For/-Proto (0: none, trust none).
    proxies: Annotated[int, Field(ge=0, le=5)] = 0
    language: Literal["zh-CN", "en"] = "zh-CN"
    # How often the pages ask for what changed (reports, fleet, pipeline).
    refresh_s: Annotated[float, Field(ge=0.5, le=60)] = 2.0
    # A base map under the city's layers: a tile URL ({z}/{x}/{y}); unset, none (the map
    # then needs no internet at all). Chinese tile services draw in GCJ-02: say so, and
    # every marker and line is shifted to it so that it lands on the right street.
    tiles: str | None = None
    tiles_datum: Literal["wgs84", "gcj02"] = "wgs84"

    def address(self) -> tuple[str, int] | None:
        return None if self.listen is None else listen_address(self.listen)
