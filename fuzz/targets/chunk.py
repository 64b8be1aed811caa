"""A media chunk: the input's first line is the topic's tail (`media/{uuid}/{seq}` in the
seeds), the rest the chunk's bytes."""

from __future__ import annotations

from fuzz.targets._uplink import DEVICE, decode


def one_input(data: bytes) -> None:
    tail, _, payload = data.partition(b"\n")
    decode(f"cgt/v1/{DEVICE}/{tail.decode('utf-8', 'replace')}", payload)
