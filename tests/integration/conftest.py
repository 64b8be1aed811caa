from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.broker import Mosquitto
from tests.integration.helpers import GatewayProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto from the Debian package, with the project's config, on a free port."""
    with Mosquitto(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def gateway(tmp_path: Path, broker: Mosquitto) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path / "gateway", broker.url).start()
    yield process
    process.stop()
