"""Removing secrets from what leaves the service, without mangling what is not one.

Two mechanisms, in this order:

1. Known secrets, masked exactly wherever they appear: the values of the project's
   credentials (:func:`credential_secrets_in`), of environment variables named like
   secrets (:func:`environment_secrets_in`), of params whose key names a secret
   (:func:`secrets_in`), and the service's own keys and webhook URLs
   (:func:`remember_secrets`, and :func:`run_secrets` for a run's params in a worker).
   See :mod:`.known`.
2. High-precision shapes that are secrets whoever's they are (PEM blocks, JWTs,
   vendor-prefixed tokens, URL userinfo, ``password=...``): see :mod:`.shapes`.

The server's text (log lines, run errors, paths) gets both (:func:`redact`). Text from
the caller (problems quoting a request) gets only the second (:func:`redact_shapes`):
masking a caller's text by the server's secrets would tell them which of their guesses
is one. Data (free outputs) gets only the first, and says where it masked
(:func:`mask_data`): data is never rewritten for merely looking like a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from app.domain.redaction.known import KnownSecrets
from app.domain.redaction.names import (
    is_credential_secret_key,
    is_secret_environment_name,
    is_secret_key,
)
from app.domain.redaction.shapes import REDACTED, mask_shapes, secrets_in_text

__all__ = [
    "MAX_LOG_LINE_CHARS",
    "MAX_MESSAGE_CHARS",
    "REDACTED",
    "RedactingFormatter",
    "credential_secrets_in",
    "environment_secrets_in",
    "mask_data",
    "redact",
    "redact_shapes",
    "remember_secrets",
    "run_secrets",
    "secrets_in",
]

MAX_MESSAGE_CHARS = 4000
MAX_LOG_LINE_CHARS = 64 * 1024

# Process-wide, because logging.config builds the formatters that use it. Empty until
# the process's start-up code calls remember_secrets.
_KNOWN = KnownSecrets()


def remember_secrets(values: Iterable[str]) -> None:
    """Mask ``values`` exactly, from now on, in everything this process redacts."""
    _KNOWN.remember(values)


def run_secrets(values: Iterable[str]) -> AbstractContextManager[None]:
    """Also mask ``values`` while the block runs (a worker, for one run's params)."""
    return _KNOWN.for_run(values)


def secrets_in(value: Any, secret: bool = False) -> set[str]:
    """The secret strings in JSON-like ``value`` (a run's params): every string under
    a key that names a secret (:func:`.names.is_secret_key`), and what the shapes find
    in any string."""
    return _secret_strings(
        value, secret, lambda held, key, _: held or (isinstance(key, str) and is_secret_key(key))
    )


def credential_secrets_in(value: Any, secret: bool = True) -> set[str]:
    """The secret strings of the project's credentials (JSON-like): every string,
    lists and nested mappings included, except those held by a key naming who or where
    (:func:`.names.is_credential_secret_key`: ``username``, ``host``, ...), plus what
    the shapes find in any string (a DSN's password under ``url``)."""
    # A key says who or where only of the values it holds itself: a mapping under
    # "warehouse" is judged by its own keys.
    return _secret_strings(
        value,
        secret,
        lambda _, key, item: isinstance(item, Mapping) or is_credential_secret_key(str(key)),
    )


def _secret_strings(
    value: Any, secret: bool, holds_secrets: Callable[[bool, Any, Any], bool]
) -> set[str]:
    """Every string of JSON-like ``value`` that is a secret (``secret`` for ``value``
    itself; ``holds_secrets(secret, key, item)`` for an item of a mapping), and what the
    shapes find in any string."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(secrets_in_text(value))
        if secret:
            found.add(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found |= _secret_strings(item, holds_secrets(secret, key, item), holds_secrets)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= _secret_strings(item, secret, holds_secrets)
    return found


def environment_secrets_in(environ: Mapping[str, str]) -> set[str]:
    """The secret strings of an environment: the values of variables named like a
    secret (:func:`.names.is_secret_environment_name`: ``PGPASSWORD``, ``GH_PAT``, not
    ``PWD``), plus what the shapes find in any value."""
    found: set[str] = set()
    for name, value in environ.items():
        found.update(secrets_in_text(value))
        if is_secret_environment_name(name):
            found.add(value)
    return found


def redact(text: str, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` with known secrets and secret shapes replaced by ``<redacted>``, then
    cut to ``max_chars`` (never inside a ``<redacted>``). Linear in ``len(text)``."""
    pattern = _KNOWN.pattern_for()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _cut(mask_shapes(text), max_chars)


def redact_shapes(text: str, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` with secret shapes (never known secrets) replaced by ``<redacted>``,
    then cut as :func:`redact` does: for text that comes from the caller, whose answer
    must not differ between a guess that is a known secret and one that is not."""
    return _cut(mask_shapes(text), max_chars)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = max_chars - 1
    start = text.rfind(REDACTED, max(0, cut - len(REDACTED) + 1), cut + len(REDACTED) - 1)
    if start != -1 and start < cut:
        cut = start  # keep the placeholder whole: drop it rather than split it
    return text[:cut] + "…"


def mask_data(
    value: Any, extra: Iterable[str] = (), *, known: bool = True
) -> tuple[Any, list[str]]:
    """``value`` (JSON-like) with every known secret (unless ``known`` is False: only
    ``extra``), and every one of ``extra``, in its strings replaced by ``<redacted>``;
    keys and other strings as they are. Also returns the JSON Pointers (RFC 6901) of
    the strings that changed."""
    pattern = _KNOWN.pattern_for(extra) if known else KnownSecrets.pattern_of(extra)
    masked: list[str] = []
    if pattern is None:
        return value, masked

    def visit(item: Any, pointer: str) -> Any:
        if isinstance(item, str):
            replaced = pattern.sub(REDACTED, item)
            if replaced != item:
                masked.append(pointer)
            return replaced
        if isinstance(item, dict):
            return {k: visit(v, f"{pointer}/{_escape(str(k))}") for k, v in item.items()}
        if isinstance(item, list):
            return [visit(v, f"{pointer}/{index}") for index, v in enumerate(item)]
        return item

    return visit(value, ""), masked


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (message, exception and stack included) has
    secrets redacted. Used by every handler of every service process."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), MAX_LOG_LINE_CHARS)
