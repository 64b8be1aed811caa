"""Publishing at QoS 1 over the gateway's outbound MQTT connection (the bus and acks)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gateway.errors import RetryableSinkError
from gateway.transports.mqtt import MqttLink


class MqttPublisher:
    def __init__(self, link: MqttLink) -> None:
        self.link = link

    def publish_many(self, messages: Sequence[tuple[str, bytes]], timeout_s: float) -> list[bool]:
        if not self.link.connected:
            raise RetryableSinkError("not connected to the broker")
        infos = [self.link.publish(topic, payload, qos=1) for topic, payload in messages]
        deadline = time.monotonic() + timeout_s
        confirmed = []
        for info in infos:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):  # the connection dropped before it was sent
                confirmed.append(False)
                continue
            confirmed.append(info.is_published())
        return confirmed
