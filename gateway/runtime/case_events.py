"""Case events for backend subscribers: every recorded transition, whoever made it (a
casework backend over MQTT, `gateway case`, the console), published at QoS 1 on
`cgt/v1/cases/events/{case_no}` and marked published once the broker acknowledged it.

The pipeline process runs it on its own thread (`case-events`) with its own registry
connection, through the pipeline's MQTT connection, like the tasks. At least once: a crash
between the PUBACK and the mark publishes an event again, with the same content; consumers
deduplicate, and order, by (case_no, seq). An event the broker did not acknowledge in time
stays unpublished and goes again next round.
"""

from __future__ import annotations

import sqlite3

from gateway.errors import SinkError
from gateway.protocols import casework
from gateway.runtime.polling import PollingPublisher
from gateway.sinks.ports import CaseRegistry


class CaseEventPublisher(PollingPublisher[CaseRegistry]):
    """Publishes the registry's unpublished case events every `poll_s` seconds."""

    def publish_once(self) -> int:
        """One round; returns how many events the broker acknowledged. Failures are logged
        and retried next round: the registry keeps the events unpublished meanwhile."""
        try:
            due = self.store.unpublished_events(self.batch)
            if not due:
                return 0
            messages = [
                (casework.events_topic(event.case_no), casework.encode_event(event))
                for _, event in due
            ]
            confirmed = self.publisher.publish_many(messages, self.publish_timeout_s)
            done = [
                (event_id, event)
                for (event_id, event), ok in zip(due, confirmed, strict=True)
                if ok
            ]
            if done:
                self.store.mark_events_published([event_id for event_id, _ in done])
        except (SinkError, sqlite3.Error) as error:
            self.log.warning("case_event.publish_failed", error=str(error))
            return 0
        except Exception:
            self.log.exception("case_event.publish_failed")  # a bug: loud, and again later
            return 0
        for _, event in done:
            self.log.info(
                "case_event.published",
                case_no=event.case_no,
                seq=event.seq,
                action=event.action.value,
                to_state=event.to_state.value,
                via=event.via,
            )
        if len(done) < len(due):
            self.log.warning("case_event.unconfirmed", events=len(due) - len(done))
        return len(done)
