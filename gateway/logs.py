"""structlog set-up: JSON lines in production, readable text on a console.

Configured once, by the entry point. Log events are data: `log.info("report.accepted",
device_id=..., report_id=..., case_no=...)`. Report descriptions are never logged
(reports are confidential); the `redact` processor drops them should one slip in.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

from gateway.settings import Section


class LogSettings(Section):
    """`[log]`: JSON lines, or text for a person at a console ("auto": JSON unless a tty)."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


_CONFIDENTIAL = ("description", "password", "secret", "token")


def redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key in _CONFIDENTIAL:
        if key in event:
            event[key] = "[redacted]"
    return event


def setup(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
) -> None:
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )


def _dumps(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def get(name: str) -> FilteringBoundLogger:
    logger: FilteringBoundLogger = structlog.get_logger().bind(logger=name)
    return logger
