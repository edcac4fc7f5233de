"""What the store tells callers when the database fails: ServiceUnavailable (a 503 with
Retry-After) for what may pass by itself, the original error otherwise."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError

from app.errors import ServiceUnavailable, StorageFull
from app.persistence.engine import is_storage_full

STORAGE_FULL_RETRY_SECONDS = 30

C = TypeVar("C", bound=type)


def raise_retry_later(error: BaseException) -> None:
    """The transaction rolled back. What may pass by itself is told to the caller as
    ServiceUnavailable: a full disk (StorageFull), and a store that is locked past the
    busy timeout or unreachable (OperationalError: the database, not the data written)."""
    if is_storage_full(error):
        raise StorageFull(
            "The run store's disk is full; nothing was stored. Retry later.",
            retry_after_seconds=STORAGE_FULL_RETRY_SECONDS,
        ) from error
    if isinstance(error, OperationalError):
        raise ServiceUnavailable(
            "The run store is unavailable; nothing was stored. Retry later.",
            retry_after_seconds=STORAGE_FULL_RETRY_SECONDS,
        ) from error


def unavailable_is_retry_later(cls: C) -> C:
    """Every public method of ``cls`` raises ServiceUnavailable (see
    ``raise_retry_later``) where the database is unavailable, reads included: a client
    then gets a 503 with Retry-After, not a 500, while the database is away."""
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not callable(method):
            continue
        setattr(cls, name, _retrying_later(method))
    return cls


def _retrying_later(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except ServiceUnavailable:
            raise
        except BaseException as error:
            raise_retry_later(error)
            raise

    return call
