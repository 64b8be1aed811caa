"""The MQTT link: broker URLs, and against a real Mosquitto, reconnects and give-ups."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import orjson
import pytest

from firmware_sim import wire
from firmware_sim.link import BrokerUrl, LinkError, LinkSettings, MqttLink

DEVICE = "link-0001"


class States:
    """The link's up/down notifications as events a test can await."""

    def __init__(self) -> None:
        self.up = asyncio.Event()
        self.down = asyncio.Event()

    def __call__(self, up: bool) -> None:
        (self.up if up else self.down).set()
        (self.down if up else self.up).clear()


async def send(url: str, topic: str, payload: bytes) -> None:
    broker = BrokerUrl.parse(url)
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(topic, payload, qos=1)


@pytest.mark.integration
def test_link_rides_out_a_broker_restart(tmp_path: Path) -> None:
    from gateway.harness.mosquitto import Mosquitto  # noqa: PLC0415 - tests may start the project's broker

    broker = Mosquitto(tmp_path / "broker").start()

    async def scenario() -> None:
        states = States()
        acks: asyncio.Queue[bytes] = asyncio.Queue()
        settings = LinkSettings(
            BrokerUrl.parse(broker.url),
            reconnect_min_s=0.1,
            reconnect_max_s=0.5,
            publish_timeout_s=20,
        )
        birth = wire.status_message(DEVICE, wire.Status(online=True, firmware="test"))
        link = MqttLink(
            DEVICE,
            settings,
            subscriptions=wire.downlink_subscriptions(DEVICE),
            on_message=lambda _, payload: acks.put_nowait(payload),
            birth=birth,
            on_state=states,
        )
        link.start()
        try:
            assert await link.wait_connected(10)
            await send(broker.url, wire.downlink_topic(DEVICE, "ack"), b'{"n":1}')
            assert await asyncio.wait_for(acks.get(), 5) == b'{"n":1}'

            await asyncio.to_thread(broker.stop)
            await asyncio.wait_for(states.down.wait(), 10)
            # Published while the broker is away: confirmed once it is back.
            pending = asyncio.create_task(
                link.publish(wire.track_message(DEVICE, [wire.Fix(32.03, 120.86)]))
            )
            await asyncio.to_thread(broker.start)
            await asyncio.wait_for(pending, 20)
            assert link.sessions == 2

            # Still subscribed after the reconnect (the session was resumed or renewed).
            await send(broker.url, wire.downlink_topic(DEVICE, "ack"), b'{"n":2}')
            assert await asyncio.wait_for(acks.get(), 5) == b'{"n":2}'
        finally:
            await link.close(farewell=wire.status_message(DEVICE, wire.Status(online=False)))

        # The goodbye is retained for whoever looks next.
        url = BrokerUrl.parse(broker.url)
        async with aiomqtt.Client(url.host, url.port) as client:
            await client.subscribe(wire.status_topic(DEVICE), qos=1)
            message = await asyncio.wait_for(anext(aiter(client.messages)), 5)
            assert isinstance(message.payload, bytes)
            assert orjson.loads(message.payload) == {"online": False}

    try:
        asyncio.run(scenario())
    finally:
        broker.stop()


@pytest.mark.integration
def test_publish_gives_up_when_the_broker_never_comes() -> None:
    from gateway.harness.mosquitto import free_port  # noqa: PLC0415

    async def scenario() -> None:
        settings = LinkSettings(
            BrokerUrl.parse(f"mqtt://127.0.0.1:{free_port()}"),
            publish_timeout_s=0.3,
            reconnect_min_s=0.05,
        )
        link = MqttLink(DEVICE, settings, subscriptions=[], on_message=lambda *_: None)
        link.start()
        try:
            assert not await link.wait_connected(0.2)
            with pytest.raises(LinkError, match=r"not confirmed within 0\.3 s"):
                await link.publish(wire.status_message(DEVICE, wire.Status(online=True)))
            assert link.last_error is not None
        finally:
            await link.close()

    asyncio.run(scenario())


def test_broker_urls() -> None:
    assert BrokerUrl.parse("mqtt://h:1884") == BrokerUrl("h", 1884, tls=False)
    assert BrokerUrl.parse("mqtts://h") == BrokerUrl("h", 8883, tls=True)
    assert str(BrokerUrl.parse("mqtt://h")) == "mqtt://h:1883"
    for bad in ("http://h:1883", "mqtt://", "mqtt://h:port"):
        with pytest.raises(ValueError, match="mqtt"):
            BrokerUrl.parse(bad)


def test_each_terminal_can_log_in_as_itself() -> None:
    from firmware_sim.fleet import FleetSettings  # noqa: PLC0415
    from firmware_sim.identity import Identity  # noqa: PLC0415

    settings = FleetSettings(terminals=2, identity=Identity("term-{device_id}", "pw"))
    first = settings.link_settings(settings.device_id(0)).login
    assert (first.username, first.password) == ("term-sim-0001", "pw")
    assert FleetSettings().link_settings("sim-0001").login.username is None
