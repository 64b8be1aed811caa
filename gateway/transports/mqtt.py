"""A thin paho-mqtt adapter: connection, TLS, credentials, session, subscriptions, acks.

It knows nothing of the terminal protocol. Received messages go to a callback with
their packet id and the connection they came on; `ack()` sends the PUBACK later, after
the caller has made the message durable (paho's manual-ack mode). An ack for a message
of an earlier connection is dropped on purpose: packet ids are per connection, and the
broker redelivers that message on the new one anyway.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from structlog.typing import FilteringBoundLogger

from gateway.transports.mqtt_settings import MqttSettings


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which connection it came on (see `MqttLink.ack`)


class MqttLink:
    def __init__(
        self,
        settings: MqttSettings,
        log: FilteringBoundLogger,
        *,
        client_id: str | None = None,
        persistent: bool = True,
        subscriptions: Sequence[str] = (),
        on_message: Callable[[Received], None] | None = None,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self.log = log.bind(client_id=client_id or settings.client_id)
        self.persistent = persistent
        self.subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_state = on_state
        self._connection = 0
        self._connected = threading.Event()
        version = paho.MQTTv5 if settings.protocol == "5" else paho.MQTTv311
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or settings.client_id,
            protocol=version,
            clean_session=None if version == paho.MQTTv5 else not persistent,
            manual_ack=on_message is not None,
        )
        # Outgoing QoS 1 messages awaiting PUBACK; the broker's queue is the real buffer.
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        self.client.on_connect = self._connected_cb
        self.client.on_disconnect = self._disconnected_cb
        self.client.on_message = self._message_cb
        self.client.on_subscribe = self._subscribed_cb
        self.client.on_connect_fail = self._connect_failed_cb
        self._tls_context: ssl.SSLContext | None = None
        self._configure_security()

    def _configure_security(self) -> None:
        password = self.settings.password()
        if self.settings.username is not None:
            self.client.username_pw_set(
                self.settings.username, password.get_secret_value() if password else None
            )
        if self.settings.uses_tls:
            tls = self.settings.tls
            context = ssl.create_default_context(
                cafile=str(tls.ca_file) if tls and tls.ca_file else None
            )
            if tls and tls.cert_file:
                context.load_cert_chain(
                    str(tls.cert_file), str(tls.key_file) if tls.key_file else None
                )
            if tls and tls.insecure_skip_hostname:
                context.check_hostname = False
            self.client.tls_set_context(context)
            self._tls_context = context

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        properties = None
        if self.settings.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = (
                self.settings.session_expiry_s if self.persistent else 0
            )
            properties.ReceiveMaximum = self.settings.receive_maximum
        # MQTT 3.1.1 takes its clean-session flag from the constructor instead.
        clean_start: bool | Literal[3] = paho.MQTT_CLEAN_START_FIRST_ONLY
        if self.settings.protocol == "5":
            clean_start = not self.persistent
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=clean_start,
            properties=properties,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ---- traffic ------------------------------------------------------------------------

    def ack(self, message: Received) -> None:
        if message.qos > 0 and message.connection == self._connection and self.connected:
            self.client.ack(message.mid, message.qos)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    # ---- paho callbacks (network thread) --------------------------------------------------

    def _connected_cb(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.log.error("mqtt.connect_refused", reason=str(reason))
            return
        self._connection += 1
        no_delay(client)
        if self.subscriptions:
            topics = [self._shared(topic) for topic in self.subscriptions]
            if self.settings.protocol == "5":
                client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in topics])
            else:
                client.subscribe([(topic, 1) for topic in topics])
        self._connected.set()
        self.log.info(
            "mqtt.connected",
            broker=f"{self.settings.host}:{self.settings.port}",
            session_present=bool(flags.session_present),
        )
        if self._on_state:
            self._on_state(True)

    def _disconnected_cb(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected:
            self.log.warning("mqtt.disconnected", reason=str(reason))
        if self._on_state:
            self._on_state(False)

    def _connect_failed_cb(self, client: paho.Client, userdata: Any) -> None:
        self.log.warning(
            "mqtt.connect_failed",
            broker=f"{self.settings.host}:{self.settings.port}",
            error=self._why_connect_failed(),
        )

    def _why_connect_failed(self) -> str:
        """paho retries a failed connect without saying why (a refused port, a certificate
        the CA did not sign); operators need the why, so ask the network once ourselves."""
        host, port = self.settings.host, self.settings.port
        try:
            with socket.create_connection((host, port), timeout=5) as raw:
                if self._tls_context is not None:
                    self._tls_context.wrap_socket(raw, server_hostname=host).close()
        except OSError as error:  # ssl.SSLError is one too
            return str(error) or type(error).__name__
        return "the connection opens now: the broker closed the earlier one"

    def _subscribed_cb(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            self.log.error("mqtt.subscribe_refused", reasons=refused)
        else:
            self.log.info("mqtt.subscribed", topics=len(reasons))

    def _message_cb(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._on_message is None:
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:  # the grammar check will refuse it with a reason
            topic = "<invalid utf-8>"
        try:
            self._on_message(
                Received(topic, bytes(message.payload), message.mid, message.qos, self._connection)
            )
        except Exception:
            # Never kill paho's thread; unacknowledged, the message comes back on reconnect.
            self.log.exception("mqtt.message_handler_failed", topic=topic)

    def _shared(self, topic: str) -> str:
        group = self.settings.shared_group
        return f"$share/{group}/{topic}" if group else topic


def no_delay(client: paho.Client) -> None:
    """Turn Nagle off on the client's socket: our PUBACKs and acks are small and come in
    bursts, and Nagle would hold them back (docs/decisions.md)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):  # an SSLSocket is one too
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
