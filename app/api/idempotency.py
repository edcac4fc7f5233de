"""The Idempotency-Key header, shared by POST /runs and POST /run."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Header
from pydantic import BaseModel

from app.domain.callers import Caller
from app.domain.ports import IdempotencyKey

DESCRIPTION = (
    "Submit at most once: a retry with the same key and body returns the original run "
    "(header `Idempotent-Replayed: true`); the same key with another body is a 422; a "
    "retry while the first is still being handled is a 409. Keys are scoped to the API "
    "key that sent them and expire after `idempotency_ttl_seconds` (24 h by default)."
)


def idempotency_key_header(more: str = "") -> Any:
    """The header's declaration; ``more`` adds to its description."""
    return Header(
        alias="Idempotency-Key", min_length=1, max_length=255, description=DESCRIPTION + more
    )


def idempotency_key_of(caller: Caller, key: str, body: BaseModel) -> IdempotencyKey:
    """``key`` scoped to ``caller``, with a hash of the body as it was validated (so
    formatting and key order of the JSON do not matter)."""
    digest = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    return IdempotencyKey(caller.name, key, digest)
