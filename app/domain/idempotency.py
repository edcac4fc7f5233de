"""Idempotency-Key bookkeeping: which keys have a request in flight, how far back a
stored key still counts, and the check that a replay carries the original body.

Event-loop only, not thread-safe (``RunService`` uses it from the loop alone).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta

from app.domain.ports import IdempotencyKey
from app.errors import FieldError, IdempotencyKeyInUse, InvalidRequest


class IdempotencyKeys:
    """The keys in flight, scoped by caller, and the time a key lives."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = timedelta(seconds=ttl_seconds)
        self._in_flight: set[tuple[str, str]] = set()

    @contextlib.contextmanager
    def holding(self, key: IdempotencyKey | None) -> Iterator[None]:
        """Mark ``key`` in flight for the block; IdempotencyKeyInUse if it already is."""
        if key is None:
            yield
            return
        scope = (key.principal, key.key)
        if scope in self._in_flight:
            raise IdempotencyKeyInUse("A request with this Idempotency-Key is in progress.")
        self._in_flight.add(scope)
        try:
            yield
        finally:
            self._in_flight.discard(scope)

    def live_since(self, now: datetime) -> datetime:
        """The oldest time a stored key may have been used at and still count."""
        return now - self._ttl


def check_same_body(key: IdempotencyKey, stored_body_hash: str) -> None:
    """Raise InvalidRequest (422) if ``key`` came with another body than the one stored."""
    if stored_body_hash != key.body_hash:
        raise InvalidRequest(
            "This Idempotency-Key was used with a different request body.",
            [
                FieldError(
                    ("header", "Idempotency-Key"),
                    "already used with a different body",
                    "key_reused",
                )
            ],
        )
