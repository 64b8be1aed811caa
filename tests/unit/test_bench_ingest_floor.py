"""The ingest benchmark's floor does per report the MQTT work the wire contract asks of any
gateway, and nothing else: the `accepted` ack and the normalized report published at QoS 1
on the gateway's topics, then the report's PUBACK; done once both are confirmed."""

from __future__ import annotations

from typing import Any, cast

import orjson
import paho.mqtt.client as paho
import pytest

from bench import ingest


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.calls.append(("publish", topic, payload, qos))

    def ack(self, mid: int, qos: int) -> None:
        self.calls.append(("ack", mid, qos))


def test_a_report_is_published_twice_at_qos_1_before_its_puback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest, "REPORTS", 1)
    [(topic, payload)] = ingest.payloads()
    message = paho.MQTTMessage(mid=7, topic=topic.encode())
    message.payload, message.qos = payload, 1
    recorder = Recorder()
    floor = ingest.Floor([0, 0], expected=1)

    floor.handle(cast(paho.Client, recorder), None, message)

    ack, normalized, puback = recorder.calls
    assert ack[1] == "cgt/v1/bench-0000/ack"
    assert ack[3] == 1
    assert orjson.loads(ack[2]) == {
        "report_id": orjson.loads(payload)["report_id"],
        "status": "accepted",
        "case_no": ingest.CASE_NO,
    }
    assert normalized == ("publish", "cgt/v1/normalized/event/0102", payload, 1)
    assert puback == ("ack", 7, 1)
    assert list(floor.counts) == [1, 0]


def test_done_once_both_publishes_of_every_report_are_confirmed() -> None:
    floor = ingest.Floor([2, 0], expected=2)
    for _ in range(3):
        floor.confirmed()
    assert not floor.done.is_set()
    floor.confirmed()
    assert floor.done.is_set()
    assert floor.finished_at > 0
