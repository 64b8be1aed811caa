"""The case desk: commands of casework backends, applied to the case registry (intake
process, thread `case-desk`).

    cgt/v1/cases/commands/+ ─▶ MqttLink ─▶ CaseDesk: decode, registry.act (committed),
                                            then PUBACK, then the answer (QoS 1)

A command is acknowledged to the broker only once the registry committed its outcome, so
an acknowledged command is never lost; one the gateway dies holding comes again and,
being keyed by its `command_id`, is not applied twice (the answer says `repeated`).
The answer itself is QoS 1 but not stored: if the gateway dies between the PUBACK and
the answer, the backend sends the command again (same `command_id`) and hears where it
stands. The transition's event is published by the pipeline process from the registry
(`gateway/runtime/case_events.py`), whatever channel made it.

The desk has its own registry connection and thread, so a slow registry holds back
commands only, never the terminals' uplinks. A registry that fails (down, locked) is
retried with backoff, the command held unacknowledged meanwhile and the ones behind it
waiting, in order; the broker redelivers it after a restart anyway.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from structlog.typing import FilteringBoundLogger

from gateway.cases.workflow import Refusal, RefusalCode, Timekeeper
from gateway.errors import SinkError
from gateway.protocols import casework
from gateway.sinks.case_ledger import Applied
from gateway.sinks.ports import CaseRegistry
from gateway.transports.mqtt import Received


class Link(Protocol):
    """What the desk needs of the intake's MQTT link (`MqttLink`)."""

    def ack(self, message: Received) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Any: ...


class CaseDesk:
    def __init__(
        self,
        registry: CaseRegistry,
        clock: Timekeeper,
        link: Link,
        log: FilteringBoundLogger,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_first_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.link = link
        self.log = log
        self.now = now
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self._queue: queue.Queue[Received | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- threads ------------------------------------------------------------------------

    def submit(self, message: Received) -> None:
        """From paho's network thread: only enqueue."""
        self._queue.put(message)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="case-desk", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(30)
        self.registry.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._queue.get()
            if message is None:
                return
            delay = self.retry_first_s
            # Held, unacknowledged, until the registry takes it: the broker keeps it too.
            while not self.handle(message) and not self._stop.wait(delay):
                delay = min(delay * 2, self.retry_max_s)

    # ---- one command --------------------------------------------------------------------

    def handle(self, message: Received) -> bool:
        """Apply one command and answer it; False when the registry failed (try again)."""
        decoded = casework.decode_command(message.topic, message.payload)
        if isinstance(decoded, casework.CommandRefused):
            self._refused_on_its_face(message, decoded)
            return True
        command = decoded.to_command(self.now())
        log = self.log.bind(
            account=decoded.account,
            command_id=decoded.command_id,
            case_no=command.case_no,
            action=command.action.value,
        )
        try:
            outcome = self.registry.act(command, self.clock)
            life = None
            if isinstance(outcome, Refusal) and outcome.code is not RefusalCode.CASE_UNKNOWN:
                life = self.registry.life(command.case_no)  # where it stands, for the answer
        except (SinkError, sqlite3.Error) as error:
            log.warning("case.command_failed", error=str(error))
            return False
        except Exception:
            # A bug: loud, and left unacknowledged (the broker redelivers it on reconnect)
            # rather than holding back every command behind it.
            log.exception("case.command_failed")
            return True
        self.link.ack(message)
        answer_topic = casework.answers_topic(decoded.account)
        if isinstance(outcome, Applied):
            event = outcome.event
            log.info(
                "case.command_repeated" if outcome.repeated else "case.command_applied",
                seq=event.seq,
                from_state=event.from_state.value,
                to_state=event.to_state.value,
                by=command.by,
            )
            body = casework.encode_applied(decoded, event, outcome.life, repeated=outcome.repeated)
        else:
            log.info("case.command_refused", reason=outcome.code.value, detail=outcome.detail)
            body = casework.encode_refused(
                decoded.command_id, command.case_no, outcome.code.value, outcome.detail, life=life
            )
        self.link.publish(answer_topic, body, qos=1)
        return True

    def _refused_on_its_face(self, message: Received, refused: casework.CommandRefused) -> None:
        """Malformed: nothing to store, so acknowledged at once, answered when an account
        can be, and logged either way."""
        self.link.ack(message)
        self.log.warning(
            "case.command_refused",
            topic=refused.topic,
            account=refused.account,
            reason=refused.code,
            detail=refused.detail,
            field=refused.field,
            command_id=refused.command_id,
            case_no=refused.case_no,
        )
        reply = casework.reply_to(refused)
        if reply is not None:
            self.link.publish(*reply, qos=1)
