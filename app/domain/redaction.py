"""Removing credentials from text before it is stored, logged or returned.

Kedro's own ``_redact_url_credentials`` only covers URLs; messages from datasets
and nodes carry secrets in other shapes too (``password=...``, bearer tokens,
cloud keys), so every message leaving a run passes through :func:`redact`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "<redacted>"
MAX_MESSAGE_CHARS = 4000
MAX_LOG_LINE_CHARS = 64 * 1024

# Each pattern keeps its first group and replaces the secret after it. All are
# linear-time on adversarial input (no nested quantifiers).
_PATTERNS = (
    # scheme://user:password@host -> scheme://<redacted>@host
    re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]{0,31}://)[^/\s@]{1,512}(?=@)"),
    # ?X-Amz-Signature=...&token=... : query strings of URLs
    re.compile(r"(://[^\s?]{1,2048}\?)[^\s#\"']{1,4096}"),
    # Authorization: Bearer xxx / Basic xxx
    re.compile(r"(?i)(\b(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # key=value and key: value pairs whose key names a secret
    re.compile(
        r"(?i)(\b[\w.-]{0,64}(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
        r"|private[_-]?key|credential|session[_-]?key)[\w.-]{0,64}[\"']?\s*[=:]\s*[\"']?)"
        r"[^\s\"',;&}]{1,4096}"
    ),
)


def redact(text: str, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """Return ``text`` with credentials replaced by ``<redacted>``, cut to ``max_chars``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text


def redact_values(value: Any) -> Any:
    """``value`` (JSON-like) with :func:`redact` applied to every string in it, keys
    left as they are. For what a run shows of its caller's params: a run needs them as
    given, so they are stored as given, but never echoed."""
    if isinstance(value, str):
        return redact(value, max_chars=len(value) + len(REDACTED))
    if isinstance(value, dict):
        return {key: redact_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_values(item) for item in value]
    return value


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (message, exception and stack included) has
    credentials redacted. Used by every handler of every service process."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), MAX_LOG_LINE_CHARS)
