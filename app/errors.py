"""The error vocabulary of the service.

Each error knows the HTTP status it maps to and a short stable ``code``; the API
renders every one of them once, as RFC 9457 problem+json. Nothing here imports a
web framework.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a request. ``loc`` is the path to the field."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"


class ServiceError(Exception):
    """Base of every error the service reports to a caller."""

    status: int = 500
    code: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry."""
        return {}


class Unauthenticated(ServiceError):
    """No API key, or one the service does not know. ``error`` is RFC 6750's code."""

    status = 401
    code = "unauthenticated"
    title = "A valid API key is required"

    def __init__(self, detail: str, error: str | None = None) -> None:
        super().__init__(detail)
        self.error = error

    def headers(self) -> dict[str, str]:
        challenge = 'Bearer realm="kedro-runs"'
        if self.error:
            challenge += f', error="{self.error}"'
        return {"WWW-Authenticate": challenge}


class Forbidden(ServiceError):
    """A valid API key that may not do this (an admin's operation)."""

    status = 403
    code = "forbidden"
    title = "This API key may not do this"


class RunNotFound(ServiceError):
    status = 404
    code = "run-not-found"
    title = "Run not found"


class PipelineNotFound(ServiceError):
    status = 404
    code = "pipeline-not-found"
    title = "Pipeline not found"


class IdempotencyKeyInUse(ServiceError):
    status = 409
    code = "idempotency-key-in-use"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyKeyTaken(IdempotencyKeyInUse):
    """The store found the key recorded, live, when it came to record it: another
    request (in another process, at the same moment) stored its run first. Nothing was
    stored; the service replays the run the key names. Where it is not handled, it is
    the 409 of a key in use, which a retry turns into that replay."""


class RunStateConflict(ServiceError):
    status = 409
    code = "run-state-conflict"
    title = "The run is not in a state that allows this"


class InvalidRequest(ServiceError):
    """The request is well-formed but asks for something that cannot be done."""

    status = 422
    code = "invalid-request"
    title = "The request is not valid"

    def __init__(self, detail: str, errors: list[FieldError]) -> None:
        super().__init__(detail)
        self.errors = errors


class InvalidRunRequest(InvalidRequest):
    """The run request names things the project does not have, or selects nothing."""

    code = "invalid-run-request"
    title = "The run request is not valid for this project"


class RetryLater(ServiceError):
    """The request may succeed later; answered with ``Retry-After``."""

    def __init__(self, detail: str, retry_after_seconds: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ServiceUnavailable(RetryLater):
    status = 503
    code = "service-unavailable"
    title = "The service cannot take this request now"


class StorageFull(ServiceUnavailable):
    """The run store cannot write: its disk is full. Nothing was stored; the service
    goes on serving reads and takes writes again once space returns."""

    code = "storage-full"
    title = "The run store has no space left"


class QueueFull(RetryLater):
    status = 429
    code = "queue-full"
    title = "Too many runs are queued"


class StartupRefused(Exception):
    """The service cannot start, for a reason its message says in full in one line (its
    port or its store is taken). Raised at start-up, never to a caller; the command line
    prints the message, without a traceback, and exits 1."""


class ProjectError(Exception):
    """The Kedro project cannot be opened. Raised at start-up, never to a caller. Not a
    StartupRefused: when the project's own code fails, the traceback is what says where."""
