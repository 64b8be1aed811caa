"""One terminal's MQTT connection (MQTT 5 over aiomqtt/paho), kept up for the terminal.

The link owns everything about the broker and nothing about the protocol: it connects
with a retained last will, subscribes, publishes a retained "birth" message on every
(re)connect, hands each received message to a callback, and reconnects with backoff
when the connection drops. All of it runs on the caller's event loop: no thread per
terminal (aiomqtt drives paho from the loop's socket callbacks).

`publish` retries across reconnects until confirmed (PUBACK) or its deadline passes,
then raises `LinkError`. Retrying is safe because everything a terminal sends is
idempotent at the gateway: a chunk twice is a duplicate, a report twice is a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from firmware_sim.identity import Identity, Login
from firmware_sim.wire import Uplink

UplinkSource = Callable[[], Uplink]  # built when the window admits it, so memory stays bounded


class LinkError(Exception):
    """The broker could not be reached, or did not confirm a message, in time."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{url!r} does not look like mqtt://HOST:PORT or mqtts://HOST:PORT")
        try:
            port = parts.port
        except ValueError as error:
            raise ValueError(f"{url!r}: bad port: {error}") from None
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, port or (8883 if tls else 1883), tls)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class LinkSettings:
    broker: BrokerUrl
    login: Login = field(default_factory=Login)
    keepalive_s: int = 60
    # The broker keeps the session (subscriptions, queued acks) this long after a drop.
    session_expiry_s: int = 3600
    # Start the first connection clean: a fresh run holds no reports the old session's
    # queued acks could be about. Reconnects within a run always resume the session.
    clean_first: bool = True
    connect_timeout_s: float = 10.0
    publish_timeout_s: float = 60.0
    # QoS 1 messages a terminal has in flight at once: paho's queue holds the payloads,
    # so this bounds memory per terminal (window x chunk size), and keeps many terminals
    # sharing the broker fairly.
    publish_window: int = 8
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 15.0

    @classmethod
    def for_device(cls, reach: Reach, device_id: str, /, **tuning: Any) -> LinkSettings:
        """`device_id`'s link as a fleet's or a replay's settings describe it: its broker,
        its own login and their timeouts; `tuning` sets any other field."""
        return cls(
            BrokerUrl.parse(reach.broker),
            reach.identity.login(device_id),
            connect_timeout_s=reach.connect_timeout_s,
            publish_timeout_s=reach.publish_timeout_s,
            **tuning,
        )


class Reach(Protocol):
    """How a run's terminals reach the broker (`FleetSettings`, `ReplaySettings`)."""

    @property
    def broker(self) -> str: ...  # a URL, mqtt://HOST:PORT or mqtts://HOST:PORT

    @property
    def identity(self) -> Identity: ...

    @property
    def connect_timeout_s(self) -> float: ...

    @property
    def publish_timeout_s(self) -> float: ...


class Uplinks(Protocol):
    """What a terminal needs from its link; `MqttLink` and test fakes provide it."""

    async def publish(self, message: Uplink) -> None: ...

    async def publish_all(self, sources: Iterable[UplinkSource]) -> None: ...


class _Lost(Exception):
    """Internal: the connection a publish was riding on dropped."""


@dataclass(slots=True)
class _Connection:
    client: aiomqtt.Client
    lost: asyncio.Future[None]

    async def confirm(self, publish: Coroutine[Any, Any, None]) -> None:
        """Await a publish, or raise `_Lost` as soon as its connection drops."""
        task = asyncio.ensure_future(publish)
        try:
            await asyncio.wait((task, self.lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            task.result()  # raises the publish's own error, if any
            return
        raise _Lost


class MqttLink:
    def __init__(
        self,
        client_id: str,
        settings: LinkSettings,
        *,
        subscriptions: Sequence[str],
        on_message: Callable[[str, bytes], None],
        birth: Uplink | None = None,
        will: Uplink | None = None,
        on_state: Callable[[bool], None] | None = None,
        shared_window: asyncio.Semaphore | None = None,
    ) -> None:
        self.client_id = client_id
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.birth = birth
        self.will = will
        self._on_message = on_message
        self._on_state = on_state
        # Chunks in flight across a whole fleet: paho holds each payload until its PUBACK,
        # so without a shared cap a thousand terminals would hold a thousand windows.
        self._shared_window = shared_window
        self._connection: _Connection | None = None
        self._up = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.sessions = 0  # connections that got as far as subscribing
        self.last_error: str | None = None
        self._offline_until = 0.0  # loop time before which it must not reconnect (a fault)

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"link:{self.client_id}")

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self._up.wait()
        except TimeoutError:
            return False
        return True

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    async def close(self, farewell: Uplink | None = None) -> None:
        """Say goodbye (a retained offline status) if connected, then disconnect cleanly."""
        if farewell is not None and self.connected:
            with contextlib.suppress(LinkError):
                await self._publish_once(farewell, self.settings.connect_timeout_s)
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def drop(self, offline_s: float) -> bool:
        """A fault: the connection dies as a radio link does (no DISCONNECT, so the broker
        publishes the last will) and stays down for `offline_s`. False if it was down."""
        self._offline_until = asyncio.get_running_loop().time() + offline_s
        connection = self._connection
        if connection is None:
            return False
        # aiomqtt offers no unclean close; its paho client's socket is the only handle.
        sock = connection.client._client.socket()
        if not isinstance(sock, socket.socket):
            return False
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return True

    # ---- traffic ------------------------------------------------------------------------

    async def publish(self, message: Uplink) -> None:
        await self._publish_once(message, self.settings.publish_timeout_s)

    async def publish_all(self, sources: Iterable[UplinkSource]) -> None:
        """Publish many messages, at most `publish_window` in flight (and within the
        shared window, if any); stop at the first that cannot be confirmed and raise its
        `LinkError`."""
        window = asyncio.Semaphore(self.settings.publish_window)
        shared = self._shared_window or contextlib.nullcontext()
        failures: list[LinkError] = []

        async def one(source: UplinkSource) -> None:
            try:
                async with shared:
                    await self.publish(source())
            except LinkError as error:
                failures.append(error)
            finally:
                window.release()

        async with asyncio.TaskGroup() as group:
            for source in sources:
                await window.acquire()
                if failures:
                    window.release()
                    break
                group.create_task(one(source))
        if failures:
            raise failures[0]

    async def _publish_once(self, message: Uplink, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    await self._up.wait()
                    connection = self._connection
                    if connection is None:  # dropped between the wake-up and here
                        await asyncio.sleep(0)
                        continue
                    publish = connection.client.publish(
                        message.topic,
                        message.payload,
                        qos=1,
                        retain=message.retain,
                        timeout=math.inf,
                    )
                    try:
                        await connection.confirm(publish)
                    except (_Lost, aiomqtt.MqttError):
                        continue  # ride the next connection
                    return
        except TimeoutError:
            reason = self.last_error or "no PUBACK"
            raise LinkError(
                f"{message.topic}: not confirmed within {timeout_s:g} s ({reason})"
            ) from None

    # ---- the connection loop ------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.settings.reconnect_min_s
        while not self._closing:
            sessions_before = self.sessions
            try:
                await self._session()
            except aiomqtt.MqttError as error:
                self.last_error = str(error) or type(error).__name__
            if self.sessions > sessions_before:
                delay = self.settings.reconnect_min_s
            # Jitter, so a fleet that lost the broker together does not return together.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            offline = self._offline_until - asyncio.get_running_loop().time()
            if offline > 0:
                await asyncio.sleep(offline)
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _client(self) -> aiomqtt.Client:
        settings = self.settings
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho ships no hints here
        properties.SessionExpiryInterval = settings.session_expiry_s
        will = self.will
        client = aiomqtt.Client(
            settings.broker.host,
            settings.broker.port,
            identifier=self.client_id,
            username=settings.login.username,
            password=settings.login.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=settings.clean_first and self.sessions == 0,
            properties=properties,
            keepalive=settings.keepalive_s,
            timeout=settings.connect_timeout_s,
            will=aiomqtt.Will(will.topic, will.payload, qos=1, retain=will.retain)
            if will
            else None,
            max_inflight_messages=max(20, settings.publish_window * 2),
            tls_context=settings.login.tls_context() if settings.broker.tls else None,
        )
        # aiomqtt warns past 10 pending calls; a full window is normal here, not a leak.
        client.pending_calls_threshold = settings.publish_window * 4 + 10
        return client

    async def _session(self) -> None:
        client = self._client()
        async with client:
            connection = _Connection(client, asyncio.get_running_loop().create_future())
            try:
                await client.subscribe(
                    [(topic, SubscribeOptions(qos=1)) for topic in self.subscriptions],
                    timeout=self.settings.connect_timeout_s,
                )
                if self.birth is not None:
                    await client.publish(
                        self.birth.topic,
                        self.birth.payload,
                        qos=1,
                        retain=self.birth.retain,
                        timeout=self.settings.connect_timeout_s,
                    )
                self.sessions += 1
                self.last_error = None
                self._connection = connection
                self._up.set()
                if self._on_state:
                    self._on_state(True)
                async for message in client.messages:
                    self._on_message(message.topic.value, _payload_bytes(message.payload))
            finally:
                if self._connection is connection:
                    self._connection = None
                    self._up.clear()
                    if self._on_state:
                        self._on_state(False)
                connection.lost.set_result(None)


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
