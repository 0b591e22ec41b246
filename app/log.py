"""Logging: one line per event, tagged with the request id or task id.

Lines go to stderr, not stdout: CLI commands promise exactly one JSON object on stdout with ``--json``."""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"correlation": {"()": CorrelationFilter}},
        "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "line", "filters": ["correlation"]}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # One "task succeeded" line per outbox event is noise; failures still show.
        # httpx logs one INFO line per request (one per APNs push); hpack logs headers at DEBUG.
        "loggers": {"celery.app.trace": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
                    "hpack": {"level": "WARNING"}},
    })
