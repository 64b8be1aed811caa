"""Loading the golden vectors of `tests/vectors/` (shared by gateway and simulator tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent / "vectors"


def payload_of(vector: dict[str, Any]) -> bytes:
    if "json" in vector:
        return json.dumps(vector["json"], ensure_ascii=False, separators=(",", ":")).encode()
    if "text" in vector:
        return str(vector["text"]).encode()
    return bytes.fromhex(vector["hex"])


def load(name: str) -> list[Any]:
    data = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    return [pytest.param(vector, id=vector["id"]) for vector in data["vectors"]]


UPLINK = load("uplink")
DOWNLINK = load("downlink")
