"""Shared material for the simulator's tests: media encoded once, a broker and a gateway."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest
import structlog
from structlog.typing import FilteringBoundLogger

from firmware_sim.photo import PhotoPool
from firmware_sim.reports import MediaKit
from firmware_sim.voice import VoiceBank

SMALL_PHOTO = (640, 480)  # unit tests need a valid JPEG, not a big one


@pytest.fixture(scope="session")
def voices() -> VoiceBank:
    return VoiceBank.generate(seconds=12.0, seed="tests")


@pytest.fixture(scope="session")
def small_kit(voices: VoiceBank) -> MediaKit:
    return MediaKit(PhotoPool.generate(2, SMALL_PHOTO, seed="tests"), voices)


@dataclass
class Stack:
    """A real Mosquitto and the real gateway, in this process."""

    broker_url: str
    objects_dir: Path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A server fixture: tests/conftest.py marks the tests using it `integration`."""
    from gateway.harness.mosquitto import Mosquitto  # noqa: PLC0415 - only the integration tests need it

    broker = Mosquitto(tmp_path / "broker").start()
    try:
        with running_gateway(broker.url, tmp_path) as objects_dir:
            yield Stack(broker.url, objects_dir)
    finally:
        broker.stop()


@contextlib.contextmanager
def running_gateway(broker_url: str, tmp_path: Path) -> Iterator[Path]:
    """The real gateway on embedded defaults, in this process; yields its objects dir."""
    from gateway.config import load_config  # noqa: PLC0415
    from gateway.runtime.service import Gateway  # noqa: PLC0415 - only the integration tests need the gateway

    config = load_config(
        None,
        {"data_dir": str(tmp_path / "gw"), "mqtt.broker": broker_url, "pipeline.mode": "thread"},
    )
    with (tmp_path / "gateway.log").open("a", encoding="utf-8") as log_file:
        gateway = Gateway(config, file_logger(log_file))
        gateway.start()
        try:
            # Uplinks published before the gateway subscribed would reach nobody.
            assert gateway.link.wait_connected(10), "the gateway did not connect"
            yield config.objects_dir
        finally:
            gateway.stop()


def file_logger(stream: TextIO) -> FilteringBoundLogger:
    """The in-process gateway logs to a file beside the test's data, not into pytest's output."""
    logger: FilteringBoundLogger = structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    return logger
