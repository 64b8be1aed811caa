"""Tasks for terminals: publish them at QoS 1 on their device's task topic, and mark them
sent once the broker acknowledged them.

`publish_tasks` is the one way tasks go out: `gateway task send` calls it for the task it
just recorded, and the pipeline process's `TaskDispatcher` for tasks a backend inserted
into the registry (`sent_at` NULL). A task is marked sent only after its PUBACK, so a
crash in between publishes it again (at least once, like every QoS 1 message: terminals
deduplicate by `task_id`).
"""

from __future__ import annotations

from collections.abc import Sequence

from structlog.typing import FilteringBoundLogger

from gateway.errors import SinkError
from gateway.protocols import terminal
from gateway.runtime.polling import PollingPublisher
from gateway.sinks.ports import Publisher, TaskBook, TaskRecord


def publish_tasks(
    book: TaskBook,
    publisher: Publisher,
    records: Sequence[TaskRecord],
    timeout_s: float,
    log: FilteringBoundLogger,
) -> list[TaskRecord]:
    """Publish tasks and mark those the broker acknowledged as sent; returns those."""
    if not records:
        return []
    messages = [
        (terminal.task_topic(record.device_id), terminal.encode_task(record.task))
        for record in records
    ]
    confirmed = publisher.publish_many(messages, timeout_s)
    sent = [record for record, ok in zip(records, confirmed, strict=True) if ok]
    if sent:
        book.mark_sent([record.task.task_id for record in sent])
    for record in sent:
        log.info(
            "task.sent",
            device_id=record.device_id,
            task_id=record.task.task_id,
            case_no=record.task.case_no,
            kind=record.task.kind,
        )
    if len(sent) < len(records):
        log.warning("task.unconfirmed", tasks=len(records) - len(sent))
    return sent


class TaskDispatcher(PollingPublisher[TaskBook]):
    """Publishes the registry's unsent tasks every `poll_s` seconds, on its own thread."""

    def publish_once(self) -> int:
        return self.dispatch_once()

    def dispatch_once(self) -> int:
        """One round; returns how many tasks were sent. Failures are logged and retried at
        the next round: the registry keeps the tasks unsent meanwhile."""
        try:
            # Held for long enough to publish and mark them, with room to spare.
            due = self.store.claim_unsent(self.batch, max(30.0, 4 * self.publish_timeout_s))
            sent = publish_tasks(self.store, self.publisher, due, self.publish_timeout_s, self.log)
        except SinkError as error:
            self.log.warning("task.dispatch_failed", error=str(error))
            return 0
        except Exception:
            self.log.exception("task.dispatch_failed")  # a bug: loud, and try again later
            return 0
        return len(sent)
