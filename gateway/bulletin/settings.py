"""`[bulletin]`: whose monthly bulletin it is, as its masthead prints it."""

from __future__ import annotations

from gateway.settings import Section


class BulletinSettings(Section):
    city: str = "南通市"
    # Who issues it; None: the city's supervision and command center.
    issuer: str | None = None

    @property
    def issued_by(self) -> str:
        return self.issuer or f"{self.city}城市管理监督指挥中心"
