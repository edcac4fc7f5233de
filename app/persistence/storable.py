"""Text the store can take: the one place where what is written is made storable.

A Python ``str`` may hold code points no database stores: lone surrogates (what
``os.fsdecode`` makes of undecodable bytes, or a JSON ``"\\udcff"`` escape) cannot be
encoded as UTF-8 at all, so SQLite's driver refuses the whole transaction, and
PostgreSQL refuses NUL in text. Every text column and JSON payload the store writes
passes through ``storable_text`` or ``storable_json``, so one odd log line can never
make a write fail.

Decision: each such code point becomes U+FFFD (the replacement character), NUL
included. It is what a UTF-8 decoder shows for bytes it cannot read, it keeps the
rest of the text as it was, and an escape (``\\x00``) could not be told apart from the
same four characters written on purpose.
"""

from __future__ import annotations

import json
import re

REPLACEMENT = "\ufffd"

# Lone surrogates (a str never pairs them: a pair would be one code point) and NUL.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with every lone surrogate and NUL replaced by U+FFFD; ``text`` itself
    when it has none (the common case costs one scan)."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable_optional(text: str | None) -> str | None:
    return None if text is None else storable_text(text)


def storable(value: object) -> object:
    """A JSON-like ``value`` (dicts, lists, tuples, strings, scalars) with every string
    in it, keys included, made storable. Other objects are left to the encoder."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {
            storable_text(key) if isinstance(key, str) else key: storable(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def storable_json(value: object) -> str:
    """``value`` as JSON text the store can take. Objects JSON has no form for are
    written as their ``str``, made storable too."""
    return json.dumps(storable(value), default=lambda other: storable_text(str(other)))
