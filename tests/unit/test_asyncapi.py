"""docs/asyncapi.yaml is what the models say, and names every reason code and topic."""

from __future__ import annotations

import runpy
from pathlib import Path

import yaml

from gateway.errors import Reason

ROOT = Path(__file__).parents[2]


def test_committed_document_matches_the_models() -> None:
    generated = runpy.run_path(str(ROOT / "tools/asyncapi.py"))["render"]()
    committed = (ROOT / "docs/asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == generated, "run: .venv/bin/python tools/asyncapi.py > docs/asyncapi.yaml"


def test_every_reason_code_and_channel_is_documented() -> None:
    document = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text(encoding="utf-8"))
    assert set(document["x-reason-codes"]) == {reason.value for reason in Reason}
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "cgt/v1/{device_id}/report",
        "cgt/v1/{device_id}/media/{media_id}/{seq}",
        "cgt/v1/{device_id}/status",
        "cgt/v1/{device_id}/track",
        "cgt/v1/{device_id}/ack",
        "cgt/v1/{device_id}/task",
        "cgt/v1/{device_id}/config",
        "cgt/v1/{device_id}/error",
        "cgt/v1/normalized/{kind}/{class_code}",
    }
    for message in document["components"]["messages"].values():
        assert message["payload"], message["name"]
