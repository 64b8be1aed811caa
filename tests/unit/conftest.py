from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway import logs
from gateway.normalize.codes import CodeProfile, load_profile
from gateway.protocols.terminal import decode_uplink
from gateway.runtime.intake import Arrived, Intake
from gateway.settings import default_config_dir
from gateway.store.inbox import Inbox
from gateway.store.outbox import Outbox


@pytest.fixture(scope="session")
def profile() -> CodeProfile:
    return load_profile(default_config_dir() / "codes", "gbt30428")


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(tmp_path / "inbox.db")


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.db")


class Feeder:
    """Feeds raw (topic, payload) messages through decode and the intake, one batch each."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    def __call__(self, *messages: tuple[str, bytes]) -> list[tuple[str, dict[str, Any]]]:
        import json  # noqa: PLC0415

        arrived = [
            Arrived(decode_uplink(topic, payload), "2026-11-28T01:15:03.250000+00:00")
            for topic, payload in messages
        ]
        return [(d.topic, json.loads(d.payload)) for d in self.intake.apply(arrived)]


@pytest.fixture
def feed(inbox: Inbox, outbox: Outbox, profile: CodeProfile) -> Feeder:
    return Feeder(Intake(inbox, outbox, profile, logs.get("test")))
