"""How the API process logs: plain lines, or JSON lines carrying request and run ids."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime

from app.api.request_id import current_request_id
from app.domain.redaction import MAX_LOG_LINE_CHARS, redact


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (from the request being served) and ``run_id`` (when the
    record names one via ``extra``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        if not hasattr(record, "run_id"):
            record.run_id = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line; message and exception redacted before encoding."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), MAX_LOG_LINE_CHARS),
            "request_id": getattr(record, "request_id", None),
            "run_id": getattr(record, "run_id", None),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info), MAX_LOG_LINE_CHARS)
        return json.dumps(entry)


def configure_service_logging(level: str, json_lines: bool) -> None:
    """One stderr handler for the API process (replacing Kedro's rich console logging)."""
    formatter = (
        {"()": JsonFormatter}
        if json_lines
        else {
            "class": "app.domain.redaction.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
        }
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"context": {"()": ContextFilter}},
            "formatters": {"service": formatter},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "service",
                    "filters": ["context"],
                },
            },
            "root": {"level": level.upper(), "handlers": ["stderr"]},
            "loggers": {
                "kedro": {"level": level.upper(), "propagate": True, "handlers": []},
                # uvicorn's own handlers would print plain lines beside ours.
                "uvicorn": {"level": level.upper(), "propagate": True, "handlers": []},
                "uvicorn.error": {"level": level.upper(), "propagate": True, "handlers": []},
                # No access log: its lines carry query strings, which may carry secrets
                # (dictConfig would otherwise let uvicorn's access logger propagate here).
                "uvicorn.access": {"propagate": False, "handlers": []},
                # httpx logs every request's full URL at INFO: a webhook's URL is a
                # credential (Slack's, Discord's). Its warnings and errors still show.
                "httpx": {"level": "WARNING", "propagate": True, "handlers": []},
                "httpcore": {"level": "WARNING", "propagate": True, "handlers": []},
            },
        }
    )
