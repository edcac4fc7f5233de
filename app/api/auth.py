"""API keys: who a request comes from.

With no keys configured every request is the ``anonymous`` caller, who sees all runs
(the service then listens on loopback only, unless started with ``--insecure``). With
keys, every endpoint but the probes (``/healthz``, ``/readyz`` and Kedro's ``/health``)
needs ``Authorization: Bearer <key>``. Keys are never taken from the query string, and
are known only by hash.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.domain.callers import ANONYMOUS, Caller
from app.errors import Forbidden, Unauthenticated
from app.settings import ApiKey

MAX_KEY_CHARS = 512

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer <key>`, required when the server has API keys "
    "configured (`api_keys`); a key sees only the runs it created, an admin key all.",
)


class KeyRing:
    """The configured keys, by SHA-256. Thread-safe (immutable)."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys = [(bytes.fromhex(key.sha256), Caller(key.name, key.admin)) for key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def caller_for(self, key: str) -> Caller | None:
        """The caller holding ``key``, or None. Every configured hash is compared in
        constant time, and all of them always, so timing tells nothing about which
        key (or how much of one) matched."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        found = None
        for expected, caller in self._keys:
            if hmac.compare_digest(digest, expected):
                found = caller
        return found


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    ring: KeyRing = request.app.state.key_ring
    if not ring.enabled:
        return ANONYMOUS
    if credentials is None:
        raise Unauthenticated("This service needs an API key: Authorization: Bearer <key>.")
    key = credentials.credentials
    caller = ring.caller_for(key) if len(key) <= MAX_KEY_CHARS else None
    if caller is None:
        raise Unauthenticated("The API key is not valid.", error="invalid_token")
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]
requires_key = Depends(_caller)  # for routers and routes that do not read the caller


async def _admin(caller: CallerDep) -> Caller:
    if not caller.admin:
        raise Forbidden("Only an admin API key may do this.")
    return caller


# Service-wide figures (every key's runs): for admin keys, or anyone without keys.
requires_admin = Depends(_admin)


def drop_key_requirements(schema: dict[str, Any]) -> None:
    """Make an OpenAPI document describe a service without API keys: no operation
    requires one and no scheme is declared, so generated clients ask for no token.
    FastAPI documents the bearer dependency on every operation either way."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.pop("security", None)
    components = schema.get("components", {})
    schemes = components.get("securitySchemes", {})
    schemes.pop(bearer.scheme_name, None)
    if not schemes:
        components.pop("securitySchemes", None)
