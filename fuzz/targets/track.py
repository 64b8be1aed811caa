"""A track payload of any bytes through `decode_uplink`."""

from __future__ import annotations

from fuzz.targets._uplink import DEVICE, decode

TOPIC = f"cgt/v1/{DEVICE}/track"


def one_input(data: bytes) -> None:
    decode(TOPIC, data)
